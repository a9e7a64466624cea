"""OnCall schedules and their on-call shifts as Baton schedules (see ``oncall``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from . import Report
from ._http import DAYS, items, key, merge, rotation, span, zone

_PERIOD = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400}
_RRULE_DAYS = {d[:2].upper(): i for i, d in enumerate(DAYS)}


class ScheduleMapper:
    """Schedules (``web``, ``calendar``) with their shifts; ``person`` maps an OnCall user
    id to a person key (None, reported, when unknown)."""

    def __init__(self, data: dict[str, Any], report: Report,
                 person: Callable[[Any, str], str | None]) -> None:
        self.data, self.r, self._person = data, report, person
        self.schedule_keys: dict[str, str] = {}

    def build(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The ``schedules`` section, and OnCall schedule id -> its key there."""
        shifts = {str(s.get("id")): (i, s) for i, s in enumerate(items(
            self.data["on_call_shifts"]))}
        out: dict[str, Any] = {}
        taken: set[str] = set()
        for i, s in enumerate(items(self.data["schedules"])):
            path = f'schedules[{i}] "{s.get("name", "")}"'
            if s.get("type") == "ical":
                self.r.skipped(path, "an iCal schedule: its shifts live in an outside "
                               "calendar (ical_url_primary); recreate them as layers")
                continue
            tz = zone(s.get("time_zone") or "UTC")
            if tz is None:
                self.r.skipped(path, f"unknown time zone {s.get('time_zone')!r}")
                continue
            if s.get("ical_url_overrides"):
                self.r.skipped(f"{path}.ical_url_overrides", "overrides from an outside "
                               "calendar are not read; add them as overrides")
            layers: list[tuple[int, dict[str, Any]]] = []
            overrides: list[dict[str, Any]] = []
            names: set[str] = set()
            for sid in s.get("shifts") or []:
                if str(sid) not in shifts:
                    self.r.skipped(f"{path}.shifts", f"shift {sid} is not among those read")
                    continue
                j, shift = shifts[str(sid)]
                self._shift(shift, f'on_call_shifts[{j}] "{shift.get("name", "")}"', tz,
                            layers, overrides, names)
            k = key(str(s.get("name") or s.get("id")), taken, "schedule")
            self.schedule_keys[str(s.get("id"))] = k
            sched: dict[str, Any] = {"timezone": str(tz)}
            if layers:  # OnCall: the higher level wins; Baton: the later layer
                sched["layers"] = [layer for _, layer in sorted(layers, key=lambda x: x[0])]
            if overrides:
                sched["overrides"] = overrides
            out[k] = sched
        return out, self.schedule_keys

    def _shift(self, shift: dict[str, Any], path: str, tz: ZoneInfo,
               layers: list[tuple[int, dict[str, Any]]], overrides: list[dict[str, Any]],
               names: set[str]) -> None:
        kind = shift.get("type")
        own = zone(shift.get("time_zone")) or tz
        try:
            start = datetime.fromisoformat(str(shift["start"])).replace(tzinfo=own)
            length = int(shift.get("duration") or 0)
        except (KeyError, ValueError, TypeError):
            self.r.skipped(path, "no readable start or duration")
            return
        if own.key != tz.key:
            self.r.decided(path, f"times of zone {own.key} read in the schedule's {tz.key}; "
                           "across a DST change that differs the handoff may move an hour")
        local = start.astimezone(tz)
        if kind in ("override", "single_event"):
            users = [u for u in (shift.get("users") or []) if u is not None]
            if len(users) > 1:
                self.r.skipped(f"{path}.users", "several people at once: a Baton override "
                               "has one person; the first is imported")
            person = self._person(users[0], f"{path}.users[0]") if users else None
            if person is None or length <= 0:
                self.r.skipped(path, "an event without a person or a duration")
                return
            if kind == "single_event":
                self.r.decided(path, "a one-off event becomes an override (it then wins "
                               "over every layer, whatever its level)")
            # The duration is elapsed time: add it in UTC, not on the local wall clock.
            end = (start.astimezone(UTC) + timedelta(seconds=length)).astimezone(tz)
            overrides.append({"person": person, "start": local.isoformat(),
                              "end": end.isoformat()})
            return
        if kind not in ("rolling_users", "recurrent_event"):
            self.r.skipped(path, f"shift type {kind!r} has no Baton equivalent")
            return
        freq = str(shift.get("frequency"))
        layer = rotation(freq, int(shift.get("interval") or 1), local)
        if layer is None:
            self.r.skipped(path, f"frequency {freq!r}: Baton rotates hourly, daily or weekly")
            return
        members = self._members(shift, path)
        if not members:
            self.r.skipped(path, "no member Baton knows")
            return
        restrictions = self._restrictions(shift, path, freq, local, length, len(members))
        if shift.get("rotation_start") not in (None, shift.get("start")):
            self.r.decided(f"{path}.rotation_start", "Baton rotates from the shift's start "
                           f"({shift.get('start')}), not from rotation_start")
        if shift.get("until"):
            self.r.skipped(f"{path}.until", f"the rotation ends {shift['until']}; Baton "
                           "layers have no end date")
        entry = {"name": key(str(shift.get("name") or shift.get("id")), names, "layer"),
                 **layer, "members": members}
        if restrictions:
            entry["restrictions"] = restrictions
        layers.append((int(shift.get("level") or 0), entry))

    def _members(self, shift: dict[str, Any], path: str) -> list[str]:
        if shift.get("type") == "rolling_users":
            groups = [g for g in (shift.get("rolling_users") or []) if isinstance(g, list) and g]
        else:
            users = shift.get("users") or []
            groups = [users] if users else []
        out = []
        for n, group in enumerate(groups):
            if len(group) > 1:
                self.r.skipped(f"{path}.rolling_users[{n}]", "several people on call at "
                               "once: a Baton layer has one at a time; the first is imported")
            person = self._person(group[0], f"{path}.rolling_users[{n}][0]")
            if person is not None:
                out.append(person)
        k = int(shift.get("start_rotation_from_user_index") or 0) % max(len(out), 1)
        return out[k:] + out[:k]

    def _restrictions(self, shift: dict[str, Any], path: str, freq: str, local: datetime,
                      length: int, members: int) -> list[dict[str, Any]]:
        period = _PERIOD[freq] * max(int(shift.get("interval") or 1), 1)
        days = sorted({_RRULE_DAYS[d] for d in shift.get("by_day") or []
                       if d in _RRULE_DAYS})
        if length <= 0 or (length >= period and not days):
            return []
        if freq == "hourly":
            self.r.skipped(path, "on call part of each hourly period: not expressible as "
                           "windows; imported as on call the whole period")
            return []
        if freq == "daily" and days and members > 1 and len(days) < 7:
            self.r.decided(path, "OnCall turns this rotation only on the by_day days, "
                           "Baton every day: check who is on call on which day")
        if freq == "weekly" and not days:
            days = [local.weekday()]
        minutes = local.hour * 60 + local.minute
        window = min(length, 86400 if freq == "daily" else length) // 60
        out = []
        for d in days or range(7):
            out += span(d, minutes, min(window, 7 * 1440))
        return merge(out)

