"""Zendesk Support Tickets API: one ticket per Baton incident.

The ticket carries ``external_id = baton-<incident id>``. Zendesk has no idempotency key,
so a trigger first lists ``GET /api/v2/tickets.json?external_id=baton-<id>`` and creates
only when nothing matches: a retry after a lost response finds the ticket and creates
nothing. Later actions PUT to the ticket whose id the dispatcher recorded
(``external_refs``), falling back to the same lookup when there is none. update,
acknowledge and note add an internal comment (``public: false``); acknowledge also sets
status ``open``, resolve sets ``solved``.

A recurrence (the incident's ``recurrence_of`` names an earlier incident) reopens the
earlier incident's ticket rather than opening another one: it is found by the earlier
``external_id``, set back to ``open`` and given the new incident's ``external_id`` in the
same update, so a retry of that reopen finds it by the new id and does nothing twice. A
late resolve of the earlier incident (delivered after the reopen) reads the ticket first
and, finding another incident's ``external_id``, leaves it open to that incident. A
ticket Zendesk has already *closed* cannot be reopened; a follow-up ticket
(``via_followup_source_id``) is created instead.

Zendesk's rate limits answer 429 with Retry-After, which the shared status table honours.

Callbacks (optional, with ``webhook_secret``): a Zendesk webhook, invoked by triggers,
signed as ``X-Zendesk-Webhook-Signature = base64(HMAC-SHA256(secret, timestamp + body))``
(see ``_verify`` on the order) with ``X-Zendesk-Webhook-Signature-Timestamp`` (ISO 8601,
accepted within five minutes of the gateway's clock). The JSON body each trigger sends is
Baton's own, documented in ``examples/zendesk-webhook.md``: one trigger per event, each
with a constant ``event``, so nothing depends on the language Zendesk renders status names in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import aiohttp

from baton import __version__
from baton.errors import AuthError, PayloadError
from baton.model import ExternalRef, Notification, Outcome
from baton.plugin import CallbackAction, CallbackEvent, Connector, classify_status
from baton.secret import Secret

from ._config import base_url, json_request, reveal
from ._text import clip, one_line

PRIORITIES = {"critical": "urgent", "error": "high", "warning": "normal", "info": "low"}
# Zendesk's Tickets API documents no length for subject or comment body; Baton keeps the
# subject to what ticket lists, views and notification emails show whole, and comments
# readable. Both are sent as plain text (``body``, never ``html_body``): Zendesk escapes
# ``body`` into the HTML it renders, so markup in a title shows as text.
SUBJECT_CHARS, TEXT_CHARS = 150, 10000
MARKER = "[Baton]"  # starts every comment Baton writes; callbacks skip such comments
EVENTS: dict[str, CallbackAction] = {"solved": "resolve", "closed": "resolve",
                                     "acknowledged": "acknowledge", "comment": "note"}
SIGNATURE = "X-Zendesk-Webhook-Signature"
SIGNATURE_TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"
TOLERANCE = 300.0  # seconds either way
_DETAIL_CHARS = 200
_READ_BYTES = 262144  # a ticket with its audit; Zendesk echoes the whole comment back


# The fields of the trigger's body that Baton reads (see ``callback``).
_FIELDS = ("event", "ticket_id", "external_id", "updated_at", "actor_email", "actor_name",
           "comment")


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _clip(text: str, limit: int) -> str:
    return clip(text, limit)


class ZendeskConnector(Connector):
    """Tickets through the Support API; see ``schemas/connectors/zendesk.schema.json``."""

    type: ClassVar[str] = "zendesk"
    idempotent: ClassVar[bool] = False  # no vendor key: lookup by external_id instead
    accepts_callbacks: ClassVar[bool] = True

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        self.base_url = base_url(name, "url", config["url"])
        self._token = reveal(config["api_token"])
        basic = base64.b64encode(f"{config['email']}/token:{self._token}".encode()).decode()
        self._auth = f"Basic {basic}"
        self._secrets = [s for s in (self._token, basic) if s]
        self._priorities = {**PRIORITIES, **(config.get("priority_map") or {})}
        self._type: str = config.get("ticket_type") or "incident"
        self._tags: list[str] = [*(config.get("tags") or []), "baton"]
        self._extra = {k: config[k] for k in ("group_id", "assignee_id") if config.get(k)}
        self._email: str = config["email"]
        secret: str | Secret | None = config.get("webhook_secret")
        self._webhook_secret = secret.reveal() if isinstance(secret, Secret) else secret or ""
        if self._webhook_secret:
            self._secrets.append(self._webhook_secret)

    @staticmethod
    def external_id(incident_id: str) -> str:
        return f"baton-{incident_id}"

    def ticket_url(self, ticket_id: str) -> str:
        return f"{self.base_url}/agent/tickets/{ticket_id}"

    def _scrub(self, text: str, limit: int = _DETAIL_CHARS * 2) -> str:
        return self.scrub(text, limit, also=self._secrets)


    # -- request bodies --------------------------------------------------------------

    def create_body(self, notification: Notification, follow_up: int | None = None
                    ) -> dict[str, Any]:
        inc = notification.incident
        alerts = inc.get("alerts") or []
        lines = [f"{MARKER} Incident {inc['id']} ({inc.get('status')}, "
                 f"{inc.get('severity')})"]
        if inc.get("service"):
            lines.append(f"Service: {inc['service']}")
        for alert in alerts:
            lines.append(f"- {alert.get('summary', '')}" + (
                f": {alert['description']}" if alert.get("description") else ""))
            lines += [f"  {link['href']}" for link in alert.get("links") or ()]
        if inc.get("recurrence_of"):
            lines.append(f"Recurrence of Baton incident {inc['recurrence_of']}.")
        title = inc.get("title") or (alerts[0].get("summary") if alerts else "") or inc["key"]
        ticket: dict[str, Any] = {
            "subject": _clip(one_line(str(title)), SUBJECT_CHARS),  # shown on one line
            "comment": {"body": _clip("\n".join(lines), TEXT_CHARS), "public": False},
            "priority": self._priorities.get(str(inc.get("severity")), "high"),
            "type": self._type,
            "external_id": self.external_id(inc["id"]),
            "tags": self._tags,
            **self._extra,
        }
        if follow_up is not None:
            ticket["via_followup_source_id"] = follow_up
        return {"ticket": ticket}

    def reopen_body(self, notification: Notification) -> dict[str, Any]:
        inc = notification.incident
        text = (f"{MARKER} The problem recurred: Baton incident {inc['id']} "
                f"(recurrence of {inc.get('recurrence_of')}). Ticket reopened.")
        return {"ticket": {
            "status": "open", "external_id": self.external_id(inc["id"]),
            "priority": self._priorities.get(str(inc.get("severity")), "high"),
            "comment": {"body": text, "public": False}}}

    def change_body(self, notification: Notification) -> dict[str, Any]:
        inc, action = notification.incident, notification.action
        ticket: dict[str, Any] = {}
        if action == "resolve":
            text = f"Resolved in Baton by {inc.get('resolved_by') or 'baton'}."
            ticket["status"] = "solved"
        elif action == "acknowledge":
            text = f"Acknowledged in Baton by {inc.get('acknowledged_by') or 'baton'}."
            ticket["status"] = "open"
        elif action == "note":
            notes = [e for e in inc.get("timeline") or () if e.get("type") == "note"]
            last = notes[-1] if notes else {}
            said = (last.get("detail") or {}).get("text")
            text = (f"Note from {last.get('actor') or 'baton'}: {said}" if said
                    else "Incident updated in Baton.")
        else:
            esc = inc.get("escalation") or {}
            text = (f"Incident updated in Baton: status {inc.get('status')}, escalation "
                    f"level {esc.get('level')}, {inc.get('event_count', 1)} alert event(s).")
        ticket["comment"] = {"body": _clip(f"{MARKER} {text}", TEXT_CHARS), "public": False}
        return {"ticket": ticket}

    # -- the wire --------------------------------------------------------------------

    async def _call(self, http: aiohttp.ClientSession, method: str, path: str,
                    params: Mapping[str, str] | None = None,
                    body: Mapping[str, Any] | None = None) -> tuple[Outcome, Any]:
        """One request: its classified outcome and the parsed body of a 2xx answer."""
        answer = await json_request(
            http, method, self.base_url + path, {
                "Authorization": self._auth,  # revealed only for the wire
                "Accept": "application/json", "User-Agent": f"baton/{__version__}"},
            limit=_READ_BYTES, params=params, body=body)
        doc = {} if answer.doc is None else answer.doc
        detail = f"HTTP {answer.status} {method} {path}"
        if not answer.ok:
            # Zendesk's errors: {"error": ..., "description": ..., "details": {...}}
            reason = (" ".join(str(doc.get(k) or "") for k in (
                "error", "description", "details")) if isinstance(doc, dict) else answer.text)
            if reason := self._scrub(reason, _DETAIL_CHARS):
                detail += f": {reason}"
        return classify_status(answer.status, self._scrub(detail), answer.retry_after), doc

    async def _find(self, http: aiohttp.ClientSession, external_id: str
                    ) -> tuple[Outcome, dict[str, Any] | None]:
        outcome, doc = await self._call(http, "GET", "/api/v2/tickets.json",
                                        {"external_id": external_id})
        tickets = doc.get("tickets") if isinstance(doc, dict) else None
        if outcome.kind == "ok" and not isinstance(tickets, list):
            # A maintenance page or a proxy's login form: retried, never taken for "no
            # such ticket", which would open a duplicate.
            return Outcome.retryable(f"{outcome.detail}: not a ticket list",
                                     outcome.status), None
        # Matched again here: a filter the server ignored would list every ticket.
        found = [t for t in tickets or () if isinstance(t, dict)
                 and isinstance(t.get("id"), int) and t.get("external_id") == external_id
                 and t.get("status") != "deleted"]
        return outcome, (found[-1] if found else None)

    def _ok(self, outcome: Outcome, doc: Any, fallback: Mapping[str, Any] | None = None,
            ) -> Outcome:
        ticket = doc.get("ticket") if isinstance(doc, dict) else None
        ticket = ticket if isinstance(ticket, dict) and ticket.get("id") else fallback
        if not ticket:
            return outcome  # a 2xx without a ticket (204): later actions look it up again
        ticket_id = str(ticket["id"])
        return Outcome.ok(f"{outcome.detail} (ticket {ticket_id})", outcome.status,
                          ExternalRef(self.name, ticket_id, self.ticket_url(ticket_id)))

    async def _trigger(self, notification: Notification, http: aiohttp.ClientSession
                       ) -> Outcome:
        inc = notification.incident
        found, ticket = await self._find(http, self.external_id(inc["id"]))
        if found.kind != "ok":
            return found
        if ticket:
            return self._ok(found, {"ticket": ticket})
        follow_up = None
        if previous_id := inc.get("recurrence_of"):
            found, previous = await self._find(http, self.external_id(previous_id))
            if found.kind != "ok":
                return found
            if previous and previous.get("status") != "closed":
                outcome, doc = await self._call(
                    http, "PUT", f"/api/v2/tickets/{int(previous['id'])}.json",
                    body=self.reopen_body(notification))
                return self._ok(outcome, doc, previous) if outcome.kind == "ok" else outcome
            follow_up = int(previous["id"]) if previous else None
        outcome, doc = await self._call(http, "POST", "/api/v2/tickets.json",
                                        body=self.create_body(notification, follow_up))
        return self._ok(outcome, doc) if outcome.kind == "ok" else outcome

    async def _perform(self, notification: Notification, http: aiohttp.ClientSession
                       ) -> Outcome:
        inc = notification.incident
        refs = [r for r in inc.get("external_refs") or () if r.get("connector") == self.name]
        if notification.action == "trigger":
            if refs:  # already created and recorded: nothing to do
                return Outcome.ok("ticket already recorded", None, ExternalRef(
                    self.name, str(refs[-1]["id"]), refs[-1].get("url")))
            return await self._trigger(notification, http)
        ticket: Mapping[str, Any] | None = {"id": refs[-1]["id"]} if refs else None
        if ticket is None:
            found, ticket = await self._find(http, self.external_id(inc["id"]))
            if found.kind != "ok":
                return found
        if ticket is None:
            if notification.action == "update":
                return await self._trigger(notification, http)
            return Outcome.permanent(f"no Zendesk ticket with external_id "
                                     f"{self.external_id(inc['id'])} to "
                                     f"{notification.action}", 404)
        try:
            path = f"/api/v2/tickets/{int(ticket['id'])}.json"
        except (TypeError, ValueError):
            return Outcome.permanent(f"recorded ticket id {ticket['id']!r} is not a number")
        if notification.action == "resolve" and refs:
            # A recurrence may have taken the recorded ticket over (it replaces the
            # external_id): a late resolve of the old incident must not solve it.
            shown, doc = await self._call(http, "GET", path)
            if shown.kind != "ok":
                return shown
            current = doc.get("ticket") if isinstance(doc, dict) else None
            owner = current.get("external_id") if isinstance(current, dict) else None
            if (isinstance(owner, str) and owner.startswith("baton-")
                    and owner != self.external_id(inc["id"])):
                return self._ok(Outcome.ok(
                    f"ticket now belongs to Baton incident {owner.removeprefix('baton-')}; "
                    "left open to the newer incident", shown.status), {}, ticket)
        outcome, doc = await self._call(http, "PUT", path, body=self.change_body(notification))
        if outcome.kind != "ok":
            if (notification.action == "resolve" and outcome.status == 422
                    and "closed" in outcome.detail):
                # A human closed it first; "resolved" is where it already is.
                return self._ok(Outcome.ok(f"{outcome.detail}; already closed"), {}, ticket)
            return outcome
        return self._ok(outcome, doc, ticket)

    async def send(self, notification: Notification, http: aiohttp.ClientSession) -> Outcome:
        # CancelledError (the dispatcher's timeout or shutdown) is not caught: it must
        # propagate, or a hung vendor would wedge the worker.
        try:
            return await self._perform(notification, http)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            message = f"{type(exc).__name__} calling Zendesk at {self.base_url}: {exc}"
            return Outcome.retryable(self._scrub(message))

    # -- callbacks -------------------------------------------------------------------

    def _verify(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        if not self._webhook_secret:
            raise AuthError("callbacks are not configured for this connector", "Signature")
        lower = {k.lower(): v for k, v in headers.items()}
        signature = lower.get(SIGNATURE.lower(), "")
        stamp = lower.get(SIGNATURE_TIMESTAMP.lower(), "")
        try:
            given = base64.b64decode(signature, validate=True)
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except (binascii.Error, ValueError):
            raise AuthError("missing or malformed webhook signature", "Signature") from None
        # Zendesk's pages disagree on the order: the webhooks guide signs timestamp + body,
        # the worked example it publishes (secret, body, timestamp, signature) signs body +
        # timestamp. Both are checked, in constant time; either needs the secret.
        key = self._webhook_secret.encode()
        matches = [hmac.compare_digest(given, hmac.new(key, text, hashlib.sha256).digest())
                   for text in (stamp.encode() + body, body + stamp.encode())]
        if not any(matches):
            raise AuthError("wrong webhook signature", "Signature")
        if abs(now - when) > TOLERANCE:  # checked after the signature: a signed stamp
            raise AuthError("webhook signature timestamp outside the allowed window",
                            "Signature")

    def callback(self, body: bytes, headers: Mapping[str, str],
                 now: float) -> list[CallbackEvent]:
        """A trigger's webhook: ``{"event": "solved"|"closed"|"acknowledged"|"comment",
        "ticket_id", "external_id", "updated_at", "actor_email", "actor_name"?,
        "comment"?}``. The event id is ticket id, update time and event (and a digest of
        a comment's text); changes made by Baton's own agent (``email``) and comments
        starting with Baton's marker are skipped."""
        self._verify(body, headers, now)
        try:
            doc = json.loads(body)
        except ValueError:
            raise PayloadError("body is not JSON") from None
        except RecursionError:  # nested deeper than the decoder goes: the sender's 400
            raise PayloadError("body is not JSON: nested too deeply") from None
        if not isinstance(doc, dict):
            raise PayloadError("body is not a JSON object")
        # An escaped lone surrogate ("\ud800") decodes to a str no UTF-8 encoding takes:
        # the comment's digest below and the store would fail on it (a 500).
        surrogates = [f"{k}: unpaired surrogate escape" for k in _FIELDS
                      if isinstance(doc.get(k), str) and _has_surrogate(doc[k])]
        if surrogates:
            raise PayloadError("not a Baton Zendesk webhook", surrogates)
        errors = [f"{k}: required string" for k in ("updated_at", "actor_email")
                  if not isinstance(doc.get(k), str) or not doc[k]]
        if doc.get("event") not in EVENTS:
            errors.append(f"event: one of {', '.join(EVENTS)}")
        if not isinstance(doc.get("ticket_id"), str | int) or not str(
                doc.get("ticket_id")).isdigit():
            errors.append("ticket_id: required ticket number")
        errors += [f"{k}: must be a string" for k in ("external_id", "actor_name", "comment")
                   if doc.get(k) is not None and not isinstance(doc[k], str)]
        if errors:
            raise PayloadError("not a Baton Zendesk webhook", errors)
        if doc["actor_email"].strip().lower() == self._email.lower():
            return []  # Baton's own change, echoed by a trigger
        text = (doc.get("comment") or "").strip()
        action = EVENTS[doc["event"]]
        if action == "note" and (not text or text.startswith(MARKER)):
            return []
        external = doc.get("external_id") or ""
        ours = external.startswith("baton-")
        who = doc.get("actor_name") or doc["actor_email"]
        event_id = f"{doc['ticket_id']}@{doc['updated_at']}/{doc['event']}"
        if action == "note":  # updated_at has whole minutes: two comments may share one
            event_id += "/" + hashlib.sha256(text.encode()).hexdigest()[:16]
        return [CallbackEvent(
            action, event_id,
            f"{who} (zendesk)", external.removeprefix("baton-") if ours else None,
            None if ours else str(doc["ticket_id"]), text if action == "note" else None)]
