"""Values that travel through the pipeline: alerts in, notifications out.

Frozen dataclasses, no behaviour beyond (de)serialisation: the store owns incident state,
the dispatcher owns delivery state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Severity = Literal["critical", "error", "warning", "info"]
AlertStatus = Literal["firing", "resolved"]
Action = Literal["trigger", "update", "acknowledge", "resolve", "note"]
Condition = Literal["normal", "no_data", "test"]

SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error", "critical")
SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}


def higher_severity(a: str, b: str) -> str:
    return a if SEVERITY_RANK.get(a, 0) >= SEVERITY_RANK.get(b, 0) else b


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime | None) -> str | None:
    """RFC 3339 in UTC with millisecond precision and a ``Z`` suffix, or None."""
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str | None) -> datetime | None:
    if value is None:
        return None
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Link:
    href: str
    text: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"href": self.href, "text": self.text}


@dataclass(frozen=True)
class Alert:
    """One normalized signal from a source (the ``alert`` of incident.schema.json)."""

    dedup_key: str
    status: AlertStatus
    severity: Severity
    summary: str
    source_type: str
    source_name: str
    description: str = ""
    service: str | None = None
    component: str | None = None
    environment: str | None = None
    resource: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    links: tuple[Link, ...] = ()
    started_at: datetime | None = None
    ended_at: datetime | None = None
    impact: str | None = None
    # The alert's name at its source (Alertmanager's alertname, a Grafana rule, a Datadog
    # monitor, a Zabbix trigger): what people scan lists and pages by. See ``title``.
    name: str | None = None
    # Not part of the alert document: the sender reports that a human acknowledged the
    # problem on its side (PagerDuty Events ``acknowledge``). Ingest acknowledges the
    # matching open incident instead of treating it as a new event.
    acknowledge: bool = False
    # Not part of the alert document either: what kind of signal the sender says this is.
    # ``no_data`` (the check could not run: Grafana NoData, CloudWatch INSUFFICIENT_DATA,
    # Datadog No Data) and ``test`` (a "send test notification" button) are handled by the
    # source's ``no_data``/``test`` setting (ignore, info or firing), not by the adapter.
    condition: Condition = "normal"

    def to_dict(self) -> dict[str, Any]:
        return {
            "dedup_key": self.dedup_key,
            "status": self.status,
            "severity": self.severity,
            "summary": self.summary,
            "description": self.description,
            "source": {"type": self.source_type, "name": self.source_name},
            "service": self.service,
            "component": self.component,
            "environment": self.environment,
            "resource": self.resource,
            "labels": dict(self.labels),
            "links": [link.to_dict() for link in self.links],
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "impact": self.impact,
            "name": self.name,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Alert:
        src = d.get("source") or {}
        return cls(
            dedup_key=d["dedup_key"],
            status=d["status"],
            severity=d["severity"],
            summary=d.get("summary", ""),
            source_type=src.get("type", ""),
            source_name=src.get("name", ""),
            description=d.get("description") or "",
            service=d.get("service"),
            component=d.get("component"),
            environment=d.get("environment"),
            resource=d.get("resource"),
            labels=dict(d.get("labels") or {}),
            links=tuple(Link(x["href"], x.get("text", "")) for x in d.get("links") or ()),
            started_at=parse_iso(d.get("started_at")),
            ended_at=parse_iso(d.get("ended_at")),
            impact=d.get("impact"),
            name=d.get("name"),
        )

    @property
    def title(self) -> str:
        """The alert's name, then what is wrong ("HighErrorRate: 5xx above 5% on
        checkout"), as Alertmanager's own templates and PagerDuty's integrations title a
        page. The summary alone where it already names the alert (a Datadog title holds
        its monitor's name) or no name is known; the name alone without a summary."""
        name, summary = (self.name or "").strip(), self.summary.strip()
        if not name:
            return summary or self.dedup_key
        if not summary or _names(summary, name):
            return summary or name
        return f"{name}: {summary}"

    def match_labels(self) -> dict[str, str]:
        """The label set routes and matchers see: the alert's labels plus its well-known
        fields, so ``severity="critical"`` or ``service="db"`` match whatever the source."""
        out = dict(self.labels)
        for key in ("service", "component", "environment", "resource"):
            value = getattr(self, key)
            if value is not None:
                out.setdefault(key, value)
        out["severity"] = self.severity
        out.setdefault("alertname", self.labels.get("alertname", self.name or self.summary))
        return out


@dataclass(frozen=True)
class ExternalRef:
    """What a connector created or touched at its vendor (ticket id, page dedup key, URL)."""

    connector: str
    id: str
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"connector": self.connector, "id": self.id, "url": self.url}


@dataclass(frozen=True)
class Notification:
    """One delivery attempt as a connector sees it."""

    delivery_id: str
    connector: str
    action: Action
    idempotency_key: str
    attempt: int
    incident: Mapping[str, Any]  # an incident document, valid against incident.schema.json
    target: Mapping[str, Any] = field(default_factory=dict)  # per-target params, e.g. ``to``


OutcomeKind = Literal["ok", "retryable", "permanent"]


@dataclass(frozen=True)
class Outcome:
    """A connector's verdict on one attempt. The dispatcher alone decides what follows."""

    kind: OutcomeKind
    detail: str = ""
    status: int | None = None
    retry_after: float | None = None  # seconds, as the vendor asked
    external_ref: ExternalRef | None = None

    @classmethod
    def ok(cls, detail: str = "", status: int | None = None,
           external_ref: ExternalRef | None = None) -> Outcome:
        return cls("ok", detail, status, None, external_ref)

    @classmethod
    def retryable(cls, detail: str, status: int | None = None,
                  retry_after: float | None = None) -> Outcome:
        return cls("retryable", detail, status, retry_after)

    @classmethod
    def permanent(cls, detail: str, status: int | None = None) -> Outcome:
        return cls("permanent", detail, status)


def _names(summary: str, name: str) -> bool:
    """Whether ``summary`` already names the alert: ``name`` in it as a word (any case), so
    a name "Up" is not taken as said by "Backup failed". Only the first occurrences are
    looked at, so a crafted summary costs a bounded number of searches."""
    text, name = summary.casefold(), name.casefold()
    found = text.find(name)
    for _ in range(_MAX_NAME_MATCHES):
        if found < 0:
            break
        end = found + len(name)
        if not (found and text[found - 1].isalnum()) and not (
                end < len(text) and text[end].isalnum()):
            return True
        found = text.find(name, found + 1)
    return False


_MAX_NAME_MATCHES = 100
