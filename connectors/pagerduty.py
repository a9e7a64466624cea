"""PagerDuty Events API v2: one page per incident, kept in step by ``dedup_key``.

Every action POSTs one event to ``/v2/enqueue``. The ``dedup_key`` is ``baton-<incident
id>``: the same on every retry and for every action, so PagerDuty itself folds a retried
trigger into the open alert (no duplicate page), an ``update`` (escalation, a new alert in
the group) re-triggers and so refreshes that alert, and acknowledge/resolve reach the alert
the trigger opened. The Events API has no notes, so a ``note`` is answered ok without a call.

The routing key travels in the JSON body, never in the URL; it is still scrubbed from any
text we return, in case an error page or a library message echoes the request.

Callbacks: a PagerDuty Generic Webhook (v3) subscription pointed at
``/v1/callbacks/<name>`` reports incident.acknowledged, incident.resolved and
incident.annotated. Each request is signed in ``X-PagerDuty-Signature`` (``v1=<hex
HMAC-SHA256 of the raw body>``, several comma-separated while PagerDuty rotates the
secret); any configured secret matching any signature verifies it. The incident is the one
whose dedup key (``incident_key`` there) is ``baton-<id>``; other PagerDuty incidents are
ignored. incident.annotated is read the same way, from ``data.incident.incident_key``, but
PagerDuty's v3 documentation gives that ``data.incident`` as an ``incident_reference``
(id, summary, links) without the key, and the Events API answers with no PagerDuty incident
id to match it by: such notes are accepted and dropped, as the schema says. Changes made
through an integration (Baton's own events come back this way) are skipped, so an
acknowledge Baton sent is not heard back as a human's.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp

from baton import __version__
from baton.errors import ConfigError, PayloadError
from baton.model import ExternalRef, Notification, Outcome
from baton.plugin import CallbackEvent, Connector, classify_status
from baton.secret import Secret

from . import _callback
from ._text import clip, one_line

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_SOURCE = "baton"
USER_AGENT = f"baton/{__version__}"
# The Events API v2 limits ("Send an Alert Event", developer.pagerduty.com/docs/
# events-api-v2/trigger-events): payload.summary at most 1024 characters, dedup_key at
# most 255, the whole event at most 512 KB. source, component, group and class have no
# documented limit; they name one thing each, so Baton keeps them one line and at most
# FIELD_CHARS.
SUMMARY_CHARS = 1024
FIELD_CHARS = 255
EVENT_BYTES = 512 * 1024
SEVERITIES = frozenset({"critical", "error", "warning", "info"})
EVENT_ACTIONS = {"trigger": "trigger", "update": "trigger",
                 "acknowledge": "acknowledge", "resolve": "resolve"}
_DETAIL_CHARS = 200
_READ_BYTES = 1024  # enough for the vendor's short error; never buffer a large page
_CHALLENGE = 'PagerDuty-Signature realm="baton"'
_WEBHOOK_ACTIONS = {"incident.acknowledged": "acknowledge", "incident.resolved": "resolve",
                    "incident.annotated": "note"}
# Agents that are integrations rather than people: Events API changes, Baton's included.
_INTEGRATION_AGENTS = ("service_reference", "integration_reference",
                       "inbound_integration_reference", "events_api_v2_inbound_integration")


def _field(value: Any) -> str | None:
    """An optional one-line payload field, or None when there is nothing to send."""
    if value is None:
        return None
    return clip(one_line(str(value)), FIELD_CHARS) or None


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode())


def _fit(event: dict[str, Any]) -> None:
    """Keep the event within PagerDuty's 512 KB: links, then labels, are dropped from the
    end (how many is said in custom_details) until it fits."""
    details = event["payload"]["custom_details"]
    labels: dict[str, Any] = details.get("labels") or {}
    links: list[Any] = event.get("links") or []
    while (excess := _size(event) - EVENT_BYTES) > 0 and (links or labels):
        # Each item's own size, with the ", " that joined it: one pass drops what is
        # needed, and the size is measured again before deciding it fits.
        excess += 32  # room for the counts written below
        while excess > 0 and links:
            excess -= _size(links.pop()) + 2
            details["links_omitted"] = details.get("links_omitted", 0) + 1
        while excess > 0 and labels:
            key = next(reversed(labels))
            excess -= _size({key: labels.pop(key)})  # its braces stand for the ", "
            details["labels_omitted"] = details.get("labels_omitted", 0) + 1
    if not links:
        event.pop("links", None)


class PagerDutyConnector(Connector):
    """Sends Events API v2 events; see ``schemas/connectors/pagerduty.schema.json``."""

    type: ClassVar[str] = "pagerduty"
    idempotent: ClassVar[bool] = True  # PagerDuty dedups on dedup_key

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        key: str | Secret = config["routing_key"]
        self._key = key.reveal() if isinstance(key, Secret) else key
        if len(self._key) != 32:  # the message never quotes the value
            raise ConfigError([f"connectors.{name}.routing_key: must be 32 characters "
                               "(the Integration Key of an Events API v2 integration)"])
        self._url: str = config.get("url") or DEFAULT_URL
        self._source: str | None = config.get("source")
        self._webhook_secrets = _callback.reveal_all(config.get("webhook_secrets"))

    @property
    def accepts_callbacks(self) -> bool:  # type: ignore[override]
        return bool(self._webhook_secrets)

    def callback(self, body: bytes, headers: Mapping[str, str],
                 now: float) -> list[CallbackEvent]:
        header = headers.get("X-PagerDuty-Signature", "")
        candidates = [part.strip()[3:] for part in header.split(",")
                      if part.strip().startswith("v1=")]
        _callback.require(bool(candidates), "missing X-PagerDuty-Signature", _CHALLENGE)
        _callback.require(
            _callback.any_signature_matches(self._webhook_secrets, body, candidates),
            "X-PagerDuty-Signature does not match the body", _CHALLENGE)
        event = _callback.json_object(body).get("event")
        if not isinstance(event, dict) or not isinstance(event.get("event_type"), str) \
                or not isinstance(event.get("id"), str) \
                or not isinstance(event.get("data"), dict):
            raise PayloadError("not a PagerDuty v3 webhook: event.id, event.event_type "
                               "and event.data are required", ["event"])
        action = _WEBHOOK_ACTIONS.get(event["event_type"])
        agent: dict[str, Any] = event["agent"] if isinstance(event.get("agent"), dict) else {}
        if action is None or str(agent.get("type", "")) in _INTEGRATION_AGENTS:
            return []
        data = event["data"]
        incident = data.get("incident") if action == "note" else data
        key = incident.get("incident_key") if isinstance(incident, dict) else None
        if not isinstance(key, str) or not key.startswith("baton-"):
            # Not an incident Baton opened, or a note naming its incident by reference only.
            return []
        actor = str(agent.get("summary") or agent.get("id") or "someone")
        text = data.get("content") if action == "note" else None
        return [CallbackEvent(action, event["id"], f"{actor} (pagerduty)",  # type: ignore[arg-type]
                              incident_id=key.removeprefix("baton-"),
                              text=str(text) if text is not None else None)]

    def _scrub(self, text: str, limit: int = _DETAIL_CHARS * 2) -> str:
        return self.scrub(text, limit)


    @staticmethod
    def dedup_key(incident: Mapping[str, Any]) -> str:
        return f"baton-{incident['id']}"

    def _payload(self, notification: Notification) -> dict[str, Any]:
        incident = notification.incident
        alerts: list[Mapping[str, Any]] = list(incident.get("alerts") or [])
        first: Mapping[str, Any] = alerts[0] if alerts else {}
        labels: Mapping[str, str] = incident.get("labels") or {}
        severity = incident.get("severity")
        details: dict[str, Any] = {
            "incident_id": incident["id"],
            "key": incident.get("key"),
            "labels": dict(labels),
            "escalation_level": (incident.get("escalation") or {}).get("level"),
        }
        if person := notification.target.get("person"):
            details["target"] = person
        payload: dict[str, Any] = {
            # A one-line field in PagerDuty's lists and pages: whitespace collapsed.
            "summary": clip(one_line(str(incident.get("title") or "")) or incident["id"],
                            SUMMARY_CHARS),
            "source": _field(self._source or first.get("resource")) or DEFAULT_SOURCE,
            "severity": severity if severity in SEVERITIES else "error",
            "timestamp": incident.get("created_at"),
            "component": _field(first.get("component")),
            "group": _field(incident.get("service")),
            "class": _field(labels.get("alertname")),
            "custom_details": details,
        }
        return {k: v for k, v in payload.items() if v is not None}

    def _event(self, notification: Notification, event_action: str) -> dict[str, Any]:
        event: dict[str, Any] = {
            "routing_key": self._key,
            "event_action": event_action,
            "dedup_key": self.dedup_key(notification.incident),
        }
        if event_action == "trigger":
            # acknowledge/resolve need only the key; PagerDuty ignores a payload on them.
            event["payload"] = self._payload(notification)
            event["client"] = "Baton"
            links = [{"href": link["href"], "text": link.get("text") or link["href"]}
                     for alert in notification.incident.get("alerts") or []
                     for link in alert.get("links") or [] if link.get("href")]
            if links:
                event["links"] = links
            _fit(event)
        return event

    async def send(self, notification: Notification, http: aiohttp.ClientSession) -> Outcome:
        event_action = EVENT_ACTIONS.get(notification.action)
        if event_action is None:
            return Outcome.ok("PagerDuty Events API has no notes; skipped")
        dedup_key = self.dedup_key(notification.incident)
        body = json.dumps(self._event(notification, event_action), ensure_ascii=False)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        # Only connection-level failures are caught: CancelledError (the dispatcher's
        # timeout or shutdown) must propagate, or a hung vendor would wedge the worker.
        try:
            async with http.post(self._url, data=body.encode(), headers=headers,
                                 allow_redirects=False) as resp:
                text = (await resp.content.read(_READ_BYTES)).decode("utf-8", "replace")
                detail = f"HTTP {resp.status} {event_action} {dedup_key}"
                if not 200 <= resp.status < 300 and (
                        reason := self._scrub(text, _DETAIL_CHARS)):
                    detail += f": {reason}"
                outcome = classify_status(
                    resp.status, self._scrub(detail), resp.headers.get("Retry-After"))
        except aiohttp.InvalidURL:
            return Outcome.permanent(f"invalid URL {self._url}")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            # OSError covers refused/unreachable; TimeoutError a session-level timeout.
            message = f"{type(exc).__name__} posting to {self._url}: {exc}"
            return Outcome.retryable(self._scrub(message))
        if outcome.kind != "ok":
            return outcome
        return dataclasses.replace(outcome, external_ref=ExternalRef(self.name, dedup_key))
