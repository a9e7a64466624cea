"""Named time intervals with Alertmanager's ``time_intervals`` semantics, for routes'
``mute_time_intervals`` and ``active_time_intervals``.

An interval contains an instant when ANY of its entries does (no entries: never); an entry
when ALL the fields it gives do (a field left out or empty allows anything). ``times`` are
``HH:MM`` ranges, end exclusive, ``24:00`` allowed as an end, none past midnight; other
ranges (``monday:friday``, ``1:7``, ``-7:-1``, ``january:march``, ``2026:2027``) include
both ends. Weeks run Sunday to Saturday, so ``saturday:sunday`` is refused. ``-1`` is the
last day of the month; a day range running past the month is cut to it (``29:31`` matches
nothing in February 2027). Everything is read on the wall clock of ``location`` (an IANA
zone, default UTC, ``Local`` the machine's): 09:00 stays 09:00 across a DST change, and a
time the clock skips contains no instant.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Report = Callable[[str, str], None]  # (path, message), e.g. the config Checker's ``add``
Span = tuple[int, int]

WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
_TIME = re.compile(r"([01]?[0-9]|2[0-4]):([0-5][0-9])")
_INT = re.compile(r"[+-]?[0-9]+")


def _zone(location: str) -> tzinfo | None:
    """None is the machine's zone (``Local``), looked up at each use like ``astimezone()``."""
    if location == "Local":
        return None
    if location == "UTC":
        return UTC
    try:
        return ZoneInfo(location)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f'unknown time zone "{location}" (expected an IANA name like '
                         '"Europe/Berlin", "UTC" or "Local")') from None


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:  # it would be read in the process's zone: a silent guess
        raise ValueError("time intervals need an aware datetime (with tzinfo)")
    return at


def _hit(spans: tuple[Span, ...], value: int) -> bool:
    return not spans or any(lo <= value <= hi for lo, hi in spans)


def _day(day: int, month_days: int) -> int:
    return day if day > 0 else month_days + day + 1


@dataclass(frozen=True)
class IntervalSpec:
    """One entry of a named interval. ``times`` are minutes since midnight, end exclusive;
    ``weekdays`` count from Sunday = 1, ``months`` from January = 1; ``days_of_month``
    may be negative (-1 the last day). Other spans are inclusive. Empty: any value."""

    times: tuple[Span, ...] = ()
    weekdays: tuple[Span, ...] = ()
    days_of_month: tuple[Span, ...] = ()
    months: tuple[Span, ...] = ()
    years: tuple[Span, ...] = ()
    location: str = "UTC"
    _tz: tzinfo | None = field(default=None, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tz", _zone(self.location))

    def contains(self, at: datetime) -> bool:
        local = _aware(at).astimezone(self._tz)
        minute = local.hour * 60 + local.minute
        month_days = calendar.monthrange(local.year, local.month)[1]
        days = tuple((_day(lo, month_days), _day(hi, month_days)) for lo, hi in self.days_of_month)
        return (
            (not self.times or any(lo <= minute < hi for lo, hi in self.times))
            and _hit(self.weekdays, local.isoweekday() % 7 + 1) and _hit(days, local.day)
            and _hit(self.months, local.month) and _hit(self.years, local.year))


@dataclass(frozen=True)
class TimeInterval:
    name: str
    entries: tuple[IntervalSpec, ...] = ()

    def contains(self, at: datetime) -> bool:
        """Any entry contains ``at`` (an aware datetime; naive ones raise ValueError)."""
        _aware(at)
        return any(entry.contains(at) for entry in self.entries)


def active(names: Sequence[str], intervals: Mapping[str, TimeInterval], at: datetime) -> bool:
    """Any of the named intervals contains ``at``; a name not in ``intervals`` contains
    nothing (config loading refuses such names, so this is only a safe default)."""
    return any(name in intervals and intervals[name].contains(at) for name in names)


def is_muted(route_mute: Sequence[str], route_active: Sequence[str],
             intervals: Mapping[str, TimeInterval], at: datetime) -> str | None:
    """Why a route notifies no one at ``at``, or None when it notifies. Muting wins over
    activity, as in Alertmanager: a route inside one of its mute intervals is muted even
    inside its active intervals. No active intervals: always active."""
    for name in route_mute:
        if active((name,), intervals, at):
            return f'mute_time_intervals "{name}"'
    if route_active and not active(route_active, intervals, at):
        return "outside active_time_intervals " + ", ".join(f'"{n}"' for n in route_active)
    return None


# --- loading -------------------------------------------------------------------------------

def _text(raw: Any, base60: bool = True) -> str | None:
    """The value as written. PyYAML (YAML 1.1) reads an unquoted ``17:00`` or ``1:7`` as
    a base-60 number (1020, 67) where Alertmanager reads text; such numbers are >= 60,
    where no hour, day or month is, so they are turned back."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return None  # the schema reported it
    if isinstance(raw, int) and base60 and raw >= 60:
        return "{}:{:02d}".format(*divmod(raw, 60))
    return str(raw).strip()


def _number(high: int, names: Sequence[str] = (), negative: bool = False
            ) -> Callable[[str], int | None]:
    def parse(text: str) -> int | None:
        if text.lower() in names:
            return names.index(text.lower()) + 1
        value = int(text) if _INT.fullmatch(text) else 0
        return value if 1 <= value <= high or (negative and 1 <= -value <= high) else None
    return parse


# key: (what one value is, its parser, what is expected, hint for a range without values).
# A parser takes a name (its position, from 1) or a number from 1 to its ``high``.
_FIELDS: dict[str, tuple[str, Callable[[str], int | None], str, str]] = {
    "weekdays": ("weekday", _number(0, WEEKDAYS),
                 'a day name like "monday" or a range like "monday:friday"',
                 "; weeks run sunday to saturday, so list the days of a range that wraps"),
    "days_of_month": ("day of month", _number(31, negative=True),
                      '1 to 31, -31 to -1 (from the end), or a range like "1:7"', ""),
    "months": ("month", _number(12, MONTHS),
               'a name like "march", 1 to 12, or a range like "january:march"',
               "; split a range over the new year in two"),
    "years": ("year", _number(9999), 'a year like 2026 or a range like "2026:2027"', ""),
}


def _spans(key: str, items: Any, path: str, report: Report) -> tuple[Span, ...]:
    what, parse, expected, hint = _FIELDS[key]
    out: list[Span] = []
    for i, raw in enumerate(items if isinstance(items, list) else ()):
        text = _text(raw, base60=key != "years")
        if text is None:
            continue
        first, colon, second = (part.strip() for part in text.partition(":"))
        lo, hi = parse(first), parse(second if colon else first)
        if lo is None or hi is None:
            bad = first if lo is None else second
            report(f"{path}.{key}[{i}]", f'invalid {what} "{bad}" (expected {expected})')
        # Negative days depend on the month's length: refuse only what no month has.
        elif all(_day(lo, n) > _day(hi, n) for n in (28, 29, 30, 31)):
            report(f"{path}.{key}[{i}]", f'range "{text}" contains no {what}{hint}')
        else:
            out.append((lo, hi))
    return tuple(out)


def _minutes(raw: Any) -> int | None:
    found = _TIME.fullmatch(_text(raw) or "")
    minutes = int(found[1]) * 60 + int(found[2]) if found else None
    return minutes if minutes is not None and minutes <= 24 * 60 else None


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _times(items: Any, path: str, report: Report) -> tuple[Span, ...]:
    out: list[Span] = []
    for i, raw in enumerate(items if isinstance(items, list) else ()):
        if not isinstance(raw, dict) or not {"start_time", "end_time"} <= raw.keys():
            continue  # the schema reported it
        start, end = (_minutes(raw[key]) for key in ("start_time", "end_time"))
        for key, value in (("start_time", start), ("end_time", end)):
            if value is None and _text(raw[key]) is not None:
                report(f"{path}.times[{i}].{key}",
                       f'invalid time "{_text(raw[key])}" (expected HH:MM from 00:00 to 24:00)')
        if start is not None and end is not None and start < end:
            out.append((start, end))
        elif start is not None and end is not None:
            hint = (f"; split a range past midnight in two: {_clock(start)}-24:00 and "
                    f"00:00-{_clock(end)}") if start > end else ""
            report(f"{path}.times[{i}]",
                   f"start_time {_clock(start)} is not before end_time {_clock(end)}{hint}")
    return tuple(out)


def _entry(raw: Any, path: str, report: Report) -> IntervalSpec | None:
    if not isinstance(raw, dict):
        return None
    problems: list[str] = []

    def note(where: str, message: str) -> None:
        problems.append(where)
        report(where, message)

    spans = {key: _spans(key, raw.get(key), path, note) for key in _FIELDS}
    location = raw.get("location")
    try:
        entry = IntervalSpec(_times(raw.get("times"), path, note), **spans,
                             location=location if isinstance(location, str) else "UTC")
    except ValueError as exc:
        note(f"{path}.location", str(exc))
        return None
    return None if problems else entry


def parse_time_intervals(raw: Any, report: Report, path: str = "time_intervals"
                         ) -> dict[str, TimeInterval]:
    """The ``time_intervals`` section, as Alertmanager's list of ``{name,
    time_intervals}`` or as a mapping from name to entries. Every problem goes to
    ``report`` with its path; a broken entry is left out of the result."""
    named: list[tuple[str, str, Any]] = []  # (name, path of its entries, entries)
    if isinstance(raw, dict):
        named = [(str(name), f"{path}.{name}", entries) for name, entries in raw.items()]
    for i, item in enumerate(raw if isinstance(raw, list) else ()):
        name = item.get("name") if isinstance(item, dict) else None
        first = next((w.removesuffix(".time_intervals") for n, w, _ in named if n == name), None)
        if first is not None:
            report(f"{path}[{i}].name", f'duplicate time interval name "{name}" (also {first})')
        elif isinstance(name, str):
            named.append((name, f"{path}[{i}].time_intervals", item.get("time_intervals", [])))
    out: dict[str, TimeInterval] = {}
    for name, where, entries in named:
        built = (_entry(item, f"{where}[{j}]", report)
                 for j, item in enumerate(entries if isinstance(entries, list) else ()))
        out[name] = TimeInterval(name, tuple(e for e in built if e is not None))
    return out
