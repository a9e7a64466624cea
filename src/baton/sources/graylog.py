"""Graylog event notifications: the HTTP Notification's fixed JSON body.

Graylog's events have no state: an event definition fires events while its condition holds
and simply stops, so every notification is a firing and none resolves. The event
definition plus the event's key (the values of its group-by fields) identify the problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

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

_FIELDS: dict[str, tuple[str, ...]] = {
    "service": ("service", "application_name", "app"), "component": ("component",),
    "environment": ("environment", "env")}


class GraylogSource(Source):
    """``type: graylog``: config key ``default_severity``."""

    type: ClassVar[str] = "graylog"
    payload_def: ClassVar[str | None] = "payload"
    severity_label: ClassVar[str | None] = "priority"

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        check_payload(f"sources/{self.type}.schema.json", payload, "Graylog notification")
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
            summary=title or message or f"Graylog event definition {definition}",
            source_type=self.type,
            source_name=self.name,
            description=_describe(message, title, body.get("event_definition_description")),
            service=first_text(fields, _FIELDS["service"]),
            component=first_text(fields, _FIELDS["component"]),
            environment=first_text(fields, _FIELDS["environment"]),
            # event.source is the Graylog node that ran the search, not the affected host.
            resource=first_text(fields, ("source", "host", "hostname")),
            labels=labels,
            started_at=parse_time(event.get("timestamp"), "payload.event.timestamp"),
            condition=condition,
        )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def _describe(message: str, title: str, definition: Any) -> str:
    parts = [message] if message and message != title else []
    if isinstance(definition, str) and definition:
        parts.append(definition)
    return "\n\n".join(parts)
