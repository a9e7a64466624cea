"""Slack: a Block Kit message per incident, by incoming webhook or through the Web API.

With ``webhook_url`` every action posts a new message: a webhook cannot edit what it
posted, so the channel reads as a log and there is no external reference. With
``bot_token`` the first action posts (``chat.postMessage``), later ones edit that message
(``chat.update``, reference ``<channel id>/<ts>``) and notes reply in its thread.

Slack has no idempotency key. So that a retry after a lost answer does not post twice,
each message carries metadata naming the incident, and before posting for an incident
with no recorded message the connector reads one bounded page of the channel's history
and edits what it finds. That needs a channel ID and a history scope; without them the
search is skipped. Thread replies are not searched: a lost answer can repeat one.

The Web API reports errors as HTTP 200 ``{"ok": false, "error": ...}``: rate limits and
Slack-side failures are retried, the rest is permanent. Webhooks use HTTP statuses and
the shared table.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp
from yarl import URL

from baton import __version__
from baton.errors import AuthError, ConfigError, PayloadError
from baton.model import ExternalRef, Notification, Outcome, parse_iso
from baton.plugin import (
    CallbackAction,
    CallbackEvent,
    Connector,
    classify_status,
    parse_retry_after,
)
from baton.secret import Secret

from . import _slack_blocks as blocks

DEFAULT_API_URL = "https://slack.com/api"
DEFAULT_SEARCH_LIMIT = 50
BUTTONS: dict[str, CallbackAction] = {"baton_acknowledge": "acknowledge",
                                      "baton_resolve": "resolve"}
# Web API errors worth another attempt: Slack-side trouble and rate limits. Everything
# else it reports (invalid_auth, channel_not_found, is_archived, msg_too_long, ...) will
# fail the same way again.
RETRYABLE_ERRORS = frozenset({"ratelimited", "rate_limited", "internal_error", "fatal_error",
                              "service_unavailable", "request_timeout", "team_added_to_org"})
SIGNATURE_WINDOW = 300  # seconds; Slack's advice against replayed requests
SEARCH_SKEW = 300  # seconds of history before the incident opened, for clock skew
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
_DETAIL_CHARS = 200
_READ_BYTES = 1 << 20  # a history page with its blocks fits; never buffer without bound
_CHALLENGE = 'Slack-Signature realm="baton"'


def _reveal(value: str | Secret | None) -> str | None:
    return value.reveal() if isinstance(value, Secret) else value


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


async def _read(resp: aiohttp.ClientResponse) -> bytes:
    data = bytearray()
    while len(data) < _READ_BYTES:
        chunk = await resp.content.read(_READ_BYTES - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


@dataclass(frozen=True)
class _Answer:
    """One Web API call: its HTTP status, the JSON document, and a failure verdict."""

    status: int
    doc: Mapping[str, Any]
    failure: Outcome | None = None

    @property
    def error(self) -> str:
        return str(self.doc.get("error") or "")


class SlackConnector(Connector):
    """Posts and edits incident messages; see ``schemas/connectors/slack.schema.json``."""

    type: ClassVar[str] = "slack"
    idempotent: ClassVar[bool] = False  # no vendor key: a bounded metadata search instead
    accepts_callbacks: ClassVar[bool] = True

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        self._webhook = _reveal(config.get("webhook_url"))
        if self._webhook is not None:
            try:
                url = URL(self._webhook)
                usable = url.scheme in ("http", "https") and bool(url.host)
            except ValueError:
                usable = False
            if not usable:  # the message never quotes the URL: it is the credential
                raise ConfigError([f"connectors.{name}.webhook_url: not an http(s) URL"])
        self._token = _reveal(config.get("bot_token"))
        self._signing = _reveal(config.get("signing_secret"))
        self._channel: str | None = config.get("channel")
        self._api_url = str(config.get("api_url") or DEFAULT_API_URL).rstrip("/")
        workspace = config.get("workspace_url")
        self._workspace = str(workspace).rstrip("/") if workspace else None
        self._incident_url: str | None = config.get("incident_url")
        self._search_limit = int(config.get("search_limit", DEFAULT_SEARCH_LIMIT))

    def _scrub(self, text: str, limit: int = _DETAIL_CHARS * 2) -> str:
        if self._webhook:  # the path alone (hooks.slack.com/services/T/B/token) is the key
            path = urllib.parse.urlsplit(self._webhook).path
            if len(path) > 1:
                text = text.replace(path, "/***")
        return self.scrub(text, limit)


    # --- the message ------------------------------------------------------------------

    def render(self, notification: Notification) -> tuple[str, list[dict[str, Any]]]:
        if notification.action == "note":
            return blocks.note(notification.incident)
        return blocks.incident(notification.incident, notification.target,
                               self._incident_url, buttons=bool(self._signing))

    # --- sending ------------------------------------------------------------------------

    async def send(self, notification: Notification, http: aiohttp.ClientSession) -> Outcome:
        # CancelledError (the dispatcher's timeout or shutdown) is not caught: it must
        # propagate, or a hung vendor would wedge the worker.
        try:
            if self._webhook:
                return await self._post_webhook(notification, http)
            return await self._send_api(notification, http)
        except aiohttp.InvalidURL as exc:
            return Outcome.permanent(self._scrub(f"invalid Slack URL: {exc}"))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            where = "the webhook" if self._webhook else self._api_url
            message = f"{type(exc).__name__} calling Slack at {where}: {exc}"
            return Outcome.retryable(self._scrub(message))

    async def _post_webhook(self, notification: Notification,
                            http: aiohttp.ClientSession) -> Outcome:
        assert self._webhook is not None
        text, shown = self.render(notification)
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "User-Agent": f"baton/{__version__}"}
        async with http.post(self._webhook, data=json.dumps({"text": text, "blocks": shown}),
                             headers=headers, allow_redirects=False) as resp:
            reason = self._scrub((await resp.content.read(1024)).decode("utf-8", "replace"),
                                 _DETAIL_CHARS)
            detail = f"webhook: HTTP {resp.status}" + (f": {reason}" if reason else "")
            return classify_status(resp.status, self._scrub(detail),
                                   resp.headers.get("Retry-After"))

    async def _call(self, http: aiohttp.ClientSession, method: str,
                    body: Mapping[str, Any] | None = None,
                    query: Mapping[str, str] | None = None) -> _Answer:
        assert self._token is not None
        headers = {"Authorization": f"Bearer {self._token}",  # revealed only for the wire
                   "User-Agent": f"baton/{__version__}"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
            data = json.dumps(body, ensure_ascii=False).encode()
        async with http.request("POST" if body is not None else "GET",
                                f"{self._api_url}/{method}", params=query, data=data,
                                headers=headers, allow_redirects=False) as resp:
            raw, status = await _read(resp), resp.status
            retry_after = resp.headers.get("Retry-After")
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            doc = {}
        doc = doc if isinstance(doc, dict) else {}
        error = self._scrub(str(doc.get("error") or raw.decode("utf-8", "replace")),
                            _DETAIL_CHARS)
        detail = self._scrub(f"{method}: HTTP {status}" + (f": {error}" if error else ""))
        if not 200 <= status < 300:
            return _Answer(status, doc, classify_status(status, detail, retry_after))
        if not doc or doc.get("ok") is True:
            # A 2xx without a Slack document (a proxy's 204) counts as done, per the shared
            # table; there is then no ts to record.
            return _Answer(status, doc)
        if doc.get("error") in RETRYABLE_ERRORS:
            return _Answer(status, doc, Outcome.retryable(
                detail, status, parse_retry_after(retry_after)))
        return _Answer(status, doc, Outcome.permanent(detail, status))

    def _target_channel(self, notification: Notification) -> str:
        to = notification.target.get("to")
        params = notification.target.get("params") or {}
        if isinstance(to, str) and to and (to.startswith("#") or _CHANNEL_ID.match(to)):
            return to
        return str(params.get("channel") or self._channel)

    def recorded(self, inc: Mapping[str, Any]) -> tuple[str, str] | None:
        """(channel id, ts) of this connector's message, from the recorded references."""
        for ref in inc.get("external_refs") or ():
            if ref.get("connector") == self.name:
                channel, _, ts = str(ref.get("id")).partition("/")
                if channel and ts:
                    return channel, ts
        return None

    def ref(self, channel: str, ts: str) -> ExternalRef:
        url = (f"{self._workspace}/archives/{channel}/p{ts.replace('.', '')}"
               if self._workspace else None)
        return ExternalRef(self.name, f"{channel}/{ts}", url)

    async def _search(self, http: aiohttp.ClientSession, channel: str,
                      inc: Mapping[str, Any]) -> tuple[str, str] | Outcome | None:
        """Find the incident's message a lost answer left behind; an Outcome to give up."""
        if self._search_limit <= 0 or not _CHANNEL_ID.match(channel):
            return None
        query = {"channel": channel, "limit": str(self._search_limit),
                 "include_all_metadata": "true"}
        if created := parse_iso(inc.get("created_at")):
            query["oldest"] = f"{created.timestamp() - SEARCH_SKEW:.6f}"
        answer = await self._call(http, "conversations.history", query=query)
        if answer.failure is not None:
            # A scope or membership problem only disables the search; a transient one
            # must not turn into a blind post.
            return answer.failure if answer.failure.kind == "retryable" else None
        for message in answer.doc.get("messages") or ():
            meta = message.get("metadata") if isinstance(message, dict) else None
            if (isinstance(meta, dict) and meta.get("event_type") == blocks.EVENT_TYPE
                    and (meta.get("event_payload") or {}).get("incident_id") == inc["id"]
                    and isinstance(message.get("ts"), str)):
                return channel, message["ts"]
        return None

    async def _send_api(self, notification: Notification,
                        http: aiohttp.ClientSession) -> Outcome:
        inc = notification.incident
        channel = self._target_channel(notification)
        recorded = self.recorded(inc)
        if (recorded and notification.action in ("trigger", "update")
                and _CHANNEL_ID.match(channel) and recorded[0] != channel):
            recorded = None  # a target naming another channel: that channel gets a message
        found = recorded or await self._search(http, channel, inc)
        if isinstance(found, Outcome):
            return found
        text, shown = self.render(notification)
        if notification.action == "note":
            body: dict[str, Any] = {"channel": found[0] if found else channel, "text": text,
                                    "blocks": shown}
            if found:
                body["thread_ts"] = found[1]
            answer = await self._call(http, "chat.postMessage", body)
            ref = self.ref(*found) if found else None
            return answer.failure or Outcome.ok(f"chat.postMessage: note on {inc['id']}",
                                                answer.status, ref)
        message = {"text": text, "blocks": shown, "metadata": blocks.metadata(inc)}
        if found:
            answer = await self._call(http, "chat.update",
                                      {"channel": found[0], "ts": found[1], **message})
            if answer.error != "message_not_found":  # deleted by someone: post it anew
                if answer.failure is not None:
                    return answer.failure
                who = blocks.mention(notification.target)
                if who and notification.action in ("trigger", "update"):
                    reply = await self._call(http, "chat.postMessage", {
                        "channel": found[0], "thread_ts": found[1],
                        "text": blocks.ping(inc, who)})
                    if reply.failure is not None:
                        return reply.failure
                return Outcome.ok(f"chat.update {notification.action} {inc['id']}",
                                  answer.status, self.ref(*found))
        answer = await self._call(http, "chat.postMessage", {"channel": channel, **message})
        if answer.failure is not None:
            return answer.failure
        ts, posted_in = answer.doc.get("ts"), answer.doc.get("channel") or channel
        ref = self.ref(str(posted_in), ts) if isinstance(ts, str) else None
        return Outcome.ok(f"chat.postMessage {notification.action} {inc['id']}",
                          answer.status, ref)

    # --- interactivity ------------------------------------------------------------------

    def callback(self, body: bytes, headers: Mapping[str, str],
                 now: float) -> list[CallbackEvent]:
        """A button click (``block_actions``), signed the way Slack signs every request:
        ``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{timestamp}:{raw body}">`` with the
        app's signing secret, and a timestamp within five minutes of ``now``. Clicks only
        ever come from people, so there is no echo of Baton's own changes to drop."""
        if not self._signing:
            raise AuthError("no signing_secret is configured for this Slack connector",
                            _CHALLENGE)
        stamp = _header(headers, "X-Slack-Request-Timestamp")
        signature = _header(headers, "X-Slack-Signature")
        if not stamp or not signature:
            raise AuthError("X-Slack-Signature and X-Slack-Request-Timestamp are required",
                            _CHALLENGE)
        try:
            if len(stamp) > 12:  # no Unix time, and too big for float arithmetic
                raise ValueError(stamp)
            when = int(stamp)
        except ValueError:
            raise AuthError("X-Slack-Request-Timestamp is not a Unix time",
                            _CHALLENGE) from None
        if abs(now - when) > SIGNATURE_WINDOW:
            raise AuthError("X-Slack-Request-Timestamp is more than five minutes away",
                            _CHALLENGE)
        expected = "v0=" + hmac.new(self._signing.encode(), b"v0:" + stamp.encode() + b":"
                                    + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise AuthError("X-Slack-Signature does not match", _CHALLENGE)
        return self.parse_actions(body)

    @staticmethod
    def parse_actions(body: bytes) -> list[CallbackEvent]:
        try:
            form = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True)
            doc = json.loads(form["payload"][0])
        except (UnicodeDecodeError, KeyError, ValueError):
            raise PayloadError("expected a form body with payload=<JSON>",
                               ["payload"]) from None
        if not isinstance(doc, dict):
            raise PayloadError("payload is not a JSON object", ["payload"])
        if doc.get("type") != "block_actions":
            return []  # other interactions (shortcuts, modals) are not Baton's
        user, actions = doc.get("user"), doc.get("actions")
        if not isinstance(user, dict) or not isinstance(user.get("id"), str):
            raise PayloadError("block_actions without a user id", ["payload.user.id"])
        if not isinstance(actions, list):
            raise PayloadError("block_actions without actions", ["payload.actions"])
        uid = user["id"]
        name = user.get("username") or user.get("name") or uid
        events = []
        for i, action in enumerate(actions):
            if not isinstance(action, dict):
                raise PayloadError("an action is not an object", [f"payload.actions[{i}]"])
            kind = BUTTONS.get(str(action.get("action_id")))
            if kind is None:
                continue
            value, stamp = action.get("value"), action.get("action_ts")
            for key, item in (("value", value), ("action_ts", stamp)):
                if not isinstance(item, str) or not item:
                    raise PayloadError(f"a Baton button without {key}",
                                       [f"payload.actions[{i}].{key}"])
            events.append(CallbackEvent(
                action=kind,
                event_id=f"{stamp}/{uid}/{action['action_id']}",
                actor=f"{name} (slack {uid})", incident_id=value))
        return events
