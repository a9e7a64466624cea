"""The store on PostgreSQL: the engine-neutral checks of the SQLite store's unit tests run
again here, on a real server, plus what only a shared database has (conflicts between
connections, claims of other replicas, a lost connection)."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest
from helpers import Hold
from pg import admin, kill_connections, pg_schema, pg_url, rows  # noqa: F401

from baton.errors import ConfigError, NotFound, StorageUnavailable
from baton.outbox import Outbox
from baton.store import Store, TargetSpec, open_store
from baton.store.postgres import PostgresEngine, parse_url
from baton.store.repo import Repo
from baton.store.tx import Tx

pytestmark = pytest.mark.integration


def _unit(name: str) -> ModuleType:
    """A unit test module, loaded under a name of its own (its tests run here again with
    this module's ``store`` fixture)."""
    path = Path(__file__).parent.parent / "unit" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"pg_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_store_tests = _unit("test_store")
_claim_doc_tests = _unit("test_store_claim_document")
routed, T0 = _store_tests.routed, _store_tests.T0
HOOK = TargetSpec("hook")

# The same checks as on SQLite, collected again in this module.
test_a_claim_is_a_lease = _store_tests.test_a_claim_is_a_lease
test_long_label_names_and_values_are_indexed_and_inhibit = (
    _store_tests.test_long_label_names_and_values_are_indexed_and_inhibit)
test_abandon_dead_letters_waiting_rows_but_not_a_live_claim = (
    _store_tests.test_abandon_dead_letters_waiting_rows_but_not_a_live_claim)
test_release_gives_back_without_counting_the_attempt = (
    _store_tests.test_release_gives_back_without_counting_the_attempt)
test_a_claim_carries_the_document_a_separate_read_gives = (
    _claim_doc_tests.test_a_claim_carries_the_document_a_separate_read_gives)
test_a_broken_document_leaves_only_its_own_delivery_without_one = (
    _claim_doc_tests.test_a_broken_document_leaves_only_its_own_delivery_without_one)


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[Store]:  # noqa: F811
    s = open_store(pg_url)
    s.open()
    yield s
    s.close()


def count(schema: str, table: str) -> int:
    return int(rows(schema, f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])



def test_urls() -> None:
    params, schema = parse_url("postgres://u@db.internal:6432/baton?schema=ops&sslmode=require")
    assert (schema, params) == ("ops", {"user": "u", "host": "db.internal", "port": "6432",
                                        "dbname": "baton", "sslmode": "require"})
    assert parse_url("postgresql://127.0.0.1/test") == (
        {"host": "127.0.0.1", "dbname": "test"}, None)
    with pytest.raises(ConfigError):
        parse_url("postgresql://h/db?schema=")
    with pytest.raises(ConfigError) as err:  # a bracket left open: not a traceback
        parse_url("postgresql://u:pw@[::1/db")
    assert err.value.problems[0].startswith("storage.url: not a PostgreSQL connection URL")
    assert "pw" not in err.value.problems[0]


async def test_the_engine_claims_with_skip_locked_and_shares_claims(store: Store) -> None:
    assert (store.engine.skip_locked, store.single_process) == (True, False)


async def test_recover_leaves_other_replicas_claims_alone(store: Store) -> None:
    await store.ingest("app", "{}", [routed("a"), routed("b")], T0)
    claimed = await store.claim("hook", 10, T0, 60, "other-replica")
    assert len(claimed) == 2
    assert await store.recover(T0 + 5) == 0  # it may still be working on them
    assert await store.claim("hook", 10, T0 + 5, 60, "me") == []
    again = await store.claim("hook", 10, T0 + 61, 60, "me")  # its leases ran out
    assert sorted(c.id for c in again) == sorted(c.id for c in claimed)


async def test_idempotency_keys_are_unique(store: Store, pg_schema: str) -> None:  # noqa: F811
    (incident_id,) = (await store.ingest("app", "{}", [routed("k")], T0)).incident_ids

    def again(tx: Tx) -> list[bool]:
        return [Outbox().enqueue(Repo(tx), incident_id, HOOK, "trigger", T0),
                Outbox().enqueue(Repo(tx), incident_id, HOOK, "note", T0, discriminator="n1"),
                Outbox().enqueue(Repo(tx), incident_id, HOOK, "note", T0, discriminator="n1")]

    assert await store.engine.write(again) == ([False, True, False], 1)

    def duplicate(tx: Tx) -> None:
        row = tx.one("SELECT * FROM deliveries LIMIT 1")
        assert row is not None
        tx.insert("deliveries", {**row, "id": "X"})

    with pytest.raises(StorageUnavailable, match="IntegrityError"):
        await store.engine.write(duplicate)
    assert count(pg_schema, "deliveries") == 2


async def test_a_failing_operation_is_rolled_back_alone(store: Store,
                                                        pg_schema: str) -> None:  # noqa: F811
    def half_then_fail(tx: Tx) -> None:
        tx.insert("baton_meta", {"name": "half", "value": "written"})
        raise ValueError("boom")

    a, missing, failed, b = await asyncio.gather(
        store.ingest("app", "{}", [routed("a")], T0),
        store.acknowledge("01AAAAAAAAAAAAAAAAAAAAAAAA", "alice", None, T0),
        store.engine.write(half_then_fail),
        store.ingest("app", "{}", [routed("b")], T0), return_exceptions=True)
    assert isinstance(missing, NotFound)
    assert isinstance(failed, ValueError) and str(failed) == "boom"
    assert [r["name"] for r in rows(pg_schema, "SELECT name FROM baton_meta")] == [
        "schema_version"]
    assert count(pg_schema, "incidents") == 2 and a.opened == b.opened == 1  # type: ignore[union-attr]


async def test_replicas_opening_the_same_key_at_once_get_one_incident(
        store: Store, pg_url: str, pg_schema: str) -> None:  # noqa: F811
    other = open_store(pg_url)
    other.open()
    try:
        results = await asyncio.gather(*[
            s.ingest("app", "{}", [routed("same")], T0 + n)
            for n in range(20) for s in (store, other)])
    finally:
        other.close()
    assert len({r.incident_ids for r in results}) == 1
    assert sum(r.opened for r in results) == 1
    (inc,) = rows(pg_schema, "SELECT event_count FROM incidents")
    assert inc["event_count"] == 40
    assert count(pg_schema, "deliveries") == 1


async def test_reads_are_not_blocked_by_a_long_write(store: Store) -> None:
    (incident_id,) = (await store.ingest("app", "{}", [routed("r")], T0)).incident_ids
    hold = Hold()
    held = asyncio.create_task(store.engine.write(hold))
    try:
        assert await asyncio.to_thread(hold.inside.wait, 10)
        doc = await asyncio.wait_for(store.get_incident(incident_id), 5)
        assert doc["id"] == incident_id
    finally:
        hold.release.set()
        await held


async def test_a_full_write_queue_is_refused_at_once(pg_url: str) -> None:  # noqa: F811
    store = Store(PostgresEngine(pg_url, max_pending=2, writers=1), single_process=False)
    store.open()
    hold = Hold()
    try:
        held = asyncio.create_task(store.engine.write(hold))
        assert await asyncio.to_thread(hold.inside.wait, 10)
        queued = [asyncio.create_task(store.ingest("app", "{}", [routed(k)], T0))
                  for k in ("a", "b")]
        for _ in range(1000):
            if store.engine._writes.qsize() == 2:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.001)
        with pytest.raises(StorageUnavailable) as refused:
            await store.ingest("app", "{}", [routed("c")], T0)
        assert (str(refused.value), refused.value.retry_after) == ("write queue full", 2)
        hold.release.set()
        await held
        assert [r.opened for r in await asyncio.gather(*queued)] == [1, 1]
    finally:
        hold.release.set()
        store.close()


async def test_a_lost_connection_is_a_503_and_the_next_operation_reconnects(
        store: Store, pg_schema: str) -> None:  # noqa: F811
    await store.ingest("app", "{}", [routed("before")], T0)
    await store.ping()

    def lose_it(tx: Tx) -> None:  # the server goes away in the middle of a transaction
        tx.insert("baton_meta", {"name": "lost", "value": "never committed"})
        tx.one("SELECT pg_terminate_backend(pg_backend_pid()) AS x")

    with pytest.raises(StorageUnavailable, match="connection lost") as lost:
        await store.engine.write(lose_it)
    assert lost.value.retry_after > 0
    # A restart closes idle connections too: the next operations open new ones.
    assert kill_connections(pg_schema) >= 1
    assert (await store.ingest("app", "{}", [routed("after")], T0)).opened == 1
    await store.ping()
    assert count(pg_schema, "incidents") == 2
    assert [r["name"] for r in rows(pg_schema, "SELECT name FROM baton_meta")] == [
        "schema_version"]


async def test_an_unreachable_server_fails_the_start_clearly() -> None:
    store = open_store("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")
    with pytest.raises(StorageUnavailable, match="cannot connect to PostgreSQL"):
        store.open()
    with pytest.raises(StorageUnavailable, match="not open"):
        await store.ping()


async def test_a_database_of_another_layout_is_refused(pg_url: str,  # noqa: F811
                                                       pg_schema: str) -> None:  # noqa: F811
    with admin() as conn:
        conn.execute(f'CREATE TABLE "{pg_schema}".incidents (id TEXT PRIMARY KEY)')
    with pytest.raises(ConfigError, match="storage layout none"):
        open_store(pg_url).open()
    tables = rows(pg_schema, "SELECT table_name FROM information_schema.tables "
                  "WHERE table_schema = %s", (pg_schema,))
    assert [t["table_name"] for t in tables] == ["incidents"]


async def test_reopening_and_replicas_starting_together_work(pg_url: str) -> None:  # noqa: F811
    stores = [open_store(pg_url) for _ in range(3)]
    await asyncio.gather(*[asyncio.to_thread(s.open) for s in stores])
    try:
        for s in stores:
            await s.ping()
    finally:
        for s in stores:
            s.close()
    again = open_store(pg_url)
    again.open()
    await again.ping()
    again.close()
