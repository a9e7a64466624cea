"""Retention on PostgreSQL: the engine-neutral checks of tests/unit/test_retention.py run
again on a real server (same scenario, same expectations), plus two replicas pruning at
once without deleting anything twice or failing."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest
from pg import pg_schema, pg_url, rows  # noqa: F401

from baton.clock import FakeClock
from baton.retention import Pruner
from baton.store import Store, open_store

pytestmark = pytest.mark.integration


def _unit(name: str) -> ModuleType:
    path = Path(__file__).parent.parent / "unit" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"pg_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_r = _unit("test_retention")

test_old_rows_go_and_open_unfinished_and_young_ones_stay = (
    _r.test_old_rows_go_and_open_unfinished_and_young_ones_stay)
test_a_dry_run_counts_what_a_round_deletes_and_changes_nothing = (
    _r.test_a_dry_run_counts_what_a_round_deletes_and_changes_nothing)
test_before_the_horizons_nothing_goes = _r.test_before_the_horizons_nothing_goes
test_batches_are_bounded_and_a_round_takes_several = (
    _r.test_batches_are_bounded_and_a_round_takes_several)
test_a_round_stops_at_its_cap_and_the_next_goes_on = (
    _r.test_a_round_stops_at_its_cap_and_the_next_goes_on)
test_incidents_go_whole_within_the_batch_size = (
    _r.test_incidents_go_whole_within_the_batch_size)
test_metrics_count_pruned_rows_and_measure_the_database = (
    _r.test_metrics_count_pruned_rows_and_measure_the_database)


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[Store]:  # noqa: F811
    s = open_store(pg_url)
    s.open()
    yield s
    s.close()


async def test_two_replicas_prune_at_once(pg_url: str, pg_schema: str) -> None:  # noqa: F811
    a, b = open_store(pg_url), open_store(pg_url)
    a.open()
    b.open()
    try:
        s = await _r.populate(a)
        dry = await Pruner(a, _r.POLICY, FakeClock(s.now)).dry_run()
        # Both replicas' rounds overlap batch by batch; SKIP LOCKED keeps them apart.
        results = await asyncio.gather(*(
            Pruner(st, _r.POLICY, FakeClock(s.now)).run_once() for st in (a, b)))
        assert {t: results[0][t] + results[1][t] for t in dry} == dry
        left = {r["id"] for r in rows(pg_schema, "SELECT id FROM incidents")}
        assert left == set(s.kept)
    finally:
        a.close()
        b.close()
