"""PagerDuty Events API v2 alert events, so any tool that can page PagerDuty can page Baton.

Field mapping (PagerDuty Common Event Format -> common alert):

- ``payload.summary`` -> summary, ``payload.source`` -> resource, ``payload.component`` ->
  component, ``payload.group`` -> service, ``payload.severity`` -> severity (same four
  levels), ``payload.timestamp`` -> started_at, ``payload.class`` -> label ``class``,
  ``client`` -> label ``client``.
- ``payload.custom_details`` -> the description, as compact JSON with sorted keys (a
  plain string as is); its non-empty scalar values also become labels ``detail_<key>``
  (key reduced to ``[A-Za-z0-9_]`` so route matchers can name it).
- ``links`` -> links; ``images`` -> links to the image; ``client_url`` -> a link named
  after ``client``.
- No ``name``: Events v2 has no field naming the rule or check. ``payload.class`` is a
  category many alerts share ("disk usage"), not a name, so it stays a label and the
  summary alone titles the incident, as in PagerDuty.
- ``trigger`` -> firing; ``resolve`` -> resolved; ``acknowledge`` -> firing with
  ``acknowledge=True`` (ingest acknowledges the open incident instead of re-alerting).

A trigger without ``dedup_key`` gets ``sha256`` of the canonical JSON of the event minus
``routing_key``. PagerDuty makes every key-less trigger a new alert (a random UUID); the
hash does the same for different events, yet a sender's retry of the very same event is
deduplicated, and the key is returned in the reply so the sender can resolve it later.
The routing key is left out because it is a credential and rotating it must not change
which alert an event belongs to.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from ..errors import AuthError
from ..model import Alert, Link
from ..plugin import Source
from ..secret import Secret
from ._common import check_payload, parse_timestamp, stable_hash

_PAST = {"trigger": "triggered", "acknowledge": "acknowledged", "resolve": "resolved"}
_NOT_LABEL_CHAR = re.compile(r"[^A-Za-z0-9_]")


class PagerDutyEventsSource(Source):
    """``type: pagerduty-events``: config key ``routing_key`` (a secret, optional)."""

    type: ClassVar[str] = "pagerduty-events"
    payload_def: ClassVar[str | None] = "payload"

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        # Credentials before shape: an unauthenticated sender learns nothing about what a
        # valid body would look like. A body that is not even an object is a plain 400.
        if isinstance(payload, dict):
            self._authenticate(payload.get("routing_key"))
        check_payload(f"sources/{self.type}.schema.json", payload, "PagerDuty Events v2")
        return [self._alert(payload)]

    def response(self, alerts: list[Alert]) -> dict[str, Any]:
        # PagerDuty's own 202 body: senders (and their retry logic) read dedup_key from it.
        out: dict[str, Any] = {"status": "success", "message": "Event processed"}
        if alerts:
            out["dedup_key"] = alerts[0].dedup_key
        return out

    def _authenticate(self, given: Any) -> None:
        expected = self.config.get("routing_key")
        if expected is None:
            return
        if isinstance(expected, str):  # a config loader that did not wrap it; still compare safely
            expected = Secret(expected)
        # Never echo either value: the message is the same for missing and wrong keys.
        if not isinstance(given, str) or not expected.equals(given):
            raise AuthError("routing_key does not match")

    def _alert(self, body: Mapping[str, Any]) -> Alert:
        action: str = body["event_action"]
        event: Mapping[str, Any] = body.get("payload") or {}
        dedup_key: str = body.get("dedup_key") or stable_hash(
            {k: v for k, v in body.items() if k != "routing_key"})
        details = event.get("custom_details")
        labels = _detail_labels(details)
        for key in ("class", "client"):
            value = event.get(key) if key == "class" else body.get(key)
            if isinstance(value, str) and value:
                labels[key] = value
        timestamp = event.get("timestamp")
        return Alert(
            dedup_key=dedup_key,
            status="resolved" if action == "resolve" else "firing",
            # acknowledge and resolve may come without a payload; info is the lowest level,
            # so such an event can never raise the incident's severity.
            severity=event.get("severity") or "info",
            summary=event.get("summary") or f"{_PAST[action]} {dedup_key}",
            source_type=self.type,
            source_name=self.name,
            description=_describe(details),
            service=event.get("group") or None,
            component=event.get("component") or None,
            resource=event.get("source") or None,
            labels=labels,
            links=_links(body),
            # PagerDuty documents ISO 8601 with a "+0000" offset; a missing offset is
            # read as UTC, as PagerDuty does.
            started_at=parse_timestamp(timestamp, "payload.payload.timestamp",
                                       naive_is_utc=True) if timestamp else None,
            acknowledge=action == "acknowledge",
        )


def _describe(details: Any) -> str:
    if details is None:
        return ""
    if isinstance(details, str):
        return details
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _detail_labels(details: Any) -> dict[str, str]:
    labels: dict[str, str] = {}
    if not isinstance(details, dict):
        return labels
    # Sorted, so when two keys reduce to the same label name the same one always wins.
    for key in sorted(details):
        value = details[key]
        if isinstance(value, str):
            if not value:
                continue  # as in Prometheus, an empty label value means no label
            text = value
        elif isinstance(value, bool | int | float):
            text = json.dumps(value)  # true/false and numbers as JSON writes them
        else:
            continue  # objects, lists and null stay in the description only
        labels.setdefault("detail_" + _NOT_LABEL_CHAR.sub("_", key), text)
    return labels


def _links(body: Mapping[str, Any]) -> tuple[Link, ...]:
    links = [Link(x["href"], x.get("text", "")) for x in body.get("links") or ()]
    links += [Link(x["src"], x.get("alt") or "Image") for x in body.get("images") or ()]
    client_url = body.get("client_url")
    if isinstance(client_url, str) and client_url:
        links.append(Link(client_url, body.get("client") or "Client"))
    return tuple(links)
