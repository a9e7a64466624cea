"""Escalation arithmetic over a policy snapshot: the next step, the wait before it, the plan.

Levels count from 1 and loops from 0. After the last level the policy starts again at
level 1 ``repeat`` times, waiting the last level's ``escalate_after`` first; then it stays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import build, config_dict

from baton.escalation import (
    Step,
    level_of,
    next_step,
    plan,
    reminder_every,
    wait_before_next,
)
from baton.ingest import policy_snapshot

M = 60.0


def snap(*waits: float | None, repeat: int = 0, remind: float | None = None
         ) -> dict[str, Any]:
    """A snapshot with one level per entry of ``waits`` (its escalate_after), each
    notifying connector ``cN`` for level N."""
    return {"name": "p", "repeat": repeat, "ack_timeout": None,
            "levels": [{"escalate_after": w, "remind_every": remind,
                        "notify": [{"connector": f"c{i}", "to": None, "params": {}}]}
                       for i, w in enumerate(waits, start=1)]}


# --- next_step ---------------------------------------------------------------------------

def test_next_step_walks_the_levels_then_stops_without_repeat() -> None:
    s = snap(10 * M, 5 * M, None)
    assert next_step(s, Step(1)) == Step(2, 0)
    assert next_step(s, Step(2)) == Step(3, 0)
    assert next_step(s, Step(3)) is None


def test_next_step_repeats_from_level_one_then_stays_at_the_last_level() -> None:
    s = snap(10 * M, 5 * M, repeat=2)
    assert next_step(s, Step(2, 0)) == Step(1, 1)
    assert next_step(s, Step(1, 1)) == Step(2, 1)
    assert next_step(s, Step(2, 1)) == Step(1, 2)
    assert next_step(s, Step(1, 2)) == Step(2, 2)
    assert next_step(s, Step(2, 2)) is None


def test_a_single_level_policy_repeats_itself() -> None:
    s = snap(15 * M, repeat=1)
    assert next_step(s, Step(1, 0)) == Step(1, 1)
    assert next_step(s, Step(1, 1)) is None


def test_a_policy_without_repeat_key_or_levels_is_exhausted() -> None:
    assert next_step({"levels": [{"notify": []}]}, Step(1)) is None
    assert next_step({"levels": [{"notify": []}], "repeat": None}, Step(1)) is None


def test_steps_order_by_level_then_loop() -> None:
    assert Step(1, 0) < Step(2, 0) < Step(2, 1)
    assert Step(3) == Step(3, 0)


# --- wait_before_next --------------------------------------------------------------------

def test_wait_is_the_current_levels_escalate_after() -> None:
    s = snap(10 * M, 5 * M, repeat=1)
    assert wait_before_next(s, Step(1, 0)) == 600.0
    assert wait_before_next(s, Step(2, 0)) == 300.0  # the wait before the repeat
    assert wait_before_next(s, Step(1, 1)) == 600.0
    assert wait_before_next(s, Step(2, 1)) is None  # nothing comes next


def test_the_last_levels_wait_means_nothing_without_repeat() -> None:
    assert wait_before_next(snap(10 * M, 5 * M), Step(2)) is None


def test_a_level_without_escalate_after_moves_on_only_by_hand() -> None:
    s = snap(None, 5 * M)
    assert wait_before_next(s, Step(1)) is None
    assert next_step(s, Step(1)) == Step(2)  # a manual escalate still has somewhere to go


def test_waits_are_floats_whatever_the_snapshot_holds() -> None:
    s = snap(90, 1, repeat=1)
    w = wait_before_next(s, Step(1))
    assert w == 90.0 and isinstance(w, float)


# --- reminders ---------------------------------------------------------------------------

def test_reminder_every_is_per_level_and_off_when_unset_or_zero() -> None:
    s = snap(10 * M, 5 * M)
    assert reminder_every(s, Step(1)) is None
    s["levels"][0]["remind_every"] = 180
    assert reminder_every(s, Step(1)) == 180.0
    assert reminder_every(s, Step(2)) is None
    s["levels"][1]["remind_every"] = 0
    assert reminder_every(s, Step(2)) is None


def test_level_of_indexes_from_one() -> None:
    s = snap(1, 2, 3)
    assert [level_of(s, Step(n))["notify"][0]["connector"] for n in (1, 2, 3)] == [
        "c1", "c2", "c3"]
    with pytest.raises(IndexError):
        level_of(s, Step(4))


# --- plan --------------------------------------------------------------------------------

def test_plan_of_two_levels_with_one_repeat() -> None:
    # hook at t+0, pager at t+10m, hook again at t+15m, pager again at t+25m; then stays.
    assert plan(snap(10 * M, 5 * M, repeat=1)) == [
        (0.0, Step(1, 0)), (600.0, Step(2, 0)), (900.0, Step(1, 1)), (1500.0, Step(2, 1))]


def test_plan_without_repeat_ends_at_the_last_level() -> None:
    assert plan(snap(10 * M, 5 * M, 20 * M)) == [
        (0.0, Step(1)), (600.0, Step(2)), (900.0, Step(3))]


def test_plan_stops_at_a_level_without_escalate_after() -> None:
    assert plan(snap(2 * M, None, 5 * M, repeat=3)) == [(0.0, Step(1)), (120.0, Step(2))]


def test_plan_of_one_level_is_notify_once() -> None:
    assert plan(snap(None)) == [(0.0, Step(1))]
    assert plan(snap(10 * M)) == [(0.0, Step(1))]  # nowhere to go after it


def test_plan_has_levels_times_repeat_plus_one_steps() -> None:
    steps = plan(snap(1, 2, 3, repeat=4))
    assert len(steps) == 3 * 5
    assert steps[-1] == (4 * 6 + 1 + 2, Step(3, 4))
    assert [t for t, _ in steps] == sorted(t for t, _ in steps)


def test_plan_is_bounded_by_max_steps() -> None:
    steps = plan(snap(1, repeat=10_000), max_steps=7)
    assert steps == [(float(n), Step(1, n)) for n in range(7)]


def test_plan_of_a_snapshot_built_from_config(tmp_path: Path) -> None:
    """The same arithmetic over what the router freezes into an incident."""
    data = config_dict(tmp_path)
    data["connectors"]["pager"] = {"type": "webhook", "url": "http://127.0.0.1:9/p"}
    data["people"] = {"bob": {"email": "bob@example.com"}}
    data["policies"]["notify"] = {
        "levels": [{"notify": ["hook"], "escalate_after": "10m", "remind_every": "3m"},
                   {"notify": [{"connector": "pager", "to": "person:bob", "urgency": "high"}],
                    "escalate_after": "5m"}],
        "repeat": 1, "ack_timeout": "30m"}
    s = policy_snapshot(build(data, tmp_path).policies["notify"])
    assert s == {
        "name": "notify", "repeat": 1, "ack_timeout": 1800.0,
        "levels": [
            {"escalate_after": 600.0, "remind_every": 180.0,
             "notify": [{"connector": "hook", "to": None, "params": {}}]},
            {"escalate_after": 300.0, "remind_every": None,
             "notify": [{"connector": "pager", "to": "person:bob",
                         "params": {"urgency": "high"}}]},
        ]}
    assert plan(s) == [(0.0, Step(1, 0)), (600.0, Step(2, 0)), (900.0, Step(1, 1)),
                       (1500.0, Step(2, 1))]
    assert reminder_every(s, Step(1, 1)) == 180.0
