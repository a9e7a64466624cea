"""Splunk's Webhook alert action: one POST per triggered alert, with the first result row.

Splunk has no alert state: every POST is a firing, and nothing says the problem is over.
Searches that know (e.g. ``| eval status=if(count>0,"firing","ok")`` with the alert set to
trigger always) can name that field in ``status_field``. Which rows are one problem is the
user's call too: ``dedup_fields`` names the result fields that tell problems apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from ..errors import PayloadError
from ..model import Alert, Link, Severity
from ..plugin import Source
from ._common import check_payload, first_text, parse_time, stable_hash

# Splunk Enterprise Security's severities and urgencies, syslog levels, Splunk's own
# alert.severity numbers (1 debug .. 6 fatal) and the usual P1..P5, lowercased.
SEVERITY_WORDS: dict[str, Severity] = {
    **dict.fromkeys(("critical", "fatal", "severe", "emergency", "alert", "crit", "p1", "6",
                     "5"), "critical"),
    **dict.fromkeys(("high", "error", "err", "major", "p2", "4"), "error"),
    **dict.fromkeys(("medium", "warning", "warn", "minor", "p3", "3"), "warning"),
    **dict.fromkeys(("low", "info", "informational", "notice", "debug", "p4", "p5", "2",
                     "1"), "info"),
}
RESOLVED_VALUES = ("resolved", "ok", "clear", "cleared", "recovered", "closed", "normal")

_FIELDS: dict[str, tuple[str, ...]] = {
    "service": ("service",), "component": ("component",),
    "environment": ("environment", "env"), "resource": ("host",)}
# Past this the readable key (search name and field values) becomes a hash of them.
_MAX_KEY = 200


class SplunkSource(Source):
    """``type: splunk``: config keys ``dedup_fields``, ``severity_field``,
    ``default_severity``, ``status_field``, ``resolved_values``."""

    type: ClassVar[str] = "splunk"
    payload_def: ClassVar[str | None] = "payload"
    # Whatever field the severity comes from, its value is kept under this label.
    severity_label: ClassVar[str | None] = "severity"

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        check_payload(f"sources/{self.type}.schema.json", payload, "Splunk webhook")
        return [self._alert(payload)]

    def _alert(self, body: Mapping[str, Any]) -> Alert:
        result: Mapping[str, Any] = body.get("result") or {}
        row = {k: text for k, v in result.items() if (text := _value(v)) is not None}
        search = body.get("search_name") or ""
        app = body.get("app") or ""
        dedup_fields: Sequence[str] = self.config.get("dedup_fields") or ()
        picked = [(f, row.get(f, "")) for f in dedup_fields]
        # An ad hoc search has no name (search_name null): each run is its own problem.
        key = self._key(app, search or f"sid={body['sid']}", picked)
        labels = {k: v for k, v in row.items() if not k.startswith("_") and v}
        severity_field = self.config.get("severity_field") or "severity"
        original = row.get(severity_field, "")
        labels.pop("severity", None)
        if original:
            labels["severity"] = original
        for name in ("search_name", "app", "owner", "sid"):
            value = body.get(name)
            if isinstance(value, str) and value:
                labels[name] = value
        default: Severity = self.config.get("default_severity") or "warning"
        resolved = self._resolved(row)
        when = _time(row.get("_time"))
        shown = ", ".join(f"{f}={v}" for f, v in picked if v)
        summary = search or f"Splunk search {body['sid']}"
        results_link = body.get("results_link")
        return Alert(
            dedup_key=key,
            status="resolved" if resolved else "firing",
            severity=SEVERITY_WORDS.get(original.strip().lower(), default),
            summary=f"{summary}: {shown}" if shown else summary,
            source_type=self.type,
            source_name=self.name,
            description=first_text(row, ("description", "message", "_raw")) or "",
            service=first_text(row, _FIELDS["service"]),
            component=first_text(row, _FIELDS["component"]),
            environment=first_text(row, _FIELDS["environment"]),
            resource=first_text(row, _FIELDS["resource"]),
            labels=labels,
            links=(Link(results_link, "Results"),)
            if isinstance(results_link, str) and results_link else (),
            started_at=None if resolved else when,
            ended_at=when if resolved else None,
            name=search or None,
        )

    def _key(self, app: str, search: str, picked: list[tuple[str, str]]) -> str:
        key = f"splunk:{app}/{search}"
        if picked:
            key += "|" + ",".join(f"{f}={v}" for f, v in picked)
        if len(key) > _MAX_KEY:
            key = "splunk:" + stable_hash([app, search, picked])
        return key

    def _resolved(self, row: Mapping[str, str]) -> bool:
        field = self.config.get("status_field")
        if not field:
            return False
        words = self.config.get("resolved_values") or RESOLVED_VALUES
        return row.get(field, "").strip().lower() in {w.lower() for w in words}


def _value(value: Any) -> str | None:
    """A result value as a label value: Splunk sends strings, and lists of strings for
    multivalue fields; anything else a search may produce is kept as JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    except RecursionError:  # as deep as the JSON decoder allows: the sender's 400
        raise PayloadError("payload.result: a value is nested too deeply",
                           ["payload.result: nested too deeply"]) from None


def _time(value: str | None) -> datetime | None:
    # A search may rewrite _time into any text (strftime); a time Baton cannot read is
    # no reason to drop the alert, so it is left unset rather than refused.
    try:
        return parse_time(value, "payload.result._time")
    except PayloadError:
        return None
