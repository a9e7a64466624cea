"""The SQLite store: group commit, per-operation failure isolation, idempotency keys,
claims and leases, recovery, and refusing work (503) when it cannot take it."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import string
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import PROBLEM, ClientFactory, alert, config_dict, start_gateway, table_counts

from baton.errors import ConfigError, NotFound, StorageUnavailable
from baton.inhibit import parse_inhibit_rules
from baton.model import Alert
from baton.outbox import Outbox
from baton.store import DeliveryOutcome, RoutedAlert, Store, TargetSpec, open_store
from baton.store.repo import Repo
from baton.store.sqlite import DatabaseInUse, SQLiteEngine
from baton.store.tx import Tx
from baton.suppression import Suppressor

T0 = 1_767_225_600.0
HOOK = TargetSpec("hook")


def routed(key: str, status: str = "firing") -> RoutedAlert:
    a = Alert(dedup_key=key, status=status, severity="warning",  # type: ignore[arg-type]
              summary=f"problem {key}", source_type="generic", source_name="app")
    return RoutedAlert(alert=a, key=f"r|{key}", route="r", policy="p",
                       policy_snapshot={"name": "p", "repeat": 0,
                                        "levels": [{"notify": [HOOK.to_dict()]}]})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = open_store(f"sqlite:///{tmp_path}/b.db", max_pending=10000)
    s.open()
    yield s
    s.close()


def engine(store: Store) -> SQLiteEngine:
    assert isinstance(store.engine, SQLiteEngine)
    return store.engine


class Blocker:
    """Holds the single writer thread inside one operation, so the operations queued
    meanwhile are committed together in the next group, and records the SQL the writer
    runs from then on (until the store closes)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.statements: list[str] = []
        self.inside = threading.Event()
        self.release = threading.Event()
        self.task: asyncio.Task[Any] | None = None

    def _op(self, tx: Tx) -> None:
        tx.conn.set_trace_callback(self.statements.append)
        self.inside.set()
        self.release.wait(10)

    async def __aenter__(self) -> Blocker:
        self.task = asyncio.create_task(self.store.engine.write(self._op))
        assert await asyncio.to_thread(self.inside.wait, 10)
        return self

    async def queued(self, n: int) -> None:
        for _ in range(1000):
            if engine(self.store)._writes.qsize() >= n:
                return
            await asyncio.sleep(0.001)
        raise AssertionError(f"{n} operations never queued")

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        assert self.task is not None
        await self.task

    def count(self, sql: str) -> int:
        return sum(s.strip().upper() == sql for s in self.statements)


def count(store_path: Path, table: str) -> int:
    conn = sqlite3.connect(store_path)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


async def test_concurrent_ingests_share_one_commit(store: Store, tmp_path: Path) -> None:
    async with Blocker(store) as b:
        tasks = [asyncio.create_task(store.ingest("app", "{}", [routed(f"k{n}")], T0))
                 for n in range(50)]
        await b.queued(50)
    results = await asyncio.gather(*tasks)
    assert [r.opened for r in results] == [1] * 50
    assert len({r.incident_ids[0] for r in results}) == 50
    # The blocker's group, then all fifty in one transaction: two commits, not fifty-one.
    assert (b.count("COMMIT"), b.count("BEGIN IMMEDIATE"), b.count("SAVEPOINT OP")) == (
        2, 1, 50)
    assert count(tmp_path / "b.db", "incidents") == 50
    assert count(tmp_path / "b.db", "deliveries") == 50


async def test_a_failing_operation_does_not_undo_its_neighbours(store: Store,
                                                                 tmp_path: Path) -> None:
    def half_then_fail(tx: Tx) -> None:
        tx.insert("baton_meta", {"name": "half", "value": "written"})
        raise ValueError("boom")

    async with Blocker(store) as b:
        ops = [asyncio.create_task(c) for c in (
            store.ingest("app", "{}", [routed("a")], T0),
            store.acknowledge("01AAAAAAAAAAAAAAAAAAAAAAAA", "alice", None, T0),
            store.engine.write(half_then_fail),
            store.ingest("app", "{}", [routed("b")], T0))]
        await b.queued(4)
    a, missing, failed, b_ = await asyncio.gather(*ops, return_exceptions=True)
    assert isinstance(missing, NotFound)
    assert isinstance(failed, ValueError) and str(failed) == "boom"
    assert b.count("COMMIT") == 2 and b.count("ROLLBACK TO OP") == 2
    ids = [r.incident_ids[0] for r in (a, b_)]  # type: ignore[union-attr]
    for incident_id in ids:
        assert (await store.get_incident(incident_id))["status"] == "triggered"
    # The failed operation's half-written row was rolled back: only the layout version.
    with sqlite3.connect(tmp_path / "b.db") as conn:
        assert conn.execute("SELECT name FROM baton_meta").fetchall() == [("schema_version",)]
    assert count(tmp_path / "b.db", "incidents") == 2


async def test_reads_are_not_blocked_by_a_long_write(store: Store) -> None:
    (incident_id,) = (await store.ingest("app", "{}", [routed("r")], T0)).incident_ids
    async with Blocker(store):
        doc = await asyncio.wait_for(store.get_incident(incident_id), 5)
    assert doc["id"] == incident_id


async def test_idempotency_keys_are_unique(store: Store, tmp_path: Path) -> None:
    (incident_id,) = (await store.ingest("app", "{}", [routed("k")], T0)).incident_ids

    def again(tx: Tx) -> list[bool]:
        enqueue, db = Outbox().enqueue, Repo(tx)
        return [enqueue(db, incident_id, HOOK, "trigger", T0),
                enqueue(db, incident_id, TargetSpec("hook", "person:bob"), "trigger", T0),
                enqueue(db, incident_id, HOOK, "note", T0, discriminator="n1"),
                enqueue(db, incident_id, HOOK, "note", T0, discriminator="n1"),
                enqueue(db, incident_id, HOOK, "note", T0, discriminator="n2")]

    inserted, enqueued = await store.engine.write(again)
    assert (inserted, enqueued) == ([False, True, True, False, True], 3)
    keys = [r["idempotency_key"] for r in (await store.get_incident(incident_id))["deliveries"]]
    assert sorted(keys) == sorted([f"{incident_id}/hook/trigger",
                                   f"{incident_id}/hook/trigger/person:bob",
                                   f"{incident_id}/hook/note/n1", f"{incident_id}/hook/note/n2"])

    # The database itself refuses a duplicate, whoever writes it; that is a storage error
    # for that operation only.
    def duplicate(tx: Tx) -> None:
        row = tx.one("SELECT * FROM deliveries LIMIT 1")
        assert row is not None
        tx.insert("deliveries", {**row, "id": "X"})

    with pytest.raises(StorageUnavailable, match="IntegrityError"):
        await store.engine.write(duplicate)
    assert count(tmp_path / "b.db", "deliveries") == 4


async def test_a_claim_is_a_lease(store: Store) -> None:
    await store.ingest("app", "{}", [routed("k")], T0)
    (first,) = await store.claim("hook", 10, T0, 60, "w1")
    assert (first.action, first.attempts, first.idempotency_key.endswith("/hook/trigger")) == (
        "trigger", 1, True)
    assert await store.claim("hook", 10, T0, 60, "w2") == []
    assert await store.claim("hook", 10, T0 + 60, 60, "w2") == []  # lease still held
    (second,) = await store.claim("hook", 10, T0 + 60.001, 60, "w2")
    assert (second.id, second.attempts) == (first.id, 2)
    assert await store.claim("other", 10, T0 + 999, 60, "w2") == []

    late = DeliveryOutcome(first.id, "delivered", T0 + 61, status=200)
    assert await store.finish(late, "w1") is False  # w1 lost the lease: w2's result stands
    assert (await store.get_delivery(first.id))["state"] == "in_flight"
    assert await store.finish(late, "w2") is True
    doc = await store.get_delivery(first.id)
    assert (doc["state"], doc["attempts"], doc["last_status"]) == ("delivered", 2, 200)
    assert await store.finish(late, "w2") is False  # not in flight any more
    assert await store.claim("hook", 10, T0 + 999, 60, "w1") == []


async def test_abandon_dead_letters_waiting_rows_but_not_a_live_claim(store: Store) -> None:
    """A connector removed by a reload: pending rows and expired claims become dead
    letters with the reason; a claim under lease is left to finish; replay works."""
    await store.ingest("app", "{}", [routed("a"), routed("b"), routed("c")], T0)
    first, second = await store.claim("hook", 2, T0, 60, "w1")
    reason = "connector hook removed from config by reload"
    assert await store.abandon("hook", reason, T0 + 30) == 1  # the third, pending
    assert await store.abandon("hook", reason, T0 + 61) == 2  # both claims expired now
    dead = await store.list_deliveries(state="dead")
    assert {d["last_error"] for d in dead[0]} == {reason} and len(dead[0]) == 3
    assert await store.abandon("hook", reason, T0 + 99) == 0  # nothing waits: no write
    assert await store.finish(DeliveryOutcome(first.id, "delivered", T0 + 62), "w1") is False
    doc = await store.retry_delivery(second.id, "ops", T0 + 100)
    assert doc["state"] == "pending"


async def test_recover_takes_back_claims_of_a_previous_run(tmp_path: Path) -> None:
    owner = open_store(f"sqlite:///{tmp_path}/b.db")
    owner.open(owner=True)
    try:
        await _recover_takes_back_claims(owner)
    finally:
        owner.close()


async def _recover_takes_back_claims(store: Store) -> None:
    await store.ingest("app", "{}", [routed("a"), routed("b")], T0)
    claimed = await store.claim("hook", 10, T0, 60, "dead-process")
    assert len(claimed) == 2
    assert await store.recover(T0 + 5) == 2
    docs = [await store.get_delivery(c.id) for c in claimed]
    assert {(d["state"], d["attempts"]) for d in docs} == {("pending", 1)}
    # Claimable at once, not only when the lease would have run out.
    again = await store.claim("hook", 10, T0 + 5, 60, "me")
    assert sorted(c.id for c in again) == sorted(c.id for c in claimed)
    assert {c.attempts for c in again} == {2}
    assert await store.recover(T0 + 6) == 2
    assert await store.recover(T0 + 6) == 0


async def test_only_the_owner_takes_claims_back(store: Store, tmp_path: Path) -> None:
    """A reader beside a running server (the CLI) must not take its claims: it cannot
    know whether their claimer is alive."""
    await store.ingest("app", "{}", [routed("a")], T0)
    await store.claim("hook", 10, T0, 60, "live-server")
    assert await store.recover(T0 + 5) == 0
    assert (await store.depth())["in_flight"] == 1


async def test_a_second_owner_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/b.db"
    first, second = open_store(url), open_store(url)
    first.open(owner=True)
    try:
        with pytest.raises(DatabaseInUse) as err:
            second.open(owner=True)
        assert f"database {tmp_path}/b.db is in use" in str(err.value)
        assert f"(pid {os.getpid()})" in str(err.value)
        assert not second.owner
        reader = open_store(url)
        reader.open()  # readers do not need the lock
        await reader.ping()
        reader.close()
        await first.ping()  # the refused one and the reader left the owner alone
    finally:
        first.close()
    second.open(owner=True)  # the lock went with the first one
    second.close()


async def test_release_gives_back_without_counting_the_attempt(store: Store) -> None:
    await store.ingest("app", "{}", [routed("a")], T0)
    (c,) = await store.claim("hook", 10, T0, 60, "me")
    assert await store.release([c.id], "someone-else", T0) == 0
    assert await store.release([c.id], "me", T0 + 1) == 1
    doc = await store.get_delivery(c.id)
    assert (doc["state"], doc["attempts"]) == ("pending", 0)


async def test_a_full_write_queue_is_refused_at_once(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/b.db", max_pending=2)
    store.open()
    try:
        async with Blocker(store) as b:
            queued = [asyncio.create_task(store.ingest("app", "{}", [routed(k)], T0))
                      for k in ("a", "b")]
            await b.queued(2)
            with pytest.raises(StorageUnavailable) as refused:
                await store.ingest("app", "{}", [routed("c")], T0)
            assert (str(refused.value), refused.value.retry_after) == ("write queue full", 2)
        assert [r.opened for r in await asyncio.gather(*queued)] == [1, 1]
    finally:
        store.close()
    assert count(tmp_path / "b.db", "incidents") == 2


async def test_the_api_answers_503_with_retry_after_when_writes_queue_up(
        aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    data = config_dict(tmp_path)
    data["storage"]["max_pending_writes"] = 1
    gw = await start_gateway(aiohttp_client, data, tmp_path)
    async with Blocker(gw.store) as b:
        first = asyncio.create_task(gw.client.post("/v1/ingest/app", json=alert("first")))
        await b.queued(1)
        resp = await gw.client.post("/v1/ingest/app", json=alert("second"))
        assert (resp.status, resp.content_type, resp.headers["Retry-After"]) == (
            503, PROBLEM, "2")
        body = await resp.json(content_type=PROBLEM)
        assert (body["title"], body["detail"]) == ("Service Unavailable", "write queue full")
    assert (await first).status == 202
    assert table_counts(tmp_path)["incidents"] == 1
    metrics = await (await gw.client.get("/metrics")).text()
    assert 'baton_ingest_rejected_total{reason="storage",source="app"} 1.0' in metrics


async def test_a_closed_store_answers_503_instead_of_hanging(aiohttp_client: ClientFactory,
                                                             tmp_path: Path) -> None:
    gw = await start_gateway(aiohttp_client, config_dict(tmp_path), tmp_path)
    gw.store.close()
    calls: list[Callable[[], Any]] = [
        lambda: gw.client.post("/v1/ingest/app", json=alert("x")),
        lambda: gw.client.get("/readyz"),
        lambda: gw.client.get("/v1/incidents"),
    ]
    for call in calls:
        resp = await asyncio.wait_for(call(), 5)
        assert (resp.status, resp.content_type) == (503, PROBLEM)
        assert int(resp.headers["Retry-After"]) > 0
    assert (await gw.client.get("/healthz")).status == 200


async def test_a_database_of_another_layout_is_refused_with_a_config_error(
        tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # a pre-release layout: tables, no version
        conn.execute("CREATE TABLE incidents (id TEXT PRIMARY KEY)")
    store = open_store(f"sqlite:///{path}")
    with pytest.raises(ConfigError) as err:
        store.open()
    assert err.value.problems == [
        "storage.url: the database has storage layout none, this Baton needs 2; point "
        "storage.url at a new database (layout 1 is upgraded in place; there are no "
        "migrations from pre-release layouts)"]
    with sqlite3.connect(path) as conn:  # and nothing was added to it
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master "
                                             "WHERE type = 'table'")}
    assert tables == {"incidents"}


async def test_reopening_a_database_of_this_layout_works(tmp_path: Path) -> None:
    for _ in range(2):
        store = open_store(f"sqlite:///{tmp_path}/b.db")
        store.open()
        await store.ping()
        store.close()


def _labelled(key: str, severity: str, labels: dict[str, str]) -> RoutedAlert:
    a = Alert(dedup_key=key, status="firing", severity=severity,  # type: ignore[arg-type]
              summary=f"problem {key}", source_type="generic", source_name="app",
              labels=labels)
    return RoutedAlert(alert=a, key=f"r|{key}", route="r", policy="p",
                       policy_snapshot={"name": "p", "repeat": 0,
                                        "levels": [{"notify": [HOOK.to_dict()]}]})


async def test_long_label_names_and_values_are_indexed_and_inhibit(store: Store) -> None:
    """A B-tree entry has a size limit (about 2.7 kB on PostgreSQL): label names and
    values far past it are still stored, looked up and compared in full."""
    rng = random.Random(5)  # incompressible: PostgreSQL compresses before the limit
    long_name = "n" * 300
    long_value = "".join(rng.choice(string.ascii_letters) for _ in range(8000))
    store.suppressor = Suppressor(parse_inhibit_rules([{
        "source_matchers": ['alertname="NodeDown"'], "target_matchers": ['severity="warning"'],
        "equal": ["instance", long_name]}], lambda path, message: None))
    down = await store.ingest("app", "{}", [_labelled("down", "critical", {
        "alertname": "NodeDown", "instance": long_value, long_name: "x"})], T0)
    held = await store.ingest("app", "{}", [_labelled("w1", "warning", {
        "alertname": "DiskSlow", "instance": long_value, long_name: "x"})], T0)
    # Differs only in its last character: the same digest prefix must not inhibit it.
    free = await store.ingest("app", "{}", [_labelled("w2", "warning", {
        "alertname": "DiskSlow", "instance": long_value[:-1] + "w", long_name: "x"})], T0)
    doc = await store.get_incident(held.incident_ids[0])
    assert doc["suppressed"]["by_incident"] == down.incident_ids[0]
    assert (await store.get_incident(free.incident_ids[0]))["suppressed"] is None


async def test_a_background_write_runs_alone_after_the_foreground_ones(store: Store) -> None:
    order: list[str] = []

    def mark(name: str) -> Callable[[Tx], None]:
        return lambda tx: order.append(name)

    async with Blocker(store) as b:
        background = asyncio.create_task(store.engine.write(mark("prune"), background=True))
        for _ in range(1000):  # queued (its wake-up token is in the foreground queue)
            if not engine(store)._background.empty():
                break
            await asyncio.sleep(0.001)
        foreground = [asyncio.create_task(store.engine.write(mark(f"ingest{n}")))
                      for n in range(3)]
        await b.queued(4)  # the wake-up token and three requests' writes
    await asyncio.gather(background, *foreground)
    # Queued first, run last; the three requests in one group, pruning in its own.
    assert order == ["ingest0", "ingest1", "ingest2", "prune"]
    assert (b.count("COMMIT"), b.count("SAVEPOINT OP")) == (3, 4)


async def test_a_background_write_is_not_starved_by_a_stream_of_requests(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past BACKGROUND_MAX_WAIT it runs between two groups even though requests' writes
    are waiting: under sustained load pruning still progresses."""
    import baton.store.sqlite as sqlite_engine

    monkeypatch.setattr(sqlite_engine, "BACKGROUND_MAX_WAIT", 0.5)
    order: list[str] = []
    loop = asyncio.get_running_loop()
    later: asyncio.Future[Any] = loop.create_future()

    def first(tx: Tx) -> None:
        order.append("first")
        time.sleep(1.0)  # a long group: the background write is overdue when it ends
        # Another request's write arrives while this group runs: the queue is not empty
        # when the group ends.
        engine(store)._writes.put((lambda tx: order.append("second"), loop, later))

    async with Blocker(store) as b:
        background = asyncio.create_task(store.engine.write(
            lambda tx: order.append("prune"), background=True))
        for _ in range(1000):
            if not engine(store)._background.empty():
                break
            await asyncio.sleep(0.001)
        foreground = asyncio.create_task(store.engine.write(first))
        await b.queued(2)
    await asyncio.gather(background, foreground, later)
    assert order == ["first", "prune", "second"]
