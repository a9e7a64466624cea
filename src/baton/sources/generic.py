"""Baton's own alert format: the common alert, as JSON, for senders without an adapter.

Accepts one alert object, a list of up to 1000, or ``{"alerts": [...]}``. The schema
refuses unknown fields, so a misspelt ``sumary`` is a 400 rather than an alert with no
summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from ..model import Alert, Link, Severity
from ..plugin import Source
from ._common import check_payload, parse_timestamp


class GenericSource(Source):
    """``type: generic``: config key ``default_severity``."""

    type: ClassVar[str] = "generic"
    payload_def: ClassVar[str | None] = "payload"

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        check_payload(f"sources/{self.type}.schema.json", payload, "generic alert")
        # The schema has already decided which of the three forms this is; the paths
        # mirror the body so an error points at the right element.
        if isinstance(payload, list):
            items = [(f"payload[{i}]", item) for i, item in enumerate(payload)]
        elif "alerts" in payload:
            items = [(f"payload.alerts[{i}]", item) for i, item in enumerate(payload["alerts"])]
        else:
            items = [("payload", payload)]
        return [self._alert(item, path) for path, item in items]

    def _alert(self, item: Mapping[str, Any], path: str) -> Alert:
        default: Severity = self.config.get("default_severity") or "warning"
        return Alert(
            dedup_key=item["dedup_key"],
            status=item.get("status", "firing"),
            severity=item.get("severity", default),
            summary=item["summary"],
            # The sender's own "source" (if any) is ignored: the alert came in through this
            # source, and routing and dedup scope must not be spoofable from the body.
            source_type=self.type,
            source_name=self.name,
            description=item.get("description", ""),
            service=item.get("service"),
            component=item.get("component"),
            environment=item.get("environment"),
            resource=item.get("resource"),
            labels=dict(item.get("labels") or {}),
            links=tuple(Link(x["href"], x.get("text", "")) for x in item.get("links") or ()),
            started_at=_time(item.get("started_at"), f"{path}.started_at"),
            ended_at=_time(item.get("ended_at"), f"{path}.ended_at"),
            impact=item.get("impact"),
            name=item.get("name") or None,
        )


def _time(value: str | None, path: str) -> datetime | None:
    # The schema says "format": "date-time", which jsonschema only enforces when an
    # optional package is installed; the parser always does, and its message names the
    # element and says what is missing (e.g. the UTC offset).
    return None if value is None else parse_timestamp(value, path)
