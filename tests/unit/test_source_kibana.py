"""Kibana adapter: the shipped template, action groups, severity and test bodies."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from baton import schema
from baton.errors import PayloadError
from baton.model import iso
from baton.sources.kibana import BODY_TEMPLATE, KibanaSource


def _render(values: dict[str, str]) -> Any:
    """What Kibana makes of the template: each variable JSON-escaped, unknown ones empty."""
    return json.loads(re.sub(r"\{\{([^}]+)\}\}",
                             lambda m: json.dumps(values.get(m[1], ""))[1:-1], BODY_TEMPLATE))


BASE = {"rule.id": "r-1", "rule.name": "CPU", "alert.id": "web-1",
        "alert.actionGroup": "metrics.threshold.fired", "date": "2024-06-11T08:15:02.511Z"}


def _one(values: dict[str, str], config: dict[str, Any] | None = None) -> Any:
    [alert] = KibanaSource("kibana", config or {}).parse(_render({**BASE, **values}), {})
    return alert


def test_the_schema_ships_the_template_the_adapter_reads() -> None:
    description = schema.load("sources/kibana.schema.json")["description"]
    assert BODY_TEMPLATE in description
    json.loads(BODY_TEMPLATE)  # the template itself is valid JSON before rendering
    variables = set(re.findall(r"\{\{([^}]+)\}\}", BODY_TEMPLATE))
    assert {"rule.id", "rule.name", "alert.id", "alert.actionGroup", "alert.flapping",
            "context.reason"} <= variables


def test_values_with_quotes_and_newlines_survive() -> None:
    alert = _one({"rule.name": 'say "hi"\\', "context.reason": 'a "b"\nsecond line'})
    assert alert.summary == 'a "b"'
    assert alert.labels["rule_name"] == 'say "hi"\\'


@pytest.mark.parametrize(("group", "status", "condition"), [
    ("metrics.threshold.fired", "firing", "normal"),
    ("query matched", "firing", "normal"),
    ("recovered", "resolved", "normal"),
    ("metrics.threshold.nodata", "firing", "no_data"),
    ("custom_threshold.nodata", "firing", "no_data"),
    ("logs.no_data", "firing", "no_data"),
    ("nodatabase.fired", "firing", "normal"),
])
def test_action_groups(group: str, status: str, condition: str) -> None:
    alert = _one({"alert.actionGroup": group})
    assert (alert.status, alert.condition) == (status, condition)
    assert alert.labels["action_group"] == group


def test_recovered_date_is_the_end() -> None:
    firing = _one({})
    resolved = _one({"alert.actionGroup": "recovered"})
    assert iso(firing.started_at) == "2024-06-11T08:15:02.511Z" and firing.ended_at is None
    assert iso(resolved.ended_at) == "2024-06-11T08:15:02.511Z" and resolved.started_at is None
    assert firing.dedup_key == resolved.dedup_key == "kibana:r-1:web-1"
    assert _one({"date": ""}).started_at is None


@pytest.mark.parametrize(("severity", "group", "expected"), [
    ("critical", "metrics.threshold.fired", "critical"),
    ("high", "query matched", "error"),        # a security rule's severity
    ("medium", "query matched", "warning"),
    ("low", "query matched", "info"),
    ("", "metrics.threshold.warning", "warning"),
    ("", "slo.burnRate.high", "error"),
    ("", "slo.burnRate.low", "info"),
    ("", "metrics.threshold.fired", "warning"),  # the default
    ("sev-x", "metrics.threshold.fired", "warning"),
])
def test_severity(severity: str, group: str, expected: str) -> None:
    body = _render({**BASE, "alert.actionGroup": group})
    body["severity"] = severity
    [alert] = KibanaSource("kibana", {}).parse(body, {})
    assert alert.severity == expected
    assert alert.labels.get("severity") == (severity or None)


def test_default_severity_config_and_label() -> None:
    assert _one({}, {"default_severity": "critical"}).severity == "critical"
    assert KibanaSource.severity_label == "severity"


def test_links_only_for_urls() -> None:
    alert = _one({"rule.url": "https://kb/rule", "context.alertDetailsUrl": "",
                  "context.viewInAppUrl": "/app/metrics", "context.link": "https://kb/discover"})
    assert [(link.text, link.href) for link in alert.links] == [
        ("Rule", "https://kb/rule"), ("Source", "https://kb/discover")]


def test_description_joins_distinct_context_texts() -> None:
    alert = _one({"context.message": "m", "context.reason": "m", "context.conditions": "c",
                  "context.value": "42"})
    assert alert.description == "m\n\nc\n\nValue: 42"
    assert _one({"context.group": "host-2"}).resource == "host-2"


def test_unrendered_template_is_a_test() -> None:
    [alert] = KibanaSource("kibana", {}).parse(json.loads(BODY_TEMPLATE), {})
    assert (alert.condition, alert.dedup_key, alert.labels) == ("test", "kibana:test", {})
    assert alert.started_at is None


def test_a_rule_without_an_alert_object_is_read_as_a_flat_body() -> None:
    [alert] = KibanaSource("kibana", {}).parse({"rule": {"id": "r", "name": "n"}}, {})
    assert (alert.dedup_key, alert.status, alert.name, alert.summary) == (
        "kibana:r", "firing", "n", "n")


@pytest.mark.parametrize(("body", "key", "status"), [
    ({"ruleId": "r1", "id": "web-1", "actionGroup": "recovered"}, "kibana:r1:web-1", "resolved"),
    ({"ruleId": "r1", "id": "web-1", "status": "Recovered"}, "kibana:r1:web-1", "resolved"),
    ({"ruleId": "r1", "id": "web-1", "status": "Alert"}, "kibana:r1:web-1", "firing"),
    ({"rule_name": "Encoded PowerShell", "severity": "high"}, "kibana:name:Encoded PowerShell",
     "firing"),
    ({"rule.id": "r1", "alert.id": "a", "alert.actionGroup": "recovered"}, "kibana:r1:a",
     "resolved"),
    ({"rule": {"name": "n"}, "context": {"reason": "why"}, "alert_id": 7}, "kibana:name:n:7",
     "firing"),
    ({"name": "x" * 300}, "kibana:" + "0" * 64, "firing"),
])
def test_flat_bodies(body: dict[str, Any], key: str, status: str) -> None:
    [alert] = KibanaSource("kibana", {}).parse(body, {})
    assert alert.status == status
    assert alert.dedup_key == key or (key.endswith("0" * 64) and len(alert.dedup_key) == 71)


@pytest.mark.parametrize("body", [
    {"alert": {"id": "a", "actionGroup": "g"}},
    {"id": "a", "actionGroup": "active", "message": "no rule here"},
    {"rule_name": "", "ruleId": "  "},
    {"rule": {"id": "", "name": "n"}, "alert": {"id": "a", "actionGroup": "g"}},
    {"rule": {"id": "r", "name": "n"}, "alert": {"id": "a", "actionGroup": ""}},
    {"rule": {"id": "r", "name": "n"}, "alert": {"id": 5, "actionGroup": "g"}},
    {"rule": {"id": "r", "name": "n"}, "alert": {"id": "a", "actionGroup": "g"},
     "context": {"value": 42}},
    {"rule": {"id": "r", "name": "n"}, "alert": {"id": "a", "actionGroup": "g"}, "date": "now"},
])
def test_bad_shapes_are_payload_errors(body: Any) -> None:
    with pytest.raises(PayloadError):
        KibanaSource("kibana", {}).parse(body, {})
