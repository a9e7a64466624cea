"""The incident state machine: open, group, escalate, remind, repeat, acknowledge,
unacknowledge, ack timeout, resolve, recurrence, suppress and unsuppress.

Every change runs inside one storage transaction (a ``Ledger``) and writes the incident,
its timeline and its outbox rows together, so what a sender was told was accepted is
either entirely stored or not at all. Storage only persists what is decided here.

Suppression is asked at every moment that would notify someone new (open, an escalation
step, a reminder, a repeat, a resume after an acknowledgement lapses or is withdrawn). A
suppressed incident is *held*: its escalation timers are cancelled, so a level's wait does
not run while it is suppressed, and a recheck timer is armed at the moment the suppression
can end by itself (the silence's end, the next time-interval boundary; an hour at most).
An expired silence or a resolved inhibitor brings that recheck forward to now. When
nothing suppresses it any more, the current level is notified again and its wait starts
afresh. Updates, acknowledgements, resolves and notes still reach the targets already
told, so tickets stay in step during a maintenance window.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from . import escalation as esc
from .duration import format_duration
from .errors import Conflict, NotFound
from .ids import new_id
from .ledger import Ledger
from .model import SEVERITY_RANK, Alert, higher_severity, iso
from .outbox import Outbox
from .records import IngestResult, Resolver, RoutedAlert, unresolved
from .suppression import Hold, Suppressor

# A hold with no time boundary (inhibition) is checked again after this long anyway, so a
# change nothing announces (an inhibitor's labels edited by hand) cannot hold it forever.
RECHECK_AFTER = 3600.0
ESCALATION_TIMERS = ("escalate", "remind")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _ts(at: float) -> str:
    return str(iso(datetime.fromtimestamp(at, UTC)))


def _snapshot(inc: dict[str, Any]) -> dict[str, Any] | None:
    raw = inc.get("policy_snapshot")
    return json.loads(raw) if raw else None


def _step(inc: dict[str, Any]) -> esc.Step:
    return esc.Step(int(inc["level"]), int(inc["loops"]))


def _tag(step: esc.Step, extra: str = "") -> str:
    return f"L{step.level}.{step.loop}{extra}"


class Lifecycle:
    def __init__(self, resolver: Resolver = unresolved,
                 suppressor: Suppressor | None = None) -> None:
        self.outbox = Outbox(resolver)
        self.suppressor = suppressor or Suppressor()

    # --- ingest ----------------------------------------------------------------------
    def ingest(self, db: Ledger, source: str, body: str, routed: Sequence[RoutedAlert],
               now: float, message_id: str | None = None) -> IngestResult:
        if message_id is not None and not db.take_message(source, message_id, now):
            return IngestResult("", (), 0, 0, 0, 0, replayed=True)
        per_alert: dict[int, list[RoutedAlert]] = {}  # routed copies per alert, in order
        for ra in routed:
            per_alert.setdefault(id(ra.alert), []).append(ra)
        event_id = db.add_event(source, body, len(per_alert), now)
        ids: list[str] = []
        counts = {"opened": 0, "deduplicated": 0, "resolved": 0}
        for copies in per_alert.values():
            a = copies[0].alert
            held = db.holding(a.source_name, a.dedup_key)
            if held:
                # While an open incident holds this alert, every event for it goes there,
                # whatever route its labels would take now: a resolve or acknowledge may
                # come without the labels that routed the trigger (PagerDuty sends no
                # payload with them), and a changed severity must update the incident.
                for inc in held:
                    ids.append(inc["id"])
                    if a.acknowledge:
                        if inc["status"] == "triggered":
                            self._acknowledge(db, inc, f"source:{a.source_name}", None, now)
                        continue
                    outcome = self._update_open(db, inc, a, now)
                    counts["deduplicated"] += outcome == "deduplicated"
                    counts["resolved"] += outcome == "resolved"
                continue
            if a.acknowledge or a.status == "resolved":
                continue  # nothing open holds it: already resolved, or never seen
            for ra in copies:
                group = db.open_with_key(ra.key)
                if group is None:
                    ids.append(self._open(db, ra, now))
                    counts["opened"] += 1
                else:  # a new alert joining an open group
                    self._update_open(db, group, ra.alert, now)
                    ids.append(group["id"])
        return IngestResult(event_id, tuple(dict.fromkeys(ids)), counts["opened"],
                            counts["deduplicated"], counts["resolved"], db.enqueued_count())

    def _open(self, db: Ledger, ra: RoutedAlert, now: float) -> str:
        a = ra.alert
        previous = db.latest_with_key(ra.key)
        incident_id = new_id(now)
        inc: dict[str, Any] = {
            "id": incident_id, "incident_key": ra.key, "open_key": ra.key,
            "status": "triggered", "severity": a.severity, "title": a.title,
            "service": a.service, "labels": _dumps(dict(a.labels)), "route": ra.route,
            "created_at": now, "updated_at": now, "last_seen_at": now, "policy": ra.policy,
            "policy_snapshot": _dumps(ra.policy_snapshot) if ra.policy_snapshot else None,
            "level": 1, "next_at": None, "loops": 0, "event_count": 1,
            "recurrence_of": previous, "suppressed": None}
        db.insert_incident(inc)
        self._put_alert(db, incident_id, a, now, None)
        detail: dict[str, Any] = {"dedup_key": a.dedup_key, "severity": a.severity,
                                  "summary": a.summary}
        if previous:
            detail["recurrence_of"] = previous
        db.timeline(incident_id, now, "received", f"source:{a.source_name}", detail)
        if ra.route is None or not ra.policy_snapshot:
            db.timeline(incident_id, now, "unrouted", "baton",
                        {"reason": "no route matched"} if ra.route is None else
                        {"reason": "the route has no policy", "route": ra.route})
            return incident_id
        hold = self._suppression(db, inc, now)  # on the row just written, not read back
        if hold is not None:
            self._hold(db, inc, hold, now)
        else:
            self._start(db, inc, now, {})
        return incident_id

    def _put_alert(self, db: Ledger, incident_id: str, a: Alert, now: float,
                   existing: dict[str, Any] | None) -> bool:
        """Insert or update the alert row and its labels in the index of firing alerts.
        The row's ``severity`` is the highest the alert has had while firing (the document
        keeps the latest event as sent), so a flapping severity never lowers an incident
        while the alert that raised it still fires. True when its match labels changed."""
        key = (incident_id, a.source_name, a.dedup_key)
        if existing is None:
            db.insert_alert(key, a.status, a.severity, a.to_dict(), now)
        else:
            severity: str = a.severity
            if a.status == "firing" and existing["status"] == "firing":
                severity = higher_severity(existing["severity"], a.severity)
            db.update_alert(key, a.status, severity, a.to_dict(), now)
        if a.status != "firing":
            db.unindex_labels(*key)
            return True
        labels = a.match_labels()
        if existing is not None and existing["status"] == "firing" \
                and db.labels_of(key) == labels:
            return False  # a repeat: the index already says this
        db.index_labels(key, labels)
        return True

    def _update_open(self, db: Ledger, inc: dict[str, Any], a: Alert, now: float) -> str:
        """A further event for an open incident: firing dedups, resolved may close it."""
        incident_id = inc["id"]
        existing = db.alert(incident_id, a.source_name, a.dedup_key)
        if existing is None and a.status == "resolved":
            return "ignored"  # a resolve for an alert this incident never had
        if self._put_alert(db, incident_id, a, now, existing):
            # Its labels changed or it stopped firing: what it inhibited is looked at again.
            db.recheck_held_by(f"inhibit:{incident_id}", now)
        firing = db.firing_severities(incident_id)
        severity = (max(firing, key=lambda s: SEVERITY_RANK[s]) if firing
                    else inc["severity"])
        db.count_event(incident_id, now, severity)
        actor = f"source:{a.source_name}"
        detail: dict[str, Any] = {"dedup_key": a.dedup_key}
        if a.status == "firing":
            detail["event_count"] = inc["event_count"] + 1
        if severity != inc["severity"]:
            detail["severity"] = {"from": inc["severity"], "to": severity}
        if a.status == "firing":
            db.timeline(incident_id, now, "deduplicated" if existing else "received", actor,
                        detail)
            if existing is None and float(inc["created_at"]) < now:
                # A new alert in the group: its tickets and pages change. Not for alerts
                # that arrive with the one that opened it: the trigger carries them.
                self.outbox.fan_out(db, incident_id, "update", now,
                              f"alert/{a.source_name}/{a.dedup_key}")
            if inc["suppressed"] is not None:
                self._recheck(db, incident_id, now)  # a new alert may not be suppressed
            return "deduplicated" if existing is not None else "grouped"
        if firing:
            db.timeline(incident_id, now, "received", actor,
                        {**detail, "status": "resolved", "still_firing": len(firing)})
            return "partially_resolved"
        self._close(db, incident_id, actor, now, {"reason": "all alerts resolved"})
        return "resolved"

    # --- what people and vendors do --------------------------------------------------
    def _open_row(self, db: Ledger, incident_id: str) -> dict[str, Any]:
        inc = db.incident(incident_id)
        if inc is None:
            raise NotFound(f"incident {incident_id} not found")
        return inc

    def acknowledge(self, db: Ledger, incident_id: str, by: str, note: str | None,
                    now: float, detail: dict[str, Any] | None = None,
                    origin: str | None = None) -> None:
        inc = self._open_row(db, incident_id)
        if inc["status"] != "triggered":
            raise Conflict(f"incident {incident_id} is "
                           f"{'already ' if inc['status'] == 'acknowledged' else ''}"
                           f"{inc['status']}")
        self._acknowledge(db, inc, by, note, now, detail, origin)

    def _acknowledge(self, db: Ledger, inc: dict[str, Any], by: str, note: str | None,
                     now: float, detail: dict[str, Any] | None = None,
                     origin: str | None = None) -> None:
        incident_id = inc["id"]
        db.set(incident_id, status="acknowledged", acknowledged_at=now, acknowledged_by=by,
               updated_at=now, next_at=None)
        db.timeline(incident_id, now, "acknowledged", by,
                    {**(detail or {}), **({"note": note} if note else {})})
        db.cancel(incident_id, (*ESCALATION_TIMERS, "ack_timeout"))
        snap = _snapshot(inc)
        if snap and snap.get("ack_timeout"):
            step = _step(inc)
            db.arm(incident_id, "ack_timeout", now + float(snap["ack_timeout"]), step.level,
                   step.loop, now)
        # Acknowledged again after an unacknowledge or a lapse is news for the connectors
        # too, so each later one gets its own idempotency key.
        count = db.count_entries(incident_id, "acknowledged")
        self.outbox.fan_out(db, incident_id, "acknowledge", now, "" if count == 1 else str(count),
                      origin)

    def unacknowledge(self, db: Ledger, incident_id: str, by: str, note: str | None,
                      now: float) -> None:
        inc = self._open_row(db, incident_id)
        if inc["status"] != "acknowledged":
            raise Conflict(f"incident {incident_id} is {inc['status']}, not acknowledged")
        self._unacknowledge(db, inc, now, by, {"note": note} if note else {})

    def _unacknowledge(self, db: Ledger, inc: dict[str, Any], now: float, actor: str,
                       detail: dict[str, Any]) -> None:
        """Back to triggered: escalation resumes at the current level with a fresh wait,
        unless something suppresses it now."""
        incident_id = inc["id"]
        db.set(incident_id, status="triggered", acknowledged_at=None, acknowledged_by=None,
               updated_at=now)
        db.cancel(incident_id, ("ack_timeout",))
        db.timeline(incident_id, now, "unacknowledged", actor, detail)
        inc = {**inc, "status": "triggered"}
        hold = self._suppression(db, inc, now)
        if hold is not None:
            self._hold(db, inc, hold, now)
        elif inc["suppressed"] is not None:
            self._recheck(db, incident_id, now)  # its hold ended: lifted, and notified
        elif self._never_notified(db, inc):
            # Held at open and acknowledged while held: nobody was ever told.
            self._start(db, inc, now, {})
        else:
            self._arm_step(db, inc, _snapshot(inc), _step(inc), now)
        # Those told of the acknowledgement hear that it no longer holds (the document
        # they get says triggered again): a page or ticket must not stay "acknowledged".
        n = db.count_entries(incident_id, "unacknowledged")
        self.outbox.fan_out(db, incident_id, "update", now, f"unack{n}")

    def escalate(self, db: Ledger, incident_id: str, by: str, reason: str,
                 now: float) -> None:
        """A person's "escalate now": carried out even while the incident is suppressed
        (they asked for it); the automatic steps after it check suppression again."""
        inc = self._open_row(db, incident_id)
        if inc["status"] == "resolved":
            raise Conflict(f"incident {incident_id} is resolved")
        self._escalate(db, inc, now, by, reason)

    def resolve(self, db: Ledger, incident_id: str, by: str, note: str | None, now: float,
                detail: dict[str, Any] | None = None, origin: str | None = None) -> None:
        inc = self._open_row(db, incident_id)
        if inc["status"] == "resolved":
            raise Conflict(f"incident {incident_id} is already resolved")
        self._close(db, incident_id, by, now,
                    {**(detail or {}), **({"note": note} if note else {})}, origin)

    def add_note(self, db: Ledger, incident_id: str, by: str, text: str, now: float,
                 detail: dict[str, Any] | None = None, origin: str | None = None) -> None:
        self._open_row(db, incident_id)
        note_id = new_id(now)
        db.timeline(incident_id, now, "note", by,
                    {**(detail or {}), "text": text, "note_id": note_id})
        db.set(incident_id, updated_at=now)
        self.outbox.fan_out(db, incident_id, "note", now, discriminator=note_id, origin=origin)

    def silence_ended(self, db: Ledger, silence_id: str, now: float) -> None:
        """A silence was expired early: what it held is looked at on the next poll."""
        db.recheck_held_by(f"silence:{silence_id}", now)

    def _close(self, db: Ledger, incident_id: str, actor: str, now: float,
               detail: dict[str, Any], origin: str | None = None) -> None:
        db.cancel(incident_id)
        db.set_holds(incident_id, ())
        db.unindex_labels(incident_id)
        db.recheck_held_by(f"inhibit:{incident_id}", now)
        db.set(incident_id, status="resolved", open_key=None, resolved_at=now,
               resolved_by=actor, updated_at=now, next_at=None)
        db.timeline(incident_id, now, "resolved", actor, detail)
        self.outbox.fan_out(db, incident_id, "resolve", now, origin=origin)

    # --- timers ----------------------------------------------------------------------
    def fire_due(self, db: Ledger, now: float, limit: int) -> int:
        """Fire up to ``limit`` due timers, each once and with its effect; returns how
        many fired. A gateway that was down fires overdue ones on start (the delay is on
        the timeline)."""
        fired = 0
        for timer in db.due_timers(now, limit):
            if not db.fire(timer["id"], now):
                continue
            fired += 1
            inc = db.incident(timer["incident_id"], lock=False)  # locked with the timer
            if inc is None or inc["status"] == "resolved":
                continue
            kind, status = timer["kind"], inc["status"]
            if kind == "unsuppress":
                if inc["suppressed"] is not None:
                    self._recheck(db, inc["id"], now)
            elif kind == "ack_timeout" and status == "acknowledged":
                snap = _snapshot(inc) or {}
                self._unacknowledge(db, inc, now, "baton", {
                    "reason": "acknowledgement timed out after "
                              f"{format_duration(float(snap.get('ack_timeout') or 0))}"})
            elif kind in ESCALATION_TIMERS and status == "triggered":
                hold = self._suppression(db, inc, now)
                if hold is not None:
                    self._hold(db, inc, hold, now)
                elif kind == "escalate":
                    snap = _snapshot(inc) or {}
                    wait = esc.wait_before_next(
                        snap, esc.Step(timer["level"], timer["loop_no"]))
                    reason = (f"not acknowledged within {format_duration(wait)}" if wait
                              else "escalation timer")
                    self._escalate(db, inc, now, "baton", reason,
                                   late_by=now - float(timer["due_at"]))
                else:
                    self._remind(db, inc, timer, now)
        return fired

    # --- suppression -----------------------------------------------------------------
    def _suppression(self, db: Ledger, inc: dict[str, Any], now: float) -> Hold | None:
        return self.suppressor.check(db, inc["route"], db.firing_labels(inc["id"]), now)

    def _hold(self, db: Ledger, inc: dict[str, Any], hold: Hold, now: float,
              quiet: bool = False) -> None:
        """Suppressed at a notification moment: nobody is told, the escalation clock
        stops, and a recheck is armed for when the hold can end by itself."""
        incident_id = inc["id"]
        db.cancel(incident_id, (*ESCALATION_TIMERS, "unsuppress"))
        db.set(incident_id, suppressed=_dumps(hold.reason), next_at=None)
        db.set_holds(incident_id, hold.holders)
        recheck = min(hold.until, now + RECHECK_AFTER) if hold.until else now + RECHECK_AFTER
        step = _step(inc)
        db.arm(incident_id, "unsuppress", max(recheck, now), step.level, step.loop, now)
        if not quiet:
            detail = {**hold.reason, "level": step.level, "loop": step.loop}
            if hold.until is not None:
                detail["until"] = _ts(hold.until)
            db.timeline(incident_id, now, "suppressed", "baton", detail)

    def _recheck(self, db: Ledger, incident_id: str, now: float) -> None:
        """A held incident's suppression may have ended (its boundary came, a silence was
        expired, an inhibitor resolved, a new alert joined): lift it or hold on."""
        inc = db.incident(incident_id, lock=False)
        if inc is None or inc["suppressed"] is None or inc["status"] == "resolved":
            return
        hold = self._suppression(db, inc, now)
        if hold is not None:
            # Still held; a new reason is news, the same one is not.
            self._hold(db, inc, hold, now, quiet=_dumps(hold.reason) == inc["suppressed"])
            return
        after = json.loads(inc["suppressed"])
        db.cancel(incident_id, ("unsuppress",))
        db.set_holds(incident_id, ())
        db.set(incident_id, suppressed=None, updated_at=now)
        snap = _snapshot(inc)
        detail: dict[str, Any] = {"after": after}
        if inc["status"] != "triggered" or snap is None:
            # Acknowledged: the acknowledgement holds it now (its lapse checks again).
            db.timeline(incident_id, now, "unsuppressed", "baton", detail)
            return
        if self._never_notified(db, inc):
            db.timeline(incident_id, now, "unsuppressed", "baton", detail)
            self._start(db, inc, now, {"after": after})
            return
        step = _step(inc)
        n = db.count_entries(incident_id, "unsuppressed") + 1
        targets = self.outbox.notify(db, incident_id, snap, step, now, _tag(step, f".u{n}"),
                                     update_told=True)
        detail.update(level=step.level, loop=step.loop, targets=targets)
        next_at = self._arm_step(db, inc, snap, step, now)
        if next_at is not None:
            detail["escalate_at"] = _ts(next_at)
        db.timeline(incident_id, now, "unsuppressed", "baton", detail)

    def _never_notified(self, db: Ledger, inc: dict[str, Any]) -> bool:
        """Held from the start, and no step notified since (a person's escalate while it
        was held did notify: then it goes on from that level)."""
        return (db.count_entries(inc["id"], "routed") == 0
                and not db.triggered_targets(inc["id"]))

    # --- escalation ------------------------------------------------------------------
    def _start(self, db: Ledger, inc: dict[str, Any], now: float,
               extra: dict[str, Any]) -> None:
        """Notify the first level now and arm its timers."""
        snap = _snapshot(inc) or {}
        first = esc.Step(1, 0)
        targets = self.outbox.notify(db, inc["id"], snap, first, now, "",
                                     update_told=False)
        next_at = self._arm_step(db, inc, snap, first, now)
        routed = {"route": inc["route"], "policy": inc["policy"], "level": 1,
                  "targets": targets, **extra}
        if next_at is not None:
            routed["escalate_at"] = _ts(next_at)
        db.timeline(inc["id"], now, "routed", "baton", routed)

    def _escalate(self, db: Ledger, inc: dict[str, Any], now: float, actor: str,
                  reason: str, late_by: float | None = None) -> None:
        snap = _snapshot(inc)
        if snap is None:
            raise Conflict(f"incident {inc['id']} has no escalation policy")
        current = _step(inc)
        nxt = esc.next_step(snap, current)
        if nxt is None:
            raise Conflict(f"incident {inc['id']} is at the last level of policy "
                           f"{snap.get('name')!r} and has no repeat left")
        targets = self.outbox.notify(db, inc["id"], snap, nxt, now, _tag(nxt),
                                     update_told=True)
        detail: dict[str, Any] = {"from": {"level": current.level, "loop": current.loop},
                                  "to": {"level": nxt.level, "loop": nxt.loop},
                                  "reason": reason, "targets": targets}
        if late_by is not None and late_by >= 1.0:
            detail["late_by_seconds"] = round(late_by, 3)
        db.timeline(inc["id"], now, "escalated", actor, detail)
        if inc["status"] == "triggered":
            self._arm_step(db, inc, snap, nxt, now)
        else:  # acknowledged: people were asked for help, but the clock stays stopped
            db.set(inc["id"], level=nxt.level, loops=nxt.loop)
        db.set(inc["id"], updated_at=now)

    def _remind(self, db: Ledger, inc: dict[str, Any], timer: dict[str, Any],
                now: float) -> None:
        snap = _snapshot(inc)
        step = _step(inc)
        if snap is None or (timer["level"], timer["loop_no"]) != (step.level, step.loop):
            return  # the incident moved on since this reminder was armed
        if db.escalation_due(inc["id"], now):
            return  # overdue after downtime: the escalation due too supersedes this one
        n = int(timer["seq"])
        targets = self.outbox.notify(db, inc["id"], snap, step, now, _tag(step, f".r{n}"),
                               update_told=False)
        db.timeline(inc["id"], now, "reminded", "baton",
                    {"level": step.level, "loop": step.loop, "reminder": n,
                     "targets": targets})
        every = esc.reminder_every(snap, step)
        if every is not None and (inc["next_at"] is None or now + every < inc["next_at"]):
            db.arm(inc["id"], "remind", now + every, step.level, step.loop, now, seq=n + 1)

    def _arm_step(self, db: Ledger, inc: dict[str, Any], snap: dict[str, Any] | None,
                  step: esc.Step, now: float) -> float | None:
        """Arm the timers of the step just notified; returns when it escalates."""
        if snap is None:
            return None
        incident_id = inc["id"]
        db.cancel(incident_id, ESCALATION_TIMERS)
        wait = esc.wait_before_next(snap, step)
        next_at = now + wait if wait is not None else None
        if next_at is not None:
            db.arm(incident_id, "escalate", next_at, step.level, step.loop, now)
        every = esc.reminder_every(snap, step)
        if every is not None and (next_at is None or now + every < next_at):
            # Numbered on from the reminders this step already sent (an unacknowledge
            # arms the same step again): the number is in the idempotency key, and a
            # reused key would make the reminder a silent no-op.
            seq = db.last_reminder(incident_id, step.level, step.loop) + 1
            db.arm(incident_id, "remind", now + every, step.level, step.loop, now, seq=seq)
        db.set(incident_id, level=step.level, loops=step.loop, next_at=next_at)
        return next_at
