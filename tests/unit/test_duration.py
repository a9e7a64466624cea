import pytest

from baton.duration import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("2d", 172800.0),
        ("1w", 604800.0),
        ("1h30m", 5400.0),
        ("1d2h3m4s", 93784.0),
        ("250ms", 0.25),
        ("1m500ms", 60.5),
        ("1.5h", 5400.0),
        ("0s", 0.0),
        (" 5m ", 300.0),
        ("45", 45.0),
        ("2.5", 2.5),
        (30, 30.0),
        (0, 0.0),
        (1.25, 1.25),
    ],
)
def test_parse(text: str | int | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "bad",
    ["", "10x", "m", "-5m", "1h 30m", "1.h", "5mm", "h1", "1e3s", -1, float("inf"),
     True, None, [], "ten minutes"],
)
def test_parse_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(bad)  # type: ignore[arg-type]


def test_error_message_names_value_and_forms() -> None:
    with pytest.raises(ValueError) as info:
        parse_duration("10x")
    assert str(info.value) == (
        "invalid duration '10x': expected seconds or a duration like 30s, 10m, 1h30m, 2d or 250ms")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.25, "250ms"), (30, "30s"), (600, "10m"), (5400, "1h30m"),
     (93784.5, "1d2h3m4s500ms"), (172800, "2d"), (0.0004, "0s")],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0.001, 1, 59.999, 3600, 86399, 1234567.891])
def test_round_trip(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


def test_format_rejects_negative() -> None:
    with pytest.raises(ValueError, match="cannot format duration -1"):
        format_duration(-1)
