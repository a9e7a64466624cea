"""Time intervals: every expectation below was worked out by hand from a calendar
(2026-03-29 and 2026-10-25 are the EU DST changes; Europe/Berlin is UTC+1 in winter, UTC+2
in summer; 2028 is a leap year, 2027 is not)."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from helpers import minimal

from baton.config import config_from_dict, load_config
from baton.errors import ConfigError
from baton.timeinterval import (
    IntervalSpec,
    TimeInterval,
    active,
    is_muted,
    parse_time_intervals,
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def interval(*entries: dict[str, Any], name: str = "t") -> TimeInterval:
    problems: list[str] = []
    built = parse_time_intervals([{"name": name, "time_intervals": list(entries)}],
                                 lambda path, message: problems.append(f"{path}: {message}"))
    assert problems == []
    return built[name]


BUSINESS = interval({"times": [{"start_time": "09:00", "end_time": "17:00"}],
                     "weekdays": ["monday:friday"], "location": "Europe/Berlin"})


@pytest.mark.parametrize(("at", "inside"), [
    # Friday before the change, CET (UTC+1): 09:00 local is 08:00Z.
    ("2026-03-27T07:59:59", False),
    ("2026-03-27T08:00:00", True),
    ("2026-03-27T15:59:59", True),
    ("2026-03-27T16:00:00", False),  # 17:00 local: the end is excluded
    ("2026-03-28T10:00:00", False),  # Saturday
    # Monday after the change, CEST (UTC+2): 09:00 local is 07:00Z.
    ("2026-03-30T06:59:59", False),
    ("2026-03-30T07:00:00", True),  # 08:00 in winter time: outside if the offset were stale
    ("2026-03-30T14:59:59", True),
    ("2026-03-30T15:00:00", False),  # 16:00 in winter time: inside if the offset were stale
])
def test_business_hours_in_berlin_across_the_dst_change(at: str, inside: bool) -> None:
    assert BUSINESS.contains(utc(at)) is inside


def test_the_same_instant_in_another_offset_gives_the_same_answer() -> None:
    at = datetime(2026, 3, 30, 3, 0, tzinfo=timezone(timedelta(hours=-4)))  # 07:00Z
    assert BUSINESS.contains(at)


def test_weekday_is_the_local_one() -> None:
    monday_berlin = interval({"weekdays": ["Monday"], "location": "Europe/Berlin"})
    assert monday_berlin.contains(utc("2026-03-29T22:30:00"))  # Sunday in UTC, Mon 00:30 CEST
    assert not monday_berlin.contains(utc("2026-03-29T21:59:59"))  # Sun 23:59:59 CEST
    monday_utc = interval({"weekdays": ["monday"]})
    assert not monday_utc.contains(utc("2026-03-29T22:30:00"))


def test_hours_the_clock_skips_or_repeats() -> None:
    two_to_three = interval({"times": [{"start_time": "02:00", "end_time": "03:00"}],
                             "location": "Europe/Berlin"})
    assert two_to_three.contains(utc("2026-03-28T01:30:00"))  # 02:30 CET the day before
    # 2026-03-29: 01:59:59 CET is followed by 03:00:00 CEST.
    assert not two_to_three.contains(utc("2026-03-29T00:59:59"))
    assert not two_to_three.contains(utc("2026-03-29T01:00:00"))
    # 2026-10-25: 02:00-03:00 happens twice, first in CEST then in CET.
    assert two_to_three.contains(utc("2026-10-25T00:30:00"))
    assert two_to_three.contains(utc("2026-10-25T01:30:00"))
    assert not two_to_three.contains(utc("2026-10-25T02:00:00"))  # 03:00 CET


def test_end_of_day_24_00() -> None:
    evening = interval({"times": [{"start_time": "17:00", "end_time": "24:00"}]})
    assert not evening.contains(utc("2026-06-01T16:59:59"))
    assert evening.contains(utc("2026-06-01T17:00:00"))
    assert evening.contains(utc("2026-06-01T23:59:59"))
    assert not evening.contains(utc("2026-06-02T00:00:00"))


@pytest.mark.parametrize(("days", "at", "inside"), [
    (["-1"], "2028-02-29T12:00:00", True),  # leap year: the 29th is the last day
    (["-1"], "2028-02-28T12:00:00", False),
    (["-1"], "2027-02-28T12:00:00", True),  # not a leap year: the 28th is
    (["-1"], "2027-02-27T12:00:00", False),
    (["-1"], "2027-03-01T00:00:00", False),
    ([-1], "2026-01-31T23:59:59", True),  # an integer, as YAML reads an unquoted -1
    (["-7:-1"], "2027-02-22T00:00:00", True),  # 28 - 7 + 1
    (["-7:-1"], "2027-02-21T23:59:59", False),
    (["29:31"], "2027-02-28T12:00:00", False),  # past the end of February: nothing
    (["29:31"], "2028-02-29T12:00:00", True),
    (["25:-7"], "2027-01-25T12:00:00", True),  # -7 of January is the 25th
    (["25:-7"], "2027-01-26T12:00:00", False),
    (["25:-7"], "2027-02-25T12:00:00", False),  # -7 of February 2027 is the 22nd
    (["1:7", "-1"], "2026-04-07T12:00:00", True),
    (["1:7", "-1"], "2026-04-08T12:00:00", False),
    (["1:7", "-1"], "2026-04-30T12:00:00", True),
])
def test_days_of_month(days: list[Any], at: str, inside: bool) -> None:
    assert interval({"days_of_month": days}).contains(utc(at)) is inside


@pytest.mark.parametrize(("at", "inside"), [
    ("2025-12-31T23:59:59", False),  # December, but 2025
    ("2026-01-01T00:00:00", True),
    ("2026-03-31T23:59:59", True),
    ("2026-04-01T00:00:00", False),
    ("2026-11-30T23:59:59", False),
    ("2026-12-15T12:00:00", True),
    ("2027-12-31T23:59:59", True),
    ("2028-01-01T00:00:00", False),  # January, but 2028
])
def test_months_and_years(at: str, inside: bool) -> None:
    quarter = interval({"months": ["january:march", "12"], "years": ["2026:2027"]})
    assert quarter.contains(utc(at)) is inside


def test_location_decides_the_year_and_month() -> None:
    new_year = interval({"years": [2026], "months": ["JANUARY"], "location": "Europe/Berlin"})
    assert new_year.contains(utc("2025-12-31T23:30:00"))  # 00:30 on 1 January in Berlin
    assert not new_year.contains(utc("2025-12-31T22:59:59"))


def test_entries_are_ored_and_fields_anded() -> None:
    off_hours = interval({"weekdays": ["saturday", "sunday"]},
                         {"times": [{"start_time": "00:00", "end_time": "09:00"}]})
    assert off_hours.contains(utc("2026-03-28T12:00:00"))  # Saturday, any time
    assert off_hours.contains(utc("2026-03-30T08:00:00"))  # Monday, early
    assert not off_hours.contains(utc("2026-03-30T10:00:00"))  # Monday, later
    monday_mornings = interval({"weekdays": ["monday"],
                                "times": [{"start_time": "09:00", "end_time": "12:00"}]})
    assert monday_mornings.contains(utc("2026-03-30T10:00:00"))
    assert not monday_mornings.contains(utc("2026-03-30T13:00:00"))  # Monday, afternoon
    assert not monday_mornings.contains(utc("2026-03-31T10:00:00"))  # Tuesday, morning
    midweek = interval({"weekdays": ["monday", "wednesday:thursday"]})
    assert [midweek.contains(utc(f"2026-03-{d}T12:00:00")) for d in range(30, 32)] == [
        True, False]
    assert midweek.contains(utc("2026-04-02T12:00:00"))  # Thursday
    assert not midweek.contains(utc("2026-04-03T12:00:00"))  # Friday


def test_empty_interval_and_empty_entry() -> None:
    at = utc("2026-03-30T10:00:00")
    assert not TimeInterval("never").contains(at)
    assert TimeInterval("always", (IntervalSpec(),)).contains(at)
    assert IntervalSpec(location="Local").contains(at)  # the machine's zone, whichever it is
    assert interval({"weekdays": []}).contains(at)  # an empty field allows anything


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        BUSINESS.contains(datetime(2026, 3, 30, 10, 0))


def test_active_and_is_muted() -> None:
    intervals = {"offhours": interval({"weekdays": ["saturday", "sunday"]}, name="offhours"),
                 "business-hours": BUSINESS,
                 "holidays": interval({"days_of_month": ["25"], "months": ["12"]},
                                      name="holidays")}
    saturday, monday_10, monday_20 = (utc("2026-03-28T10:00:00"), utc("2026-03-30T08:00:00"),
                                      utc("2026-03-30T18:00:00"))
    assert active(["offhours"], intervals, saturday)
    assert not active(["offhours"], intervals, monday_10)
    assert not active(["missing"], intervals, saturday)

    assert is_muted([], [], intervals, saturday) is None
    assert is_muted(["offhours"], [], intervals, saturday) == 'mute_time_intervals "offhours"'
    assert is_muted(["holidays", "offhours"], [], intervals, saturday) \
        == 'mute_time_intervals "offhours"'
    assert is_muted(["offhours"], [], intervals, monday_10) is None
    assert is_muted([], ["business-hours"], intervals, monday_10) is None
    assert is_muted([], ["business-hours"], intervals, monday_20) \
        == 'outside active_time_intervals "business-hours"'
    assert is_muted([], ["business-hours", "offhours"], intervals, saturday) is None
    assert is_muted([], ["business-hours", "holidays"], intervals, monday_20) \
        == 'outside active_time_intervals "business-hours", "holidays"'
    # Muting wins when a moment is in both.
    assert is_muted(["offhours"], ["offhours"], intervals, saturday) \
        == 'mute_time_intervals "offhours"'


# --- config ----------------------------------------------------------------------------------



def problems_of(data: dict[str, Any], tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, tmp_path, {})
    return info.value.problems


def test_config_builds_intervals_by_name(tmp_path: Path) -> None:
    data = minimal(time_intervals=[
        {"name": "business-hours", "time_intervals": [
            {"times": [{"start_time": "09:00", "end_time": "17:00"}],
             "weekdays": ["monday:friday"], "location": "Europe/Berlin"}]},
        {"name": "nothing"}])
    data["routes"] = [{"policy": "p", "active_time_intervals": ["business-hours"]}]
    config = config_from_dict(data, tmp_path, {})
    assert config.time_intervals == {
        "business-hours": TimeInterval("business-hours", (IntervalSpec(
            times=((540, 1020),), weekdays=((2, 6),), location="Europe/Berlin"),)),
        "nothing": TimeInterval("nothing"),
    }
    mapped = config_from_dict(minimal(time_intervals={"weekends": [{"weekdays": ["sunday"]}]}),
                              tmp_path, {})
    assert mapped.time_intervals == {
        "weekends": TimeInterval("weekends", (IntervalSpec(weekdays=((1, 1),)),))}


def test_unquoted_yaml_times_and_ranges_mean_what_was_written(tmp_path: Path) -> None:
    # YAML 1.1 reads 17:00 as 1020 and 1:7 as 67; Alertmanager reads them as text.
    path = tmp_path / "baton.yaml"
    path.write_text("""
sources: {am: {type: alertmanager, auth: {type: none}}}
connectors: {hook: {type: webhook, url: "http://127.0.0.1:9/x"}}
policies: {p: {levels: [{notify: [hook]}]}}
routes: [{policy: p, mute_time_intervals: [first-week]}]
time_intervals:
  - name: first-week
    time_intervals:
      - times: [{start_time: 9:30, end_time: 17:00}]
        days_of_month: [1:7]
        months: [1:3]
        years: [2026]
""")
    spec = load_config(path).time_intervals["first-week"].entries[0]
    assert (spec.times, spec.days_of_month, spec.months, spec.years) == (
        ((570, 1020),), ((1, 7),), ((1, 3),), ((2026, 2026),))


def test_config_problems_with_paths(tmp_path: Path) -> None:
    data = minimal(time_intervals=[
        {"name": "a", "time_intervals": [
            {"weekdays": ["monday", "mondai", "saturday:sunday", "friday:fridai"],
             "times": [{"start_time": "17:00", "end_time": "09:00"},
                       {"start_time": "09:00", "end_time": "09:00"},
                       {"start_time": "9", "end_time": "25:00"},
                       {"start_time": "08:00"},
                       {"start_time": "00:00", "end_time": "24:30"}]},
            {"days_of_month": ["0", 32, "5:3", "-1:5", "1:-1", "+2"],
             "months": ["13", "december:january", "may"],
             "years": ["2027:2026", "0", "-2026"],
             "location": "Mars/Olympus_Mons"},
            {"weekday": ["monday"]}]},
        {"name": "a"},
    ])
    data["routes"] = [{"policy": "p", "mute_time_intervals": ["a"]},
                      {"policy": "p", "mute_time_intervals": ["offhours"],
                       "active_time_intervals": ["a", "b"]}]
    entry = "time_intervals[0].time_intervals"
    assert problems_of(data, tmp_path) == [
        f"{entry}[0].times[3]: 'end_time' is a required property",
        f'{entry}[2].weekday: unknown key (did you mean "weekdays"?)',
        'routes[1].mute_time_intervals[0]: unknown time interval "offhours"',
        'routes[1].active_time_intervals[1]: unknown time interval "b"',
        'time_intervals[1].name: duplicate time interval name "a" (also time_intervals[0])',
        f'{entry}[0].weekdays[1]: invalid weekday "mondai" '
        '(expected a day name like "monday" or a range like "monday:friday")',
        f'{entry}[0].weekdays[2]: range "saturday:sunday" contains no weekday; weeks run '
        "sunday to saturday, so list the days of a range that wraps",
        f'{entry}[0].weekdays[3]: invalid weekday "fridai" '
        '(expected a day name like "monday" or a range like "monday:friday")',
        f"{entry}[0].times[0]: start_time 17:00 is not before end_time 09:00; split a range "
        "past midnight in two: 17:00-24:00 and 00:00-09:00",
        f"{entry}[0].times[1]: start_time 09:00 is not before end_time 09:00",
        f'{entry}[0].times[2].start_time: invalid time "9" (expected HH:MM from 00:00 to 24:00)',
        f'{entry}[0].times[2].end_time: invalid time "25:00" '
        "(expected HH:MM from 00:00 to 24:00)",
        f'{entry}[0].times[4].end_time: invalid time "24:30" '
        "(expected HH:MM from 00:00 to 24:00)",
        f'{entry}[1].days_of_month[0]: invalid day of month "0" '
        '(expected 1 to 31, -31 to -1 (from the end), or a range like "1:7")',
        f'{entry}[1].days_of_month[1]: invalid day of month "32" '
        '(expected 1 to 31, -31 to -1 (from the end), or a range like "1:7")',
        f'{entry}[1].days_of_month[2]: range "5:3" contains no day of month',
        f'{entry}[1].days_of_month[3]: range "-1:5" contains no day of month',
        f'{entry}[1].months[0]: invalid month "13" '
        '(expected a name like "march", 1 to 12, or a range like "january:march")',
        f'{entry}[1].months[1]: range "december:january" contains no month; split a range '
        "over the new year in two",
        f'{entry}[1].years[0]: range "2027:2026" contains no year',
        f'{entry}[1].years[1]: invalid year "0" '
        '(expected a year like 2026 or a range like "2026:2027")',
        f'{entry}[1].years[2]: invalid year "-2026" '
        '(expected a year like 2026 or a range like "2026:2027")',
        f'{entry}[1].location: unknown time zone "Mars/Olympus_Mons" '
        '(expected an IANA name like "Europe/Berlin", "UTC" or "Local")',
    ]


def test_broken_entries_are_left_out_when_parsed_directly() -> None:
    problems: list[str] = []
    built = parse_time_intervals(
        {"x": [{"weekdays": ["mondai"]}, {"weekdays": ["monday"]}]},
        lambda path, message: problems.append(path))
    assert problems == ["time_intervals.x[0].weekdays[0]"]
    # Not a Monday-or-any-day interval: the broken entry is gone, not widened.
    assert built["x"].entries == (IntervalSpec(weekdays=((2, 2),)),)
