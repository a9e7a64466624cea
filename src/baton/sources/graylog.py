"""Graylog event notifications: the HTTP Notification's fixed JSON body (Graylog 3.0+), and
the stream alert HTTP Alarm Callback of Graylog 2.x still in service.

Graylog's events have no state: an event definition fires events while its condition holds
and simply stops, so every notification is a firing and none resolves. The event
definition plus the event's key (the values of its group-by fields) identify the problem.
A 2.x stream alert is likewise only ever sent when its condition triggers; the stream and
the alert condition identify the problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ..errors import PayloadError
from ..model import Alert, Condition, Severity
from ..plugin import Source
from ._common import check_payload, first_text, parse_time

# Graylog's priorities (web interface's EventDefinitionPriorityEnum): 1 low, 2 normal
# (medium), 3 high since 3.1; 0 info and 4 critical in recent releases.
PRIORITY_SEVERITY: dict[int, Severity] = {
    0: "info", 1: "info", 2: "warning", 3: "error", 4: "critical"}
PRIORITY_NAMES = {0: "info", 1: "low", 2: "medium", 3: "high", 4: "critical"}

# What the "Execute Test Notification" button sends (Graylog's NotificationTestData).
_TEST_TYPES = frozenset({"test-dummy-v1", "notification-test-v1"})

# What Graylog 2.x's "Test alert callback" sends (DummyAlertCondition, type dummy).
_LEGACY_TEST_DESCRIPTION = "Dummy alert to test notifications"

_FIELDS: dict[str, tuple[str, ...]] = {
    "service": ("service", "application_name", "app"), "component": ("component",),
    "environment": ("environment", "env")}


class GraylogSource(Source):
    """``type: graylog``: config key ``default_severity``."""

    type: ClassVar[str] = "graylog"
    payload_def: ClassVar[str | None] = "payload"
    severity_label: ClassVar[str | None] = "priority"

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        if isinstance(payload, dict) and "check_result" in payload \
                and "event_definition_id" not in payload:
            check_payload(f"sources/{self.type}.schema.json", payload,
                          "Graylog stream alert callback", pointer="legacy")
            return [self._legacy(payload)]
        check_payload(f"sources/{self.type}.schema.json", payload, "Graylog notification",
                      pointer="event")
        return [self._alert(payload)]

    def _alert(self, body: Mapping[str, Any]) -> Alert:
        event: Mapping[str, Any] = body["event"]
        definition: str = body["event_definition_id"]
        event_key = event.get("key") or ""
        test = bool({body.get("event_definition_type"), event.get("event_definition_type")}
                    & _TEST_TYPES)
        key = f"graylog:{definition}" + (f":{event_key}" if event_key else "")
        if test:
            key = "graylog-test:" + key.removeprefix("graylog:")
        condition: Condition = "test" if test else "normal"
        priority = event.get("priority")
        fields = {k: _text(v) for k, v in (event.get("fields") or {}).items()}
        labels = {k: v for k, v in fields.items() if v}
        own = {"event_definition_id": definition,
               "event_definition_type": body.get("event_definition_type") or "",
               "event_id": event.get("id") or "", "key": event_key,
               "priority": "" if priority is None else str(priority),
               "priority_name": PRIORITY_NAMES.get(priority, "")
               if isinstance(priority, int) else "",
               "event_source": event.get("source") or "",
               "backlog": str(len(body.get("backlog") or ()))}
        for name, value in own.items():
            if value:
                labels[name] = value
            else:
                labels.pop(name, None)
        default: Severity = self.config.get("default_severity") or "warning"
        title = body.get("event_definition_title") or ""
        message = event.get("message") or ""
        return Alert(
            dedup_key=key,
            status="firing",
            severity=PRIORITY_SEVERITY.get(priority, default)
            if isinstance(priority, int) else default,
            # The event's message is the definition's title unless the definition has an
            # event summary template (Graylog 5+): then it says what happened.
            summary=message or title or f"Graylog event definition {definition}",
            source_type=self.type,
            source_name=self.name,
            description=_describe(body.get("event_definition_description")),
            service=first_text(fields, _FIELDS["service"]),
            component=first_text(fields, _FIELDS["component"]),
            environment=first_text(fields, _FIELDS["environment"]),
            # event.source is the Graylog node that ran the search, not the affected host.
            resource=first_text(fields, ("source", "host", "hostname")),
            labels=labels,
            started_at=parse_time(event.get("timestamp"), "payload.event.timestamp"),
            condition=condition,
            name=title or None,
        )

    def _legacy(self, body: Mapping[str, Any]) -> Alert:
        result: Mapping[str, Any] = body["check_result"]
        cond: Mapping[str, Any] = result.get("triggered_condition") or {}
        stream: Mapping[str, Any] = body.get("stream") or {}
        stream_id, cond_id = _text(stream.get("id")), _text(cond.get("id"))
        if not (stream_id or cond_id):
            raise PayloadError(
                "payload.check_result.triggered_condition.id: required (or payload.stream.id)",
                ["payload.check_result.triggered_condition.id: required: the alert condition "
                 "(or payload.stream.id, the stream) identifies the problem"])
        description = first_text(result, ("result_description",))
        test = (_text(cond.get("type")).lower() == "dummy"
                or description == _LEGACY_TEST_DESCRIPTION)
        key = f"graylog-test:stream:{stream_id}:{cond_id}" if test \
            else f"graylog:stream:{stream_id}:{cond_id}"
        messages = [m for m in result.get("matching_messages") or () if isinstance(m, dict)]
        sources = {_text(m.get("source")) for m in messages} - {""}
        labels = {k: v for k, v in (
            ("stream", _text(stream.get("title"))), ("stream_id", stream_id),
            ("condition_id", cond_id), ("condition_type", _text(cond.get("type"))),
            ("matching_messages", str(len(messages)))) if v}
        stream_title = first_text(stream, ("title",))
        condition_title = first_text(cond, ("title",))
        lines = [f"Stream: {stream_title}" if stream_title else "",
                 f"Condition: {cond['description']}"
                 if isinstance(cond.get("description"), str) and cond["description"] else ""]
        # A triggered flag of false never comes from Graylog (it calls back only when a
        # condition triggers); a sender that says so means the problem is over.
        resolved = result.get("triggered") is False
        return Alert(
            dedup_key=key,
            status="resolved" if resolved else "firing",
            severity=self.config.get("default_severity") or "warning",
            summary=description or condition_title or stream_title
            or f"Graylog stream alert {stream_id or cond_id}",
            source_type=self.type,
            source_name=self.name,
            description="\n".join(line for line in lines if line),
            resource=sources.pop() if len(sources) == 1 else None,
            labels=labels,
            started_at=None if resolved else parse_time(
                result.get("triggered_at"), "payload.check_result.triggered_at"),
            condition="test" if test else "normal",
            # Conditions have titles since Graylog 2.2; before, the stream names the alert.
            name=condition_title or stream_title,
        )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def _describe(definition: Any) -> str:
    return definition if isinstance(definition, str) else ""
