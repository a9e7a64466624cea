"""Escalation policy arithmetic: which level comes next and after how long.

Pure functions over the *policy snapshot* (the policy as plain data, frozen into the
incident when it opened), so a config change or reload never changes an escalation that
is already running. The store applies these decisions inside its transactions; ``baton
simulate`` uses ``plan`` to print the timeline without touching anything.

Levels are numbered from 1. After the last level the policy starts again at level 1,
``repeat`` times (``loop`` counts the passes, from 0); then it stays at the last level.
The last level's ``escalate_after`` is the wait before such a repeat.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Snapshot = Mapping[str, Any]


@dataclass(frozen=True, order=True)
class Step:
    level: int
    loop: int = 0


def levels(snapshot: Snapshot) -> list[Mapping[str, Any]]:
    return list(snapshot.get("levels") or [])


def level_of(snapshot: Snapshot, step: Step) -> Mapping[str, Any]:
    return levels(snapshot)[step.level - 1]


def next_step(snapshot: Snapshot, step: Step) -> Step | None:
    """The step after ``step``, or None when the policy is exhausted."""
    if step.level < len(levels(snapshot)):
        return Step(step.level + 1, step.loop)
    if step.loop < int(snapshot.get("repeat") or 0):
        return Step(1, step.loop + 1)
    return None


def wait_before_next(snapshot: Snapshot, step: Step) -> float | None:
    """Seconds without acknowledgement before moving on from ``step``; None: never."""
    if next_step(snapshot, step) is None:
        return None
    after = level_of(snapshot, step).get("escalate_after")
    return float(after) if after is not None else None


def reminder_every(snapshot: Snapshot, step: Step) -> float | None:
    every = level_of(snapshot, step).get("remind_every")
    return float(every) if every else None


def plan(snapshot: Snapshot, max_steps: int = 100) -> list[tuple[float, Step]]:
    """Offsets (seconds from the incident opening) at which each step is notified when
    nobody acknowledges. Bounded: a policy has at most levels * (repeat + 1) steps."""
    out = [(0.0, Step(1, 0))]
    t = 0.0
    while len(out) < max_steps:
        step = out[-1][1]
        wait = wait_before_next(snapshot, step)
        nxt = next_step(snapshot, step)
        if wait is None or nxt is None:
            break
        t += wait
        out.append((t, nxt))
    return out
