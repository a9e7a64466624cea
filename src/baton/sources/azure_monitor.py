"""Azure Monitor alerts in the common alert schema (``azureMonitorCommonAlertSchema``).

An action group with a webhook action and "Enable the common alert schema" turned on sends
one alert per request: ``data.essentials`` is the same for every alert type, and
``data.alertContext`` varies with ``essentials.monitoringService``. Three kinds of problem
identity follow from how Azure keeps state:

- Metric and log search alerts are stateful: one alert instance (``alertId``) is Fired and
  later Resolved, so ``alertId`` is the key.
- Service Health sends one activity-log event per update of an Azure incident, each with a
  new ``alertId`` and always "Fired"; the ``trackingId`` is what stays, and the
  communication's ``stage`` says when it is over.
- Resource Health likewise sends a new event per health change; the rule plus the resource
  is the problem, and ``currentHealthStatus`` says whether it is over.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote as urlquote

from ..errors import PayloadError
from ..model import Alert, Condition, Link, Severity
from ..plugin import Source
from ._common import check_payload, first_text, parse_time, quote, stable_hash

SCHEMA_ID = "azureMonitorCommonAlertSchema"

SEVERITY: dict[str, Severity] = {
    "Sev0": "critical", "Sev1": "error", "Sev2": "warning", "Sev3": "info", "Sev4": "info",
}

# Service Health stages after which the Azure incident or maintenance is over. "RCA" is the
# post-incident report, sent after "Resolved": it must not reopen the incident.
_HEALTH_OVER = {"resolved", "rca", "complete", "completed", "canceled", "cancelled"}

_PORTAL = "https://portal.azure.com/#"


class AzureMonitorSource(Source):
    """``type: azure-monitor``: config key ``default_severity``."""

    type: ClassVar[str] = "azure-monitor"
    payload_def: ClassVar[str | None] = "payload"
    severity_label: ClassVar[str | None] = "severity"

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        # The legacy (non-common) schemas have other shapes; saying which switch to flip
        # helps more than the schema errors they would cause.
        if isinstance(payload, dict) and "schemaId" in payload and \
                payload["schemaId"] != SCHEMA_ID:
            got = payload["schemaId"]
            raise PayloadError(
                f"schemaId {quote(got)} is not the common alert schema: enable \"common alert "
                "schema\" on the action group's webhook",
                [f"payload.schemaId: {quote(got)} is not {SCHEMA_ID!r}"])
        check_payload(f"sources/{self.type}.schema.json", payload, "Azure Monitor alert")
        data = payload["data"]
        return [self._alert(data["essentials"], data.get("alertContext") or {},
                            data.get("customProperties") or {})]

    def _alert(self, ess: Mapping[str, Any], ctx: Mapping[str, Any],
               custom: Mapping[str, Any]) -> Alert:
        service_kind = _compact(ess.get("monitoringService"))
        raw_props = ctx.get("properties")
        props: Mapping[str, Any] = raw_props if isinstance(raw_props, dict) else {}
        targets = [t for t in ess.get("alertTargetIDs") or () if isinstance(t, str) and t]
        items = [c for c in ess.get("configurationItems") or () if isinstance(c, str) and c]
        dedup_key, resolved, condition, summary = _identity(service_kind, ess, ctx, props,
                                                            targets, items)
        rule_name = first_text(ess, ("alertRule",))
        where = items[0] if len(items) == 1 else None
        summary = summary or (f"{rule_name} on {where}" if rule_name and where else rule_name) \
            or first_text(ess, ("description",)) or f"Azure Monitor alert {ess['alertId']}"
        labels = _labels(ess, ctx, props, custom, targets, items)
        original = ess.get("severity")
        severity: Severity = SEVERITY.get(original or "", None) or \
            self.config.get("default_severity") or "warning"
        return Alert(
            dedup_key=dedup_key,
            status="resolved" if resolved else "firing",
            severity=severity,
            summary=summary,
            source_type=self.type,
            source_name=self.name,
            description=_description(ess, ctx, props),
            environment=first_text(labels, ("environment", "env")),
            service=first_text(labels, ("service",)),
            resource=_resource(targets, items),
            labels=labels,
            links=_links(ess, ctx, props, targets),
            started_at=_time(ess.get("firedDateTime"), "payload.data.essentials.firedDateTime"),
            ended_at=_ended(ess, ctx, resolved),
            impact=_impact(service_kind, props),
            condition=condition,
            name=rule_name,
        )


def _identity(service_kind: str, ess: Mapping[str, Any], ctx: Mapping[str, Any],
              props: Mapping[str, Any], targets: list[str], items: list[str],
              ) -> tuple[str, bool, Condition, str | None]:
    """(dedup key, resolved, condition, summary or None) by how the alert type keeps state."""
    resolved = ess["monitorCondition"] == "Resolved"
    if service_kind == "servicehealth" and first_text(props, ("trackingId",)):
        stage = (first_text(props, ("stage",)) or "").lower()
        return (f"servicehealth:{props['trackingId']}",
                resolved or stage in _HEALTH_OVER or ctx.get("status") == "Resolved",
                "normal", first_text(props, ("title", "defaultLanguageTitle")))
    if service_kind == "resourcehealth":
        rule = ess.get("alertRuleID") or ess.get("alertRuleId") or ess.get("alertRule")
        health = first_text(props, ("currentHealthStatus",))
        resolved = resolved or health == "Available" or ctx.get("status") == "Resolved"
        title = first_text(props, ("title",))
        rule_name = first_text(ess, ("alertRule",))
        # A rule scoped to a resource group names the group as its target; the
        # configuration items name the resource whose health changed within it.
        return ("resourcehealth:" + stable_hash([rule, [t.lower() for t in targets], items]),
                resolved, "no_data" if health == "Unknown" and not resolved else "normal",
                f"{rule_name}: {title}" if title and rule_name else title)
    # ARM ids are case-insensitive and Azure is not consistent about their case.
    return ess["alertId"].lower(), resolved, "normal", None


def _resource(targets: list[str], items: list[str]) -> str | None:
    # A rule scoped to a subscription or resource group targets that scope; the
    # configuration item then names the resource that actually alerted.
    if targets and ("/providers/" in targets[0].lower() or not items):
        return targets[0]
    return items[0] if items else None


def _compact(value: Any) -> str:
    return "".join(value.split()).lower() if isinstance(value, str) else ""


def _time(value: Any, path: str) -> datetime | None:
    return parse_time(value, path) if isinstance(value, str) else None


def _ended(ess: Mapping[str, Any], ctx: Mapping[str, Any], resolved: bool) -> datetime | None:
    if not resolved:
        return None
    # Only metric alerts carry resolvedDateTime; a health event that says "over" happened
    # when the event did.
    return (_time(ess.get("resolvedDateTime"), "payload.data.essentials.resolvedDateTime")
            or _time(ctx.get("eventTimestamp"), "payload.data.alertContext.eventTimestamp"))


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _labels(ess: Mapping[str, Any], ctx: Mapping[str, Any], props: Mapping[str, Any],
            custom: Mapping[str, Any], targets: list[str], items: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    # Custom properties (and a log alert's properties) are the user's own key/values, the
    # natural thing to route on; Azure's own fields below win on a clash.
    for extra in (custom, props if ctx.get("conditionType") else {}):
        for key, value in extra.items():
            text = _text(value)
            if text is not None:
                labels[str(key)] = text
    for key in ("alertRule", "severity", "signalType", "monitorCondition", "monitoringService",
                "originAlertId", "targetResourceGroup", "targetResourceType"):
        text = _text(ess.get(key))
        if text:
            labels[key] = text
    if items:
        labels["configurationItems"] = ",".join(items)
    if targets:
        parts = targets[0].strip("/").split("/")
        pairs = {parts[i].lower(): parts[i + 1] for i in range(0, len(parts) - 1, 2)}
        for arm, name in (("subscriptions", "subscription"), ("resourcegroups", "resourceGroup")):
            if arm in pairs:
                labels.setdefault(name, pairs[arm])
    for key in ("conditionType", "eventSource", "operationName", "level", "status"):
        text = _text(ctx.get(key))
        if text:
            labels[f"context_{key}"] = text
    for key in ("trackingId", "incidentType", "stage", "service", "region",
                "currentHealthStatus", "previousHealthStatus", "cause"):
        text = _text(props.get(key))
        if text:
            labels[f"health_{key}"] = text
    return labels


def _criteria(ctx: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    # alertContext is free-form: criteria of another shape (a condition that is not an
    # object, allOf that is not a list) only give no description lines and links.
    condition = ctx.get("condition")
    all_of = condition.get("allOf") if isinstance(condition, dict) else None
    return [c for c in all_of if isinstance(c, dict)] if isinstance(all_of, list) else []


def _description(ess: Mapping[str, Any], ctx: Mapping[str, Any],
                 props: Mapping[str, Any]) -> str:
    lines = [first_text(ess, ("description",)) or ""]
    for c in _criteria(ctx):
        what = c.get("metricName") or c.get("searchQuery") or "condition"
        lines.append(f"{what} {c.get('operator', '')} {c.get('threshold', '')} "
                     f"({c.get('timeAggregation', '')}): value {c.get('metricValue')}")
    if isinstance(ctx.get("SearchQuery"), str):  # log search alerts, API before 2021
        lines.append(f"{ctx['SearchQuery']}: {ctx.get('ResultCount')} results")
    lines.append(first_text(props, ("communication", "details")) or "")
    return "\n".join(line.strip() for line in lines if line and line.strip())


def _links(ess: Mapping[str, Any], ctx: Mapping[str, Any], props: Mapping[str, Any],
           targets: list[str]) -> tuple[Link, ...]:
    links: list[Link] = []
    alert_id = ess["alertId"]
    if "/providers/microsoft.alertsmanagement/alerts/" in alert_id.lower():
        links.append(Link(f"{_PORTAL}blade/Microsoft_Azure_Monitoring_Alerts/"
                          f"AlertDetails.ReactView/alertId/{urlquote(alert_id, safe='')}",
                          "Alert"))
    investigate = first_text(ess, ("investigationLink",))
    if investigate:
        links.append(Link(investigate, "Investigate"))
    if targets:
        links.append(Link(f"{_PORTAL}resource{targets[0]}", "Resource"))
    for c in [ctx, *_criteria(ctx)]:
        href = first_text(c, ("linkToFilteredSearchResultsUI", "LinkToFilteredSearchResultsUI",
                              "linkToSearchResultsUI", "LinkToSearchResults"))
        if href:
            links.append(Link(href, "Search results"))
    tracking = first_text(props, ("trackingId",))
    subscription = alert_id.strip("/").split("/")[1] if alert_id.startswith(
        "/subscriptions/") else ""
    if tracking and len(subscription) >= 6:
        # Microsoft's documented short link to an Azure incident for one subscription.
        links.append(Link(f"https://app.azure.com/h/{tracking}/"
                          f"{subscription[:3]}{subscription[-3:]}", "Service Health"))
    return tuple(links)


def _impact(service_kind: str, props: Mapping[str, Any]) -> str | None:
    if service_kind != "servicehealth":
        return None
    service, region = first_text(props, ("service",)), first_text(props, ("region",))
    if service and region:
        return f"{service} in {region}"
    return service
