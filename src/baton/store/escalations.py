"""Escalation state changes: timers armed, fired and cancelled inside transactions.

A timer fires in the same transaction that applies its effect (next level notified,
reminder sent, acknowledgement lapsed), and only if it is still pending: so it fires once,
even with several replicas (PostgreSQL adds ``FOR UPDATE SKIP LOCKED`` to the claim). A
gateway that was down fires overdue timers on start; the delay is recorded.
"""

from __future__ import annotations

import json
from typing import Any

import structlog

from .. import escalation as esc
from ..duration import format_duration
from ..errors import Conflict
from ..ids import new_id
from .records import Resolver, TargetSpec
from .tx import Tx

log = structlog.get_logger("baton.escalation")


def snapshot(inc: dict[str, Any]) -> dict[str, Any] | None:
    raw = inc.get("policy_snapshot")
    return json.loads(raw) if raw else None


def _arm(tx: Tx, incident_id: str, kind: str, due: float, step: esc.Step, now: float,
         seq: int = 0) -> None:
    tx.insert("timers", {"id": new_id(now), "incident_id": incident_id, "kind": kind,
                         "due_at": due, "state": "pending", "level": step.level,
                         "loop_no": step.loop, "seq": seq, "created_at": now})


def cancel(tx: Tx, incident_id: str, kinds: tuple[str, ...] = ("escalate", "remind",
                                                              "ack_timeout")) -> None:
    marks = ", ".join("?" for _ in kinds)
    tx.run(f"UPDATE timers SET state = 'cancelled' WHERE incident_id = ? "  # noqa: S608
           f"AND state = 'pending' AND kind IN ({marks})", (incident_id, *kinds))


def arm_step(tx: Tx, incident_id: str, snap: dict[str, Any] | None, step: esc.Step,
             now: float) -> float | None:
    """Arm the timers of the step just notified; returns when it escalates (next_at)."""
    if snap is None:
        return None
    cancel(tx, incident_id, ("escalate", "remind"))
    wait = esc.wait_before_next(snap, step)
    next_at = now + wait if wait is not None else None
    if next_at is not None:
        _arm(tx, incident_id, "escalate", next_at, step, now)
    every = esc.reminder_every(snap, step)
    if every is not None and (next_at is None or now + every < next_at):
        # Numbered on from the reminders this step already sent (an unacknowledge arms the
        # same step again): the number is in the delivery's idempotency key, and a reused
        # key would make the reminder a silent no-op.
        row = tx.one("SELECT MAX(seq) AS m FROM timers WHERE incident_id = ? AND "
                     "kind = 'remind' AND state = 'fired' AND level = ? AND loop_no = ?",
                     (incident_id, step.level, step.loop))
        seq = int(row["m"]) + 1 if row and row["m"] is not None else 1
        _arm(tx, incident_id, "remind", now + every, step, now, seq=seq)
    tx.run("UPDATE incidents SET level = ?, loops = ?, next_at = ? WHERE id = ?",
           (step.level, step.loop, next_at, incident_id))
    return next_at


def notify_step(tx: Tx, incident_id: str, snap: dict[str, Any], step: esc.Step,
                now: float, resolve: Resolver, discriminator: str) -> list[dict[str, Any]]:
    """Enqueue a trigger for every target of ``step``, resolved at ``now``. Returns the
    timeline description of who was resolved (a schedule with nobody on call shows so)."""
    from .incidents import enqueue  # incidents imports this module

    shown = []
    for raw in esc.level_of(snap, step)["notify"]:
        target = TargetSpec.from_dict(raw)
        concrete = resolve(target, now)
        if not concrete:
            # Nobody to tell: say why on the timeline instead of silently skipping.
            kind = (target.to or "").partition(":")[0]
            reason = ("nobody on call" if kind == "schedule"
                      else "not in the current config (people/teams)")
            log.warning("target resolved to nobody", target=target.to, reason=reason,
                        incident_id=incident_id)
            shown.append({**target.to_dict(), "person": None, "reason": reason})
        for t in concrete:
            enqueue(tx, incident_id, t, "trigger", now, discriminator)
            shown.append(t.to_dict())
    return shown


def _step_tag(step: esc.Step, extra: str = "") -> str:
    return f"L{step.level}.{step.loop}{extra}"


def escalate(tx: Tx, inc: dict[str, Any], now: float, actor: str, reason: str,
             resolve: Resolver, late_by: float | None = None) -> None:
    snap = snapshot(inc)
    if snap is None:
        raise Conflict(f"incident {inc['id']} has no escalation policy")
    current = esc.Step(inc["level"], inc["loops"])
    nxt = esc.next_step(snap, current)
    if nxt is None:
        raise Conflict(f"incident {inc['id']} is at the last level of policy "
                       f"{snap.get('name')!r} and has no repeat left")
    # Those already told hear that it escalated (a journal note on the ticket, a refreshed
    # page), before the new level's triggers, so each connector sees it in that order.
    from .incidents import _fan_out  # incidents imports this module
    _fan_out(tx, inc["id"], "update", now, _step_tag(nxt))
    targets = notify_step(tx, inc["id"], snap, nxt, now, resolve, _step_tag(nxt))
    detail: dict[str, Any] = {"from": {"level": current.level, "loop": current.loop},
                              "to": {"level": nxt.level, "loop": nxt.loop},
                              "reason": reason, "targets": targets}
    if late_by is not None and late_by >= 1.0:
        detail["late_by_seconds"] = round(late_by, 3)
    tx.timeline(inc["id"], now, "escalated", actor, detail)
    if inc["status"] == "triggered":
        arm_step(tx, inc["id"], snap, nxt, now)
    else:  # acknowledged: people were asked for help, but the clock stays stopped
        tx.run("UPDATE incidents SET level = ?, loops = ? WHERE id = ?",
               (nxt.level, nxt.loop, inc["id"]))
    tx.run("UPDATE incidents SET updated_at = ? WHERE id = ?", (now, inc["id"]))


def _remind(tx: Tx, inc: dict[str, Any], timer: dict[str, Any], now: float,
            resolve: Resolver) -> None:
    snap = snapshot(inc)
    step = esc.Step(inc["level"], inc["loops"])
    if snap is None or (timer["level"], timer["loop_no"]) != (step.level, step.loop):
        return  # the incident moved on since this reminder was armed
    if tx.one("SELECT 1 AS due FROM timers WHERE incident_id = ? AND kind = 'escalate' "
              "AND state = 'pending' AND due_at <= ?", (inc["id"], now)):
        return  # overdue after downtime: the escalation due too supersedes this reminder
    n = int(timer["seq"])
    targets = notify_step(tx, inc["id"], snap, step, now, resolve, _step_tag(step, f".r{n}"))
    tx.timeline(inc["id"], now, "reminded", "baton",
                {"level": step.level, "loop": step.loop, "reminder": n, "targets": targets})
    every = esc.reminder_every(snap, step)
    if every is not None and (inc["next_at"] is None or now + every < inc["next_at"]):
        _arm(tx, inc["id"], "remind", now + every, step, now, seq=n + 1)


def unacknowledge(tx: Tx, inc: dict[str, Any], now: float, actor: str,
                  detail: dict[str, Any]) -> None:
    """Back to triggered; escalation resumes at the current level with a fresh wait."""
    tx.run("UPDATE incidents SET status = 'triggered', acknowledged_at = NULL, "
           "acknowledged_by = NULL, updated_at = ? WHERE id = ?", (now, inc["id"]))
    cancel(tx, inc["id"], ("ack_timeout",))
    tx.timeline(inc["id"], now, "unacknowledged", actor, detail)
    arm_step(tx, inc["id"], snapshot(inc), esc.Step(inc["level"], inc["loops"]), now)
    # Those told of the acknowledgement hear that it no longer holds (the document they
    # get says triggered again): a page or ticket must not stay "acknowledged" there.
    from .incidents import _fan_out  # incidents imports this module
    n = tx.one("SELECT COUNT(*) AS n FROM timeline WHERE incident_id = ? "
               "AND type = 'unacknowledged'", (inc["id"],))
    _fan_out(tx, inc["id"], "update", now, f"unack{int(n['n']) if n else 1}")


def on_acknowledged(tx: Tx, inc: dict[str, Any], now: float) -> None:
    """Acknowledge stops escalation; a policy's ack_timeout arms its lapse."""
    cancel(tx, inc["id"])
    tx.run("UPDATE incidents SET next_at = NULL WHERE id = ?", (inc["id"],))
    snap = snapshot(inc)
    if snap and snap.get("ack_timeout"):
        _arm(tx, inc["id"], "ack_timeout", now + float(snap["ack_timeout"]),
             esc.Step(inc["level"], inc["loops"]), now)


_DUE = ("SELECT t.* FROM timers t WHERE t.state = 'pending' AND t.due_at <= ? "
        "ORDER BY t.due_at, t.id LIMIT ?")
# PostgreSQL: the timer and its incident are locked together, and a timer whose incident
# another transaction is changing (an acknowledge cancelling this very timer) is left for
# the next poll instead of waited for, so firing never deadlocks with such a change.
_DUE_LOCKED = ("SELECT t.* FROM timers t JOIN incidents i ON i.id = t.incident_id "
               "WHERE t.state = 'pending' AND t.due_at <= ? ORDER BY t.due_at, t.id "
               "LIMIT ? FOR UPDATE OF t, i SKIP LOCKED")


def fire_due(tx: Tx, now: float, limit: int, resolve: Resolver,
             skip_locked: bool = False) -> int:
    """Fire up to ``limit`` due timers; returns how many fired."""
    rows = tx.all(_DUE_LOCKED if skip_locked else _DUE, (now, limit))
    fired = 0
    for timer in rows:
        if tx.run("UPDATE timers SET state = 'fired', fired_at = ? WHERE id = ? "
                  "AND state = 'pending'", (now, timer["id"])) != 1:
            continue
        fired += 1
        inc = tx.one("SELECT * FROM incidents WHERE id = ?", (timer["incident_id"],))
        if inc is None:
            continue
        late = now - float(timer["due_at"])
        kind = timer["kind"]
        if kind == "escalate" and inc["status"] == "triggered":
            snap = snapshot(inc) or {}
            wait = esc.wait_before_next(snap, esc.Step(timer["level"], timer["loop_no"]))
            reason = (f"not acknowledged within {format_duration(wait)}" if wait
                      else "escalation timer")
            escalate(tx, inc, now, "baton", reason, resolve, late_by=late)
        elif kind == "remind" and inc["status"] == "triggered":
            _remind(tx, inc, timer, now, resolve)
        elif kind == "ack_timeout" and inc["status"] == "acknowledged":
            snap = snapshot(inc) or {}
            unacknowledge(tx, inc, now, "baton", {
                "reason": f"acknowledgement timed out after "
                          f"{format_duration(float(snap.get('ack_timeout') or 0))}"})
    return fired


def next_due(tx: Tx) -> float | None:
    row = tx.one("SELECT MIN(due_at) AS t FROM timers WHERE state = 'pending'")
    return float(row["t"]) if row and row["t"] is not None else None
