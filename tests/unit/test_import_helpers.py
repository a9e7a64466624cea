"""The conversions the API importers share: windows, rotations, names, paging links."""

from __future__ import annotations

from datetime import datetime

import pytest

from baton.importers import ImportFailed
from baton.importers._http import duration, follow, key, merge, rotation, span


def test_a_window_within_a_day_or_overnight_is_one_restriction() -> None:
    assert span(0, 9 * 60, 8 * 60) == [{"days": ["mon"], "start": "09:00", "end": "17:00"}]
    assert span(4, 22 * 60, 8 * 60) == [{"days": ["fri"], "start": "22:00", "end": "06:00"}]
    assert span(2, 9 * 60, 1440) == [{"days": ["wed"], "start": "09:00", "end": "09:00"}]


def test_a_window_over_several_days_is_one_per_day() -> None:
    # Friday 18:00 to Monday 08:00, round the end of the week.
    assert merge(span(4, 18 * 60, 2 * 1440 + 14 * 60)) == [
        {"days": ["fri"], "start": "18:00", "end": "00:00"},
        {"days": ["sat", "sun"], "start": "00:00", "end": "00:00"},
        {"days": ["mon"], "start": "00:00", "end": "08:00"}]
    assert span(0, 0, 0) == []


def test_rotations() -> None:
    monday = datetime(2026, 1, 5, 9, 30)
    assert rotation("weekly", 1, monday) == {"start": "2026-01-05", "rotation": "weekly",
                                             "handoff": "mon 09:30"}
    assert rotation("daily", 1, monday)["rotation"] == "daily"
    assert rotation("daily", 3, monday)["rotation"] == {"every": "3d"}
    assert rotation("weekly", 2, monday) == {"start": "2026-01-05",
                                             "rotation": {"every": "14d"}, "handoff": "09:30"}
    assert rotation("hourly", 12, monday)["rotation"] == {"every": "12h"}
    assert rotation("monthly", 1, monday) is None


def test_names_are_valid_and_unique() -> None:
    taken: set[str] = set()
    assert [key(t, taken) for t in ("Prometheus (prod)", "prometheus prod", "__", "é")] == [
        "prometheus-prod", "prometheus-prod-2", "x", "x-2"]
    assert duration(600) == "10m" and duration(5400) == "90m" and duration(7200) == "2h"
    assert duration(45) == "45s" and duration(86400) == "1d"


def test_paging_links_stay_on_the_server() -> None:
    base = "https://oncall.example.com/oncall"
    assert follow("/oncall/api/v1/users/?page=2", base) == \
        "https://oncall.example.com/oncall/api/v1/users/?page=2"
    # A proxy's plain-HTTP link is followed over the base's TLS, not downgraded.
    assert follow("http://oncall.example.com/oncall/api/v1/users/?page=2", base) == \
        "https://oncall.example.com/oncall/api/v1/users/?page=2"
    with pytest.raises(ImportFailed, match="another server"):
        follow("https://evil.example.net/api/v1/users/?page=2", base)
