"""Google Cloud Monitoring webhook notifications (schema versions 1.1 and 1.2).

A notification describes one incident of an alerting policy: Cloud Monitoring opens an
incident per policy condition and time series, notifies when it opens (``state: open``)
and, unless the policy turns it off, when it closes (``state: closed``). ``incident_id`` is
the same in both, so it is the dedup key. The "Test connection" button of a webhook channel
sends ``"version": "test"`` with a made-up incident ("Test Incident").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ..model import Alert, Condition, Link, Severity
from ..plugin import Source
from ._common import check_payload, first_text, parse_time

# Policy severity (schema 1.2), lowercased; "info" only comes from a user label. Anything
# else ("No severity", missing) uses default_severity.
SEVERITY: dict[str, Severity] = {"critical": "critical", "error": "error", "warning": "warning",
                                 "info": "info"}

_TEST_SUMMARIES = ("test incident", "this is a test")

# (label keys in order of preference) among the policy's and resource's user labels.
_FIELD_LABELS: dict[str, tuple[str, ...]] = {
    "service": ("service", "app", "application"),
    "component": ("component",),
    "environment": ("environment", "env"),
}


class GcpMonitoringSource(Source):
    """``type: gcp-monitoring``: config key ``default_severity``."""

    type: ClassVar[str] = "gcp-monitoring"
    payload_def: ClassVar[str | None] = "payload"
    severity_label: ClassVar[str | None] = "severity"

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        check_payload(f"sources/{self.type}.schema.json", payload, "Cloud Monitoring webhook")
        version = payload.get("version")
        return [self._alert(payload["incident"], version if isinstance(version, str) else "")]

    def _alert(self, inc: Mapping[str, Any], version: str) -> Alert:
        closed = inc["state"].lower() == "closed"
        doc = inc.get("documentation")
        # The channel test sends documentation as a plain string, real incidents an object.
        doc = doc if isinstance(doc, dict) else {"content": doc} if isinstance(doc, str) else {}
        gcp_summary = first_text(inc, ("summary",))
        # Google's own sentence says what and where ("CPU utilization for vm-1 is above
        # the threshold of 0.9 with a value of 0.935"); a documentation subject is often a
        # fixed string ("ALERT - No severity") and only the fallback.
        summary = (gcp_summary or first_text(doc, ("subject",))
                   or first_text(inc, ("policy_name", "condition_name"))
                   or f"Cloud Monitoring incident {inc['incident_id']}")
        description = first_text(doc, ("content",)) or ""
        labels = _labels(inc)
        severity: Severity = SEVERITY.get(labels.get("severity", "").strip().lower()) or \
            self.config.get("default_severity") or "warning"
        is_test = version.lower() == "test" or \
            (gcp_summary or "").strip().lower().startswith(_TEST_SUMMARIES)
        condition: Condition = "test" if is_test else "normal"
        fields = {name: first_text(labels, keys) for name, keys in _FIELD_LABELS.items()}
        return Alert(
            dedup_key=f"gcp:{inc['incident_id']}",
            status="resolved" if closed else "firing",
            severity=severity,
            summary=summary,
            source_type=self.type,
            source_name=self.name,
            description=description,
            service=fields["service"],
            component=fields["component"],
            environment=fields["environment"],
            resource=first_text(inc, ("resource_display_name", "resource_name", "resource_id"))
            or first_text(_map(inc.get("resource")).get("labels"), ("instance_id",)),
            labels=labels,
            links=_links(inc, doc),
            started_at=parse_time(inc.get("started_at"), "payload.incident.started_at"),
            ended_at=parse_time(inc.get("ended_at"), "payload.incident.ended_at")
            if closed else None,
            condition=condition,
            # The alerting policy; its condition where a body names no policy.
            name=first_text(inc, ("policy_name", "condition_name")),
        )


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _put(labels: dict[str, str], key: str, value: Any) -> None:
    if isinstance(value, bool):
        labels[key] = str(value).lower()
    elif isinstance(value, str | int | float) and value != "":
        labels[key] = str(value)


def _labels(inc: Mapping[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = {}
    resource, metric, meta = _map(inc.get("resource")), _map(inc.get("metric")), \
        _map(inc.get("metadata"))
    # The user's own labels first, as given, so routes can name them; Google's fields are
    # prefixed and win on a clash.
    for source in (_map(meta.get("user_labels")), _map(inc.get("policy_user_labels"))):
        for key, value in source.items():
            _put(labels, str(key), value)
    for prefix, source in (("resource_", _map(resource.get("labels"))),
                           ("metric_", _map(metric.get("labels"))),
                           ("system_", _map(meta.get("system_labels")))):
        for key, value in source.items():
            _put(labels, f"{prefix}{key}", value)
    for key, value in (("policy", inc.get("policy_name")),
                       ("condition", inc.get("condition_name")),
                       ("project", inc.get("scoping_project_id")),
                       ("resource_type", resource.get("type")),
                       ("metric_type", metric.get("type")),
                       ("observed_value", inc.get("observed_value")),
                       ("threshold_value", inc.get("threshold_value")),
                       ("state", inc.get("state")),
                       ("incident_id", inc.get("incident_id"))):
        _put(labels, key, value)
    # Policies from before schema 1.2 often carry a user label "severity"; the policy's own
    # severity wins unless it is "No severity".
    google = inc.get("severity")
    if isinstance(google, str) and google.strip() and (
            google.strip().lower() != "no severity" or "severity" not in labels):
        labels["severity"] = google
    return labels


def _links(inc: Mapping[str, Any], doc: Mapping[str, Any]) -> tuple[Link, ...]:
    links: list[Link] = []
    for key, text in (("url", "Incident"), ("apigee_url", "Apigee")):
        href = first_text(inc, (key,))
        if href:
            links.append(Link(href, text))
    for item in doc.get("links") or ():
        href = first_text(item, ("url",))
        if href:
            links.append(Link(href, first_text(item, ("displayName",)) or ""))
    return tuple(links)
