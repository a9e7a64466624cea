"""gcp-monitoring: severity table, test notifications, states, timestamps, links."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from baton.errors import PayloadError
from baton.model import Alert, iso
from baton.sources.gcp_monitoring import GcpMonitoringSource

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sources" / "gcp-monitoring"


def body(case: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / f"{case}.json").read_text())["payload"]
    return copy.deepcopy(payload)


def parse(payload: Any, **config: Any) -> Alert:
    (alert,) = GcpMonitoringSource("gcp", config).parse(payload, {})
    return alert


@pytest.mark.parametrize(("given", "expected"), [
    ("Critical", "critical"), ("Error", "error"), ("Warning", "warning"),
    ("CRITICAL", "critical"), ("No severity", "info"), ("no severity", "info"),
    (None, "info")])
def test_severity_table(given: str | None, expected: str) -> None:
    payload = body("cloud-run-critical")
    payload["incident"]["severity"] = given
    alert = parse(payload, default_severity="info")
    assert alert.severity == expected
    assert alert.labels.get("severity") == given
    assert GcpMonitoringSource.severity_label == "severity"


def test_default_severity_defaults_to_warning() -> None:
    assert parse(body("v1-1-open")).severity == "warning"


@pytest.mark.parametrize(("version", "summary", "condition"), [
    ("test", "Test Incident", "test"),
    ("test", "anything", "test"),
    ("1.2", "Test Incident", "test"),
    ("1.2", "This is a test notification", "test"),
    ("1.2", "CPU for vm-1 is above the threshold of 0.9 with a value of 0.95.", "normal"),
    ("1.2", "Latest test run failed for vm-1", "normal"),
])
def test_test_notifications(version: str, summary: str, condition: str) -> None:
    payload = body("test-connection")
    payload["version"] = version
    payload["incident"]["summary"] = summary
    assert parse(payload).condition == condition
    assert parse(body("cpu-open")).condition == "normal"


@pytest.mark.parametrize(("state", "status"), [
    ("open", "firing"), ("OPEN", "firing"), ("closed", "resolved"), ("CLOSED", "resolved")])
def test_state_is_case_insensitive(state: str, status: str) -> None:
    payload = body("cpu-closed")
    payload["incident"]["state"] = state
    alert = parse(payload)
    assert alert.status == status
    # ended_at only says when it ended once it has.
    assert (alert.ended_at is not None) == (status == "resolved")


def test_epoch_seconds_and_unset_times() -> None:
    alert = parse(body("cpu-closed"))
    assert (iso(alert.started_at), iso(alert.ended_at)) == (
        "2020-01-01T01:01:01.000Z", "2020-01-01T11:11:11.000Z")
    test = parse(body("test-connection"))
    assert (test.started_at, test.ended_at) == (None, None)


def test_old_numeric_version_and_the_key() -> None:
    payload = body("v1-1-open")
    payload["version"] = 1.1
    alert = parse(payload)
    assert alert.dedup_key == "gcp:f2e08c333dc64cb09f75eaab355393bz"


def test_documentation_links_and_string_documentation() -> None:
    assert [(link.text, link.href) for link in parse(body("cpu-closed")).links][1] == (
        "Playbook", "https://myownpersonaldomain.com/playbook?name=${resource.name}")
    assert parse(body("test-connection")).description == "Test documentation"


def test_user_labels_route_and_google_labels_are_prefixed() -> None:
    alert = parse(body("cloud-run-critical"))
    assert (alert.service, alert.environment) == ("checkout", "prod")
    assert alert.labels["resource_service_name"] == "servicenow-sre-poc"
    assert alert.labels["policy"] == "Cloud Run 5xx Error Rate"


@pytest.mark.parametrize("mutate", [
    lambda p: p.update(incident=None),
    lambda p: p["incident"].update(incident_id=7),
    lambda p: p["incident"].update(started_at="yesterday"),
    lambda p: p["incident"].update(started_at=-5),
    lambda p: p["incident"].update(policy_user_labels=["a"]),
    lambda p: p["incident"].update(documentation=5),
    lambda p: p.update(version=["1.2"]),
])
def test_bad_shapes_are_payload_errors(mutate: Any) -> None:
    payload = body("cpu-open")
    mutate(payload)
    with pytest.raises(PayloadError):
        parse(payload)


@pytest.mark.parametrize(("google", "user", "expected", "label"), [
    (None, "critical", "critical", "critical"), ("No severity", "Error", "error", "Error"),
    ("Warning", "critical", "warning", "Warning"), (None, "P1", "info", "P1"),
    (None, None, "info", None)])
def test_a_user_severity_label_stands_in_for_a_missing_policy_severity(
        google: str | None, user: str | None, expected: str, label: str | None) -> None:
    payload = body("cloud-run-critical")
    payload["incident"]["severity"] = google
    payload["incident"]["policy_user_labels"] = {"severity": user} if user else {}
    alert = parse(payload, default_severity="info")
    assert (alert.severity, alert.labels.get("severity")) == (expected, label)
