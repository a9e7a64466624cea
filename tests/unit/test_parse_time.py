"""Every timestamp shape the sources meet becomes the same UTC instant."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from baton.errors import PayloadError
from baton.sources._common import parse_time

T = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


@pytest.mark.parametrize("value", [
    1700000000, 1700000000.0, "1700000000", 1700000000000, "1700000000000",
    1700000000000000, 1700000000000000000, "2023-11-14T22:13:20Z", "2023-11-14T22:13:20",
    "2023-11-14 22:13:20", "2023-11-14T23:13:20+01:00", "2023-11-14T17:13:20-0500",
    "2023-11-14T22:13:20.000000000Z"])
def test_shapes_of_one_instant(value: Any) -> None:
    assert parse_time(value, "t") == T


def test_fractions_are_kept_and_nanoseconds_truncated() -> None:
    assert parse_time(1700000000123, "t") == T.replace(microsecond=123000)
    assert parse_time("2023-11-14T22:13:20.123456789Z", "t") == T.replace(microsecond=123456)


@pytest.mark.parametrize("value", [None, "", 0])
def test_unset(value: Any) -> None:
    assert parse_time(value, "t") is None


@pytest.mark.parametrize("value", ["yesterday", -5, True, [1], {}, float("nan"),
                                   float("inf"), "2023-13-01T00:00:00Z", "1e9"])
def test_refused_with_the_path(value: Any) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_time(value, "alerts[0].startsAt")
    assert "alerts[0].startsAt" in str(caught.value)
