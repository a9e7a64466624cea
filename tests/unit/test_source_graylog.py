"""The Graylog adapter's tables and corners the fixtures leave out: priorities, event keys,
test notifications, which field is the affected host."""

from __future__ import annotations

from typing import Any

import pytest

from baton.errors import PayloadError
from baton.model import iso
from baton.sources.graylog import GraylogSource


def parse(config: dict[str, Any] | None = None, top: dict[str, Any] | None = None,
          **event: Any) -> Any:
    body = {"event_definition_id": "65420b968189520c8fe81364",
            "event_definition_type": "aggregation-v1", "event_definition_title": "Errors",
            "event": {"id": "01HE503PM994BYSAWWWEDD5CTZ", "timestamp": "2023-11-01T08:28:18.943Z",
                      "message": "Errors", "source": "graylog-node-1", "key": "",
                      "priority": 2, "fields": {}, **event},
            "backlog": [], **(top or {})}
    (alert,) = GraylogSource("graylog", config or {}).parse(body, {})
    return alert


@pytest.mark.parametrize(("priority", "severity", "name"), [
    (0, "info", "info"), (1, "info", "low"), (2, "warning", "medium"), (3, "error", "high"),
    (4, "critical", "critical"), (7, "warning", None), (None, "warning", None)])
def test_priority_table(priority: Any, severity: str, name: str | None) -> None:
    alert = parse(priority=priority)
    assert alert.severity == severity
    assert alert.labels.get("priority") == (None if priority is None else str(priority))
    assert alert.labels.get("priority_name") == name


def test_default_severity_is_configurable() -> None:
    assert parse({"default_severity": "error"}, priority=None).severity == "error"


def test_every_event_is_firing() -> None:
    assert parse().status == "firing" and parse().ended_at is None


@pytest.mark.parametrize("key", ["", None])
def test_without_group_by_the_definition_is_the_problem(key: Any) -> None:
    assert parse(key=key).dedup_key == "graylog:65420b968189520c8fe81364"


def test_each_group_is_its_own_problem() -> None:
    a, b = parse(key="web-1"), parse(key="web-2")
    assert a.dedup_key == "graylog:65420b968189520c8fe81364:web-1" != b.dedup_key
    other = parse(top={"event_definition_id": "65420b968189520c8fe81365"}, key="web-1")
    assert other.dedup_key != a.dedup_key


@pytest.mark.parametrize("top, event", [
    ({"event_definition_type": "test-dummy-v1"}, {}),
    ({}, {"event_definition_type": "notification-test-v1"})])
def test_test_notifications(top: dict[str, Any], event: dict[str, Any]) -> None:
    alert = parse(top=top, **event)
    assert alert.condition == "test"
    assert alert.dedup_key.startswith("graylog-test:")
    assert parse().condition == "normal"


def test_the_graylog_node_is_not_the_affected_host() -> None:
    assert parse().resource is None
    assert parse().labels["event_source"] == "graylog-node-1"
    assert parse(fields={"source": "bastion-1"}).resource == "bastion-1"
    assert parse(fields={"host": "db-1"}).resource == "db-1"


def test_fields_become_labels_and_known_fields() -> None:
    alert = parse(fields={"service": "api", "env": "prod", "n": 3, "flag": False, "nested": {},
                          "empty": "", "priority": "custom"})
    assert (alert.service, alert.environment) == ("api", "prod")
    assert (alert.labels["n"], alert.labels["flag"]) == ("3", "false")
    assert "nested" not in alert.labels and "empty" not in alert.labels
    assert alert.labels["priority"] == "2", "Graylog's priority wins over a field of that name"


def test_timestamp() -> None:
    assert iso(parse().started_at) == "2023-11-01T08:28:18.943Z"
    assert parse(timestamp=None).started_at is None
    with pytest.raises(PayloadError) as caught:
        parse(timestamp="yesterday")
    assert "payload.event.timestamp" in str(caught.value)


def test_summary_and_description() -> None:
    alert = parse(top={"event_definition_description": "Too many errors"},
                  message="Errors: count()=42")
    # The message says what happened (an event summary template); the title names it.
    assert (alert.name, alert.summary) == ("Errors", "Errors: count()=42")
    assert alert.description == "Too many errors"
    assert alert.title == "Errors: count()=42", "the summary already names the definition"
    assert parse(message="count()=42").title == "Errors: count()=42"
    untitled = parse(top={"event_definition_title": None})
    assert (untitled.name, untitled.summary) == (None, "Errors")
    assert parse().description == ""


def test_backlog_is_counted() -> None:
    assert parse(top={"backlog": [{"message": "a"}, {"message": "b"}]}).labels["backlog"] == "2"


# --- Graylog 2.x stream alerts (HTTP Alarm Callback) --------------------------------------

def legacy(condition: dict[str, Any] | None = None, stream: dict[str, Any] | None = None,
           **result: Any) -> Any:
    body = {"check_result": {
        "result_description": "Stream had 12 messages in the last 1 minutes",
        "triggered_condition": {"id": "c-1", "type": "message_count",
                                "title": "Error burst", **(condition or {})},
        "triggered_at": "2019-03-21T02:05:23.090Z", "triggered": True,
        "matching_messages": [{"source": "web-1"}, {"source": "web-1"}], **result},
        "stream": {"id": "s-1", "title": "nginx", **(stream or {})}}
    (alert,) = GraylogSource("graylog", {}).parse(body, {})
    return alert


def test_legacy_names_the_condition_else_the_stream() -> None:
    alert = legacy()
    assert alert.title == "Error burst: Stream had 12 messages in the last 1 minutes"
    assert (alert.dedup_key, alert.status, alert.severity) == (
        "graylog:stream:s-1:c-1", "firing", "warning")
    assert iso(alert.started_at) == "2019-03-21T02:05:23.090Z"
    assert legacy(condition={"title": None}).name == "nginx"


def test_legacy_resource_is_the_one_source_of_the_messages() -> None:
    assert legacy().resource == "web-1"
    assert legacy(matching_messages=[{"source": "a"}, {"source": "b"}]).resource is None
    assert legacy(matching_messages=None).labels.get("matching_messages") == "0"


def test_legacy_keys_on_whichever_id_there_is() -> None:
    assert legacy(condition={"id": None}).dedup_key == "graylog:stream:s-1:"
    assert legacy(stream={"id": None}).dedup_key == "graylog:stream::c-1"


def test_legacy_triggered_false_resolves_and_dummy_is_a_test() -> None:
    assert legacy(triggered=False).status == "resolved"
    test = legacy(condition={"type": "dummy"})
    assert (test.condition, test.dedup_key) == ("test", "graylog-test:stream:s-1:c-1")
