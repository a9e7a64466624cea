"""On-call schedules against hand-computed answers.

Calendar facts used throughout (2026):
- 2026-01-01 is a Thursday, so 2026-01-05 is a Monday; Feb has 28 days, so 2026-03-01 is a
  Sunday and 2026-10-01 a Thursday.
- Europe/Berlin: CET = UTC+1, CEST = UTC+2. Spring forward on the last Sunday of March,
  2026-03-29: 02:00 CET -> 03:00 CEST at 01:00Z. Fall back on the last Sunday of October,
  2026-10-25: 03:00 CEST -> 02:00 CET at 01:00Z (02:00-03:00 local happens twice).
- America/New_York: EST = UTC-5, EDT = UTC-4. Spring forward on the second Sunday of
  March, 2026-03-08: 02:00 EST -> 03:00 EDT at 07:00Z. Fall back on the first Sunday of
  November, 2026-11-01: 02:00 EDT -> 01:00 EST at 06:00Z (01:00-02:00 happens twice).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from baton._wallclock import at_local, parse_handoff
from baton.config import check_config, config_from_dict
from baton.errors import ConfigError
from baton.schedule import (
    Layer,
    Override,
    Person,
    Restriction,
    Schedule,
    Shift,
    resolve_target,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = frozenset(range(5))


def z(text: str) -> datetime:
    """A UTC instant: ``z("2026-03-29T01:00")``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def layer(name: str, members: str, rotation: str | timedelta, handoff: str, start: str,
          *restrictions: Restriction) -> Layer:
    day, clock = parse_handoff(handoff)
    return Layer(name, tuple(members.split()), rotation, clock, day,
                 date.fromisoformat(start), restrictions)


def window(days: frozenset[int], start: str, end: str) -> Restriction:
    return Restriction(days, time.fromisoformat(start), time.fromisoformat(end))


def check(schedule: Schedule, expected: dict[str, str | None]) -> None:
    got = {at: schedule.oncall(z(at)) for at in expected}
    assert got == expected


# -- local times that do not exist or exist twice -------------------------------------------

def test_at_local_resolves_gaps_forward_and_repeats_to_the_first_occurrence() -> None:
    # Plain: 09:00 CET = 08:00Z.
    assert at_local(date(2026, 1, 5), time(9), BERLIN) == z("2026-01-05T08:00")
    # 02:30 is skipped on 2026-03-29; the clocks jump at 01:00Z (03:00 CEST). Python's own
    # fold=0 reading would give 02:30+01:00 = 01:30Z (03:30 CEST), half an hour late.
    assert at_local(date(2026, 3, 29), time(2, 30), BERLIN) == z("2026-03-29T01:00")
    # 02:30 happens twice on 2026-10-25: first at 02:30 CEST = 00:30Z, again at 01:30Z.
    assert at_local(date(2026, 10, 25), time(2, 30), BERLIN) == z("2026-10-25T00:30")
    # New York: 02:30 skipped on 2026-03-08, the jump is at 07:00Z (03:00 EDT).
    assert at_local(date(2026, 3, 8), time(2, 30), NEW_YORK) == z("2026-03-08T07:00")
    # 01:30 twice on 2026-11-01: first 01:30 EDT = 05:30Z (again at 06:30Z, EST).
    assert at_local(date(2026, 11, 1), time(1, 30), NEW_YORK) == z("2026-11-01T05:30")


# -- weekly, across DST ----------------------------------------------------------------------

WEEKLY = Schedule("primary", BERLIN, (
    layer("weekly", "alice bob carol", "weekly", "mon 09:00", "2026-01-05"),))


def test_weekly_rotation_across_spring_forward() -> None:
    # Shift k starts on Monday 2026-01-05 + 7k at 09:00 local; member k % 3.
    # 2026-01-05 -> 2026-03-23 is 31 + 28 + 18 = 77 days = 11 weeks: k = 11, 11 % 3 = 2: carol,
    # from 09:00 CET = 08:00Z. k = 12 (alice) starts 2026-03-30 09:00 CEST = 07:00Z, so
    # carol's week is 167 hours. Counting 168 elapsed hours would hand over at 08:00Z.
    check(WEEKLY, {
        "2026-03-23T07:59": "bob",     # k = 10, 10 % 3 = 1
        "2026-03-23T08:00": "carol",
        "2026-03-29T01:30": "carol",   # 03:30 CEST, just after the jump
        "2026-03-30T06:59": "carol",   # 08:59 CEST
        "2026-03-30T07:00": "alice",   # 09:00 CEST
        "2026-03-30T07:30": "alice",   # still carol if the week were 168 h
    })
    assert WEEKLY.layers[0].handoff_at(12, BERLIN) - WEEKLY.layers[0].handoff_at(11, BERLIN) \
        == timedelta(hours=167)


def test_weekly_rotation_across_fall_back() -> None:
    # 2026-01-05 -> 2026-10-05 is 31+28+31+30+31+30+31+31+30 = 273 days, + 14 to 2026-10-19:
    # 287 days = 41 weeks: k = 41, 41 % 3 = 2: carol from 09:00 CEST = 07:00Z. k = 42 (alice)
    # starts 2026-10-26 09:00 CET = 08:00Z: a 169-hour week.
    check(WEEKLY, {
        "2026-10-19T06:59": "bob",
        "2026-10-19T07:00": "carol",
        "2026-10-25T00:30": "carol",   # 02:30 CEST, the first pass
        "2026-10-25T01:30": "carol",   # 02:30 CET, the second pass
        "2026-10-26T07:30": "carol",   # 08:30 CET; alice already if the week were 168 h
        "2026-10-26T07:59": "carol",
        "2026-10-26T08:00": "alice",   # 09:00 CET
    })


# -- daily, at times the clocks skip or repeat -----------------------------------------------

def test_daily_handoff_at_a_skipped_time_happens_when_the_clocks_jump() -> None:
    s = Schedule("s", BERLIN, (layer("daily", "alice bob", "daily", "02:30", "2026-03-27"),))
    # k=0 03-27 02:30 CET = 01:30Z alice; k=1 03-28 01:30Z bob; k=2 03-29 02:30 does not
    # exist -> 03:00 CEST = 01:00Z alice; k=3 03-30 02:30 CEST = 00:30Z bob.
    check(s, {
        "2026-03-27T01:29": None,      # before the first handoff
        "2026-03-27T01:30": "alice",
        "2026-03-28T01:30": "bob",
        "2026-03-29T00:59": "bob",     # 01:59 CET
        "2026-03-29T01:00": "alice",   # 03:00 CEST
        "2026-03-29T01:15": "alice",   # bob until 01:30Z with Python's fold=0 reading
        "2026-03-30T00:29": "alice",
        "2026-03-30T00:30": "bob",     # 02:30 CEST
    })
    # alice's shift: 01:00Z to 00:30Z next day, 23.5 hours.
    assert s.shifts(z("2026-03-28T12:00"), z("2026-03-30T12:00")) == [
        Shift("bob", z("2026-03-28T12:00"), z("2026-03-29T01:00"), "layer:daily"),
        Shift("alice", z("2026-03-29T01:00"), z("2026-03-30T00:30"), "layer:daily"),
        Shift("bob", z("2026-03-30T00:30"), z("2026-03-30T12:00"), "layer:daily"),
    ]


def test_daily_handoff_at_a_repeated_time_happens_at_the_first_pass() -> None:
    s = Schedule("s", BERLIN, (layer("daily", "alice bob", "daily", "02:30", "2026-10-23"),))
    # k=0 10-23 02:30 CEST = 00:30Z alice; k=1 10-24 00:30Z bob; k=2 10-25 first 02:30
    # (CEST) = 00:30Z alice; k=3 10-26 02:30 CET = 01:30Z bob: alice has 25 hours.
    check(s, {
        "2026-10-25T00:29": "bob",
        "2026-10-25T00:30": "alice",
        "2026-10-25T01:45": "alice",   # 02:45 CET, the second pass: no second handoff
        "2026-10-26T01:29": "alice",
        "2026-10-26T01:30": "bob",
    })


# -- every: elapsed hours versus whole days --------------------------------------------------

def test_every_12h_counts_elapsed_hours_so_the_local_handoff_moves() -> None:
    s = Schedule("s", BERLIN, (
        layer("halves", "alice bob", timedelta(hours=12), "08:00", "2026-03-28"),))
    # First handoff 03-28 08:00 CET = 07:00Z, then every 12 h: 19:00Z bob, 03-29 07:00Z
    # alice, which is 09:00 CEST: the local handoff moved from 08:00 to 09:00.
    check(s, {
        "2026-03-28T06:59": None,
        "2026-03-28T07:00": "alice",
        "2026-03-28T19:00": "bob",
        "2026-03-29T06:30": "bob",     # 08:30 CEST: alice already on a wall-clock rotation
        "2026-03-29T07:00": "alice",
        "2026-03-29T19:00": "bob",     # 21:00 CEST
    })
    assert s.layers[0].handoff_at(2, BERLIN).astimezone(BERLIN).hour == 9


def test_every_whole_days_keeps_the_wall_clock_handoff() -> None:
    s = Schedule("s", BERLIN, (
        layer("pairs", "alice bob", timedelta(hours=48), "08:00", "2026-03-28"),))
    # 48h is two whole days: 03-28 08:00 CET = 07:00Z alice, 03-30 08:00 CEST = 06:00Z bob
    # (47 elapsed hours), 04-01 06:00Z alice.
    check(s, {
        "2026-03-30T05:59": "alice",
        "2026-03-30T06:30": "bob",     # alice until 07:00Z if counted in elapsed hours
        "2026-04-01T06:00": "alice",
    })


def test_every_with_a_weekday_starts_on_that_weekday() -> None:
    # Every two weeks from the first Monday on or after Thursday 2026-01-01: 01-05 09:00 CET.
    s = Schedule("s", BERLIN, (
        layer("fortnight", "alice bob", timedelta(days=14), "mon 09:00", "2026-01-01"),))
    check(s, {
        "2026-01-05T07:59": None,
        "2026-01-05T08:00": "alice",
        "2026-01-19T07:59": "alice",
        "2026-01-19T08:00": "bob",
        "2026-02-02T08:00": "alice",
    })


# -- America/New_York ------------------------------------------------------------------------

def test_new_york_weekly_handoff_in_the_gap() -> None:
    s = Schedule("s", NEW_YORK, (layer("w", "alice bob", "weekly", "sun 02:30", "2026-03-01"),))
    # k=0 03-01 02:30 EST = 07:30Z alice; k=1 03-08 02:30 skipped -> 03:00 EDT = 07:00Z bob;
    # k=2 03-15 02:30 EDT = 06:30Z alice. bob's week: 167.5 hours.
    check(s, {
        "2026-03-01T07:29": None,
        "2026-03-01T07:30": "alice",
        "2026-03-08T06:59": "alice",   # 01:59 EST
        "2026-03-08T07:00": "bob",     # 03:00 EDT
        "2026-03-15T06:29": "bob",
        "2026-03-15T06:30": "alice",
    })
    assert s.layers[0].handoff_at(2, NEW_YORK) - s.layers[0].handoff_at(1, NEW_YORK) \
        == timedelta(hours=167, minutes=30)


def test_new_york_daily_across_fall_back() -> None:
    s = Schedule("s", NEW_YORK, (
        layer("d", "alice bob carol", "daily", "01:30", "2026-10-30"),))
    # k=0 10-30 01:30 EDT = 05:30Z alice; k=1 10-31 05:30Z bob; k=2 11-01 first 01:30
    # (EDT) = 05:30Z carol; k=3 11-02 01:30 EST = 06:30Z alice: carol has 25 hours.
    check(s, {
        "2026-11-01T05:29": "bob",
        "2026-11-01T05:30": "carol",
        "2026-11-01T06:45": "carol",   # 01:45 EST, the second pass
        "2026-11-02T06:29": "carol",
        "2026-11-02T06:30": "alice",
    })


# -- restrictions ----------------------------------------------------------------------------

BACKSTOP = layer("backstop", "dave", "daily", "00:00", "2026-01-01")


def test_business_hours_restriction_falls_back_to_the_lower_layer() -> None:
    s = Schedule("s", BERLIN, (
        BACKSTOP,
        layer("business", "alice bob", "weekly", "mon 09:00", "2026-01-05",
              window(WEEKDAYS, "09:00", "17:00")),
    ))
    # Week of Monday 2026-01-12 is k = 1: bob. Windows 09:00-17:00 CET = 08:00Z-16:00Z.
    check(s, {
        "2026-01-09T12:00": "alice",   # Friday 13:00 CET, week k = 0
        "2026-01-12T07:30": "dave",    # Monday 08:30 CET: before the window
        "2026-01-13T07:59": "dave",    # Tuesday 08:59 CET
        "2026-01-13T08:00": "bob",     # 09:00 CET
        "2026-01-13T15:59": "bob",     # 16:59 CET
        "2026-01-13T16:00": "dave",    # 17:00 CET: the end is exclusive
        "2026-01-17T10:00": "dave",    # Saturday 11:00 CET: no window
    })
    assert s.who(z("2026-01-13T09:00")) == ("bob", "layer:business")
    assert s.who(z("2026-01-13T17:00")) == ("dave", "layer:backstop")
    # dave's own midnight handoff to himself (23:00Z) merges into one shift.
    assert s.shifts(z("2026-01-13T00:00"), z("2026-01-14T00:00")) == [
        Shift("dave", z("2026-01-13T00:00"), z("2026-01-13T08:00"), "layer:backstop"),
        Shift("bob", z("2026-01-13T08:00"), z("2026-01-13T16:00"), "layer:business"),
        Shift("dave", z("2026-01-13T16:00"), z("2026-01-14T00:00"), "layer:backstop"),
    ]


def test_a_window_ending_before_it_starts_runs_past_midnight() -> None:
    s = Schedule("s", BERLIN, (
        BACKSTOP,
        layer("friday-night", "erin", "daily", "18:00", "2026-01-01",
              window(frozenset({4}), "22:00", "06:00")),
    ))
    # Friday 2026-01-16 22:00 CET = 21:00Z until Saturday 06:00 CET = 05:00Z.
    check(s, {
        "2026-01-15T22:00": "dave",    # Thursday 23:00: Thursday opens no window
        "2026-01-16T20:59": "dave",
        "2026-01-16T21:00": "erin",
        "2026-01-17T04:59": "erin",    # Saturday 05:59, in Friday's window
        "2026-01-17T05:00": "dave",
        "2026-01-17T21:30": "dave",    # Saturday 22:30: Saturday opens no window
    })


def test_a_window_across_spring_forward_keeps_its_local_end() -> None:
    s = Schedule("s", BERLIN, (
        BACKSTOP,
        layer("saturday-night", "erin", "daily", "18:00", "2026-01-01",
              window(frozenset({5}), "22:00", "06:00")),
    ))
    # Saturday 03-28 22:00 CET = 21:00Z until Sunday 06:00 CEST = 04:00Z: 7 hours.
    check(s, {
        "2026-03-28T20:59": "dave",
        "2026-03-28T21:00": "erin",
        "2026-03-29T03:59": "erin",    # 05:59 CEST
        "2026-03-29T04:00": "dave",    # 06:00 CEST
        "2026-03-29T04:30": "dave",    # erin until 05:00Z if 06:00 were read as CET
    })


def test_a_restricted_schedule_shows_its_gaps() -> None:
    # Two windows back to back: alice's answer does not change at 13:00, one shift.
    s = Schedule("s", BERLIN, (
        layer("day", "alice", "daily", "00:00", "2026-01-01",
              window(WEEKDAYS, "09:00", "13:00"), window(WEEKDAYS, "13:00", "17:00")),
    ))
    assert s.shifts(z("2026-01-13T00:00"), z("2026-01-14T00:00")) == [
        Shift(None, z("2026-01-13T00:00"), z("2026-01-13T08:00"), "none"),
        Shift("alice", z("2026-01-13T08:00"), z("2026-01-13T16:00"), "layer:day"),
        Shift(None, z("2026-01-13T16:00"), z("2026-01-14T00:00"), "none"),
    ]


# -- overrides and layers --------------------------------------------------------------------

COVER = Override("dave", datetime.fromisoformat("2026-03-28T18:00:00+01:00"),
                 datetime.fromisoformat("2026-03-30T09:00:00+02:00"))


def test_an_override_in_the_middle_of_a_shift() -> None:
    s = Schedule("primary", BERLIN, WEEKLY.layers, (COVER,))
    # carol's week runs 03-23 08:00Z to 03-30 07:00Z; dave covers 03-28 17:00Z to 07:00Z.
    check(s, {
        "2026-03-28T16:59": "carol",
        "2026-03-28T17:00": "dave",
        "2026-03-29T12:00": "dave",
        "2026-03-30T06:59": "dave",
        "2026-03-30T07:00": "alice",   # the end is exclusive; the layer hands off then too
    })
    assert s.who(z("2026-03-29T12:00")) == ("dave", "override")
    assert s.shifts(z("2026-03-28T00:00"), z("2026-03-31T00:00")) == [
        Shift("carol", z("2026-03-28T00:00"), z("2026-03-28T17:00"), "layer:weekly"),
        Shift("dave", z("2026-03-28T17:00"), z("2026-03-30T07:00"), "override"),
        Shift("alice", z("2026-03-30T07:00"), z("2026-03-31T00:00"), "layer:weekly"),
    ]
    assert s.shift_at(z("2026-03-29T12:00")) == Shift(
        "dave", z("2026-03-28T17:00"), z("2026-03-30T07:00"), "override")
    assert s.shift_at(z("2026-03-25T12:00")) == Shift(
        "carol", z("2026-03-23T08:00"), z("2026-03-28T17:00"), "layer:weekly")


def test_overlapping_overrides_the_last_defined_wins() -> None:
    erin = Override("erin", z("2026-03-25T00:00"), z("2026-03-27T00:00"))
    frank = Override("frank", z("2026-03-26T00:00"), z("2026-03-26T12:00"))
    check(Schedule("s", BERLIN, WEEKLY.layers, (erin, frank)), {
        "2026-03-24T23:59": "carol",
        "2026-03-25T12:00": "erin",
        "2026-03-26T06:00": "frank",
        "2026-03-26T12:00": "erin",
        "2026-03-27T00:00": "carol",
    })
    # Defined the other way round, erin's longer override hides frank's entirely.
    check(Schedule("s", BERLIN, WEEKLY.layers, (frank, erin)), {
        "2026-03-26T06:00": "erin",
    })


def test_later_layers_override_earlier_ones_from_their_start() -> None:
    s = Schedule("s", BERLIN, (
        layer("base", "alice bob", "weekly", "mon 09:00", "2026-01-05"),
        layer("top", "carol", "daily", "09:00", "2026-02-01"),
    ))
    # base: 2026-01-05 -> 01-31 is 26 days, so the week of Monday 01-26 (k = 3): bob.
    # top's first handoff: 2026-02-01 09:00 CET = 08:00Z.
    check(s, {
        "2026-01-31T12:00": "bob",
        "2026-02-01T07:59": "bob",
        "2026-02-01T08:00": "carol",
        "2026-03-01T12:00": "carol",
    })
    assert s.who(z("2026-02-01T07:59")) == ("bob", "layer:base")
    assert s.who(z("2026-02-01T08:00")) == ("carol", "layer:top")


def test_nobody_before_the_first_handoff() -> None:
    # Start on Wednesday 2026-01-07: the first Monday 09:00 on or after it is 01-12 08:00Z.
    s = Schedule("s", BERLIN, (layer("w", "alice bob", "weekly", "mon 09:00", "2026-01-07"),))
    check(s, {
        "2025-12-31T12:00": None,
        "2026-01-07T12:00": None,
        "2026-01-12T07:59": None,
        "2026-01-12T08:00": "alice",
        "2026-01-19T08:00": "bob",
    })
    assert s.who(z("2026-01-10T00:00")) == (None, "none")
    assert Schedule("empty", BERLIN).oncall(z("2026-01-10T00:00")) is None


def test_shifts_merge_a_person_who_continues() -> None:
    s = Schedule("s", BERLIN, (
        layer("weekly", "alice alice bob", "weekly", "mon 09:00", "2026-01-05"),))
    # k=0,1 alice (01-05 08:00Z to 01-19 08:00Z), k=2 bob, k=3 alice again.
    assert s.shifts(z("2026-01-05T00:00"), z("2026-01-27T00:00")) == [
        Shift(None, z("2026-01-05T00:00"), z("2026-01-05T08:00"), "none"),
        Shift("alice", z("2026-01-05T08:00"), z("2026-01-19T08:00"), "layer:weekly"),
        Shift("bob", z("2026-01-19T08:00"), z("2026-01-26T08:00"), "layer:weekly"),
        Shift("alice", z("2026-01-26T08:00"), z("2026-01-27T00:00"), "layer:weekly"),
    ]
    lone = Schedule("s", BERLIN, (layer("d", "alice", "daily", "09:00", "2026-01-01"),))
    assert lone.shifts(z("2026-01-02T00:00"), z("2026-01-05T00:00")) == [
        Shift("alice", z("2026-01-02T00:00"), z("2026-01-05T00:00"), "layer:d")]
    assert lone.shifts(z("2026-01-02T00:00"), z("2026-01-02T00:00")) == []
    # Never the end of a shift: cut at the horizon, a year after the asked instant.
    at = z("2026-03-01T00:00")
    assert lone.shift_at(at) == Shift("alice", z("2026-01-01T08:00"),
                                      at + timedelta(days=366), "layer:d")


def test_aware_datetimes_only() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        WEEKLY.oncall(datetime(2026, 3, 1, 12))
    # Any zone will do: 2026-03-30 09:00 CEST is 03:00 in New York (EDT).
    assert WEEKLY.oncall(datetime(2026, 3, 30, 3, 0, tzinfo=NEW_YORK)) == "alice"
    assert WEEKLY.oncall(datetime(2026, 3, 30, 2, 59, tzinfo=NEW_YORK)) == "carol"


def test_layer_and_override_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="weekly rotation hands off on a weekday"):
        layer("w", "alice", "weekly", "09:00", "2026-01-05")
    with pytest.raises(ValueError, match="daily rotation hands off every day"):
        layer("d", "alice", "daily", "mon 09:00", "2026-01-05")
    with pytest.raises(ValueError, match="at least 1h"):
        layer("e", "alice", timedelta(minutes=30), "09:00", "2026-01-05")
    with pytest.raises(ValueError, match="at least one member"):
        layer("e", "", "daily", "09:00", "2026-01-05")
    with pytest.raises(ValueError, match="end after it starts"):
        Override("dave", z("2026-01-02T00:00"), z("2026-01-01T00:00"))


# -- resolve_target --------------------------------------------------------------------------

def test_resolve_target() -> None:
    people = {k: Person(k.title()) for k in ("alice", "bob", "carol", "dave")}
    teams = {"sre": ("bob", "alice")}
    nights = Schedule("nights", BERLIN, (
        layer("n", "carol", "daily", "00:00", "2026-01-01", window(WEEKDAYS, "22:00", "06:00")),))
    schedules = {"primary": Schedule("primary", BERLIN, WEEKLY.layers, (COVER,)),
                 "nights": nights}
    at = z("2026-03-29T12:00")  # a Sunday; dave's override on primary

    def resolve(to: str, when: datetime = at) -> list[str]:
        return resolve_target(to, when, people, teams, schedules)

    assert resolve("person:carol") == ["carol"]
    assert resolve("team:sre") == ["bob", "alice"]
    assert resolve("schedule:primary") == ["dave"]
    assert resolve("schedule:primary", z("2026-03-24T12:00")) == ["carol"]
    assert resolve("schedule:nights") == []  # Sunday noon: no window
    assert resolve("schedule:nights", z("2026-03-24T22:00")) == ["carol"]  # Tue 23:00 CET
    for bad, message in (("person:zed", 'unknown person "zed"'),
                         ("team:ops", 'unknown team "ops"'),
                         ("schedule:x", 'unknown schedule "x"'),
                         ("chan:#ops", "expected person:NAME")):
        with pytest.raises(ValueError, match=message):
            resolve(bad)


# -- config ----------------------------------------------------------------------------------

CONFIG_YAML = """
people:
  alice: {name: "Alice Doe", email: alice@example.com, phone: "+15550100", slack: U024BE7LH,
          timezone: Europe/Berlin}
  bob: {email: bob@example.com, contacts: {telegram: "@bob"}}
  carol: {}
  dave: {name: Dave}
teams:
  sre: {members: [alice, bob]}
schedules:
  primary:
    timezone: Europe/Berlin
    layers:
      - name: weekly
        rotation: weekly
        handoff: "mon 09:00"
        start: 2026-01-05
        members: [alice, bob, carol]
      - name: business
        rotation: {every: 1d}
        handoff: "09:00"
        start: 2026-01-05
        members: [dave]
        restrictions:
          - {days: [sat, sunday], start: "10:00", end: "14:00"}
    overrides:
      - {person: dave, start: "2026-03-28T18:00:00+01:00", end: 2026-03-30T09:00:00+02:00}
      - {person: bob, start: "2026-04-04T08:00:00", end: "2026-04-04T20:00:00"}
"""


def load(text: str, tmp_path: Path) -> Any:
    return config_from_dict(yaml.safe_load(text), tmp_path, {})


def test_config_builds_people_teams_and_schedules(tmp_path: Path) -> None:
    config = load(CONFIG_YAML, tmp_path)
    assert config.people["alice"] == Person(
        "Alice Doe", {"email": "alice@example.com", "phone": "+15550100", "slack": "U024BE7LH"},
        "Europe/Berlin")
    assert config.people["bob"] == Person("bob", {"email": "bob@example.com",
                                                  "telegram": "@bob"})
    assert config.teams == {"sre": ("alice", "bob")}
    primary = config.schedules["primary"]
    assert primary.timezone == BERLIN
    assert [(x.name, x.rotation, x.handoff, x.handoff_day, x.start) for x in primary.layers] == [
        ("weekly", "weekly", time(9), 0, date(2026, 1, 5)),
        ("business", timedelta(days=1), time(9), None, date(2026, 1, 5)),
    ]
    check(primary, {
        "2026-03-25T12:00": "carol",   # Wednesday: no window for dave
        "2026-03-29T12:00": "dave",    # the override, 14:00 CEST
        # Saturday 2026-04-04: YAML's offset-less override is Berlin time, 08:00-20:00 CEST
        # = 06:00Z-18:00Z; week of Monday 03-30 is k = 12, alice.
        "2026-04-04T05:59": "alice",
        "2026-04-04T06:00": "bob",
        "2026-04-04T17:59": "bob",
        "2026-04-04T18:00": "alice",
        # Sunday 04-05 10:00-14:00 CEST = 08:00Z-12:00Z: dave's window.
        "2026-04-05T07:59": "alice",
        "2026-04-05T08:00": "dave",
        "2026-04-05T12:00": "alice",
    })


def problems(data: Any, tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, tmp_path, {})
    return info.value.problems


def test_config_problems_have_paths(tmp_path: Path) -> None:
    data = yaml.safe_load("""
people:
  alice: {timezone: Mars/Olympus}
  bob: {}
teams:
  sre: {members: [alice, zed]}
  none: {members: []}
schedules:
  primary:
    timezone: Europe/Berln
    layers:
      - {rotation: weekly, handoff: "09:00", start: 2026-01-05, members: [alice, bob, zed]}
      - {rotation: daily, handoff: "mon 09:00", members: []}
      - {name: x, rotation: {every: 30m}, handoff: "25:00", members: [bob]}
      - {name: x, rotation: daily, members: [bob], start: "2026-02-30",
         restrictions: [{days: [mon], start: "09:00", end: 17:00}]}
    overrides:
      - {person: zed, start: "2026-03-28T18:00:00+01:00", end: "2026-03-28T09:00:00+01:00"}
      - {person: bob, start: "2026-03-28T18:00:00", end: tomorrow}
""")
    assert problems(data, tmp_path) == [
        # The schema's, by path:
        "schedules.primary.layers[1].members: needs at least 1 item",
        "schedules.primary.layers[3].restrictions[0].end: invalid time 1020: expected "
        "\"HH:MM\", e.g. \"09:00\"; write it quoted, \"17:00\": unquoted, YAML reads it as "
        "the number 1020",
        "schedules.primary.overrides[1].end: invalid time 'tomorrow': expected RFC 3339, e.g. "
        "2026-03-28T18:00:00+01:00",
        "teams.none.members: needs at least 1 item",
        # Then the builders', section by section:
        'people.alice.timezone: unknown time zone "Mars/Olympus"',
        'teams.sre.members[1]: unknown person "zed"',
        'schedules.primary.timezone: unknown time zone "Europe/Berln"',
        'schedules.primary.layers[0].members[2]: unknown person "zed"',
        'schedules.primary.layers[0].handoff: a weekly rotation hands off on a weekday: '
        '"mon 09:00"',
        'schedules.primary.layers[1].handoff: a daily rotation hands off every day: "09:00", '
        'no weekday',
        "schedules.primary.layers[2].rotation.every: must be at least 1h, got 30m",
        "schedules.primary.layers[2].handoff: invalid handoff '25:00': expected \"HH:MM\" or "
        "\"<weekday> HH:MM\", e.g. \"mon 09:00\"",
        'schedules.primary.layers[3].name: duplicate layer name "x" (also layers[2])',
        "schedules.primary.layers[3].start: invalid date '2026-02-30': day is out of range "
        "for month",
        'schedules.primary.overrides[0].person: unknown person "zed"',
        "schedules.primary.overrides[0].end: must be after start (2026-03-28T18:00:00+01:00)",
    ]


def test_schedule_without_layers_and_outline_defaults(tmp_path: Path) -> None:
    # DESIGN.md's outline: no layer name, no start. Names default to positions; the start to
    # 2000-01-01, a Saturday, so the first Monday handoff is 2000-01-03 09:00 CET.
    config = load("""
people: {alice: {}, bob: {}}
schedules:
  primary: {timezone: Europe/Berlin, layers: [{rotation: weekly, handoff: "mon 09:00",
                                               members: [alice, bob]}]}
  empty: {timezone: UTC}
""", tmp_path)
    primary = config.schedules["primary"]
    assert primary.layers[0].name == "1"
    # 2000-01-03 -> 2026-01-05 is 26 years with 7 leap days (2000, 04, ..., 24):
    # 26*365 + 7 = 9497 days, + 2 (01-03 -> 01-05) = 9499 = 1357 weeks; 1357 is odd: bob.
    assert primary.who(z("2026-01-05T08:00")) == ("bob", "layer:1")
    assert primary.oncall(z("2026-01-05T07:59")) == "alice"
    assert config.schedules["empty"].oncall(z("2026-01-05T08:00")) is None


def test_check_config_reports_an_impossible_unquoted_date_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("people: {a: {}}\nschedules:\n  s:\n    timezone: UTC\n"
                    "    layers: [{rotation: daily, members: [a], start: 2026-02-30}]\n")
    assert check_config(path, environ={}) == [
        "line 5, column 53: invalid YAML: invalid date '2026-02-30': day is out of range for "
        "month"]


def test_cli_oncall(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from baton.cli import main

    path = tmp_path / "baton.yaml"
    path.write_text(CONFIG_YAML)
    # Without an offset --at is the schedule's local time: 14:00 CEST = 12:00Z, dave's cover.
    assert main(["oncall", "primary", "--config", str(path), "--at", "2026-03-29 14:00"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "primary at 2026-03-29 14:00 CEST: dave (Dave) via override",
        "  from 2026-03-28 18:00 CET until 2026-03-30 09:00 CEST",
    ]
    assert main(["oncall", "primary", "--config", str(path), "--json",
                 "--at", "2026-03-25T12:00:00Z"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # carol's week began 03-23 08:00Z; the business layer's Saturday window (10:00 CET =
    # 09:00Z) puts dave on call before the override does.
    assert (doc["person"], doc["name"], doc["contacts"], doc["source"], doc["shift"]) == (
        "carol", "carol", {}, "layer:weekly",
        {"start": "2026-03-23T08:00:00.000Z", "end": "2026-03-28T09:00:00.000Z"})
    assert main(["oncall", "nope", "--config", str(path)]) == 1
    assert 'unknown schedule "nope" (known: primary)' in capsys.readouterr().err
