"""pingdom: importance table, states, unconfirmed down, unknown, tests, timestamps."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from baton.errors import PayloadError
from baton.model import Alert, iso
from baton.sources.pingdom import PingdomSource

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sources" / "pingdom"


def body(case: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / f"{case}.json").read_text())["payload"]
    return copy.deepcopy(payload)


def parse_all(payload: Any, **config: Any) -> list[Alert]:
    return PingdomSource("pingdom", config).parse(payload, {})


def parse(payload: Any, **config: Any) -> Alert:
    (alert,) = parse_all(payload, **config)
    return alert


@pytest.mark.parametrize(("importance", "config", "expected"), [
    ("HIGH", {}, "critical"), ("LOW", {}, "warning"), ("high", {}, "critical"),
    (None, {}, "error"), (None, {"default_severity": "critical"}, "critical"),
    ("MEDIUM", {"default_severity": "info"}, "info")])
def test_importance_table(importance: str | None, config: dict[str, Any],
                          expected: str) -> None:
    payload = body("http-down")
    payload["importance_level"] = importance
    assert parse(payload, **config).severity == expected
    assert PingdomSource.severity_label == "importance_level"


@pytest.mark.parametrize(("state", "status", "condition"), [
    ("UP", "resolved", "normal"), ("SUCCESS", "resolved", "normal"),
    ("DOWN", "firing", "normal"), ("FAILING", "firing", "normal"),
    ("UNKNOWN", "firing", "no_data")])
def test_states(state: str, status: str, condition: str) -> None:
    payload = body("http-down")
    payload["current_state"] = state
    alert = parse(payload)
    assert (alert.status, alert.condition) == (status, condition)
    assert alert.dedup_key == "pingdom:12345"


@pytest.mark.parametrize(("setting", "expected"), [
    (None, [("firing", "warning")]), ("warning", [("firing", "warning")]),
    ("firing", [("firing", "critical")]), ("ignore", [])])
def test_unconfirmed_down_setting(setting: str | None, expected: list[Any]) -> None:
    config = {"unconfirmed_down": setting} if setting else {}
    alerts = parse_all(body("http-unconfirmed-down"), **config)
    assert [(a.status, a.severity) for a in alerts] == expected


def test_unconfirmed_down_never_raises_a_low_default() -> None:
    payload = body("http-unconfirmed-down")
    payload["importance_level"] = None
    assert parse(payload, default_severity="info").severity == "info"


def test_a_test_message_is_a_test_kept_apart_from_the_checks_real_incident() -> None:
    test = parse(body("user-test"))
    real = body("user-test")
    real["long_description"] = "HTTP Server Error 503 Service Unavailable"
    assert test.condition == "test"
    assert test.dedup_key != parse(real).dedup_key == "pingdom:803318"


def test_check_id_as_string_or_number_is_one_key() -> None:
    payload = body("http-down")
    payload["check_id"] = "12345"
    assert parse(payload).dedup_key == parse(body("http-down")).dedup_key


def test_change_time_falls_back_to_the_utc_string() -> None:
    payload = body("http-down")
    del payload["state_changed_timestamp"]
    assert iso(parse(payload).started_at) == "2016-01-01T01:01:01.000Z"
    up = parse(body("http-up"))
    assert (up.started_at, iso(up.ended_at)) == (None, "2016-01-01T01:31:01.000Z")


def test_summary_resource_and_links() -> None:
    down = parse(body("http-down"))
    assert down.summary == "Name of HTTP check is DOWN: Short error message"
    assert down.resource == "https://www.example.com/path"
    assert parse(body("http-up")).summary == "Name of HTTP check is UP"
    tms = parse(body("transaction-failing"))
    assert (tms.resource, tms.links, tms.environment) == ("Checkout flow", (), "production")


@pytest.mark.parametrize("mutate", [
    lambda p: p.update(check_id=None),
    lambda p: p.update(check_id=""),
    lambda p: p.update(current_state="down"),
    lambda p: p.update(tags="example_tag"),
    lambda p: p.update(state_changed_timestamp="soon"),
    lambda p: p.update(state_changed_timestamp=None, state_changed_utc_time="soon"),
    lambda p: p.update(first_probe=[]),
])
def test_bad_shapes_are_payload_errors(mutate: Any) -> None:
    payload = body("http-down")
    mutate(payload)
    with pytest.raises(PayloadError):
        parse(payload)
