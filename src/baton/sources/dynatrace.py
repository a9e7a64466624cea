"""Dynatrace problem notifications through a "Custom integration" (webhook).

The body is a template the user writes with placeholders ({State}, {PID}, {ProblemID},
...); the schema description gives the template to paste. Dynatrace's own example template
is accepted too (it has no {ProblemSeverity} and spells the URL key "Problem URL").

``{PID}`` is the problem's internal identifier and ``{ProblemID}`` its display number
(P-1234 in the UI). Both stay the same for the OPEN and RESOLVED notifications of one
problem, but display numbers are short counters meant for people, while the PID is the
identifier the Problems API uses; the PID is the key, the display number the fallback for
templates without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from ..errors import PayloadError
from ..model import Alert, Condition, Link, Severity
from ..plugin import Source
from ._common import check_payload, first_text, parse_time

SEVERITY: dict[str, Severity] = {
    "AVAILABILITY": "critical",
    "ERROR": "error",
    "PERFORMANCE": "warning",
    "RESOURCE_CONTENTION": "warning",
    "CUSTOM_ALERT": "warning",
    "MONITORING_UNAVAILABLE": "warning",
    "INFO": "info",
}

# Without {ProblemSeverity} in the template, the impact level is the next best hint:
# problems that reach real users' applications or services outrank infrastructure ones.
IMPACT_SEVERITY: dict[str, Severity] = {
    "APPLICATION": "error",
    "SERVICE": "error",
    "INFRASTRUCTURE": "warning",
    "ENVIRONMENT": "warning",
}

# What "Send test notification" fills the placeholders with.
TEST_TITLE = "Dynatrace problem notification test run"
_TEST_IDS = ("999", "99999")

_TAG_FIELDS = {"service": ("service", "app"), "environment": ("environment", "env")}


class DynatraceSource(Source):
    """``type: dynatrace``: config key ``default_severity``."""

    type: ClassVar[str] = "dynatrace"
    payload_def: ClassVar[str | None] = "payload"
    severity_label: ClassVar[str | None] = "severity"

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        if isinstance(payload, dict):
            payload = _placeholder_keys(payload)
        # Said plainly: the schema's anyOf would answer with the whole body quoted.
        if isinstance(payload, dict) and not (_id(payload.get("PID"))
                                              or _id(payload.get("ProblemID"))):
            raise PayloadError("PID: required (or ProblemID): add \"PID\": \"{PID}\" to the "
                               "custom payload", ["payload.PID: required (or payload.ProblemID)"])
        check_payload(f"sources/{self.type}.schema.json", payload, "Dynatrace problem")
        return [self._alert(payload)]

    def _alert(self, body: Mapping[str, Any]) -> Alert:
        state = body["State"].upper()
        pid, display = _id(body.get("PID")), _id(body.get("ProblemID"))
        dedup_key = f"dynatrace:{pid}" if pid else f"dynatrace-problem:{display}"
        problem_severity = (first_text(body, ("ProblemSeverity",)) or "").upper()
        impact = (first_text(body, ("ProblemImpact",)) or "").upper()
        severity: Severity = SEVERITY.get(problem_severity) or IMPACT_SEVERITY.get(impact) \
            or self.config.get("default_severity") or "warning"
        condition: Condition = "normal"
        if first_text(body, ("ProblemTitle",)) == TEST_TITLE or (display, pid) == _TEST_IDS:
            condition = "test"
        elif problem_severity == "MONITORING_UNAVAILABLE":
            condition = "no_data"
        entities = [e for e in body.get("ImpactedEntities") or () if isinstance(e, dict)]
        names = [n for n in (first_text(e, ("name",)) for e in entities) if n]
        labels = _labels(body, pid, display, problem_severity, impact, entities)
        details = body.get("ProblemDetailsJSON")
        details = details if isinstance(details, dict) else {}
        resolved = state in ("RESOLVED", "CLOSED", "MERGED")
        return Alert(
            dedup_key=dedup_key,
            status="resolved" if resolved else "firing",
            severity=severity,
            summary=first_text(body, ("ProblemTitle",))
            or f"Dynatrace problem {display or pid}",
            source_type=self.type,
            source_name=self.name,
            description=first_text(body, ("ProblemDetailsText", "ProblemDetailsMarkdown"))
            or "",
            service=first_text(labels, ("service", "app")),
            environment=first_text(labels, ("environment", "env")),
            resource=first_text(body, ("ImpactedEntity", "ImpactedEntityNames"))
            or (", ".join(names) if names else None),
            labels=labels,
            links=_links(body),
            started_at=_epoch(details.get("startTime"), "payload.ProblemDetailsJSON.startTime"),
            ended_at=_epoch(details.get("endTime"), "payload.ProblemDetailsJSON.endTime")
            if resolved else None,
            impact=impact.lower() if impact else None,
            name=first_text(body, ("ProblemTitle",)),
            condition=condition,
        )


# Placeholder names by their key with case, "_" and spaces ignored, for templates that
# spell them their own way ("problem_id", "problemTitle", "Problem URL"), plus the keys the
# published templates use for a placeholder under another name: Zenduty's and Harness's
# "ProblemDetails" ({ProblemDetailsText}), "url", "title", "severity", "impact".
_KEYS: dict[str, str] = {
    **{k.lower(): k for k in (
        "State", "PID", "ProblemID", "ProblemTitle", "ProblemSeverity", "ProblemImpact",
        "ProblemURL", "ProblemDetailsText", "ProblemDetailsMarkdown", "ProblemDetailsJSON",
        "ImpactedEntity", "ImpactedEntityNames", "ImpactedEntities", "Tags")},
    "problemdetails": "ProblemDetailsText", "url": "ProblemURL", "title": "ProblemTitle",
    "severity": "ProblemSeverity", "severitylevel": "ProblemSeverity",
    "impact": "ProblemImpact", "status": "State",
}


def _placeholder_keys(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The body with every key Baton knows under its placeholder's name; the exact name
    wins where a body has two spellings; keys Baton does not know stay as they are."""
    out = dict(payload)
    for key, value in payload.items():
        name = _KEYS.get("".join(c for c in key.lower() if c not in "_ -"))
        if name and name != key and name not in payload and name not in out:
            out[name] = value
    if "State" not in out:
        # A template without {State} reports problems opening (Dynatrace's default
        # notification); it cannot say one is over.
        out["State"] = "OPEN"
    return out


def _id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    text = str(value).strip()
    # An unfilled placeholder means the template was saved with a typo, not an id.
    return "" if text.startswith("{") else text


def _epoch(value: Any, path: str) -> datetime | None:
    # Problem details use -1 for "not yet" (an open problem's end).
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return parse_time(value, path)
    return None


def _labels(body: Mapping[str, Any], pid: str, display: str, severity: str, impact: str,
            entities: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    labels: dict[str, str] = {}
    tags = first_text(body, ("Tags",))
    if tags:
        labels["tags"] = tags
        for tag in tags.split(","):
            pair = _tag(tag.strip())
            if pair:
                labels.setdefault(*pair)
    for key, value in (("pid", pid), ("problem_id", display), ("severity", severity),
                       ("impact", impact), ("state", body["State"].upper())):
        if value:
            labels[key] = value
    ids = [e["entity"] for e in entities if isinstance(e.get("entity"), str)]
    if ids:
        labels["entities"] = ",".join(ids)
    types = sorted({e["type"] for e in entities if isinstance(e.get("type"), str)})
    if types:
        labels["entity_types"] = ",".join(types)
    return labels


def _tag(tag: str) -> tuple[str, str] | None:
    """A tag "[Context]key:value" or "key:value" as (key, value); the context prefix is
    Dynatrace's source of it. None for a tag without a value.

    str.partition and strip only (no regex): linear in the tag's length however it is
    crafted.
    """
    if tag.startswith("["):
        _, sep, rest = tag.partition("]")
        # "[a:b]c" has no key after its prefix: the whole tag is then "[a" : "b]c".
        pair = _key_value(rest) if sep else None
        if pair:
            return pair
    return _key_value(tag)


def _key_value(text: str) -> tuple[str, str] | None:
    # A value is one line (as the regex this replaced had it).
    key, sep, value = text.partition(":")
    key, value = key.strip(), value.lstrip()
    if not sep or not key or not value or "\n" in value:
        return None
    return key, value


def _links(body: Mapping[str, Any]) -> tuple[Link, ...]:
    href = first_text(body, ("ProblemURL", "Problem URL"))
    return (Link(href, "Problem"),) if href else ()
