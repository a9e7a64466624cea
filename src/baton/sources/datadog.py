"""Datadog monitor notifications, sent by the Webhooks integration.

Datadog has no fixed webhook body: the webhook's payload is a template of ``$VARIABLES``
(schemas/sources/datadog.schema.json carries Baton's, whose keys are the variable names in
lower case). Webhooks set up for another tool are read too: ``_datadog_body`` maps the keys
of the widely published templates onto Baton's. Values arrive as strings. One notification
is one alert; its name is the monitor's.

A multi-alert monitor notifies once per group: ``$ALERT_ID`` is the monitor and
``$ALERT_SCOPE`` the group (``host:web-1,env:prod``), so the dedup key is both. Not
``$ALERT_CYCLE_KEY``: it changes when a group re-triggers after recovering, while Baton
should reopen the same problem; not ``$AGGREG_KEY``: its scope is not documented.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from ..errors import PayloadError
from ..model import Alert, Condition, Link, Severity
from ..plugin import Source
from ._common import check_payload, parse_time, stable_hash
from ._datadog_body import fields

PRIORITY_SEVERITY: dict[str, Severity] = {
    "p1": "critical", "p2": "error", "p3": "warning", "p4": "info", "p5": "info"}

_WARN = frozenset({"warn", "re-warn"})
_NO_DATA = frozenset({"no data", "re-no data"})
_RESOLVED = frozenset({"recovered"})
# Past this the readable key (monitor name and scope) becomes a hash of them.
_MAX_KEY = 200
# Datadog's unified service tagging (service, env) plus component, for the alert's fields.
_FIELD_TAGS: dict[str, tuple[str, ...]] = {
    "service": ("service",), "environment": ("env", "environment"),
    "component": ("component",)}


class DatadogSource(Source):
    """``type: datadog``: config key ``default_severity``."""

    type: ClassVar[str] = "datadog"
    payload_def: ClassVar[str | None] = "payload"
    severity_label: ClassVar[str | None] = "priority"

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        body = fields(payload) if isinstance(payload, dict) else {}
        # Said plainly, before the schema: its anyOf would answer with the body quoted.
        if isinstance(payload, dict) and not (body.get("alert_id")
                                              or body.get("monitor_name")):
            raise PayloadError(
                "payload.alert_id: required (or a title naming the monitor): add "
                "\"alert_id\": \"$ALERT_ID\" to the webhook's payload template",
                ["payload.alert_id: required (or monitor_id, alertId, or a title "
                 "such as $EVENT_TITLE to key on); is $ALERT_ID in the payload template?"])
        check_payload(f"sources/{self.type}.schema.json", payload, "Datadog webhook")
        return [self._alert(body)]

    def _alert(self, body: Mapping[str, str]) -> Alert:
        monitor = body.get("alert_id", "")
        name = body.get("monitor_name", "")
        # A template without a transition (and a title without one) reports a problem:
        # only a Recovered says it is over.
        transition = body.get("alert_transition", "")
        word = transition.strip().lower()
        title = body.get("event_title") or body.get("alert_title") or ""
        test = body.get("test") == "true"
        scope = _scope(body.get("alert_scope", ""))
        # Without $ALERT_ID (Datadog's default body) the monitor's name is the problem.
        ident = monitor or "name:" + name
        key = f"datadog:{ident}" + (f":{scope}" if scope else "")
        if len(key) > _MAX_KEY:
            key = "datadog:" + stable_hash([ident, scope])
        if test:
            # A test from the monitor editor must never resolve or touch the real problem.
            key = "datadog-test:" + key.removeprefix("datadog:")
        resolved = word in _RESOLVED
        condition: Condition = "test" if test else "no_data" if word in _NO_DATA else "normal"
        labels = _tags(body.get("tags", ""))
        labels.update(_tags(scope))
        priority = body.get("alert_priority", "")
        own = {"monitor_id": monitor, "monitor_name": name, "transition": transition,
               "priority": priority, "scope": scope, "tags": body.get("tags", ""),
               "alert_type": body.get("alert_type", ""),
               "event_type": body.get("event_type", ""),
               "metric": body.get("alert_metric", ""), "query": body.get("alert_query", ""),
               "org_id": body.get("org_id", ""), "org_name": body.get("org_name", ""),
               "alert_cycle_key": body.get("alert_cycle_key", ""),
               "aggreg_key": body.get("aggreg_key", "")}
        for label, value in own.items():
            # Our names win over tags of the same name, even unset: a "priority:x" tag
            # must not pass for the monitor's priority in the severity_map.
            if value:
                labels[label] = value
            else:
                labels.pop(label, None)
        when = parse_time(body.get("date") or body.get("last_updated"),
                          "payload.date" if body.get("date") else "payload.last_updated")
        return Alert(
            dedup_key=key,
            status="resolved" if resolved else "firing",
            severity=self._severity(word, priority),
            summary=title or name or f"Datadog monitor {monitor}",
            source_type=self.type,
            source_name=self.name,
            description=_message(body),
            service=_field(labels, "service"),
            component=_field(labels, "component"),
            environment=_field(labels, "environment"),
            resource=body.get("hostname") or labels.get("host") or None,
            labels=labels,
            links=_links(body, monitor),
            started_at=None if resolved else when,
            ended_at=when if resolved else None,
            name=name or None,
            condition=condition,
        )

    def _severity(self, transition: str, priority: str) -> Severity:
        # A warn threshold is below the alert threshold whatever the monitor's priority.
        if transition in _WARN:
            return "warning"
        default: Severity = self.config.get("default_severity") or "error"
        return PRIORITY_SEVERITY.get(priority.strip().lower(), default)


def _scope(scope: str) -> str:
    """The group a multi-alert notification is about, in one spelling: Datadog writes
    ``a:1, b:2`` here and ``a:1,b:2`` there, and a simple monitor's scope is empty or
    ``*``."""
    parts = sorted({p.strip() for p in scope.split(",") if p.strip() and p.strip() != "*"})
    return ",".join(parts)


def _tags(tags: str) -> dict[str, str]:
    """``env:prod,service:api,monitor`` as labels; a tag without a value stays only in the
    ``tags`` label. A key given twice keeps all its values, comma-separated."""
    out: dict[str, list[str]] = {}
    for tag in tags.split(","):
        key, sep, value = tag.strip().partition(":")
        if sep and key and value:
            values = out.setdefault(key, [])
            if value not in values:
                values.append(value)
    return {key: ",".join(values) for key, values in out.items()}


def _field(labels: Mapping[str, str], name: str) -> str | None:
    for tag in _FIELD_TAGS[name]:
        if labels.get(tag):
            return labels[tag]
    return None


def _message(body: Mapping[str, str]) -> str:
    text = body.get("event_msg") or body.get("body") or body.get("text_only_msg") or ""
    # $EVENT_MSG wraps its Markdown in %%% markers, which mean nothing outside Datadog.
    lines = text.strip().splitlines()
    while lines and lines[0].strip() == "%%%":
        lines.pop(0)
    while lines and lines[-1].strip() == "%%%":
        lines.pop()
    message = "\n".join(lines).strip()
    status = body.get("alert_status", "")
    if status and status not in message:
        message = f"{message}\n\n{status}" if message else status
    return message


def _links(body: Mapping[str, str], monitor: str) -> tuple[Link, ...]:
    links: list[Link] = []
    event = body.get("link", "")
    parts = urlsplit(event) if event.startswith(("https://", "http://")) else None
    # The event link names the Datadog site (app.datadoghq.eu, us3...), so the monitor's
    # page is on the same host; never copy credentials from it into a link.
    site = (f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}" if parts and parts.netloc
            else body.get("site", ""))
    if site and monitor:
        links.append(Link(f"{site}/monitors/{quote(monitor, safe='')}", "Monitor"))
    if parts and parts.netloc:
        links.append(Link(event, "Event"))
    snapshot = body.get("snapshot", "")
    if snapshot.startswith(("https://", "http://")):
        links.append(Link(snapshot, "Snapshot"))
    return tuple(links)
