"""Wall-clock times in an IANA time zone, and the text forms schedules write them in.

Schedules hand off at local clock times ("mon 09:00"), so a local date and time has to
become one instant even on the two nights a year when that is not straightforward:

- a time the clocks skip (02:30 when they jump from 02:00 to 03:00) becomes the first
  instant after the gap, the moment the clocks jump (03:00 local);
- a time the clocks show twice (02:30 when they fall back from 03:00 to 02:00) is its first
  occurrence (``fold=0``), the one still on summer time.

Everything returned is in UTC: aware datetimes that share one ``ZoneInfo`` compare and
subtract by their wall clocks, which is exactly wrong around those two nights.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# ``mon`` and ``monday`` alike (Alertmanager's time intervals spell them out).
WEEKDAYS: dict[str, int] = {
    **{name[:3]: i for i, name in enumerate(_DAY_NAMES)},
    **{name: i for i, name in enumerate(_DAY_NAMES)},
}
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CLOCK = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")
_HANDOFF = re.compile(r"(?:(\S+) +)?(\S+)")
# "...T10:00:00 02:00": the time, then an offset whose "+" a query string turned into a space.
_OFFSET_AS_SPACE = re.compile(
    r"([0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?) ([0-9]{2}:[0-9]{2})$")


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ``ValueError('unknown time zone "..."')`` otherwise."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError: not a relative key ("../x", "/etc/localtime") or not a TZif file.
        raise ValueError(f'unknown time zone "{name}"') from None


def at_local(day: date, clock: time, tz: tzinfo) -> datetime:
    """The instant (UTC) at which the clocks in ``tz`` first show ``clock`` on ``day``, or
    the end of the gap when they skip it."""
    naive = datetime.combine(day, clock)
    first = naive.replace(tzinfo=tz).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        return first
    # In a gap. fold=0 reads the time with the offset from before the jump (an instant
    # after it), fold=1 with the offset from after (an instant before it); the jump is in
    # between, and transitions fall on whole seconds, so bisect on seconds.
    lo = int(naive.replace(tzinfo=tz, fold=1).timestamp())
    hi = int(first.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at.isoformat()} has no UTC offset; schedules need aware datetimes")
    return at.astimezone(UTC)


def parse_clock(text: object) -> time:
    """``"HH:MM"`` (00:00 to 23:59) as a time."""
    match = _CLOCK.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        hint = ""
        if isinstance(text, int) and not isinstance(text, bool):
            # YAML 1.1 reads an unquoted 17:00 as the base-60 number 1020.
            hint = (f'; write it quoted, "{text // 60}:{text % 60:02d}": unquoted, YAML reads '
                    f"it as the number {text}")
        raise ValueError(f'invalid time {text!r}: expected "HH:MM", e.g. "09:00"{hint}')
    return time(int(match[1]), int(match[2]))


def parse_weekday(text: object) -> int:
    """0 for ``mon``/``monday`` ... 6 for ``sun``/``sunday``."""
    if not isinstance(text, str) or text not in WEEKDAYS:
        raise ValueError(f"invalid weekday {text!r}: expected mon, tue, wed, thu, fri, sat "
                         f"or sun")
    return WEEKDAYS[text]


def parse_days(items: Iterable[object]) -> frozenset[int]:
    return frozenset(parse_weekday(item) for item in items)


def parse_handoff(text: object) -> tuple[int | None, time]:
    """``"mon 09:00"`` as (0, 09:00); ``"09:00"`` as (None, 09:00)."""
    if isinstance(text, int):
        parse_clock(text)  # raises, with the hint for an unquoted HH:MM
    match = _HANDOFF.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f'invalid handoff {text!r}: expected "HH:MM" or "<weekday> HH:MM", '
                         f'e.g. "mon 09:00"')
    try:
        return (None if match[1] is None else parse_weekday(match[1])), parse_clock(match[2])
    except ValueError:
        raise ValueError(f'invalid handoff {text!r}: expected "HH:MM" or "<weekday> HH:MM", '
                         f'e.g. "mon 09:00"') from None


def parse_date(text: object) -> date:
    if isinstance(text, date) and not isinstance(text, datetime):
        return text
    if isinstance(text, str) and _DATE.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError as exc:  # 2026-02-30
            raise ValueError(f"invalid date {text!r}: {exc}") from None
    raise ValueError(f"invalid date {text!r}: expected YYYY-MM-DD, e.g. 2026-01-05")


def parse_instant(text: object, tz: tzinfo | None) -> datetime:
    """RFC 3339 (``2026-03-28T18:00:00+01:00``, ``...Z``) as a UTC datetime. Without an
    offset the time is local to ``tz`` (resolved as ``at_local`` does); with ``tz`` None an
    offset is required."""
    expected = f"invalid time {text!r}: expected RFC 3339, e.g. 2026-03-28T18:00:00+01:00"
    if isinstance(text, datetime):  # YAML reads unquoted timestamps itself
        value = text
    elif isinstance(text, str) and re.search(r"[0-9][Tt ][0-9]", text):
        try:
            value = datetime.fromisoformat(_OFFSET_AS_SPACE.sub(r"\1+\2", text.strip()))
        except ValueError as exc:
            # fromisoformat's own words only when they are about the date: "day is out of
            # range for month", not "Invalid isoformat string".
            shaped = _DATE.match(text.strip()) and "isoformat" not in str(exc)
            raise ValueError(f"invalid time {text!r}: {exc}" if shaped else expected) from None
    else:
        raise ValueError(expected)
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    if tz is None:
        raise ValueError(f"invalid time {text!r}: needs a UTC offset, e.g. "
                         f"2026-03-28T18:00:00+01:00 or 2026-03-28T17:00:00Z")
    return at_local(value.date(), value.time(), tz)

