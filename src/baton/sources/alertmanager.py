"""Prometheus Alertmanager's webhook notifications (``webhook_config``, payload version 4).

One notification carries a group of alerts; each becomes one Baton alert, keyed by
Alertmanager's fingerprint, so the resolve of an alert lands on the incident its firing
opened however Alertmanager regrouped them in between.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from ..errors import PayloadError
from ..model import Alert, Link, Severity
from ..plugin import Source
from ._common import (
    AlertBatch,
    check_payload,
    first_text,
    parse_timestamp,
    quote,
    stable_hash,
)

SUPPORTED_VERSION = "4"

# Severity words seen in the wild (Prometheus mixins, Zabbix-style, P1..P5 priorities),
# lowercased. Anything else falls back to the configured default_severity.
SEVERITY_WORDS: dict[str, Severity] = {
    **dict.fromkeys(("critical", "page", "p1", "disaster", "emergency"), "critical"),
    **dict.fromkeys(("error", "high", "major", "p2"), "error"),
    **dict.fromkeys(("warning", "warn", "medium", "minor", "p3"), "warning"),
    **dict.fromkeys(("info", "low", "none", "ok", "p4", "p5", "informational"), "info"),
}

# (label names in order of preference) for the well-known alert fields; ``job`` is what
# Prometheus sets on every series, so it is the best guess at a service when none is named.
_FIELD_LABELS: dict[str, tuple[str, ...]] = {
    "service": ("service", "job"),
    "component": ("component",),
    "environment": ("environment", "env"),
    "resource": ("instance",),
}

_ANNOTATION_LINKS = (("runbook_url", "Runbook"), ("dashboard_url", "Dashboard"))


class AlertmanagerSource(Source):
    """``type: alertmanager``: config keys ``default_severity``, ``severity_label``."""

    type: ClassVar[str] = "alertmanager"
    payload_def: ClassVar[str | None] = "payload"

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        # The version check comes first: a body of another version may be shaped
        # differently, and "wrong version" says more than the schema errors it would cause.
        if isinstance(payload, dict) and "version" in payload:
            version = payload["version"]
            if version != SUPPORTED_VERSION:
                raise PayloadError(
                    f"unsupported Alertmanager webhook version {quote(version)}: Baton reads "
                    f"version {SUPPORTED_VERSION!r}",
                    [f"payload.version: {quote(version)} is not {SUPPORTED_VERSION!r}"],
                )
        check_payload(f"sources/{self.type}.schema.json", payload, "Alertmanager webhook")
        alerts = [self._alert(item, i) for i, item in enumerate(payload["alerts"])]
        return AlertBatch(alerts, truncated_alerts=payload.get("truncatedAlerts", 0))

    def response(self, alerts: list[Alert]) -> dict[str, Any]:
        # Alertmanager drops what exceeds max_alerts and only tells the receiver the count;
        # echoing it makes the loss visible to whoever reads the ingest answer or its log.
        truncated = getattr(alerts, "truncated_alerts", 0)
        return {"truncated_alerts": truncated} if truncated > 0 else {}

    def _alert(self, item: dict[str, Any], index: int) -> Alert:
        path = f"payload.alerts[{index}]"
        labels: dict[str, str] = dict(item["labels"])
        annotations: dict[str, str] = item.get("annotations") or {}
        status = item["status"]
        # Alertmanager always sends a fingerprint; other senders of this format may not.
        # Its fingerprint is a hash of the label set, so hashing the sorted labels keeps
        # the same property: firing and resolved of one alert share the key.
        dedup_key = item.get("fingerprint") or stable_hash(sorted(labels.items()))
        summary = (first_text(annotations, ("summary", "title"))
                   or first_text(labels, ("alertname",))
                   or f"Alertmanager alert {dedup_key}")
        started = _time(item.get("startsAt"), f"{path}.startsAt")
        # A firing alert's endsAt is only Alertmanager's guess of when it will time out
        # (or zero); only a resolved alert's endsAt says when the problem ended.
        ended = _time(item.get("endsAt"), f"{path}.endsAt") if status == "resolved" else None
        fields = {name: first_text(labels, keys) for name, keys in _FIELD_LABELS.items()}
        return Alert(
            dedup_key=dedup_key,
            status=status,
            severity=self._severity(labels),
            summary=summary,
            source_type=self.type,
            source_name=self.name,
            description=first_text(annotations, ("description", "message")) or "",
            service=fields["service"],
            component=fields["component"],
            environment=fields["environment"],
            resource=fields["resource"],
            labels=labels,
            links=_links(item, annotations),
            started_at=started,
            ended_at=ended,
            impact=first_text(annotations, ("impact",)),
            name=first_text(labels, ("alertname",)),
        )

    def _severity(self, labels: Mapping[str, str]) -> Severity:
        label = self.config.get("severity_label") or "severity"
        word = labels.get(label, "").strip().lower()
        default: Severity = self.config.get("default_severity") or "warning"
        return SEVERITY_WORDS.get(word, default)


def _time(value: str | None, path: str) -> datetime | None:
    if not value:
        return None
    # Go's time.Time marshals as RFC 3339 with nanoseconds and always with an offset.
    return parse_timestamp(value, path, zero_is_none=True)


def _links(item: Mapping[str, Any], annotations: Mapping[str, str]) -> tuple[Link, ...]:
    links: list[Link] = []
    generator = item.get("generatorURL")
    if isinstance(generator, str) and generator:
        links.append(Link(generator, "Source"))
    for key, text in _ANNOTATION_LINKS:
        href = first_text(annotations, (key,))
        if href:
            links.append(Link(href, text))
    # externalURL points at the Alertmanager itself, not at this alert (a silence link
    # would need matchers built from its labels); responders reach it from the Source graph.
    return tuple(links)
