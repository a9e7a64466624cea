"""New Relic alert notifications: a workflow's webhook with its default template, and the
legacy "Alerts" webhook notification channel that accounts not yet moved to workflows
still send.

Workflows: a New Relic issue groups the incidents of one problem and keeps its id from
creation to close, so the issue id is the dedup key. The default template renders the id
as ``id`` (``{{ json issueId }}``); a template that names it ``issueId`` works too.

Legacy channel: one body per incident event (``current_state`` open, acknowledged,
closed), keyed by the incident id, which New Relic keeps from open to close.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ..errors import PayloadError
from ..model import Alert, Link, Severity
from ..plugin import Source
from ._common import check_payload, first_text, parse_time, quote

PRIORITY_SEVERITY: dict[str, Severity] = {
    "CRITICAL": "critical", "HIGH": "error", "MEDIUM": "warning", "LOW": "info"}

_RESOLVED = frozenset({"CLOSED", "DEACTIVATED"})

# (payload key, label) for the lists and scalars worth matching on.
_LIST_LABELS = (("alertPolicyNames", "policy"), ("alertConditionNames", "condition"),
                ("impactedEntities", "entities"), ("sources", "sources"))
_SCALAR_LABELS = (("state", "state"), ("trigger", "trigger"), ("workflowName", "workflow"),
                  ("totalIncidents", "total_incidents"), ("isCorrelated", "correlated"),
                  ("acknowledgedBy", "acknowledged_by"))
_LINKS = (("issueUrl", "Issue"), ("violationChartUrl", "Chart"), ("runbookUrl", "Runbook"))

# The legacy channel's severity ($SEVERITY): CRITICAL, WARNING, INFO (WARN in the
# channel's own documentation example).
LEGACY_SEVERITY: dict[str, Severity] = {
    "CRITICAL": "critical", "WARNING": "warning", "WARN": "warning", "INFO": "info"}
_LEGACY_STATES = frozenset({"open", "acknowledged", "closed", "test"})
_LEGACY_LABELS = (("current_state", "state"), ("event_type", "event_type"),
                  ("account_id", "account_id"), ("account_name", "account"),
                  ("policy_name", "policy"), ("condition_id", "condition_id"),
                  ("condition_name", "condition"), ("owner", "acknowledged_by"),
                  ("duration", "duration"))
_LEGACY_TEXT = (("condition_description", "Condition description"),
                ("policy_name", "Policy"), ("condition_name", "Condition"))
_LEGACY_LINKS = (("incident_url", "Incident"), ("violation_chart_url", "Chart"),
                 ("runbook_url", "Runbook"))


class NewRelicSource(Source):
    """``type: newrelic``: config key ``default_severity``."""

    type: ClassVar[str] = "newrelic"
    payload_def: ClassVar[str | None] = "payload"
    severity_label: ClassVar[str | None] = "priority"

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        if _is_legacy(payload):
            check_payload(f"sources/{self.type}.schema.json", payload,
                          "New Relic legacy webhook", pointer="legacy")
            return [self._legacy(payload)]
        check_payload(f"sources/{self.type}.schema.json", payload, "New Relic webhook",
                      pointer="workflow")
        issue = payload.get("id") or payload.get("issueId")
        if issue is None or issue == "":
            raise PayloadError("payload.id: required (the issue id)",
                               ["payload.id: required: put \"id\": {{ json issueId }} in the "
                                "workflow's payload template"])
        return [self._alert(payload, str(issue))]

    def _alert(self, body: Mapping[str, Any], issue: str) -> Alert:
        state: str = body["state"]
        resolved = state in _RESOLVED
        priority = body.get("priority") or ""
        labels = {"issue_id": issue}
        if priority:
            labels["priority"] = priority
        for key, label in _SCALAR_LABELS:
            value = _scalar(body.get(key))
            if value:
                labels[label] = value
        for key, label in _LIST_LABELS:
            values = [v for v in body.get(key) or () if v]
            if values:
                labels[label] = ", ".join(values)
        conditions = [c for c in body.get("alertConditionNames") or () if c]
        policies = [p for p in body.get("alertPolicyNames") or () if p]
        entities = body.get("impactedEntities") or []
        default: Severity = self.config.get("default_severity") or "warning"
        created = parse_time(body.get("createdAt"), "payload.createdAt")
        ended = None
        if resolved:
            # closedAt only comes with a template that asks for it; the CLOSED
            # notification's updatedAt is the moment of closing otherwise.
            key = "closedAt" if body.get("closedAt") else "updatedAt"
            ended = parse_time(body.get(key), f"payload.{key}")
        return Alert(
            dedup_key=f"newrelic:{issue}",
            status="resolved" if resolved else "firing",
            severity=PRIORITY_SEVERITY.get(priority.upper(), default),
            summary=body.get("title") or (conditions[0] if conditions else "")
            or f"New Relic issue {issue}",
            source_type=self.type,
            source_name=self.name,
            description=_describe(body),
            # Only a single impacted entity names "the" resource; several stay in labels.
            resource=entities[0] if len(entities) == 1 else None,
            labels=labels,
            links=tuple(Link(body[key], text) for key, text in _LINKS
                        if isinstance(body.get(key), str) and body[key]),
            started_at=created,
            ended_at=ended,
            # New Relic sends ACKNOWLEDGED, or an acknowledgedBy/acknowledgedAt value when
            # the template asks for them: someone took the issue on New Relic's side.
            acknowledge=not resolved and (state == "ACKNOWLEDGED" or bool(
                body.get("acknowledgedBy") or body.get("acknowledgedAt"))),
            # The condition that opened the issue (the first, for a correlated one); the
            # policy where a template leaves conditions out.
            name=(conditions or policies or [None])[0],
        )

    def _legacy(self, body: Mapping[str, Any]) -> Alert:
        state = body["current_state"].strip().lower()
        if state not in _LEGACY_STATES:
            raise PayloadError(
                f"payload.current_state: {quote(body['current_state'])} is not open, "
                "acknowledged or closed",
                [f"payload.current_state: {quote(body['current_state'])} is not one of "
                 "open, acknowledged, closed, test"])
        incident = _scalar(body.get("incident_id"))
        if not incident:
            raise PayloadError("payload.incident_id: required (the incident id)",
                               ["payload.incident_id: required: the legacy channel's "
                                "$INCIDENT_ID, which identifies the incident from open to "
                                "close"])
        # The channel's "Send test notification" sends incident 0 ("I am a test
        # Violation"), in older releases with current_state "test" and event type
        # NOTIFICATION: a test, never a real incident.
        test = state == "test" or incident == "0" or body.get("event_type") == "NOTIFICATION"
        account = _scalar(body.get("account_id"))
        dedup = f"incident:{account}:{incident}" if account else f"incident:{incident}"
        resolved = state == "closed"
        word = _scalar(body.get("severity"))
        labels = {"incident_id": incident}
        for key, label in _LEGACY_LABELS:
            value = _scalar(body.get(key))
            if value:
                labels[label] = value
        if word:
            labels["priority"] = word  # where severity_map looks, as for workflows
        targets = [t for t in body.get("targets") or () if isinstance(t, dict)]
        names = [n for t in targets if (n := first_text(t, ("name",)))]
        if names:
            labels["targets"] = ", ".join(names)
        condition = first_text(body, ("condition_name",))
        details = first_text(body, ("details",))
        at = parse_time(body.get("timestamp"), "payload.timestamp")
        default: Severity = self.config.get("default_severity") or "warning"
        lines = [f"{title}: {body[key]}" for key, title in _LEGACY_TEXT
                 if isinstance(body.get(key), str) and body[key].strip()]
        if names:
            lines.append(f"Targets: {', '.join(names)}")
        return Alert(
            dedup_key=("newrelic-test:" if test else "newrelic:") + dedup,
            status="resolved" if resolved else "firing",
            severity=LEGACY_SEVERITY.get(word.upper(), default),
            summary=details or condition or f"New Relic incident {incident}",
            source_type=self.type,
            source_name=self.name,
            description="\n".join(lines),
            resource=names[0] if len(names) == 1 else None,
            labels=labels,
            links=tuple(Link(body[key], text) for key, text in _LEGACY_LINKS
                        if isinstance(body.get(key), str) and body[key]),
            # The timestamp is the moment of this event: the opening, or the closing.
            started_at=None if resolved else at,
            ended_at=at if resolved else None,
            acknowledge=state == "acknowledged",
            name=condition or first_text(body, ("policy_name",)),
            condition="test" if test else "normal",
        )


def _is_legacy(payload: Any) -> bool:
    """A legacy channel body: its own keys, and none of the workflow template's state."""
    return (isinstance(payload, dict) and "state" not in payload
            and any(k in payload for k in ("current_state", "incident_id", "condition_name")))


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return ""


def _describe(body: Mapping[str, Any]) -> str:
    """What a responder reads first: which conditions of which policies, on what."""
    lines = []
    for key, name in (("alertConditionNames", "Conditions"), ("alertPolicyNames", "Policies"),
                      ("impactedEntities", "Impacted entities")):
        values = [v for v in body.get(key) or () if v]
        if values:
            lines.append(f"{name}: {', '.join(values)}")
    return "\n".join(lines)
