"""New Relic issue notifications, sent by a workflow's webhook with its default template.

A New Relic issue groups the incidents of one problem and keeps its id from creation to
close, so the issue id is the dedup key. The default template renders the id as ``id``
(``{{ json issueId }}``); a template that names it ``issueId`` works too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ..errors import PayloadError
from ..model import Alert, Link, Severity
from ..plugin import Source
from ._common import check_payload, parse_time

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


class NewRelicSource(Source):
    """``type: newrelic``: config key ``default_severity``."""

    type: ClassVar[str] = "newrelic"
    payload_def: ClassVar[str | None] = "payload"
    severity_label: ClassVar[str | None] = "priority"

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        check_payload(f"sources/{self.type}.schema.json", payload, "New Relic webhook")
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
        conditions = body.get("alertConditionNames") or []
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
        )


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
