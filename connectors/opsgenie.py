"""Opsgenie Alert API v2: one alert per incident, addressed by its alias.

The alias is ``baton-<incident id>``. Opsgenie keeps at most one open alert per alias and
folds a second create into it (its count goes up), so a retry after a lost response never
opens a second page: that is the vendor's dedup. ``update`` (escalated, new alert in the
group) adds a note saying what the incident is now. ``acknowledge``, ``resolve``, ``note``
and ``update`` address the alert by alias (``identifierType=alias``), so they need nothing
stored from the create.

A ``note`` sends the incident's last timeline note when the document carries a timeline;
the dispatcher may hand over an incident without one, and then the note says only that
the incident was updated in Baton (the text is in the Baton timeline, not lost).

Opsgenie answers 202 and processes requests asynchronously; a 202 is success here, and the
external reference is the alias (there is no stable alert URL before processing).

Callbacks: an Opsgenie Webhook integration (with "Add Alert Description to Payload" off
or on, either works) pointed at ``/v1/callbacks/<name>``, with a custom header
``Authorization: Bearer <callback_token>``. Its Acknowledge, Close and AddNote actions on
alerts whose alias is ``baton-<id>`` are applied in Baton. Actions whose source is
``baton`` are Baton's own requests echoed back and are skipped.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import aiohttp

from baton import __version__
from baton.errors import PayloadError
from baton.model import ExternalRef, Notification, Outcome
from baton.plugin import CallbackAction, CallbackEvent, Connector, classify_status
from baton.secret import Secret

from . import _callback
from ._config import base_url
from ._text import clip, one_line

BASE_URLS = {"us": "https://api.opsgenie.com", "eu": "https://api.eu.opsgenie.com"}
PRIORITIES = {"critical": "P1", "error": "P2", "warning": "P3", "info": "P5"}
# Opsgenie's documented limits (Alert API, "Create Alert"; "Alerts and Alert Fields"),
# in characters: longer values are refused or cut by Opsgenie, so Baton cuts them first.
MESSAGE_CHARS = 130
ALIAS_CHARS = 512
DESCRIPTION_CHARS = 15000
ENTITY_CHARS = 512
SOURCE_CHARS = USER_CHARS = 100
NOTE_CHARS = 25000
TAGS, TAG_CHARS = 20, 50
RESPONDERS = 50
DETAILS_CHARS = 8000  # keys and values together
GENERIC_NOTE = "Incident updated in Baton."
_OPS = {"acknowledge": "acknowledge", "resolve": "close", "note": "notes", "update": "notes"}
_DETAIL_CHARS = 200
_READ_BYTES = 1024  # enough for Opsgenie's short error JSON
_CALLBACK_ACTIONS: dict[str, CallbackAction] = {
    "Acknowledge": "acknowledge", "Close": "resolve", "AddNote": "note"}
_CHALLENGE = 'Bearer realm="baton-callbacks"'


def _clip(text: str, limit: int) -> str:
    return clip(text, limit)


def _html(text: str, limit: int) -> str:
    """``text`` for a field Opsgenie renders as HTML (the message, by its "Alerts and Alert
    Fields" page; the description, as Opsgenie shows it): escaped, so markup in a title
    shows as text, and cut so that the escaped form keeps to ``limit`` characters, which
    is what Opsgenie counts, without halving an entity."""
    whole = html.escape(text, quote=False)
    if len(whole) <= limit:
        return whole
    shown: list[str] = []
    used = 0
    for ch in text:
        escaped = html.escape(ch, quote=False)
        if used + len(escaped) > limit - 1:  # room for the ellipsis
            break
        shown.append(escaped)
        used += len(escaped)
    return "".join(shown) + "…"


def _details(pairs: Mapping[str, Any]) -> dict[str, str]:
    """String pairs within Opsgenie's 8,000 characters for all keys and values: the
    later ones are cut, then left out, when the whole would be longer."""
    room, out = DETAILS_CHARS, {}
    for key, value in pairs.items():
        if value is None:
            continue
        key = str(key)
        text = clip(str(value), max(0, room - len(key)))
        if not text or len(key) + len(text) > room:
            break
        out[key] = text
        room -= len(key) + len(text)
    return out


def _tags(configured: list[str]) -> list[str]:
    """Configured tags plus ``baton``: at most 20, each at most 50 characters."""
    tags = [clip(one_line(t), TAG_CHARS) for t in configured]
    return list(dict.fromkeys([t for t in tags if t] + ["baton"]))[-TAGS:]


def _user(name: Any) -> str:
    return _clip(one_line(str(name or "")) or "baton", USER_CHARS)


class OpsgenieConnector(Connector):
    """One alert per incident, by alias; see ``schemas/connectors/opsgenie.schema.json``."""

    type: ClassVar[str] = "opsgenie"
    idempotent: ClassVar[bool] = True

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        key: str | Secret = config["api_key"]
        self._key = key.reveal() if isinstance(key, Secret) else key
        self.base_url = base_url(name, "url",
                                 config.get("url") or BASE_URLS[config.get("region", "us")])
        self._responders: list[dict[str, str]] = list(config.get("responders") or [])
        self._tags: list[str] = list(config.get("tags") or [])
        self._callback_tokens = _callback.reveal_all(config.get("callback_token"))

    @property
    def accepts_callbacks(self) -> bool:  # type: ignore[override]
        return bool(self._callback_tokens)

    def callback(self, body: bytes, headers: Mapping[str, str],
                 now: float) -> list[CallbackEvent]:
        scheme, _, given = headers.get("Authorization", "").partition(" ")
        _callback.require(scheme.lower() == "bearer" and bool(given),
                          "missing bearer token", _CHALLENGE)
        _callback.require(_callback.any_token_matches(self._callback_tokens, given.strip()),
                          "wrong bearer token", _CHALLENGE)
        doc = _callback.json_object(body)
        alert, action = doc.get("alert"), doc.get("action")
        if not isinstance(alert, dict) or not isinstance(action, str) \
                or not isinstance(alert.get("alertId"), str):
            raise PayloadError("not an Opsgenie webhook: action and alert.alertId are "
                               "required", ["alert"])
        ours = _CALLBACK_ACTIONS.get(action)
        source = doc.get("source") if isinstance(doc.get("source"), dict) else {}
        alias = alert.get("alias")
        if ours is None or str((source or {}).get("name", "")) == "baton" \
                or not isinstance(alias, str) or not alias.startswith("baton-"):
            return []
        actor = str(alert.get("username") or "someone")
        event_id = f"{alert['alertId']}/{action}/{alert.get('updatedAt', '')}"
        return [CallbackEvent(ours, event_id, f"{actor} (opsgenie)",
                              incident_id=alias.removeprefix("baton-"),
                              text=str(alert.get("note") or "") if ours == "note" else None)]

    def alias(self, incident: Mapping[str, Any]) -> str:
        return f"baton-{incident['id']}"

    def endpoint(self, action: str, alias: str) -> str:
        """The URL an action goes to; the alias is a path segment, so it is quoted."""
        if action == "trigger":
            return f"{self.base_url}/v2/alerts"
        return (f"{self.base_url}/v2/alerts/{quote(alias, safe='')}/{_OPS[action]}"
                "?identifierType=alias")

    def create_body(self, notification: Notification) -> dict[str, Any]:
        inc = notification.incident
        alerts = inc.get("alerts") or []
        title = inc.get("title") or (alerts[0].get("summary") if alerts else "") or inc["key"]
        lines = [f"- {a.get('summary', '')}" + (f": {a['description']}" if a.get(
            "description") else "") for a in alerts]
        details = {"incident_id": inc["id"], "key": inc.get("key"),
                   "severity": inc.get("severity"),
                   "escalation_level": (inc.get("escalation") or {}).get("level")}
        target = notification.target or {}
        if target.get("person"):
            details["target_person"] = target["person"]
        for kind, address in (target.get("contacts") or {}).items():
            details[f"contact_{kind}"] = address
        body: dict[str, Any] = {
            "message": _html(one_line(str(title)), MESSAGE_CHARS),
            "alias": _clip(self.alias(inc), ALIAS_CHARS),
            "description": _html(f"Baton incident {inc['id']} ({inc.get('status')})\n"
                                 + "\n".join(lines), DESCRIPTION_CHARS),
            "priority": PRIORITIES.get(str(inc.get("severity")), "P3"),
            "details": _details(details),
            "source": "baton",
            "tags": _tags(self._tags),
        }
        if entity := one_line(str(inc.get("service") or "")):
            body["entity"] = _clip(entity, ENTITY_CHARS)
        if self._responders:
            body["responders"] = self._responders[:RESPONDERS]
        return body

    def action_body(self, notification: Notification) -> dict[str, Any]:
        inc = notification.incident
        if notification.action == "update":
            # A note rather than a second create: a create would only raise the count of
            # the open alert, and would open a new one if a responder closed it already.
            firing = [a for a in inc.get("alerts") or () if a.get("status") == "firing"]
            level = (inc.get("escalation") or {}).get("level")
            update = (f"Updated in Baton: escalation level {level}, {len(firing)} alert(s) "
                      "firing" + "".join(f"\n- {a.get('summary', '')}" for a in firing))
            return {"user": "baton", "source": "baton", "note": _clip(update, NOTE_CHARS)}
        if notification.action == "note":
            notes = [e for e in inc.get("timeline") or () if e.get("type") == "note"]
            last = notes[-1] if notes else None
            text = (last.get("detail") or {}).get("text") if last else None
            user = last.get("actor") if last else None
            return {"user": _user(user), "source": "baton",
                    "note": _clip(str(text or GENERIC_NOTE), NOTE_CHARS)}
        if notification.action == "acknowledge":
            user, note = inc.get("acknowledged_by"), "Acknowledged in Baton."
        else:
            user, note = inc.get("resolved_by"), "Resolved in Baton."
        return {"user": _user(user), "source": "baton", "note": note}

    def _scrub(self, text: str, limit: int = _DETAIL_CHARS * 2) -> str:
        return self.scrub(text, limit)


    async def send(self, notification: Notification, http: aiohttp.ClientSession) -> Outcome:
        alias = self.alias(notification.incident)
        creating = notification.action == "trigger"
        body = self.create_body(notification) if creating else self.action_body(notification)
        headers = {"Authorization": f"GenieKey {self._key}",  # revealed only for the wire
                   "Content-Type": "application/json", "User-Agent": f"baton/{__version__}"}
        url = self.endpoint(notification.action, alias)
        # CancelledError (the dispatcher's timeout or shutdown) is not caught: it must
        # propagate, or a hung vendor would wedge the worker.
        try:
            async with http.post(url, data=json.dumps(body).encode(), headers=headers,
                                 allow_redirects=False) as resp:
                text = (await resp.content.read(_READ_BYTES)).decode("utf-8", "replace")
                detail = f"HTTP {resp.status}"
                try:  # Opsgenie's errors are {"message": ..., "errors": {...}}
                    doc = json.loads(text)
                    reason = " ".join(str(doc.get(k, "")) for k in ("message", "errors")
                                      if doc.get(k)) if isinstance(doc, dict) else ""
                except ValueError:
                    reason = text
                if reason := self._scrub(reason, _DETAIL_CHARS):
                    detail += f": {reason}"
                outcome = classify_status(resp.status, self._scrub(detail),
                                          resp.headers.get("Retry-After"))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            message = f"{type(exc).__name__} calling Opsgenie at {self.base_url}: {exc}"
            return Outcome.retryable(self._scrub(message))
        if outcome.kind != "ok":
            return outcome
        return Outcome.ok(outcome.detail, outcome.status, ExternalRef(self.name, alias))
