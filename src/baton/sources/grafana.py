"""Grafana alert notifications: the unified alerting webhook contact point (payload
version "1", Grafana 8+) and the legacy dashboard alert webhook (Grafana 4-10).

Unified: each alert of a notification becomes one Baton alert keyed by Grafana's
fingerprint (a hash of the alert's labels), so its resolve lands on the incident its firing
opened however the notification policy grouped them in between. Legacy: one alert per
request, keyed by the rule and the panel it lives on.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from ..errors import PayloadError
from ..model import Alert, AlertStatus, Condition, Link, Severity
from ..plugin import Source
from ._common import AlertBatch, check_payload, first_text, parse_timestamp, quote, stable_hash
from .alertmanager import SEVERITY_WORDS

SUPPORTED_VERSION = "1"

# Grafana replaces a rule's alertname with these when the rule's "no data" or "error"
# handling is set to its own state (the default); the rule's title moves to ``rulename``.
# Both mean the check could not run, which is what ``condition="no_data"`` stands for.
NO_DATA_ALERTNAMES = frozenset({"DatasourceNoData", "DatasourceError"})

# When a rule's no-data or error handling is "Alerting", the alert keeps its name and
# Grafana says why it fires in this annotation; "NoData, KeepLast" (keep last state) is a
# real alert still firing from before, so only the bare reasons count.
STATE_REASON = "grafana_state_reason"
NO_DATA_REASONS = frozenset({"NoData", "Error"})

# The alert Grafana's "Test" button on a contact point sends (alertname TestAlert,
# instance Grafana, summary "Notification test"); the user may override some labels.
TEST_ALERTNAME = "TestAlert"

_FIELD_LABELS: dict[str, tuple[str, ...]] = {
    "service": ("service", "job"),
    "component": ("component",),
    "environment": ("environment", "env"),
    "resource": ("instance", "host", "hostname"),
}
_ALERT_LINKS = (("generatorURL", "Alert rule"), ("dashboardURL", "Dashboard"),
                ("panelURL", "Panel"), ("silenceURL", "Silence"), ("imageURL", "Image"))
# Legacy states: pending and paused say nothing about the problem itself (not confirmed
# yet; no longer evaluated), so they neither open nor close an incident.
_LEGACY_STATUS: dict[str, AlertStatus | None] = {
    "alerting": "firing", "no_data": "firing", "ok": "resolved",
    "pending": None, "paused": None,
}


class GrafanaSource(Source):
    """``type: grafana``: config key ``default_severity``."""

    type: ClassVar[str] = "grafana"
    payload_def: ClassVar[str | None] = "payload"
    severity_label: ClassVar[str | None] = "severity"
    # Grafana's webhook contact point has an "HTTP Method" setting: POST (default) or PUT.
    methods: ClassVar[tuple[str, ...]] = ("POST", "PUT")

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        if isinstance(payload, dict) and "alerts" in payload and "version" in payload:
            version = payload["version"]
            if version != SUPPORTED_VERSION:
                raise PayloadError(
                    f"unsupported Grafana webhook version {quote(version)}: Baton reads "
                    f"version {SUPPORTED_VERSION!r} (Alertmanager's own version 4 goes to "
                    "an alertmanager source)",
                    [f"payload.version: {quote(version)} is not {SUPPORTED_VERSION!r}"])
        check_payload(f"sources/{self.type}.schema.json", payload, "Grafana webhook")
        if "ruleName" in payload:  # the schema's own test for the legacy format
            legacy = self._legacy(payload)
            return [legacy] if legacy else []
        org = payload.get("orgId")
        alerts = [self._alert(item, i, org) for i, item in enumerate(payload["alerts"])]
        return AlertBatch(alerts, truncated_alerts=payload.get("truncatedAlerts", 0))

    def response(self, alerts: list[Alert]) -> dict[str, Any]:
        # Grafana drops what exceeds the contact point's max_alerts and only says how many.
        truncated = getattr(alerts, "truncated_alerts", 0)
        return {"truncated_alerts": truncated} if truncated > 0 else {}

    # --- unified alerting ---------------------------------------------------------------

    def _alert(self, item: dict[str, Any], index: int, org: Any) -> Alert:
        labels: dict[str, str] = dict(item["labels"])
        annotations: dict[str, str] = item.get("annotations") or {}
        status: AlertStatus = item["status"]
        alertname = labels.get("alertname", "")
        fingerprint = item.get("fingerprint") or stable_hash(sorted(labels.items()))
        dedup_key = f"grafana:{org}:{fingerprint}" if org is not None else f"grafana:{fingerprint}"
        reason = annotations.get(STATE_REASON, "").strip()
        if reason:
            labels[STATE_REASON] = reason  # routable: matchers see labels, not annotations
        condition: Condition = "normal"
        if alertname in NO_DATA_ALERTNAMES or (status == "firing" and reason in NO_DATA_REASONS):
            condition = "no_data"
        elif alertname == TEST_ALERTNAME and (labels.get("instance") == "Grafana" or
                                              annotations.get("summary") == "Notification test"):
            condition = "test"
        summary = (first_text(annotations, ("summary", "title"))
                   or _no_data_summary(alertname, labels)
                   or alertname or f"Grafana alert {fingerprint}")
        fields = {name: first_text(labels, keys) for name, keys in _FIELD_LABELS.items()}
        path = f"payload.alerts[{index}]"
        return Alert(
            dedup_key=dedup_key,
            status=status,
            severity=self._severity(labels),
            summary=summary,
            source_type=self.type,
            source_name=self.name,
            description=_description(annotations, item.get("values")),
            service=fields["service"],
            component=fields["component"],
            environment=fields["environment"],
            resource=fields["resource"],
            labels=labels,
            links=_links(item, annotations),
            started_at=_time(item.get("startsAt"), f"{path}.startsAt"),
            # A firing alert's endsAt is only a guess of when it times out.
            ended_at=(_time(item.get("endsAt"), f"{path}.endsAt")
                      if status == "resolved" else None),
            impact=first_text(annotations, ("impact",)),
            condition=condition,
            # The rule's title: alertname, or for Grafana's own no-data and error alerts
            # (alertname DatasourceNoData/DatasourceError) the rule they stand for.
            name=(labels.get("rulename") if alertname in NO_DATA_ALERTNAMES else None)
            or alertname or None,
        )

    def _severity(self, labels: Mapping[str, Any]) -> Severity:
        value = labels.get("severity")
        word = value.strip().lower() if isinstance(value, str) else ""
        default: Severity = self.config.get("default_severity") or "warning"
        return SEVERITY_WORDS.get(word, default)

    # --- legacy dashboard alerts -----------------------------------------------------------

    def _legacy(self, body: dict[str, Any]) -> Alert | None:
        state: str = body["state"]
        status = _LEGACY_STATUS[state]
        if status is None:
            return None
        rule = body["ruleName"]
        message = body.get("message") or ""
        test = (rule == "Test notification"
                or message.lower().startswith("someone is testing the alert notification"))
        condition: Condition = "test" if test else ("no_data" if state == "no_data" else "normal")
        ids = [body.get(k) for k in ("orgId", "dashboardId", "panelId", "ruleId")]
        if test:
            # Newer Grafana gives every test a random ruleId; all tests are one "problem".
            dedup_key = "grafana-legacy:test"
        elif body.get("ruleId") is not None:
            dedup_key = "grafana-legacy:" + ":".join(_id(v) for v in ids)
        else:
            dedup_key = "grafana-legacy:" + stable_hash([rule, *ids[:3]])
        tags = body.get("tags") or {}
        labels = {**{k: v for k, v in tags.items() if isinstance(v, str)},
                  "alertname": rule, "grafana_state": state}
        for key, value in zip(("org_id", "dashboard_id", "panel_id", "rule_id"), ids,
                              strict=True):
            if value is not None:
                labels[key] = _id(value)
        matches = [f"{m.get('metric') or 'value'} = {_num(m.get('value'))}"
                   for m in body.get("evalMatches") or ()]
        description = "\n".join(filter(None, [message, "\n".join(matches)]))
        links = [Link(body[k], text) for k, text in (("ruleUrl", "Alert rule"),
                                                     ("imageUrl", "Image")) if body.get(k)]
        fields = {name: first_text(tags, keys) for name, keys in _FIELD_LABELS.items()}
        # The rule's message is what the rule's author wrote about the problem; its
        # first line is the summary, the whole message stays in the description.
        first_line = next((line.strip() for line in message.splitlines() if line.strip()), "")
        return Alert(
            dedup_key=dedup_key, status=status, severity=self._severity(tags),
            summary=first_line or rule or body.get("title") or "Grafana alert",
            name=rule or None, source_type=self.type,
            source_name=self.name, description=description, service=fields["service"],
            component=fields["component"], environment=fields["environment"],
            resource=fields["resource"], labels=labels, links=tuple(links),
            condition=condition,
        )


def _no_data_summary(alertname: str, labels: Mapping[str, str]) -> str | None:
    rule = labels.get("rulename")
    if alertname == "DatasourceNoData" and rule:
        return f"{rule}: no data"
    if alertname == "DatasourceError" and rule:
        return f"{rule}: data source error"
    return None


def _description(annotations: Mapping[str, str], values: Any) -> str:
    # "Error" is where Grafana puts the query error of a DatasourceError alert.
    text = first_text(annotations, ("description", "message", "Error")) or ""
    if isinstance(values, dict) and values:
        shown = ", ".join(f"{k}={_num(v)}" for k, v in sorted(values.items()))
        text = f"{text}\n\nValues: {shown}" if text else f"Values: {shown}"
    return text


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return "null" if value is None else str(value)


def _id(value: Any) -> str:
    # JSON numbers may arrive as floats (5.0) from relays that re-encode them.
    return _num(value)


def _time(value: str | None, path: str) -> datetime | None:
    if not value:
        return None
    return parse_timestamp(value, path, zero_is_none=True)


def _links(item: Mapping[str, Any], annotations: Mapping[str, str]) -> tuple[Link, ...]:
    links = [Link(item[key], text) for key, text in _ALERT_LINKS
             if isinstance(item.get(key), str) and item[key]]
    runbook = first_text(annotations, ("runbook_url",))
    if runbook:
        links.append(Link(runbook, "Runbook"))
    return tuple(links)
