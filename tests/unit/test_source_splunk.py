"""The Splunk adapter's tables and corners the fixtures leave out: severity words, the
configurable dedup fields and resolve field, result values of every shape, _time."""

from __future__ import annotations

from typing import Any

import pytest

from baton.model import iso
from baton.sources.splunk import SEVERITY_WORDS, SplunkSource


def parse(config: dict[str, Any] | None = None, **result: Any) -> Any:
    body = {"result": result, "sid": "scheduler__admin__search__RMD5_at_1700000100_1",
            "results_link": "https://splunk.example.com/app/search/@go?sid=x",
            "search_name": "Errors by host", "owner": "admin", "app": "search"}
    (alert,) = SplunkSource("splunk", config or {}).parse(body, {})
    return alert


@pytest.mark.parametrize(("word", "severity"), [
    *SEVERITY_WORDS.items(), ("HIGH", "error"), (" Critical ", "critical"), ("", "warning"),
    ("sev1", "warning")])
def test_severity_words(word: str, severity: str) -> None:
    alert = parse(severity=word)
    assert alert.severity == severity
    if word:
        assert alert.labels["severity"] == word, "the original stays for severity_map"


def test_severity_field_and_default_are_configurable() -> None:
    config = {"severity_field": "urgency", "default_severity": "error"}
    alert = parse(config, urgency="low", severity="critical")
    # The label holds the configured field's value: severity_map reads that one.
    assert (alert.severity, alert.labels["severity"], alert.labels["urgency"]) \
        == ("info", "low", "low")
    assert parse(config).severity == "error"
    assert "severity" not in parse(config, severity="critical").labels


def test_without_dedup_fields_one_search_is_one_problem() -> None:
    assert parse(host="a").dedup_key == parse(host="b").dedup_key == "splunk:search/Errors by host"


def test_dedup_fields_tell_problems_apart() -> None:
    config = {"dedup_fields": ["host", "service"]}
    a = parse(config, host="web-1", service="api", count="3")
    assert a.dedup_key == "splunk:search/Errors by host|host=web-1,service=api"
    assert parse(config, host="web-1", service="api", count="9").dedup_key == a.dedup_key
    assert parse(config, host="web-2", service="api").dedup_key != a.dedup_key
    # A missing field counts as empty, so rows without it are one problem.
    assert parse(config, host="web-1").dedup_key \
        == "splunk:search/Errors by host|host=web-1,service="
    assert a.summary == "Errors by host: host=web-1, service=api"


def test_long_keys_become_a_stable_hash() -> None:
    config = {"dedup_fields": ["query"]}
    a = parse(config, query="x" * 300)
    assert a.dedup_key.startswith("splunk:") and len(a.dedup_key) == len("splunk:") + 64
    assert parse(config, query="x" * 300).dedup_key == a.dedup_key
    assert parse(config, query="y" * 300).dedup_key != a.dedup_key


def test_no_status_field_means_always_firing() -> None:
    assert parse(status="ok").status == "firing"


@pytest.mark.parametrize(("value", "status"), [
    ("ok", "resolved"), ("OK", "resolved"), ("Cleared", "resolved"), ("resolved", "resolved"),
    ("firing", "firing"), ("", "firing")])
def test_status_field_resolves(value: str, status: str) -> None:
    alert = parse({"status_field": "status"}, status=value, _time="1700000400")
    assert alert.status == status
    if status == "resolved":
        assert alert.started_at is None and iso(alert.ended_at) == "2023-11-14T22:20:00.000Z"


def test_resolved_values_are_configurable() -> None:
    config = {"status_field": "state", "resolved_values": ["Green"]}
    assert parse(config, state="green").status == "resolved"
    assert parse(config, state="ok").status == "firing"


@pytest.mark.parametrize(("value", "expected"), [
    ("1700000100", "2023-11-14T22:15:00.000Z"), ("1700000100.250", "2023-11-14T22:15:00.250Z"),
    ("2024-03-05T10:15:02.000+01:00", "2024-03-05T09:15:02.000Z"),
    ("Tue Mar 5 10:15:02 2024", None), ("", None)])
def test_time_is_read_or_left_unset(value: str, expected: str | None) -> None:
    assert iso(parse(_time=value).started_at) == expected


def test_result_values_of_every_shape() -> None:
    alert = parse(dest=["a", "b"], n=3, ok=True, obj={"k": 1}, none=None, empty="", _raw="raw")
    assert alert.labels["dest"] == "a,b"
    assert (alert.labels["n"], alert.labels["ok"], alert.labels["obj"]) == ("3", "true", '{"k":1}')
    assert "none" not in alert.labels and "empty" not in alert.labels
    assert "_raw" not in alert.labels and alert.description == "raw"


def test_null_result_and_unnamed_search() -> None:
    body = {"result": None, "sid": "1700000000.42", "search_name": None, "app": None}
    (alert,) = SplunkSource("splunk", {}).parse(body, {})
    assert alert.dedup_key == "splunk:/sid=1700000000.42"
    assert alert.summary == "Splunk search 1700000000.42"
    assert alert.links == () and alert.labels == {"sid": "1700000000.42"}


def test_well_known_fields() -> None:
    alert = parse(host="web-1", service="api", env="prod", component="nginx")
    assert (alert.resource, alert.service, alert.environment, alert.component) \
        == ("web-1", "api", "prod", "nginx")
    assert [(link.href, link.text) for link in alert.links] == [
        ("https://splunk.example.com/app/search/@go?sid=x", "Results")]
