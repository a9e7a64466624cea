"""Whether an incident may notify anyone now, and when that can next change.

Three things suppress, in this order, as in Alertmanager: the route's time intervals
(muted), a silence (from the API or from config), and inhibition (a firing alert that a
rule says mutes this one). A grouped incident is suppressed only while every one of its
firing alerts is (Alertmanager drops silenced alerts from a notification and sends nothing
when none is left).

The lifecycle asks at every notification moment (open, escalation step, reminder, repeat,
resume after an acknowledgement lapses or is withdrawn), so a silence created while an
incident escalates stops its next step. A ``Hold`` says what suppresses it, which holders
to index (so an expired silence or a resolved inhibitor can find what it held) and when it
may end by itself (a silence's end, the next time-interval boundary).

Inhibition is a few indexed lookups, not a scan: a rule's equality source matchers and
the target's values of its ``equal`` labels select candidate alerts through the label
index of firing alerts; only those candidates are matched in full. A rule with neither
(only regex source matchers, no ``equal``) has no key to look up, so it reads every firing
alert: write rules with an exact source matcher or ``equal`` labels.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

from .inhibit import InhibitRule
from .matcher import Matcher, matches_all, parse_matcher
from .timeinterval import TimeInterval, is_muted

AlertKey = tuple[str, str, str]  # (incident id, source, dedup key)
# Time intervals are written to the minute, so a route's muting can only change on one;
# the scan for the next change looks this far ahead, and a muted incident is checked again
# after that even when nothing changed.
MUTE_HORIZON = 24 * 3600.0


class Reads(Protocol):
    """What deciding needs from storage (``baton.store.repo.Repo`` provides it)."""

    def active_silences(self, now: float) -> list[dict[str, Any]]: ...
    def firing_with(self, pairs: Sequence[tuple[str, str]], page: int = 200
                    ) -> Iterator[AlertKey]: ...
    def labels_of(self, key: AlertKey) -> dict[str, str]: ...


@dataclass(frozen=True)
class ConfigSilence:
    """A silence written in config (maintenance as code): read-only through the API."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    comment: str = ""
    created_by: str = "config"

    def doc(self, now: float, iso: Callable[[float], str | None]) -> dict[str, Any]:
        state = ("expired" if self.ends_at <= now else
                 "active" if self.starts_at <= now else "pending")
        return {"id": self.id, "matchers": [str(m) for m in self.matchers],
                "starts_at": iso(self.starts_at), "ends_at": iso(self.ends_at),
                "created_by": self.created_by, "comment": self.comment, "created_at": None,
                "expired_by": None, "state": state, "origin": "config"}


@dataclass(frozen=True)
class Hold:
    reason: dict[str, Any]  # the incident's ``suppressed`` and its timeline detail
    holders: tuple[str, ...]  # silence:<id>, inhibit:<incident id>, mute:<route>
    until: float | None = None  # when it may end by itself; None: only by an event


@lru_cache(maxsize=4096)
def _parsed(matchers_json: str) -> tuple[Matcher, ...]:
    """A stored silence's matchers, parsed once per distinct text (they never change)."""
    return tuple(parse_matcher(m) for m in json.loads(matchers_json))


@dataclass(frozen=True, eq=False)  # hashed by identity, for the cache below
class Muting:
    """Routes' time intervals by route name, with the next instant the answer changes."""

    routes: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(
        default_factory=dict)  # name -> (mute_time_intervals, active_time_intervals)
    intervals: Mapping[str, TimeInterval] = field(default_factory=dict)

    def muted(self, route: str | None, at: float) -> str | None:
        mute, active = self.routes.get(route or "", ((), ()))
        if not (mute or active):
            return None
        return is_muted(mute, active, self.intervals, datetime.fromtimestamp(at, UTC))

    def next_change(self, route: str | None, at: float) -> float | None:
        """The first whole minute after ``at`` where ``muted`` answers otherwise, within
        the horizon; None when it does not change before then."""
        return _next_change(self, route or "", int(at // 60))


@lru_cache(maxsize=1024)
def _next_change(muting: Muting, route: str, minute: int) -> float | None:
    # Cached per (route, minute): an outage muting thousands of incidents of one route
    # scans once.
    now = muting.muted(route, minute * 60.0)
    for m in range(minute + 1, minute + 1 + int(MUTE_HORIZON // 60)):
        if muting.muted(route, m * 60.0) != now:
            return m * 60.0
    return None


class Suppressor:
    def __init__(self, inhibit_rules: Sequence[InhibitRule] = (),
                 silences: Sequence[ConfigSilence] = (), muting: Muting | None = None
                 ) -> None:
        self.rules = tuple(inhibit_rules)
        self.silences = tuple(silences)
        self.muting = muting or Muting()

    def check(self, reads: Reads, route: str | None,
              alerts: Mapping[AlertKey, Mapping[str, str]], now: float) -> Hold | None:
        """The hold on an incident of ``route`` whose firing alerts are ``alerts`` (their
        match labels), or None when it may notify now."""
        muted = self.muting.muted(route, now)
        if muted is not None:
            return Hold({"reason": "muted", "route": route, "detail": muted},
                        (f"mute:{route}",), self.muting.next_change(route, now))
        holds = []
        silences = reads.active_silences(now) if alerts else []  # once, not per alert
        for key, labels in alerts.items():
            hold = self.check_alert(reads, key, labels, now, silences)
            if hold is None:
                return None
            holds.append(hold)
        if not holds:
            return None
        # Free as soon as any one alert is: the earliest end of any alert's hold.
        untils = [h.until for h in holds if h.until is not None]
        return Hold(holds[0].reason, tuple(x for h in holds for x in h.holders),
                    min(untils) if untils else None)

    def check_alert(self, reads: Reads, key: AlertKey, labels: Mapping[str, str],
                    now: float, silences: Sequence[Mapping[str, Any]] | None = None
                    ) -> Hold | None:
        """The hold on one alert; ``silences`` are the stored silences active at ``now``
        when the caller has read them already."""
        for s in self.silences:
            if s.starts_at <= now < s.ends_at and matches_all(s.matchers, labels):
                return Hold({"reason": "silenced", "silence_id": s.id},
                            (f"silence:{s.id}",), s.ends_at)
        for row in reads.active_silences(now) if silences is None else silences:
            if matches_all(_parsed(row["matchers"]), labels):
                return Hold({"reason": "silenced", "silence_id": row["id"]},
                            (f"silence:{row['id']}",), float(row["ends_at"]))
        return self._inhibited(reads, key, labels)

    def _inhibited(self, reads: Reads, key: AlertKey, labels: Mapping[str, str]
                   ) -> Hold | None:
        for index, rule in enumerate(self.rules):
            if not rule.applies_to(labels):
                continue
            pairs = [(m.name, m.value) for m in rule.source if m.op == "=" and m.value]
            pairs += [(n, labels[n]) for n in rule.equal if labels.get(n)]
            for other in reads.firing_with(sorted(set(pairs))):
                if other[1:] == key[1:]:
                    continue  # the alert itself, in this or another incident
                source_labels = reads.labels_of(other)
                if rule.inhibits(source_labels, labels):
                    return Hold({"reason": "inhibited", "rule": index,
                                 "rule_text": str(rule), "by_incident": other[0],
                                 "by_alertname": source_labels.get("alertname")},
                                (f"inhibit:{other[0]}",))
        return None


class MemoryReads:
    """``Reads`` over alerts held in memory: ``baton simulate`` decides with the same
    ``Suppressor`` as the gateway, against the firing alerts of its payload."""

    def __init__(self, firing: Mapping[AlertKey, Mapping[str, str]]) -> None:
        self.firing = dict(firing)

    def active_silences(self, now: float) -> list[dict[str, Any]]:
        return []  # simulate passes its silences as ConfigSilence

    def firing_with(self, pairs: Sequence[tuple[str, str]], page: int = 200
                    ) -> Iterator[AlertKey]:
        for key, labels in self.firing.items():
            if all(labels.get(n) == v for n, v in pairs):
                yield key

    def labels_of(self, key: AlertKey) -> dict[str, str]:
        return dict(self.firing.get(key, {}))
