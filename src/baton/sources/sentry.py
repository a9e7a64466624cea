"""Sentry integration-platform webhooks (an internal integration's "Webhook URL").

Which resource a request is about comes from the ``Sentry-Hook-Resource`` header; when a
proxy dropped it, the body's shape says (``data.metric_alert``, ``data.issue``, ...).

- ``event_alert`` (issue alert rule fired), ``error`` (error event created) and ``issue``
  (created, unresolved, resolved, ignored/archived, assigned) all describe one Sentry
  issue and share the dedup key ``sentry:issue:<issue id>``: the issue webhook's
  ``resolved`` closes the incident an issue alert opened.
- ``metric_alert`` (critical, warning, open, resolved) is keyed ``sentry:metric_alert:<id>``
  with the id of Sentry's incident, so warning -> critical -> resolved stay one incident.
- ``installation``, ``comment``, ``seer``, ``preprod_artifact`` carry no problem state:
  accepted, no alert.

The signature (``Sentry-Hook-Signature``, HMAC-SHA256 hex of the raw body with the
integration's client secret) is checked by the core's ``hmac`` auth before parsing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from ..errors import PayloadError
from ..model import Alert, AlertStatus, Link, Severity
from ..plugin import Source
from ._common import check_payload, first_text, parse_time, quote

RESOURCE_HEADER = "sentry-hook-resource"

# Sentry's event levels (the SDKs' log levels) onto Baton's four.
LEVELS: dict[str, Severity] = {
    "fatal": "critical", "error": "error", "warning": "warning", "info": "info",
    "debug": "info",
}
# Metric alert actions: the trigger that fired. ``open`` (newer Sentry) names no level,
# so the incident's own status says it: 20 critical, 10 warning.
_METRIC: dict[str, Severity] = {"critical": "critical", "warning": "warning",
                                "resolved": "info"}
_METRIC_STATUS: dict[int, Severity] = {20: "critical", 10: "warning"}

_ISSUE_STATUS: dict[str, AlertStatus] = {
    "created": "firing", "unresolved": "firing", "assigned": "firing",
    "resolved": "resolved", "ignored": "resolved", "archived": "resolved",
}
_QUIET = frozenset({"installation", "comment", "seer", "preprod_artifact"})
_EVENT_KEY = {"event_alert": "event", "error": "error"}
_PARSED = frozenset({"event_alert", "error", "issue", "metric_alert"})
_SHAPES = (("metric_alert", "metric_alert"), ("issue", "issue"), ("error", "error"),
           ("event", "event_alert"))
# Sentry's API URL of an event names the organization and project slugs, which the
# event itself only carries as a numeric project id.
_EVENT_API_URL = re.compile(r"/projects/(?P<org>[^/]+)/(?P<project>[^/]+)/events/")
# Tags never copied into labels: "user" holds an end user's id, e-mail or IP address.
_PRIVATE_TAGS = frozenset({"user"})
_NOT_LABEL_CHAR = re.compile(r"[^A-Za-z0-9_]")


class SentrySource(Source):
    """``type: sentry``: config keys ``default_severity``, ``archived``, ``issues``."""

    type: ClassVar[str] = "sentry"
    payload_def: ClassVar[str | None] = "payload"
    severity_label: ClassVar[str | None] = "level"

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        resource = _resource(payload, headers)
        if resource in _QUIET:
            return []
        check_payload(f"sources/{self.type}.schema.json", payload, f"Sentry {resource} webhook",
                      pointer=resource)
        data = payload["data"]
        action: str = payload["action"]
        if resource == "metric_alert":
            return [self._metric(data, action)]
        if resource == "issue":
            alert = self._issue(data["issue"], action, payload.get("actor"))
            return [alert] if alert is not None else []
        event = data[_EVENT_KEY[resource]]
        return [self._event(event, resource, action, data.get("triggered_rule"))]

    def _default(self) -> Severity:
        default: Severity = self.config.get("default_severity") or "error"
        return default

    def _event(self, event: Mapping[str, Any], resource: str, action: str,
               rule: Any) -> Alert:
        issue_id = str(event["issue_id"])
        tags = _tags(event.get("tags"))
        level = str(event.get("level") or "")
        slugs = _EVENT_API_URL.search(str(event.get("url") or ""))
        labels = {f"tag_{_NOT_LABEL_CHAR.sub('_', k)}": v for k, v in tags.items()
                  if k not in _PRIVATE_TAGS}
        labels.update(_present(
            sentry_resource=resource, sentry_action=action, level=level, issue_id=issue_id,
            event_id=event.get("event_id"), project_id=event.get("project"),
            project=slugs["project"] if slugs else None,
            organization=slugs["org"] if slugs else None,
            platform=event.get("platform"), release=event.get("release") or tags.get("release"),
            triggered_rule=rule))
        lines = [f"Rule: {rule}" if isinstance(rule, str) and rule else "",
                 f"Culprit: {event['culprit']}" if event.get("culprit") else ""]
        web_url = first_text(event, ("web_url",))
        return Alert(
            dedup_key=f"sentry:issue:{issue_id}",
            status="firing",
            severity=LEVELS.get(level.lower(), self._default()),
            summary=(first_text(event, ("title", "message"))
                     or f"Sentry issue {issue_id}"),
            source_type=self.type,
            source_name=self.name,
            description="\n".join(line for line in lines if line),
            service=slugs["project"] if slugs else None,
            environment=first_text(event, ("environment",)) or tags.get("environment"),
            resource=first_text(event, ("server_name",)) or tags.get("server_name"),
            labels=labels,
            links=(Link(web_url, "Event in Sentry"),) if web_url else (),
            started_at=_time(event.get("datetime") or event.get("timestamp"),
                             f"payload.data.{_EVENT_KEY[resource]}.datetime"),
            # The issue alert rule that fired; an error webhook names no rule.
            name=rule if isinstance(rule, str) and rule else None,
        )

    def _issue(self, issue: Mapping[str, Any], action: str, actor: Any) -> Alert | None:
        status = _ISSUE_STATUS.get(action)
        if status is None:
            return None  # an action Sentry added later: no state Baton knows to follow
        if action in ("ignored", "archived") and self.config.get("archived") == "ignore":
            return None
        if action in ("created", "unresolved") and self.config.get("issues") == "lifecycle":
            return None  # alert rules decide what opens; issue webhooks only follow it
        by_user = isinstance(actor, dict) and actor.get("type") == "user"
        if action == "assigned" and not by_user:
            # Ownership rules and auto-assignment are not a human taking the problem.
            return None
        issue_id = str(issue["id"])
        level = str(issue.get("level") or "")
        project: Mapping[str, Any] = (issue["project"] if isinstance(issue.get("project"), dict)
                                      else {})
        assignee = issue.get("assignedTo")
        users = issue.get("userCount")
        link = first_text(issue, ("web_url", "permalink"))
        return Alert(
            dedup_key=f"sentry:issue:{issue_id}",
            status=status,
            severity=LEVELS.get(level.lower(), self._default()),
            summary=first_text(issue, ("title",)) or f"Sentry issue {issue_id}",
            source_type=self.type,
            source_name=self.name,
            description=f"Culprit: {issue['culprit']}" if issue.get("culprit") else "",
            service=first_text(project, ("slug",)),
            labels=_present(
                sentry_resource="issue", sentry_action=action, level=level,
                issue_id=issue_id, short_id=issue.get("shortId"),
                status=issue.get("status"), substatus=issue.get("substatus"),
                priority=issue.get("priority"), project=project.get("slug"),
                project_id=project.get("id"), platform=issue.get("platform"),
                issue_category=issue.get("issueCategory"), issue_type=issue.get("issueType"),
                assigned_to=assignee.get("name") if isinstance(assignee, dict) else None,
                actor=actor.get("name") if isinstance(actor, dict) else None),
            links=(Link(link, "Issue in Sentry"),) if link else (),
            started_at=_time(issue.get("firstSeen"), "payload.data.issue.firstSeen"),
            impact=(f"{users} users affected" if isinstance(users, int)
                    and not isinstance(users, bool) and users > 0 else None),
            acknowledge=action == "assigned",
        )

    def _metric(self, data: Mapping[str, Any], action: str) -> Alert:
        incident: Mapping[str, Any] = data["metric_alert"]
        rule: Mapping[str, Any] = incident.get("alert_rule") or {}
        projects = (_projects(rule, "payload.data.metric_alert.alert_rule.projects")
                    or _projects(incident, "payload.data.metric_alert.projects"))
        severity: Severity = _METRIC.get(action) or _METRIC_STATUS.get(
            incident.get("status") or 0, "warning")
        status: AlertStatus = "resolved" if action == "resolved" else "firing"
        texts = [first_text(data, ("description_title",)),
                 first_text(data, ("description_text",))]
        web_url = first_text(data, ("web_url",))
        rule_name = first_text(rule, ("name",))
        # description_text says what crossed the threshold ("1000 events in the last 10
        # minutes"); its first line is the summary, and the rule is the name.
        # (Sentry's own published sample has the line break escaped once more, as "\\n".)
        lines = (texts[1] or "").replace("\\n", "\n").splitlines()
        found = next((line.strip() for line in lines if line.strip()), None)
        return Alert(
            dedup_key=f"sentry:metric_alert:{incident['id']}",
            status=status,
            severity=severity,
            name=rule_name or first_text(incident, ("title",)),
            summary=(found or rule_name or first_text(incident, ("title",))
                     or first_text(data, ("description_title",))
                     or f"Sentry metric alert {incident['id']}"),
            source_type=self.type,
            source_name=self.name,
            description="\n".join(t for t in texts if t),
            service=projects[0] if len(projects) == 1 else None,
            environment=first_text(rule, ("environment",)),
            labels=_present(
                sentry_resource="metric_alert", sentry_action=action, level=action,
                alertname=rule.get("name"), alert_rule_id=rule.get("id"),
                metric_alert_id=incident["id"], identifier=incident.get("identifier"),
                aggregate=rule.get("aggregate"), query=rule.get("query"),
                dataset=rule.get("dataset"), projects=",".join(projects) or None),
            links=(Link(web_url, "Metric alert in Sentry"),) if web_url else (),
            started_at=_time(incident.get("date_started") or incident.get("date_detected"),
                             "payload.data.metric_alert.date_started"),
            ended_at=(_time(incident.get("date_closed"), "payload.data.metric_alert.date_closed")
                      if status == "resolved" else None),
        )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # aiohttp hands a case-insensitive mapping; tests and replays may hand a plain dict.
    for key, value in headers.items():
        if key.lower() == name:
            return value.strip()
    return None


def _resource(payload: Any, headers: Mapping[str, str]) -> str:
    given = _header(headers, RESOURCE_HEADER)
    if given:
        if given in _QUIET or given in _PARSED:
            return given
        raise PayloadError(f"Sentry-Hook-Resource: unsupported resource {quote(given)}",
                           [f"headers.Sentry-Hook-Resource: {quote(given)} is not one of "
                            "event_alert, metric_alert, issue, error, installation, comment"])
    data = payload.get("data") if isinstance(payload, dict) else None
    if isinstance(data, dict):
        for key, resource in _SHAPES:
            if isinstance(data.get(key), dict):
                return resource
    raise PayloadError("Sentry-Hook-Resource: required (header missing and the body is not "
                       "a Sentry webhook)",
                       ["headers.Sentry-Hook-Resource: required",
                        "payload.data: no metric_alert, issue, error or event object"])


def _tags(value: Any) -> dict[str, str]:
    """Sentry sends tags as ``[[key, value], ...]`` (older events: ``{key: value}``)."""
    pairs = value.items() if isinstance(value, dict) else value if isinstance(value, list) else ()
    out: dict[str, str] = {}
    for pair in pairs:
        if (isinstance(pair, list | tuple) and len(pair) == 2
                and isinstance(pair[0], str) and isinstance(pair[1], str) and pair[1]):
            out.setdefault(pair[0], pair[1])
    return out


def _projects(doc: Mapping[str, Any], path: str) -> list[str]:
    """The project slugs of a metric alert (they give its service), or [] when absent."""
    value = doc.get("projects")
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"{path}: not a list of project slugs",
                           [f"{path}: {quote(value)} is not a list of project slugs"])
    return [p for p in value if isinstance(p, str)]


def _present(**values: Any) -> dict[str, str]:
    """Labels from the values that are there: numbers as text, empty and missing left out."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, bool) or value is None or value == "":
            continue
        if isinstance(value, str | int):
            out[key] = str(value)
    return out


def _time(value: Any, path: str) -> datetime | None:
    return parse_time(value, path)
