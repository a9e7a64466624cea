"""Who is told what: the outbox rows of an incident (deliveries), with their stable
idempotency keys. The lifecycle decides when; this module turns "notify this step" or
"tell everyone told before" into rows, one per target and action."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from . import escalation as esc
from .ledger import Ledger
from .records import Resolver, TargetSpec, unresolved

log = structlog.get_logger("baton.escalation")


def _who(t: TargetSpec) -> str:
    return f"{t.connector}|{t.to}|{t.person}"


class Outbox:
    def __init__(self, resolver: Resolver = unresolved) -> None:
        self.resolve = resolver

    def notify(self, db: Ledger, incident_id: str, snap: Mapping[str, Any],
               step: esc.Step, now: float, tag: str, update_told: bool
               ) -> list[dict[str, Any]]:
        """Tell the targets of ``step``, resolved at ``now``. With ``update_told`` (a new
        step), everyone told before gets one update first (a journal note on the ticket, a
        refreshed page), and a target of the new step who is among them gets only that:
        one message per person per step. Returns the timeline's list of who was told (a
        schedule with nobody on call shows so)."""
        told = {_who(t): t for t in db.triggered_targets(incident_id)}
        if update_told:
            for t in told.values():
                self.enqueue(db, incident_id, t, "update", now, tag)
        shown = []
        for raw in esc.level_of(snap, step)["notify"]:
            target = TargetSpec.from_dict(raw)
            concrete = self.resolve(target, now)
            if not concrete:
                kind = (target.to or "").partition(":")[0]
                reason = ("nobody on call" if kind == "schedule"
                          else "not in the current config (people/teams)")
                log.warning("target resolved to nobody", target=target.to, reason=reason,
                            incident_id=incident_id)
                shown.append({**target.to_dict(), "person": None, "reason": reason})
            for t in concrete:
                if update_told and _who(t) in told:
                    shown.append({**t.to_dict(), "action": "update"})
                    continue
                self.enqueue(db, incident_id, t, "trigger", now, tag)
                shown.append(t.to_dict())
        return shown

    def enqueue(self, db: Ledger, incident_id: str, target: TargetSpec, action: str,
                 now: float, discriminator: str = "") -> bool:
        """The idempotency key is stable per (incident, connector, action, target), so
        enqueueing the same thing twice is a no-op and a retry at the vendor carries the
        same key as the first attempt.

        Updates coalesce, as Alertmanager's group_interval batches a group's changes: while
        an update to a target waits unclaimed, another is not added (the waiting one is
        built from the incident when it is sent, so it carries the latest state), and an
        acknowledge or resolve supersedes the waiting ones. Two thousand alerts joining a
        group cost a target one or two updates, not two thousand, and the resolve is not
        queued behind them."""
        if action == "update" and db.update_pending(incident_id, target):
            return False
        if action in ("acknowledge", "resolve"):
            db.supersede_updates(incident_id, target, action)
        parts = [incident_id, target.connector, action]
        if target.to:
            parts.append(target.to)
        if target.person and target.to != f"person:{target.person}":
            parts.append(target.person)
        if discriminator:
            parts.append(discriminator)
        return db.enqueue(incident_id, target, action, now, "/".join(parts))

    def fan_out(self, db: Ledger, incident_id: str, action: str, now: float,
                 discriminator: str = "", origin: str | None = None) -> int:
        """Tell every target told before, except the connector the change came from: it
        knows already, and telling it would echo the change back (a callback loop)."""
        told = {_who(t): t for t in db.triggered_targets(incident_id)}
        return sum(self.enqueue(db, incident_id, t, action, now, discriminator)
                   for t in told.values() if t.connector != origin)
