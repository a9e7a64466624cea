"""Retention: what pruning deletes, what it never touches, dry runs, batch bounds.

Time is a fake clock: rows are written at chosen times and the pruner looks from a later
one. The engine-neutral tests here run again on PostgreSQL
(tests/integration/test_retention_postgres.py) with that module's ``store`` fixture.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import build, minimal

from baton import schema
from baton.cli import main
from baton.clock import FakeClock
from baton.config import RetentionConfig
from baton.duration import parse_duration
from baton.errors import ConfigError
from baton.metrics import Metrics
from baton.model import Alert
from baton.plugin import CallbackEvent
from baton.retention import Pruner
from baton.store import DeliveryOutcome, RoutedAlert, Store, TargetSpec, open_store
from baton.store.retention import TABLES
from baton.store.sqlite import SQLiteEngine
from baton.store.tx import Tx

T0 = 1_767_225_600.0
DAY = 86400.0
HOOK = TargetSpec("hook")
# Short horizons so the scenario reads in days; batches small so rounds take several.
POLICY = RetentionConfig(raw_events=7 * DAY, resolved_incidents=30 * DAY,
                         replay_ids=10 * DAY, interval=60.0, batch_size=10)


def routed(key: str, status: str = "firing", target: TargetSpec = HOOK) -> RoutedAlert:
    a = Alert(dedup_key=key, status=status, severity="warning",  # type: ignore[arg-type]
              summary=f"problem {key}", source_type="generic", source_name="app")
    # Two levels, so opening arms an escalation timer (cancelled when it resolves).
    return RoutedAlert(alert=a, key=f"r|{key}", route="r", policy="p",
                       policy_snapshot={"name": "p", "repeat": 0, "levels": [
                           {"notify": [target.to_dict()], "escalate_after": 600},
                           {"notify": [target.to_dict()]}]})


async def counts(store: Store, where: dict[str, str] | None = None) -> dict[str, int]:
    """Rows per table (``where``: a condition per table)."""
    def op(tx: Tx) -> dict[str, int]:
        out = {}
        for t in TABLES:
            cond = f" WHERE {where[t]}" if where and t in where else ""
            row = tx.one(f"SELECT COUNT(*) AS n FROM {t}{cond}")
            out[t] = int(row["n"]) if row else 0
        return out
    return await store.engine.read(op)


async def settle(store: Store, at: float, state: str = "delivered",
                 ref: dict[str, Any] | None = None, connector: str = "hook") -> int:
    """Claim every due delivery and record ``state`` for each."""
    done = 0
    for c in await store.claim(connector, 100, at, 60, "w"):
        await store.finish(DeliveryOutcome(c.id, state, at, status=200, external_ref=ref,
                                           next_attempt_at=None), "w")
        done += 1
    return done


@dataclass
class Scenario:
    gone: list[str]  # resolved long ago, everything finished: pruned whole
    kept: list[str]  # open, or with a delivery still to send, or resolved recently
    now: float


async def populate(store: Store) -> Scenario:
    t = T0
    # Resolved long ago with a delivered trigger, a ticket reference, a callback, its
    # resolve delivered: everything of it goes.
    done = (await store.ingest("app", '{"old": 1}', [routed("done")], t,
                               message_id="m-old")).incident_ids[0]
    await settle(store, t, ref={"id": "T-1", "url": "http://127.0.0.1:9/T-1"})
    await store.apply_callbacks("hook", [CallbackEvent("note", "cb-done", "bob",
                                                       incident_id=done, text="hi")], t + 1)
    await settle(store, t + 1)
    await store.resolve(done, "alice", None, t + 2)
    await settle(store, t + 2)
    # Resolved long ago, its trigger dead-lettered and never replayed: goes too.
    dead = (await store.ingest("app", "{}", [routed("dead")], t)).incident_ids[0]
    await settle(store, t, state="dead")
    await store.resolve(dead, "alice", None, t + 3)
    # Resolved long ago, but its resolve is still pending (the vendor is down): kept.
    # (Their connector, "slow", is settled only at the end.)
    slow = TargetSpec("slow")
    pending = (await store.ingest("app", "{}", [routed("pending", target=slow)],
                                  t)).incident_ids[0]
    await settle(store, t, connector="slow")
    await store.resolve(pending, "alice", None, t + 4)
    # Resolved long ago, its resolve claimed and in flight right now: kept.
    flying = (await store.ingest("app", "{}", [routed("flying", target=slow)],
                                 t)).incident_ids[0]
    await settle(store, t, connector="slow")
    await store.resolve(flying, "alice", None, t + 5)
    # Open for months (however old): kept, with its old callback ledger row.
    opened = (await store.ingest("app", "{}", [routed("open")], t)).incident_ids[0]
    await settle(store, t)
    await store.apply_callbacks("hook", [CallbackEvent("note", "cb-open", "bob",
                                                       incident_id=opened, text="x")], t)
    await settle(store, t)
    # A callback nobody could place, long ago: its id goes by age.
    await store.apply_callbacks("hook", [CallbackEvent("acknowledge", "cb-unknown", "bob",
                                                       incident_id="nope")], t)
    # Recent: resolved a day before "now", and new raw events and replay ids.
    t = T0 + 40 * DAY
    young = (await store.ingest("app", '{"young": 1}', [routed("young")], t,
                                message_id="m-young")).incident_ids[0]
    await settle(store, t)
    await store.apply_callbacks("hook", [CallbackEvent("note", "cb-young", "bob",
                                                       incident_id=young, text="y")], t)
    await settle(store, t)
    await store.resolve(young, "alice", None, t)
    await settle(store, t)
    # The slow resolves: one claimed and in flight now, one given back (pending again).
    claimed = await store.claim("slow", 100, t, 30 * DAY, "w")
    assert {c.incident_id for c in claimed} == {pending, flying}
    mine = next(c for c in claimed if c.incident_id == pending)
    await store.release([mine.id], "w", t)
    return Scenario(gone=[done, dead], kept=[pending, flying, opened, young],
                    now=T0 + 41 * DAY)


def of(ids: list[str]) -> dict[str, str]:
    marks = ", ".join(f"'{i}'" for i in ids)
    return {t: f"incident_id IN ({marks})" for t in TABLES
            if t not in ("events", "incidents", "inbound_messages")} | {
        "incidents": f"id IN ({marks})"}


async def test_old_rows_go_and_open_unfinished_and_young_ones_stay(store: Store) -> None:
    s = await populate(store)
    before_kept = await counts(store, of(s.kept))
    before_gone = await counts(store, of(s.gone))
    # The scenario has something in every table an incident owns.
    assert all(before_gone[t] for t in ("incidents", "alerts", "timeline", "deliveries",
                                        "timers", "external_refs", "callback_events"))
    pruner = Pruner(store, POLICY, FakeClock(s.now))
    deleted = await pruner.run_once()
    owned = of(s.gone)
    assert {t: n for t, n in (await counts(store, owned)).items() if t in owned} == \
        dict.fromkeys(owned, 0)
    assert {t: n for t, n in (await counts(store, of(s.kept))).items() if t in owned} == \
        {t: n for t, n in before_kept.items() if t in owned}
    left = await store.engine.read(lambda tx: {
        "events": [r["body"] for r in tx.all("SELECT body FROM events")],
        "messages": [r["message_id"] for r in tx.all("SELECT message_id FROM inbound_messages")],
        "callbacks": sorted(r["event_id"] for r in tx.all("SELECT event_id FROM "
                                                          "callback_events"))})
    assert left == {"events": ['{"young": 1}'], "messages": ["m-young"],
                    "callbacks": ["cb-open", "cb-young"]}
    assert deleted["incidents"] == 2 and deleted["events"] == 5
    assert deleted["inbound_messages"] == 1 and deleted["callback_events"] == 2
    for incident_id in s.kept:
        doc = await store.get_incident(incident_id)
        assert doc["timeline"] and doc["deliveries"]
    # Nothing is left past the horizons: the next round deletes nothing.
    assert sum((await pruner.run_once()).values()) == 0


async def test_a_dry_run_counts_what_a_round_deletes_and_changes_nothing(
        store: Store) -> None:
    s = await populate(store)
    before = await counts(store)
    pruner = Pruner(store, POLICY, FakeClock(s.now))
    dry = await pruner.dry_run()
    assert await counts(store) == before
    assert sum(dry.values()) > 0
    deleted = await pruner.run_once()
    assert deleted == dry
    after = await counts(store)
    assert {t: before[t] - after[t] for t in TABLES} == dry


async def test_before_the_horizons_nothing_goes(store: Store) -> None:
    s = await populate(store)
    before = await counts(store)
    # A day after the young rows: only the 40-day-old ones are past any horizon, and with
    # long horizons none is.
    long = RetentionConfig(raw_events=50 * DAY, resolved_incidents=50 * DAY,
                           replay_ids=50 * DAY)
    assert sum((await Pruner(store, long, FakeClock(s.now)).run_once()).values()) == 0
    assert await counts(store) == before


async def test_batches_are_bounded_and_a_round_takes_several(store: Store) -> None:
    for n in range(35):
        await store.ingest("app", "{}", [], T0 + n)
    sizes = []
    for _ in range(10):
        got = (await store.prune_events(T0 + DAY, 10))["events"]
        sizes.append(got)
        if not got:
            break
    assert sizes == [10, 10, 10, 5, 0]
    for n in range(35):
        await store.ingest("app", "{}", [], T0 + n)
    pruner = Pruner(store, POLICY, FakeClock(T0 + 8 * DAY))
    assert (await pruner.run_once())["events"] == 35
    # 4 batches of events and one that found none, plus one empty batch of each other kind.
    assert pruner.batches >= 5 + 2


async def test_a_round_stops_at_its_cap_and_the_next_goes_on(store: Store) -> None:
    for n in range(35):
        await store.ingest("app", "{}", [], T0 + n)
    pruner = Pruner(store, POLICY, FakeClock(T0 + 8 * DAY), max_batches=2)
    assert (await pruner.run_once())["events"] == 20
    assert (await pruner.run_once())["events"] == 15


async def test_incidents_go_whole_within_the_batch_size(store: Store) -> None:
    ids = []
    for n in range(6):
        (i,) = (await store.ingest("app", "{}", [routed(f"k{n}")], T0)).incident_ids
        await settle(store, T0)
        await store.resolve(i, "alice", None, T0 + 1)
        await settle(store, T0 + 1)
        ids.append(i)
    # One incident larger than a batch: 30 notes (and their deliveries).
    for n in range(15):
        await store.add_note(ids[0], "bob", f"note {n}", T0 + 2)
    for _ in range(20):  # one at a time: each waits for the one before it
        if not await settle(store, T0 + 2):
            break
    per_batch: list[dict[str, int]] = []
    for _ in range(100):
        got = await store.prune_incidents(T0 + DAY, 10)
        if not any(got.values()):
            break
        per_batch.append(got)
        # Never more than a batch; an incident's own row goes only with the last of it.
        assert sum(got.values()) <= 10
    assert sum(b["incidents"] for b in per_batch) == 6
    # The large one was taken apart over batches before its own row went.
    assert sum(1 for b in per_batch if b["incidents"] == 0) >= 3
    owned = of(ids)
    assert {t: n for t, n in (await counts(store, owned)).items() if t in owned} == \
        dict.fromkeys(owned, 0)


async def test_metrics_count_pruned_rows_and_measure_the_database(store: Store) -> None:
    s = await populate(store)
    metrics = Metrics()
    deleted = await Pruner(store, POLICY, FakeClock(s.now), metrics).run_once()
    for table, n in deleted.items():
        value = metrics.registry.get_sample_value("baton_pruned_rows_total",
                                                  {"table": table})
        assert (value or 0) == n
    size = metrics.registry.get_sample_value("baton_database_size_bytes")
    assert size is not None and size > 0
    assert size == await store.database_size()


# --- SQLite only ----------------------------------------------------------------------

def pragma(path: Path, name: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"PRAGMA {name}").fetchone()[0])


async def test_sqlite_gives_freed_pages_back(store: Store, tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    assert pragma(db, "auto_vacuum") == 2  # INCREMENTAL, set before the first table
    for n in range(300):
        await store.ingest("app", "x" * 8000, [], T0 + n)
    full = await store.database_size()
    deleted = await Pruner(store, POLICY, FakeClock(T0 + 8 * DAY)).run_once()
    assert deleted["events"] == 300
    # Handed back, but for a tenth of the file kept for the next inserts to reuse.
    assert pragma(db, "freelist_count") <= pragma(db, "page_count") * 0.1 + 1
    assert await store.database_size() < full / 4


def test_a_new_connection_does_not_wait_for_the_writer(tmp_path: Path) -> None:
    """Regression: setting auto_vacuum on a database in use waits for the write lock, so
    the reader thread connecting while the writer held a transaction waited 5 s."""
    db = tmp_path / "b.db"
    first = SQLiteEngine(f"sqlite:///{db}")
    first.start()
    first.stop()
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO baton_meta (name, value) VALUES ('x', 'y')")
        conn = SQLiteEngine(f"sqlite:///{db}", busy_timeout=0.2)._connect()
        assert conn.execute("SELECT COUNT(*) FROM incidents").fetchone() == (0,)
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)
        conn.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def test_a_database_created_without_auto_vacuum_keeps_working(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:  # as an earlier Baton left it: WAL before any table
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS baton_meta (name TEXT PRIMARY KEY, "
                     "value TEXT NOT NULL)")
    store = open_store(f"sqlite:///{db}")
    store.open()
    try:
        assert pragma(db, "auto_vacuum") == 0
        for n in range(20):
            await store.ingest("app", "x" * 8000, [], T0 + n)
        deleted = await Pruner(store, POLICY, FakeClock(T0 + 8 * DAY)).run_once()
        assert deleted["events"] == 20
        assert pragma(db, "freelist_count") > 0  # reused by SQLite, not given back
        assert await store.reclaim(100) == 0
    finally:
        store.close()


# --- config and command line -----------------------------------------------------------

def test_the_schema_and_the_dataclass_know_the_same_keys_and_defaults() -> None:
    section = schema.load("config.schema.json")["properties"]["retention"]["properties"]
    assert set(section) == {f.name for f in fields(RetentionConfig)}
    d = RetentionConfig()
    for key, spec in section.items():
        value = getattr(d, key)
        assert (parse_duration(spec["default"]) if "$ref" in spec else spec["default"]) \
            == value, key


def test_retention_config(tmp_path: Path) -> None:
    assert build(minimal(), tmp_path).retention == RetentionConfig()
    short = build(minimal(retention={"raw_events": "2s", "resolved_incidents": "3s",
                                     "replay_ids": "1h", "interval": "250ms",
                                     "batch_size": 7}), tmp_path).retention
    assert short == RetentionConfig(2.0, 3.0, 3600.0, 0.25, 7)
    with pytest.raises(ConfigError) as info:
        build(minimal(retention={"raw_events": 0, "interval": "0s", "batch_size": 0,
                                 "events": "1d"}), tmp_path)
    assert sorted(info.value.problems) == [
        "retention.batch_size: 0 is less than the minimum of 1",
        'retention.events: unknown key (did you mean "raw_events"?)',
        "retention.interval: must be greater than 0",
        "retention.raw_events: must be greater than 0"]


def test_replay_ids_outlive_signature_tolerance(tmp_path: Path) -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    # One message is acceptable for 2 x tolerance (its timestamp up to 5m either way of
    # now): 9m of remembered ids leaves a minute in which a replay would be taken.
    data = minimal(retention={"replay_ids": "9m"})
    data["sources"]["am"]["auth"] = {"type": "standard-webhooks", "secret": {"env": "S"},
                                     "tolerance": "5m"}
    data["sources"]["graf"] = {"type": "grafana", "auth": {
        "type": "hmac", "secret": {"env": "S"}, "tolerance": "5m",
        "timestamp_header": "X-Grafana-Alerting-Signature-Timestamp"}}
    # Without a signed timestamp hmac has no replay id: nothing to keep.
    data["sources"]["plain"] = {"type": "generic", "auth": {"type": "hmac",
                                                            "secret": {"env": "S"}}}
    with pytest.raises(ConfigError) as info:
        build(data, tmp_path, {"S": secret})
    assert info.value.problems == [
        f"retention.replay_ids: 9m is shorter than twice sources.{name}.auth.tolerance "
        "(2 x 5m): a replay could be taken again" for name in ("am", "graf")]
    data["retention"]["replay_ids"] = "10m"
    assert build(data, tmp_path, {"S": secret}).retention.replay_ids == 600


def test_baton_prune_dry_run_then_prune(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.db"
    config = tmp_path / "baton.yaml"
    config.write_text(yaml.safe_dump({**minimal(), "storage": {"url": f"sqlite:///{db}"}}))
    now = time.time()

    async def fill() -> None:
        store = open_store(f"sqlite:///{db}")
        store.open()
        try:
            for n in range(3):  # past the default 7 days, and one recent
                await store.ingest("app", "{}", [], now - 8 * DAY - n)
            await store.ingest("app", "{}", [], now)
            (old,) = (await store.ingest("app", "{}", [routed("old")],
                                         now - 200 * DAY)).incident_ids
            await settle(store, now - 200 * DAY)
            await store.resolve(old, "alice", None, now - 190 * DAY)
            await settle(store, now - 190 * DAY)
        finally:
            store.close()

    asyncio.run(fill())
    assert main(["prune", "--dry-run", "--json", "--config", str(config)]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["events"] == 4 and dry["incidents"] == 1 and dry["deliveries"] == 2
    assert main(["prune", "--dry-run", "--json", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out) == dry  # the dry run changed nothing
    assert main(["prune", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"deleted {sum(dry.values())} row(s)" in out
    assert main(["prune", "--dry-run", "--config", str(config)]) == 0
    assert "would delete 0 row(s)" in capsys.readouterr().out
