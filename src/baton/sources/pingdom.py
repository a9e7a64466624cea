"""Pingdom state change webhooks, for uptime checks and transaction (TMS) checks.

Pingdom posts when a check changes state: an uptime check between UP and DOWN (with
UNCONFIRMED_DOWN while a second probe verifies a failure, and UNKNOWN when it cannot tell),
a transaction check between SUCCESS and FAILING. The check is the problem, so its
``check_id`` is the dedup key: the DOWN and the UP that follows land on one incident.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from ..model import Alert, Condition, Link, Severity
from ..plugin import Source
from ._common import check_payload, first_text, parse_time

SEVERITY: dict[str, Severity] = {"HIGH": "critical", "LOW": "warning"}

_UP = {"UP", "SUCCESS"}
_DOWN = {"DOWN", "FAILING"}
# The user's "Test" button in My Pingdom sends a made-up DOWN with this text.
_TEST_TEXT = "this is a test message triggered by a user"


class PingdomSource(Source):
    """``type: pingdom``: config keys ``default_severity``, ``unconfirmed_down``."""

    type: ClassVar[str] = "pingdom"
    payload_def: ClassVar[str | None] = "payload"
    severity_label: ClassVar[str | None] = "importance_level"

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        check_payload(f"sources/{self.type}.schema.json", payload, "Pingdom webhook")
        state = payload["current_state"].upper()
        handling = self.config.get("unconfirmed_down") or "warning"
        if state == "UNCONFIRMED_DOWN" and handling == "ignore":
            return []
        return [self._alert(payload, state, handling)]

    def _alert(self, body: Mapping[str, Any], state: str, handling: str) -> Alert:
        importance = (first_text(body, ("importance_level",)) or "").upper()
        severity: Severity = SEVERITY.get(importance) or \
            self.config.get("default_severity") or "error"
        # Pingdom re-checks a failure from a second location before it says DOWN; until
        # then it is a suspicion: it opens the incident, but at most as a warning, so
        # routes that page on critical wait for the confirmation (same key, higher
        # severity) or the UP that cancels it.
        if state == "UNCONFIRMED_DOWN" and handling == "warning" and severity != "info":
            severity = "warning"
        resolved = state in _UP
        condition: Condition = "normal"
        long_text = first_text(body, ("long_description",)) or ""
        if _TEST_TEXT in long_text.lower():
            condition = "test"
        elif state == "UNKNOWN":
            condition = "no_data"
        raw_params = body.get("check_params")
        params: Mapping[str, Any] = raw_params if isinstance(raw_params, dict) else {}
        name = first_text(body, ("check_name",)) or f"Pingdom check {body['check_id']}"
        short = first_text(body, ("description", "error_message"))
        summary = f"{name} is {state}" + (f": {short}" if short and not resolved else "")
        changed = _changed(body)
        labels = _labels(body, params, state)
        return Alert(
            # A test names a real check: kept apart, it cannot open or join the incident of
            # that check's real outages.
            dedup_key=f"pingdom{'-test' if condition == 'test' else ''}:{body['check_id']}",
            status="resolved" if resolved else "firing",
            severity=severity,
            summary=summary,
            source_type=self.type,
            source_name=self.name,
            description="\n\n".join(
                t for t in (long_text, first_text(body, ("custom_message",))) if t),
            environment=first_text(labels, ("environment", "env")),
            service=first_text(labels, ("service",)),
            resource=first_text(params, ("full_url", "hostname")) or name,
            labels=labels,
            links=_links(params),
            started_at=None if resolved else changed,
            ended_at=changed if resolved else None,
            name=first_text(body, ("check_name",)),
            condition=condition,
        )


def _changed(body: Mapping[str, Any]) -> datetime | None:
    stamp = body.get("state_changed_timestamp")
    if stamp:
        return parse_time(stamp, "payload.state_changed_timestamp")
    # The same moment as a UTC date-time without an offset.
    return parse_time(body.get("state_changed_utc_time"), "payload.state_changed_utc_time")


def _labels(body: Mapping[str, Any], params: Mapping[str, Any], state: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    tags = [t for t in body.get("tags") or () if isinstance(t, str) and t]
    for tag in tags:
        # Pingdom tags are plain words; "key:value" ones are the closest thing to labels.
        name, sep, word = tag.partition(":")
        if sep and name and word:
            labels.setdefault(name, word)
    if tags:
        labels["tags"] = ",".join(tags)
    for source, keys in ((body, ("check_id", "check_name", "check_type", "importance_level",
                                 "previous_state")), (params, ("hostname", "port"))):
        for key in keys:
            value = source.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
                labels[key] = str(value)
    labels["current_state"] = state
    for probe in ("first_probe", "second_probe"):
        location = first_text(body.get(probe), ("location",))
        if location:
            labels[f"{probe}_location"] = location
    return labels


def _links(params: Mapping[str, Any]) -> tuple[Link, ...]:
    url = first_text(params, ("full_url",))
    return (Link(url, "Checked URL"),) if url and url.startswith(("http://", "https://")) \
        else ()
