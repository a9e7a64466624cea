"""On-call schedules: who is on call at an instant, and the shifts over a time range.

A schedule has an IANA time zone, layers of rotations and overrides. This module is pure:
no I/O and no clock; ``baton.config`` builds the values from ``people:``, ``teams:`` and
``schedules:``, and callers pass the instant they care about.

How it decides, in the schedule's time zone:

- **Wall-clock rotations.** ``daily`` and ``weekly`` layers, and an ``every`` that is a whole
  number of days (``every: 3d``, ``every: 48h``), hand off at the same local clock time on
  each handoff day. Across a DST change one shift is an hour shorter or longer (a daily
  shift of 23 h or 25 h); the handoff stays at 09:00.
- **Elapsed rotations.** Any other ``every`` (``12h``, ``8h``, ``36h``) counts absolute time
  from the first handoff, so after a DST change the local handoff time is an hour off.
- **First handoff.** The handoff time on the layer's ``start`` date (weekly, or with a
  weekday in ``handoff``: on the first such weekday on or after ``start``). The first member
  is on call from then, then the next, round the list. Before it the layer has nobody.
- **Odd local times.** A handoff or window edge the clocks skip (02:30 when they jump from
  02:00 to 03:00) is the moment they jump; one the clocks show twice is its first occurrence.
- **Restrictions.** A restricted layer's member is on call only inside one of its windows.
  A window opens on each listed weekday at ``start`` and closes at ``end`` that day, or the
  next day when ``end`` is at or before ``start`` (22:00-06:00 runs overnight, 00:00-00:00
  is the whole day). The rotation keeps turning outside the windows.
- **Who is on call** at T: the last listed override covering T (start inclusive, end
  exclusive); else the last layer with someone on call at T; else nobody (None).

Instants are aware datetimes; results are in UTC.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from ._wallclock import at_local, utc

DEFAULT_START = date(2000, 1, 1)
MIN_EVERY = timedelta(hours=1)
RECIPIENT_KINDS = ("person", "team", "schedule")
NOBODY = "none"  # ``Shift.source`` of a time when nobody is on call
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Person:
    """Someone who can be notified: a display name and contact addresses by method
    (``email``, ``phone``, ``slack``, ...), which connectors read."""

    name: str
    contacts: Mapping[str, str] = field(default_factory=dict)
    timezone: str | None = None  # for display; rotations use the schedule's zone


@dataclass(frozen=True)
class Shift:
    """``person`` (None: nobody) on call from ``start`` to ``end``, because of ``source``:
    ``layer:<name>``, ``override``, or ``none``."""

    person: str | None
    start: datetime
    end: datetime
    source: str


@dataclass(frozen=True)
class Restriction:
    """A local time window on each of ``days`` (0 = Monday)."""

    days: frozenset[int]
    start: time
    end: time  # at or before ``start``: on the next day

    def window(self, day: date, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
        """The window that opens on ``day``, as instants; None when ``day`` has none."""
        if day.weekday() not in self.days:
            return None
        closes = day + _DAY if self.end <= self.start else day
        return at_local(day, self.start, tz), at_local(closes, self.end, tz)


def check_handoff(rotation: str | timedelta, handoff_day: int | None) -> None:
    """``ValueError`` unless the handoff's weekday (or its absence) suits ``rotation``."""
    if rotation == "weekly" and handoff_day is None:
        raise ValueError('a weekly rotation hands off on a weekday: "mon 09:00"')
    if rotation == "daily" and handoff_day is not None:
        raise ValueError('a daily rotation hands off every day: "09:00", no weekday')


@dataclass(frozen=True)
class Layer:
    """One rotation. ``rotation`` is ``"daily"``, ``"weekly"`` or a length (see the module
    docstring for whole days versus elapsed time); ``handoff_day`` (0 = Monday) is required
    for weekly, optional for a length, and not allowed for daily."""

    name: str
    members: tuple[str, ...]
    rotation: str | timedelta
    handoff: time = time(0)
    handoff_day: int | None = None
    start: date = DEFAULT_START
    restrictions: tuple[Restriction, ...] = ()

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("a layer needs at least one member")
        if isinstance(self.rotation, timedelta):
            if self.rotation < MIN_EVERY:
                raise ValueError("a rotation must be at least 1h long")
        elif self.rotation not in ("daily", "weekly"):
            raise ValueError(f"unknown rotation {self.rotation!r}")
        check_handoff(self.rotation, self.handoff_day)

    @property
    def _days(self) -> int | None:
        """Days per shift for a wall-clock rotation; None for an elapsed one."""
        if isinstance(self.rotation, timedelta):
            whole = self.rotation % _DAY == timedelta(0)
            return self.rotation.days if whole else None
        return 7 if self.rotation == "weekly" else 1

    @property
    def _first_day(self) -> date:
        if self.handoff_day is None:
            return self.start
        return self.start + (self.handoff_day - self.start.weekday()) % 7 * _DAY

    def handoff_at(self, turn: int, tz: ZoneInfo) -> datetime:
        """When the ``turn``-th shift (0: the first) begins."""
        days = self._days
        if days is None:
            assert isinstance(self.rotation, timedelta)
            return at_local(self._first_day, self.handoff, tz) + turn * self.rotation
        return at_local(self._first_day + turn * days * _DAY, self.handoff, tz)

    def turn(self, at: datetime, tz: ZoneInfo) -> int:
        """The shift ``at`` falls in (0: the first); -1 before the first handoff."""
        first = self.handoff_at(0, tz)
        if at < first:
            return -1
        days = self._days
        if days is None:
            assert isinstance(self.rotation, timedelta)
            return (at - first) // self.rotation
        # A guess from the local date, corrected by at most a step each way: a shift that
        # starts at a skipped or repeated local time is off the guess by up to an hour.
        k = max((at.astimezone(tz).date() - self._first_day).days // days, 0)
        while k > 0 and self.handoff_at(k, tz) > at:
            k -= 1
        while self.handoff_at(k + 1, tz) <= at:
            k += 1
        return k

    def on_duty(self, at: datetime, tz: ZoneInfo) -> bool:
        if not self.restrictions:
            return True
        today = at.astimezone(tz).date()
        for day in (today - _DAY, today, today + _DAY):
            for r in self.restrictions:
                w = r.window(day, tz)
                if w is not None and w[0] <= at < w[1]:
                    return True
        return False

    def member_at(self, at: datetime, tz: ZoneInfo) -> str | None:
        turn = self.turn(at, tz)
        if turn < 0 or not self.on_duty(at, tz):
            return None
        return self.members[turn % len(self.members)]

    def changes(self, start: datetime, end: datetime, tz: ZoneInfo) -> Iterator[datetime]:
        """Every instant in (start, end) where this layer's answer may change: handoffs to
        someone else, and window edges."""
        k, n = max(self.turn(start, tz), 0), len(self.members)
        alone = len(set(self.members)) == 1  # after the first handoff nothing changes
        while (h := self.handoff_at(k, tz)) < end:
            if h > start and (k == 0 or self.members[k % n] != self.members[(k - 1) % n]):
                yield h
            if alone and h > start:
                break
            k += 1
        if not self.restrictions:
            return
        day, last = start.astimezone(tz).date() - _DAY, end.astimezone(tz).date() + _DAY
        while day <= last:
            for r in self.restrictions:
                yield from (t for t in r.window(day, tz) or () if start < t < end)
            day += _DAY


@dataclass(frozen=True)
class Override:
    """``person`` covers ``[start, end)`` whatever the layers say."""

    person: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", utc(self.start))
        object.__setattr__(self, "end", utc(self.end))
        if self.end <= self.start:
            raise ValueError("an override must end after it starts")


@dataclass(frozen=True)
class Schedule:
    name: str
    timezone: ZoneInfo
    layers: tuple[Layer, ...] = ()
    overrides: tuple[Override, ...] = ()

    def oncall(self, at: datetime) -> str | None:
        """The person key on call at ``at`` (an aware datetime), or None."""
        return self.who(at)[0]

    def who(self, at: datetime) -> tuple[str | None, str]:
        """The person on call at ``at`` and why (a ``Shift.source``)."""
        at = utc(at)
        for o in reversed(self.overrides):
            if o.start <= at < o.end:
                return o.person, "override"
        for layer in reversed(self.layers):
            person = layer.member_at(at, self.timezone)
            if person is not None:
                return person, f"layer:{layer.name}"
        return None, NOBODY

    def shifts(self, start: datetime, end: datetime) -> list[Shift]:
        """Who is on call over ``[start, end)``: consecutive shifts covering the range,
        times when nobody is (``person`` None) included; a shift continuing with the same
        person for the same reason is one shift, e.g. a lone member's handoff to herself."""
        start, end = utc(start), utc(end)
        if end < start:
            raise ValueError("shifts: end is before start")
        cuts = {start, end}
        cuts.update(t for o in self.overrides for t in (o.start, o.end) if start < t < end)
        for layer in self.layers:
            cuts.update(layer.changes(start, end, self.timezone))
        out: list[Shift] = []
        for a, b in pairwise(sorted(cuts)):
            person, source = self.who(a)
            if out and (out[-1].person, out[-1].source) == (person, source):
                out[-1] = replace(out[-1], end=b)
            else:
                out.append(Shift(person, a, b, source))
        return out

    def shift_at(self, at: datetime, horizon: timedelta = timedelta(days=366)) -> Shift:
        """The shift ``at`` falls in, looked for up to ``horizon`` either way (beyond it the
        shift is cut short)."""
        at, span = utc(at), timedelta(days=8)
        while True:
            lo, hi = at - span, at + span
            shift = next(s for s in self.shifts(lo, hi) if s.start <= at < s.end)
            if (lo < shift.start and shift.end < hi) or span >= horizon:
                return shift
            span = min(span * 4, horizon)


def resolve_target(to: str, at: datetime, people: Mapping[str, Person],
                   teams: Mapping[str, Sequence[str]], schedules: Mapping[str, Schedule]
                   ) -> list[str]:
    """Person keys for ``person:NAME``, ``team:NAME`` (every member, in order) or
    ``schedule:NAME`` (who is on call at ``at``; empty when nobody). ``ValueError`` for
    another kind (check ``RECIPIENT_KINDS`` first) or a name the config does not define."""
    kind, _, name = to.partition(":")
    if kind == "person" and name in people:
        return [name]
    if kind == "team" and name in teams:
        return list(teams[name])
    if kind == "schedule" and name in schedules:
        person = schedules[name].oncall(at)
        return [] if person is None else [person]
    if kind in RECIPIENT_KINDS:
        raise ValueError(f'unknown {kind} "{name}"')
    raise ValueError(f"cannot resolve {to!r}: expected person:NAME, team:NAME or "
                     f"schedule:NAME")
