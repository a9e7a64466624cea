"""The New Relic adapter's tables and corners the fixtures leave out: priorities, states and
acknowledgements, the issue id's spellings, timestamps."""

from __future__ import annotations

from typing import Any

import pytest

from baton.errors import PayloadError
from baton.model import iso
from baton.sources.newrelic import NewRelicSource


def parse(config: dict[str, Any] | None = None, **fields: Any) -> Any:
    body = {"id": "c5faa7e6-7b54-402d-af79-f99601e0278c", "title": "Disk full",
            "priority": "HIGH", "state": "ACTIVATED", "createdAt": 1713755131352,
            "updatedAt": 1713769708699, **fields}
    (alert,) = NewRelicSource("nr", config or {}).parse(body, {})
    return alert


@pytest.mark.parametrize(("priority", "severity"), [
    ("CRITICAL", "critical"), ("HIGH", "error"), ("MEDIUM", "warning"), ("LOW", "info"),
    ("critical", "critical"), ("", "warning"), (None, "warning"), ("URGENT", "warning")])
def test_priority_table(priority: Any, severity: str) -> None:
    alert = parse(priority=priority)
    assert alert.severity == severity
    if priority:
        assert alert.labels["priority"] == priority


def test_default_severity_is_configurable() -> None:
    assert parse({"default_severity": "error"}, priority=None).severity == "error"


@pytest.mark.parametrize(("state", "status", "acknowledge"), [
    ("CREATED", "firing", False), ("ACTIVATED", "firing", False),
    ("ACKNOWLEDGED", "firing", True), ("CLOSED", "resolved", False),
    ("DEACTIVATED", "resolved", False)])
def test_states(state: str, status: str, acknowledge: bool) -> None:
    alert = parse(state=state)
    assert (alert.status, alert.acknowledge) == (status, acknowledge)
    assert alert.dedup_key == "newrelic:c5faa7e6-7b54-402d-af79-f99601e0278c"


def test_acknowledged_by_from_the_template_extras_acknowledges() -> None:
    assert parse(acknowledgedBy="jane@example.com").acknowledge
    assert parse(acknowledgedAt=1713769801000).acknowledge
    assert not parse(acknowledgedBy=None, acknowledgedAt=None).acknowledge
    # A closed issue was acknowledged once; its close must still resolve, not acknowledge.
    closed = parse(state="CLOSED", acknowledgedBy="jane@example.com")
    assert (closed.status, closed.acknowledge) == ("resolved", False)


def test_issue_id_spellings() -> None:
    body = {"issueId": "c5faa7e6-7b54-402d-af79-f99601e0278c", "state": "ACTIVATED"}
    (alert,) = NewRelicSource("nr", {}).parse(body, {})
    assert alert.dedup_key == parse().dedup_key
    assert parse(id=12345).dedup_key == "newrelic:12345"
    for empty in ({"id": ""}, {"id": None}):
        with pytest.raises(PayloadError) as caught:
            parse(**empty)
        assert "payload.id" in str(caught.value)


def test_closed_at_is_preferred_over_updated_at() -> None:
    assert iso(parse(state="CLOSED").ended_at) == "2024-04-22T07:08:28.699Z"
    assert iso(parse(state="CLOSED", closedAt=1713769000000).ended_at) \
        == "2024-04-22T06:56:40.000Z"
    assert parse().ended_at is None
    assert iso(parse().started_at) == "2024-04-22T03:05:31.352Z"


def test_bad_timestamps_name_the_field() -> None:
    with pytest.raises(PayloadError) as caught:
        parse(createdAt="yesterday")
    assert "payload.createdAt" in str(caught.value)


def test_entities_and_summary_fallbacks() -> None:
    assert parse(impactedEntities=["db-1"]).resource == "db-1"
    assert parse(impactedEntities=["db-1", "db-2"]).resource is None
    assert parse(impactedEntities=None).resource is None
    assert parse(title=None, alertConditionNames=["High CPU"]).summary == "High CPU"
    assert parse(title="").summary == "New Relic issue c5faa7e6-7b54-402d-af79-f99601e0278c"


def test_list_labels_skip_nulls() -> None:
    alert = parse(alertPolicyNames=["Golden Signals", None, ""], sources=[])
    assert alert.labels["policy"] == "Golden Signals" and "sources" not in alert.labels


def test_links() -> None:
    alert = parse(issueUrl="https://radar-api.service.newrelic.com/accounts/1/issues/x",
                  violationChartUrl=None, runbookUrl="https://wiki.example.com/rb")
    assert [(link.href, link.text) for link in alert.links] == [
        ("https://radar-api.service.newrelic.com/accounts/1/issues/x", "Issue"),
        ("https://wiki.example.com/rb", "Runbook")]


# --- the legacy Alerts webhook channel ----------------------------------------------------

def legacy(config: dict[str, Any] | None = None, **fields: Any) -> Any:
    body = {"incident_id": 1234, "account_id": 2941966, "current_state": "open",
            "condition_name": "Server Down", "policy_name": "Web", "severity": "CRITICAL",
            "details": "Host unreachable for 5 minutes", "timestamp": 1605133931151, **fields}
    (alert,) = NewRelicSource("nr", config or {}).parse(body, {})
    return alert


@pytest.mark.parametrize(("word", "severity"), [
    ("CRITICAL", "critical"), ("WARNING", "warning"), ("WARN", "warning"), ("INFO", "info"),
    ("critical", "critical"), ("", "warning"), ("BAD", "warning")])
def test_legacy_severity_table_and_label(word: str, severity: str) -> None:
    alert = legacy(severity=word)
    assert alert.severity == severity
    assert alert.labels.get("priority") == (word or None), "where severity_map looks"


@pytest.mark.parametrize(("state", "status", "ack"), [
    ("open", "firing", False), ("OPEN", "firing", False), ("acknowledged", "firing", True),
    ("ACKNOWLEDGED", "firing", True), ("closed", "resolved", False),
    (" Closed ", "resolved", False)])
def test_legacy_states(state: str, status: str, ack: bool) -> None:
    alert = legacy(current_state=state)
    assert (alert.status, alert.acknowledge, alert.condition) == (status, ack, "normal")
    assert alert.dedup_key == "newrelic:incident:2941966:1234"
    if status == "resolved":
        assert (alert.started_at, iso(alert.ended_at)) == (None, "2020-11-11T22:32:11.151Z")


def test_legacy_title_names_the_condition_and_falls_back_to_the_policy() -> None:
    assert legacy().title == "Server Down: Host unreachable for 5 minutes"
    assert legacy(condition_name=None).name == "Web"
    assert legacy(details=None).title == "Server Down"


def test_legacy_targets() -> None:
    one = legacy(targets=[{"id": "1", "name": "web-1", "labels": {}}])
    assert (one.resource, one.labels["targets"]) == ("web-1", "web-1")
    two = legacy(targets=[{"name": "web-1"}, {"name": "web-2"}, None, {"name": ""}])
    assert (two.resource, two.labels["targets"]) == (None, "web-1, web-2")


def test_legacy_test_notifications_are_tests() -> None:
    assert legacy(incident_id=0).condition == "test"
    assert legacy(current_state="test").dedup_key == "newrelic-test:incident:2941966:1234"
    assert legacy(event_type="NOTIFICATION").condition == "test"


def test_a_workflow_body_is_not_mistaken_for_a_legacy_one() -> None:
    # A workflow template that adds condition_name still has state: the workflow format.
    alert = parse(condition_name="extra")
    assert alert.dedup_key == "newrelic:c5faa7e6-7b54-402d-af79-f99601e0278c"
