"""azure-monitor: severity table, the three kinds of problem identity, health states."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from baton.errors import PayloadError
from baton.model import Alert
from baton.sources.azure_monitor import AzureMonitorSource

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sources" / "azure-monitor"


def body(case: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / f"{case}.json").read_text())["payload"]
    return copy.deepcopy(payload)


def parse(payload: Any, **config: Any) -> Alert:
    (alert,) = AzureMonitorSource("azure", config).parse(payload, {})
    return alert


@pytest.mark.parametrize(("sev", "expected"), [
    ("Sev0", "critical"), ("Sev1", "error"), ("Sev2", "warning"), ("Sev3", "info"),
    ("Sev4", "info")])
def test_severity_table_keeps_the_original_in_the_severity_label(sev: str,
                                                                 expected: str) -> None:
    payload = body("metric-fired")
    payload["data"]["essentials"]["severity"] = sev
    alert = parse(payload)
    assert (alert.severity, alert.labels["severity"]) == (expected, sev)
    assert AzureMonitorSource.severity_label == "severity"


def test_missing_severity_uses_default_severity() -> None:
    payload = body("metric-fired")
    payload["data"]["essentials"]["severity"] = None
    assert parse(payload).severity == "warning"
    assert parse(payload, default_severity="critical").severity == "critical"
    payload["data"]["essentials"]["severity"] = "Sev9"
    with pytest.raises(PayloadError):
        parse(payload)


def test_alert_id_key_ignores_case_and_fired_time_keeps_microseconds() -> None:
    fired, resolved = body("metric-fired"), body("metric-resolved")
    resolved["data"]["essentials"]["alertId"] = resolved["data"]["essentials"]["alertId"].upper()
    a, b = parse(fired), parse(resolved)
    assert a.dedup_key == b.dedup_key
    assert (a.status, b.status) == ("firing", "resolved")
    # 7 fractional digits: truncated to microseconds, never rounded into the next second.
    assert a.started_at is not None and a.started_at.microsecond == 371321
    assert a.ended_at is None and b.ended_at is not None


def test_custom_properties_are_labels_but_azure_fields_win() -> None:
    payload = body("metric-fired")
    payload["data"]["customProperties"] = {"team": "payments", "severity": "low", "n": 3,
                                           "flag": True, "nested": {"a": 1}}
    labels = parse(payload).labels
    assert labels["team"] == "payments" and labels["n"] == "3" and labels["flag"] == "true"
    assert labels["severity"] == "Sev3"
    assert "nested" not in labels


@pytest.mark.parametrize(("stage", "status", "expected"), [
    ("Active", "Active", "firing"), ("Planned", "Active", "firing"),
    ("InProgress", "Active", "firing"), ("Resolved", "Resolved", "resolved"),
    ("RCA", "Active", "resolved"), ("Complete", "Active", "resolved"),
    ("Canceled", "Active", "resolved"), ("Active", "Resolved", "resolved")])
def test_service_health_stage_decides_the_status(stage: str, status: str,
                                                 expected: str) -> None:
    payload = body("service-health-planned")
    payload["data"]["alertContext"]["properties"]["stage"] = stage
    payload["data"]["alertContext"]["status"] = status
    alert = parse(payload)
    assert alert.status == expected
    assert alert.dedup_key == "servicehealth:0DET-URB"


def test_service_health_without_tracking_id_falls_back_to_the_alert_id() -> None:
    payload = body("service-health-planned")
    del payload["data"]["alertContext"]["properties"]["trackingId"]
    assert parse(payload).dedup_key == payload["data"]["essentials"]["alertId"].lower()


@pytest.mark.parametrize(("health", "status", "condition"), [
    ("Unavailable", "firing", "normal"), ("Degraded", "firing", "normal"),
    ("Unknown", "firing", "no_data"), ("Available", "resolved", "normal")])
def test_resource_health_states(health: str, status: str, condition: str) -> None:
    payload = body("resource-health-unavailable")
    payload["data"]["alertContext"]["properties"]["currentHealthStatus"] = health
    # Every health event is a new alert instance; the key must not depend on it.
    payload["data"]["essentials"]["alertId"] += "-next"
    alert = parse(payload)
    assert (alert.status, alert.condition) == (status, condition)
    assert alert.dedup_key == parse(body("resource-health-unavailable")).dedup_key


def test_resource_health_of_another_resource_is_another_problem() -> None:
    payload = body("resource-health-unavailable")
    payload["data"]["essentials"]["alertTargetIDs"] = [
        payload["data"]["essentials"]["alertTargetIDs"][0].replace("web-01", "web-02")]
    assert parse(payload).dedup_key != parse(body("resource-health-unavailable")).dedup_key


def test_links_point_at_the_alert_resource_and_search_results() -> None:
    texts = [link.text for link in parse(body("log-alert-v2")).links]
    assert texts == ["Alert", "Resource", "Search results"]
    links = {link.text: link.href for link in parse(body("service-health-planned")).links}
    assert links["Service Health"] == "https://app.azure.com/h/0DET-URB/bbadb3"


@pytest.mark.parametrize("mutate", [
    lambda p: p.update(schemaId="AzureMonitorMetricAlert"),
    lambda p: p["data"].update(essentials=None),
    lambda p: p["data"]["essentials"].update(alertTargetIDs="x"),
    lambda p: p["data"]["essentials"].update(monitorCondition="Acknowledged"),
    lambda p: p["data"]["essentials"].update(firedDateTime="yesterday"),
    lambda p: p["data"]["essentials"].update(alertId=""),
])
def test_bad_shapes_are_payload_errors(mutate: Any) -> None:
    payload = body("metric-fired")
    mutate(payload)
    with pytest.raises(PayloadError):
        parse(payload)


@pytest.mark.parametrize("all_of", [-1, True, "Percentage CPU", {"metricName": "x"}])
def test_criteria_that_are_not_a_list_are_ignored(all_of: Any) -> None:
    # alertContext is free-form (it varies with the monitoring service): criteria of
    # another shape only cost the description lines and links read from them, as a
    # condition that is not an object does. It was a TypeError (a 500).
    payload = body("metric-fired")
    payload["data"]["alertContext"]["condition"]["allOf"] = all_of
    alert = parse(payload)
    assert alert.dedup_key == parse(body("metric-fired")).dedup_key
    assert "Percentage CPU" not in alert.description
    assert "Search results" not in [link.text for link in alert.links]


def test_resource_health_scoped_to_a_resource_group_tells_its_resources_apart() -> None:
    def vm(name: str) -> dict[str, Any]:
        payload = body("resource-health-unavailable")
        essentials = payload["data"]["essentials"]
        essentials["alertTargetIDs"] = [
            "/subscriptions/bba14129-e895-429b-8809-278e836ecdb3/resourceGroups/web-rg"]
        essentials["configurationItems"] = [name]
        return payload

    one, two = parse(vm("web-01")), parse(vm("web-02"))
    assert one.dedup_key != two.dedup_key
    assert (one.resource, two.resource) == ("web-01", "web-02")
