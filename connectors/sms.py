"""SMS through Twilio Programmable Messaging: one short text per action.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form-encoded ``To``, ``From`` or
``MessagingServiceSid``, ``Body``; HTTP basic auth AccountSid:AuthToken) answers 201 with
the message; its ``sid`` is the external reference.

The recipient is the notified person's ``contacts.phone``, else the target's ``to`` when
it is a phone number, else ``default_to``. A person without a phone number is a
permanent failure: sending that person's page elsewhere would hide the gap.

Only the configured ``actions`` send a text (default trigger, update, resolve: an
acknowledgement rarely needs to wake anyone); the others are answered ok without a call.

Twilio has no idempotency key, so delivery is at-least-once. To narrow the window, a retry
(attempt > 1) first lists the recipient's most recent messages and, when one ends with the
same reference (each text ends with ``ref:<6 hex>`` derived from the idempotency key) and
has not failed, answers with that message instead of sending again. The reference, not the
whole text, is compared: the text carries the severity and escalation level, which may
change between attempts. The lookup is best effort:
if it fails, or Twilio redacts message bodies for the account, the text is sent again,
since a second text is better than a lost page.

Texts are plain ASCII where Baton writes them (titles may add other characters): a
character outside the GSM 7-bit alphabet, such as an em dash, makes every segment of the
message 70 characters instead of 160. Titles and notes are put on one line (a text has no
room for layout), and lengths are counted in UTF-16 units as Twilio segments UCS-2 text
(an emoji is two), so the Body stays within Twilio's 1,600 whatever the title holds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp

from baton import __version__
from baton.errors import ConfigError
from baton.model import ExternalRef, Notification, Outcome
from baton.plugin import Connector, classify_status
from baton.secret import Secret

from ._config import base_url, read_capped
from ._text import clip, one_line

BASE_URL = "https://api.twilio.com"
DEFAULT_ACTIONS = ("trigger", "update", "resolve")
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_SEPARATORS = re.compile(r"[\s().-]")
_PREFIXES = ("tel:", "sms:", "phone:")
BODY_CHARS = 1600  # Twilio refuses a longer Body (error 21617); UTF-16 units here
TITLE_CHARS = 80
NOTE_CHARS = 160  # the incident's timeline has the whole note
LOOKUP_PAGE = 20
FAILED = frozenset({"failed", "undelivered", "canceled"})
GENERIC_NOTE = "Incident updated in Baton."
USER_AGENT = f"baton/{__version__}"
_DETAIL_CHARS = 200
_READ_BYTES = 256 * 1024  # a page of LOOKUP_PAGE messages of up to BODY_CHARS each


def _clip(text: str, limit: int) -> str:
    return clip(text, limit, utf16=True, mark="...")


def phone_number(value: Any) -> str | None:
    """E.164 form of a phone number written with the usual separators, or None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    for prefix in _PREFIXES:
        if text.lower().startswith(prefix):
            text = text[len(prefix):]
    text = _SEPARATORS.sub("", text)
    return text if E164.match(text) else None


class SmsConnector(Connector):
    """Sends texts through Twilio; see ``schemas/connectors/sms.schema.json``."""

    type: ClassVar[str] = "sms"
    idempotent: ClassVar[bool] = False  # Twilio sends every message it accepts

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        self._sid: str = config["account_sid"]
        token: str | Secret = config["auth_token"]
        self._token = token.reveal() if isinstance(token, Secret) else token
        # Built by hand: aiohttp's BasicAuth is deprecated in new releases, and its
        # replacement does not exist in the oldest we support.
        self._basic = base64.b64encode(f"{self._sid}:{self._token}".encode()).decode()
        self.base_url = base_url(name, "url", config.get("url") or BASE_URL)
        self._from: str | None = config.get("from")
        self._service: str | None = config.get("messaging_service_sid")
        if not (self._from or self._service):
            raise ConfigError([f"connectors.{name}: set `from` or `messaging_service_sid`"])
        default = config.get("default_to")
        self._default_to = phone_number(default) if default else None
        if default and not self._default_to:
            raise ConfigError([f"connectors.{name}.default_to: not an E.164 phone number"])
        self._actions = frozenset(config.get("actions") or DEFAULT_ACTIONS)
        self._incident_url: str | None = config.get("incident_url")

    @property
    def messages_url(self) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{self._sid}/Messages.json"

    def _scrub(self, text: str, limit: int = _DETAIL_CHARS * 2) -> str:
        return self.scrub(text, limit, also=(self._basic,))


    def recipient(self, target: Mapping[str, Any]) -> tuple[str | None, str]:
        """(E.164 number, "") or (None, why there is none)."""
        person = target.get("person")
        if person:
            phone = (target.get("contacts") or {}).get("phone")
            if number := phone_number(phone):
                return number, ""
            what = "no phone contact" if not phone else "a phone contact not in E.164 form"
            return None, f"person {person!r} has {what}; add people.{person}.phone"
        if number := phone_number(target.get("to")):
            return number, ""
        if self._default_to:
            return self._default_to, ""
        return None, ("no phone number to text: the target names no person with a phone "
                      "and no E.164 `to`, and no default_to is configured")

    def text(self, notification: Notification) -> str:
        """The message, a pure function of the notification (so a retry sends the same)."""
        inc, action = notification.incident, notification.action
        alerts = inc.get("alerts") or []
        title = _clip(one_line(inc.get("title") or (alerts[0].get("summary") if alerts
                                                     else "") or inc["key"]), TITLE_CHARS)
        service = f" ({inc['service']})" if inc.get("service") else ""
        severity = str(inc.get("severity") or "info").upper()
        ident = f"Baton incident {inc['id']}"
        if action == "trigger":
            link = self._link(inc)
            text = f"[{severity}] {title}{service} - {ident}" + (f" - ack: {link}" if link
                                                                  else "")
        elif action == "update":
            level = (inc.get("escalation") or {}).get("level")
            text = (f"[{severity}] Updated{f' (level {level})' if level else ''}: {title}"
                    f"{service} - {ident}")
        elif action == "acknowledge":
            who = inc.get("acknowledged_by") or "someone"
            text = f"[ACK] {title}{service} acknowledged by {who} - {ident}"
        elif action == "resolve":
            who = inc.get("resolved_by")
            text = f"[RESOLVED] {title}{service}{f' by {who}' if who else ''} - {ident}"
        else:
            notes = [e for e in inc.get("timeline") or () if e.get("type") == "note"]
            note = ((notes[-1].get("detail") or {}).get("text") if notes else None)
            text = f"[NOTE] {title}: {_clip(one_line(note or GENERIC_NOTE), NOTE_CHARS)} - {ident}"
        return _clip(text, BODY_CHARS - 11) + self.reference(notification)

    @staticmethod
    def reference(notification: Notification) -> str:
        """The suffix every text of this delivery ends with, whatever else changed."""
        ref = hashlib.sha256(notification.idempotency_key.encode()).hexdigest()[:6]
        return f" ref:{ref}"

    def _link(self, incident: Mapping[str, Any]) -> str | None:
        if not self._incident_url:
            return None
        return self._incident_url.replace("{id}", str(incident["id"]))

    def form(self, to: str, body: str) -> dict[str, str]:
        form = {"To": to, "Body": body}
        if self._service:  # the service picks the sender from its pool
            form["MessagingServiceSid"] = self._service
        else:
            form["From"] = str(self._from)
        return form

    async def send(self, notification: Notification, http: aiohttp.ClientSession) -> Outcome:
        if notification.action not in self._actions:
            return Outcome.ok(f"no text: {notification.action} is not among this "
                              "connector's actions")
        to, problem = self.recipient(notification.target or {})
        if to is None:
            return Outcome.permanent(problem)
        body = self.text(notification)
        headers = {"Authorization": f"Basic {self._basic}",  # revealed only for the wire
                   "User-Agent": USER_AGENT, "Accept": "application/json"}
        # CancelledError (the dispatcher's timeout or shutdown) is not caught anywhere
        # here: it must propagate, or a hung API would wedge the worker.
        try:
            if notification.attempt > 1 and (found := await self._sent_before(
                    http, headers, to, self.reference(notification))):
                return Outcome.ok(f"already sent as {found} (found on retry)", 200,
                                  ExternalRef(self.name, found))
            async with http.post(self.messages_url, data=self.form(to, body),
                                 headers=headers, allow_redirects=False) as resp:
                doc, detail = await self._read(resp)
                outcome = classify_status(resp.status, self._scrub(detail),
                                          resp.headers.get("Retry-After"))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            message = f"{type(exc).__name__} calling Twilio at {self.base_url}: {exc}"
            return Outcome.retryable(self._scrub(message))
        sid = doc.get("sid") if isinstance(doc, dict) else None
        if outcome.kind != "ok" or not isinstance(sid, str):
            return outcome
        return Outcome.ok(f"{outcome.detail}: message {sid} {doc.get('status') or ''}".strip(),
                          outcome.status, ExternalRef(self.name, sid))

    async def _sent_before(self, http: aiohttp.ClientSession, headers: dict[str, str],
                           to: str, reference: str) -> str | None:
        """The sid of an earlier, not failed message ending with this delivery's
        ``reference``, if Twilio lists one among the recipient's latest; None when there
        is none or on any error."""
        params = {"To": to, "PageSize": str(LOOKUP_PAGE)}
        if self._from and not self._service:
            params["From"] = self._from
        try:
            async with http.get(self.messages_url, params=params, headers=headers,
                                allow_redirects=False) as resp:
                if resp.status != 200:
                    return None
                doc, _ = await self._read(resp)
        except (aiohttp.ClientError, OSError, TimeoutError):
            return None  # best effort: the send that follows reports the real problem
        messages = doc.get("messages") if isinstance(doc, dict) else None
        for message in messages if isinstance(messages, list) else ():
            if (isinstance(message, dict) and isinstance(message.get("body"), str)
                    and message["body"].rstrip().endswith(reference)
                    and message.get("status") not in FAILED
                    and isinstance(message.get("sid"), str)):
                return str(message["sid"])
        return None

    async def _read(self, resp: aiohttp.ClientResponse) -> tuple[Any, str]:
        """(parsed JSON or None, "HTTP <status>[: reason]"). Twilio's errors are
        ``{"code", "message", "more_info", "status"}``."""
        text = (await read_capped(resp, _READ_BYTES)).decode("utf-8", "replace")
        try:
            doc = json.loads(text) if text else None
        except ValueError:
            doc = None
        detail = f"HTTP {resp.status}"
        if resp.status >= 300:
            if isinstance(doc, dict) and doc.get("message"):
                reason = f"Twilio error {doc.get('code')}: {doc['message']}"
            else:
                reason = text
            if reason := self._scrub(reason, _DETAIL_CHARS):
                detail += f": {reason}"
        return doc, detail
