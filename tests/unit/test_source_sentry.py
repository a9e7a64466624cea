"""The Sentry adapter's tables and corners the fixtures do not show."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from baton.errors import PayloadError
from baton.model import iso
from baton.sources.sentry import LEVELS, SentrySource

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sources" / "sentry"


def fixture(case: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{case}.json").read_text("utf-8"))


def body(case: str) -> Any:
    return copy.deepcopy(fixture(case)["payload"])


def parse(payload: Any, resource: str | None, **config: Any) -> list[Any]:
    headers = {"sentry-hook-resource": resource} if resource else {}
    return SentrySource("s", config).parse(payload, headers)


@pytest.mark.parametrize(("level", "severity"), [
    ("fatal", "critical"), ("error", "error"), ("warning", "warning"), ("info", "info"),
    ("debug", "info"), ("FATAL", "critical"), ("", "error"), (None, "error"),
    ("sample", "error"),
])
def test_event_level_table(level: str | None, severity: str) -> None:
    payload = body("event-alert-triggered")
    payload["data"]["event"]["level"] = level
    alert = parse(payload, "event_alert")[0]
    assert alert.severity == severity
    assert alert.labels.get("level", "") == (level or "")


def test_level_table_is_the_documented_one() -> None:
    assert LEVELS == {"fatal": "critical", "error": "error", "warning": "warning",
                      "info": "info", "debug": "info"}


def test_default_severity_config() -> None:
    payload = body("issue-created")
    payload["data"]["issue"]["level"] = "unknown"
    assert parse(payload, "issue", default_severity="warning")[0].severity == "warning"


@pytest.mark.parametrize(("action", "status", "severity", "state"), [
    ("critical", 20, "critical", "firing"), ("warning", 10, "warning", "firing"),
    ("open", 20, "critical", "firing"), ("open", 10, "warning", "firing"),
    ("open", None, "warning", "firing"), ("resolved", 2, "info", "resolved"),
])
def test_metric_alert_actions(action: str, status: int | None, severity: str,
                              state: str) -> None:
    payload = body("metric-alert-critical")
    payload["action"] = action
    payload["data"]["metric_alert"]["status"] = status
    alert = parse(payload, "metric_alert")[0]
    assert (alert.severity, alert.status) == (severity, state)
    assert alert.dedup_key == "sentry:metric_alert:4"


def test_metric_alert_resolved_carries_date_closed_and_firing_does_not() -> None:
    payload = body("metric-alert-resolved")
    payload["data"]["metric_alert"]["date_closed"] = "2020-09-13T12:46:40.000000Z"
    assert iso(parse(payload, "metric_alert")[0].ended_at) == "2020-09-13T12:46:40.000Z"
    payload["action"] = "warning"
    assert parse(payload, "metric_alert")[0].ended_at is None


def test_issue_alert_and_issue_webhook_share_the_key() -> None:
    fired = parse(body("event-alert-triggered"), "event_alert")[0]
    resolved = parse(body("issue-resolved"), "issue")[0]
    assert fired.dedup_key == resolved.dedup_key == "sentry:issue:1117540176"
    assert resolved.status == "resolved"


def test_numeric_ids_give_the_same_key_as_strings() -> None:
    payload = body("event-alert-triggered")
    payload["data"]["event"]["issue_id"] = 1117540176
    assert parse(payload, "event_alert")[0].dedup_key == "sentry:issue:1117540176"


def test_assignment_by_sentry_is_not_an_acknowledgement() -> None:
    payload = body("issue-assigned")
    payload["actor"] = {"type": "application", "id": "sentry", "name": "Sentry"}
    assert parse(payload, "issue") == []
    payload["actor"] = {"type": "user", "id": 9, "name": "Bob"}
    assert [a.acknowledge for a in parse(payload, "issue")] == [True]


def test_archived_can_be_ignored() -> None:
    assert parse(body("issue-archived"), "issue", archived="ignore") == []
    assert parse(body("issue-archived"), "issue")[0].status == "resolved"
    payload = body("issue-archived")
    payload["action"] = "archived"
    assert parse(payload, "issue")[0].status == "resolved"


def test_unresolved_fires_again_and_unknown_actions_are_dropped() -> None:
    payload = body("issue-created")
    payload["action"] = "unresolved"
    assert parse(payload, "issue")[0].status == "firing"
    payload["action"] = "merged"
    assert parse(payload, "issue") == []


@pytest.mark.parametrize("resource", ["installation", "comment", "seer", "preprod_artifact"])
def test_resources_without_problem_state_open_nothing(resource: str) -> None:
    assert parse({"action": "created", "data": {}}, resource) == []


def test_header_name_is_case_insensitive_and_shape_is_the_fallback() -> None:
    payload = body("metric-alert-critical")
    for headers in ({"SENTRY-HOOK-RESOURCE": "metric_alert"}, {}):
        assert SentrySource("s", {}).parse(copy.deepcopy(payload), headers)[0].dedup_key \
            == "sentry:metric_alert:4"


def test_tags_as_an_object_and_odd_entries() -> None:
    payload = body("event-alert-triggered")
    payload["data"]["event"]["tags"] = {"environment": "staging", "team": "web"}
    alert = parse(payload, "event_alert")[0]
    assert alert.environment == "staging"
    assert alert.labels["tag_team"] == "web"
    payload["data"]["event"]["tags"] = [["a"], ["b", 1], [2, "x"], "c", ["ok", "yes"]]
    assert {k: v for k, v in parse(payload, "event_alert")[0].labels.items()
            if k.startswith("tag_")} == {"tag_ok": "yes"}


def test_epoch_timestamp_when_there_is_no_datetime() -> None:
    payload = body("event-alert-triggered")
    del payload["data"]["event"]["datetime"]
    assert iso(parse(payload, "event_alert")[0].started_at) == "2019-08-19T21:06:17.677Z"


@pytest.mark.parametrize(("resource", "mutate", "named"), [
    ("event_alert", lambda p: p["data"].update(event=[]), "payload.data.event"),
    ("event_alert", lambda p: p["data"]["event"].update(datetime="someday"),
     "payload.data.event.datetime"),
    ("issue", lambda p: p["data"]["issue"].update(id={"x": 1}), "payload.data.issue.id"),
    ("issue", lambda p: p["data"]["issue"].update(userCount="many"),
     "payload.data.issue.userCount"),
    ("metric_alert", lambda p: p["data"]["metric_alert"].update(status=[20]),
     "payload.data.metric_alert.status"),
    ("metric_alert", lambda p: p.pop("data"), "data"),
    ("metric_alert", lambda p: p["data"]["metric_alert"]["alert_rule"].update(projects=-1),
     "payload.data.metric_alert.alert_rule.projects"),
    ("metric_alert", lambda p: p["data"]["metric_alert"]["alert_rule"].update(
        projects="front-end"), "payload.data.metric_alert.alert_rule.projects"),
    ("metric_alert", lambda p: (p["data"]["metric_alert"]["alert_rule"].update(projects=[]),
                                p["data"]["metric_alert"].update(projects={"a": 1})),
     "payload.data.metric_alert.projects"),
])
def test_wrong_shapes_name_the_field(resource: str, mutate: Any, named: str) -> None:
    source = {"event_alert": "event-alert-triggered", "issue": "issue-created",
              "metric_alert": "metric-alert-critical"}[resource]
    payload = body(source)
    mutate(payload)
    with pytest.raises(PayloadError) as caught:
        parse(payload, resource)
    assert any(named in s for s in [str(caught.value), *caught.value.errors])


def test_metric_alert_projects_from_the_rule_or_the_incident() -> None:
    payload = body("metric-alert-critical")
    rule = payload["data"]["metric_alert"]["alert_rule"]
    [alert] = parse(payload, "metric_alert")
    assert alert.service == rule["projects"][0]
    rule["projects"] = None
    payload["data"]["metric_alert"]["projects"] = ["api", 7]
    [alert] = parse(payload, "metric_alert")
    assert (alert.service, alert.labels["projects"]) == ("api", "api")
    del rule["projects"], payload["data"]["metric_alert"]["projects"]
    [alert] = parse(payload, "metric_alert")
    assert alert.service is None and "projects" not in alert.labels


def test_lifecycle_issues_only_follow_incidents_alert_rules_opened() -> None:
    for action in ("created", "unresolved"):
        payload = body("issue-created")
        payload["action"] = action
        assert parse(payload, "issue", issues="lifecycle") == []
        assert parse(payload, "issue")[0].status == "firing"
    assert parse(body("issue-resolved"), "issue", issues="lifecycle")[0].status == "resolved"
    assert parse(body("issue-assigned"), "issue", issues="lifecycle")[0].acknowledge
