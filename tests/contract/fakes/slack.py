"""A strict Slack: an incoming webhook and the Web API methods the ``slack`` connector uses.

Written from Slack's references. Incoming webhook (``POST /services/T…/B…/<token>``):
an unknown token is 403 ``invalid_token``; a body that is not JSON is 400
``invalid_payload``; neither ``text`` nor ``blocks`` is 400 ``no_text``; bad blocks are 400
``invalid_blocks``; success is 200 with the text ``ok``. Web API (``/api/<method>``):
errors are HTTP 200 with ``{"ok": false, "error": …}``: no ``Authorization: Bearer`` is
``not_authed``, a wrong token ``invalid_auth``; POST bodies must be JSON (charset utf-8
accepted, another charset is ``invalid_charset``, another type ``invalid_post_type``).
``chat.postMessage`` needs a known channel (ID or ``#name``; ``channel_not_found``,
``is_archived``), ``text`` or ``blocks`` (``no_text``), text of at most 40,000 chars
(``msg_too_long``), valid blocks (``invalid_blocks``), metadata of the shape
``{event_type, event_payload}`` (``invalid_metadata_format``) and, for a reply, an existing
``thread_ts`` (``thread_not_found``). ``chat.update`` needs a channel ID and the ts of an
existing message (``message_not_found``). ``conversations.history`` takes GET query
parameters, needs a channel ID, returns top-level messages newest first, at most ``limit``
(default 100, at most 999) since ``oldest``, with metadata only for
``include_all_metadata=true``.

Scripted replies (``FakeState.script``) apply to the calls that act (the webhook,
``chat.postMessage``, ``chat.update``): a non-2xx Reply answers with that HTTP status, as
Slack does for rate limits (429 + Retry-After) and outages, and with a Slack-shaped body.
``Workspace.action_errors`` scripts the Web API's HTTP-200 ``ok: false`` errors.
``conversations.history`` is a read; its own script is ``Workspace.history_replies``.

Accepted actions, in Baton's terms, read from the message as a person would see it: a
message whose ``baton_note`` block is present -> ``note``; otherwise its Status field:
triggered -> ``trigger`` (posted) or ``update`` (edited), acknowledged -> ``acknowledge``,
resolved -> ``resolve``. Thread replies that are not notes (mentions) are stored but are
no Baton action. The keys are ``(incident id,)`` from the ``baton_context`` block.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from baton.secret import Secret

from . import STATE, FakeState, Reply, Seen

BOT_TOKEN = "xoxb-s3cr3t-SLACK-bot-token-do-not-leak"
HOOK_TOKEN = "s3cr3tSLACKhookTOKENdoNotLeak"
HOOK_PATH = f"/services/T0BATON01/B0BATON01/{HOOK_TOKEN}"
SIGNING_SECRET = "s3cr3t-SLACK-signing-secret-do-not-leak"
CHANNEL = "C0BATONOPS"
OTHER = "C0BATONSRE"
ARCHIVED = "C0ARCHIVED"
CHANNELS = {CHANNEL: "ops", OTHER: "sre", ARCHIVED: "old-ops"}
SENSITIVE = (HOOK_TOKEN,)
FIRST_TS = 1732090530  # the sample incident's created_at: messages come after it
BLOCK_TYPES = frozenset({"header", "section", "context", "actions", "divider"})
WEBHOOK_ERRORS = {400: "invalid_payload", 403: "invalid_token", 404: "channel_not_found",
                  410: "channel_is_archived", 429: "rate_limited", 500: "rollup_error"}
API_ERRORS = {400: "invalid_arguments", 401: "not_authed", 403: "access_denied",
              404: "unknown_method", 429: "ratelimited", 500: "internal_error",
              503: "service_unavailable"}
_INCIDENT = re.compile(r"Baton incident (\S+)")


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    metadata: dict[str, Any] | None = None
    thread_ts: str | None = None
    edits: int = 0


@dataclass
class Workspace:
    """What the fake Slack holds: messages by posting order, webhook posts, its clock."""

    messages: list[Message] = field(default_factory=list)
    hook_posts: list[dict[str, Any]] = field(default_factory=list)
    # Scripted answers for conversations.history: a Reply (its HTTP status) or an error
    # name (HTTP 200 with ``ok: false``, e.g. ``missing_scope``).
    history_replies: deque[Reply | str] = field(default_factory=deque)
    # Errors the next valid chat.postMessage / chat.update calls answer (HTTP 200,
    # ``ok: false``), for the Web API's own error codes (``internal_error``, ...).
    action_errors: deque[str] = field(default_factory=deque)
    clock: int = FIRST_TS

    def find(self, channel: str, ts: str) -> Message | None:
        return next((m for m in self.messages if (m.channel, m.ts) == (channel, ts)), None)

    def top_level(self, channel: str) -> list[Message]:
        return [m for m in self.messages if m.channel == channel and m.thread_ts is None]


WORKSPACE = web.AppKey("workspace", Workspace)


def config(base_url: str) -> dict[str, Any]:
    """Web API mode, the richer one, for the generic suite."""
    return {"bot_token": Secret(BOT_TOKEN, "env:SLACK_BOT_TOKEN"), "channel": CHANNEL,
            "api_url": f"{base_url}/api",
            "signing_secret": Secret(SIGNING_SECRET, "env:SLACK_SIGNING_SECRET"),
            "workspace_url": "https://baton-test.slack.com"}


def webhook_config(base_url: str) -> dict[str, Any]:
    return {"webhook_url": Secret(f"{base_url}{HOOK_PATH}", "env:SLACK_WEBHOOK_URL")}


def make_app(state: FakeState) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app[WORKSPACE] = Workspace()
    app.router.add_post("/services/{team}/{bot}/{token}", _webhook)
    app.router.add_post("/api/chat.postMessage", _post_message)
    app.router.add_post("/api/chat.update", _update)
    app.router.add_get("/api/conversations.history", _history)
    return app


def _api_error(state: FakeState, error: str) -> web.Response:
    state.rejected.append((200, error))
    return web.json_response({"ok": False, "error": error})


def _hook_error(state: FakeState, status: int, error: str) -> web.Response:
    state.rejected.append((status, error))
    return web.Response(status=status, text=error)


def blocks_problem(blocks: Any) -> str | None:
    """Block Kit's limits that matter here; None when the blocks are acceptable."""
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "blocks must be a list of at most 50"
    ids: set[str] = set()
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            return "unknown block type"
        block_id = block.get("block_id")
        if block_id is not None and (not isinstance(block_id, str) or block_id in ids
                                     or len(block_id) > 255):
            return "block_id must be unique and at most 255 chars"
        ids.add(block_id or "")
        kind = block["type"]
        if kind == "header" and (block.get("text", {}).get("type") != "plain_text"
                                 or not 0 < len(block["text"].get("text", "")) <= 150):
            return "header text must be plain_text of 1-150 chars"
        if kind == "section":
            fields, text = block.get("fields", []), block.get("text")
            if not text and not fields:
                return "section needs text or fields"
            if len(fields) > 10 or any(len(f.get("text", "")) > 2000 for f in fields):
                return "at most 10 fields of 2000 chars"
            if text and not 0 < len(text.get("text", "")) <= 3000:
                return "section text must be 1-3000 chars"
        if kind == "actions":
            for el in block.get("elements", []):
                if el.get("type") != "button" or len(el.get("text", {}).get("text", "")) > 75:
                    return "buttons need plain text of at most 75 chars"
                if not el.get("action_id") or len(str(el.get("value", ""))) > 2000:
                    return "buttons need an action_id and a value of at most 2000 chars"
    return None


def understood(blocks: list[dict[str, Any]], edited: bool) -> str | None:
    """The Baton action a message stands for, read from what it shows."""
    if any(b.get("block_id") == "baton_note" for b in blocks):
        return "note"
    for block in blocks:
        if block.get("block_id") == "baton_fields":
            for f in block.get("fields", []):
                label, _, value = str(f.get("text", "")).partition("\n")
                if label == "*Status*":
                    return {"triggered": "update" if edited else "trigger",
                            "acknowledged": "acknowledge", "resolved": "resolve"}.get(
                                value.strip().lower())
    return None


def incident_of(blocks: list[dict[str, Any]]) -> str:
    for block in blocks:
        if block.get("block_id") == "baton_context":
            for el in block.get("elements", []):
                if found := _INCIDENT.search(str(el.get("text", ""))):
                    return found.group(1)
    return ""


async def _scripted(state: FakeState, errors: dict[int, str], as_text: bool,
                    space: Workspace | None = None) -> Reply | web.Response:
    if space is not None and space.action_errors:
        return _api_error(state, space.action_errors.popleft())
    reply = await state.next_reply() or Reply(200)
    if 200 <= reply.status < 300:
        return reply
    error = (errors.get(reply.status, "scripted_failure")
             if reply.message == "scripted failure" else reply.message)
    if as_text:
        return web.Response(status=reply.status, text=error, headers=reply.headers)
    return web.json_response({"ok": False, "error": error}, status=reply.status,
                             headers=reply.headers)


async def _webhook(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    if request.path != HOOK_PATH:
        return _hook_error(state, 403, "invalid_token")
    if request.content_type != "application/json" or request.charset not in (None, "utf-8"):
        return _hook_error(state, 400, "invalid_payload")
    try:
        doc = json.loads(seen.body)
    except ValueError:
        return _hook_error(state, 400, "invalid_payload")
    if not isinstance(doc, dict):
        return _hook_error(state, 400, "invalid_payload")
    if not doc.get("text") and not doc.get("blocks"):
        return _hook_error(state, 400, "no_text")
    if blocks_problem(doc.get("blocks", [])):
        return _hook_error(state, 400, "invalid_blocks")
    reply = await _scripted(state, WEBHOOK_ERRORS, as_text=True)
    if isinstance(reply, web.Response):
        return reply
    request.app[WORKSPACE].hook_posts.append(doc)
    blocks = doc.get("blocks", [])
    if action := understood(blocks, edited=False):
        state.accept(action, (incident_of(blocks),), seen)
    if reply.status == 204:
        return web.Response(status=204, headers=reply.headers)
    return web.Response(status=reply.status, text="ok", headers=reply.headers)


def _checked(request: web.Request, seen: Seen) -> dict[str, Any] | str:
    """The JSON body of an authorised Web API POST, or the Slack error to answer."""
    auth = request.headers.get("Authorization")
    if not auth:
        return "not_authed"
    if auth != f"Bearer {BOT_TOKEN}":
        return "invalid_auth"
    if request.content_type != "application/json":
        return "invalid_post_type"
    if request.charset not in (None, "utf-8"):
        return "invalid_charset"
    try:
        doc = json.loads(seen.body)
    except ValueError:
        return "invalid_json"
    return doc if isinstance(doc, dict) else "invalid_json"


def _content_problem(doc: dict[str, Any]) -> str | None:
    if not doc.get("text") and not doc.get("blocks"):
        return "no_text"
    if len(str(doc.get("text", ""))) > 40000:
        return "msg_too_long"
    if "blocks" in doc and blocks_problem(doc["blocks"]):
        return "invalid_blocks"
    meta = doc.get("metadata")
    if meta is not None and not (isinstance(meta, dict) and isinstance(
            meta.get("event_type"), str) and isinstance(meta.get("event_payload"), dict)):
        return "invalid_metadata_format"
    return None


def _channel_id(value: Any) -> str | None:
    if value in CHANNELS:
        return str(value)
    names = {f"#{name}": cid for cid, name in CHANNELS.items()}
    return names.get(value)


async def _post_message(request: web.Request) -> web.StreamResponse:
    state, space = request.app[STATE], request.app[WORKSPACE]
    seen = await state.record(request)
    doc = _checked(request, seen)
    if isinstance(doc, str):
        return _api_error(state, doc)
    channel = _channel_id(doc.get("channel"))
    if channel is None:
        return _api_error(state, "channel_not_found")
    if channel == ARCHIVED:
        return _api_error(state, "is_archived")
    if problem := _content_problem(doc):
        return _api_error(state, problem)
    thread = doc.get("thread_ts")
    parent = space.find(channel, str(thread)) if thread is not None else None
    if thread is not None and parent is None:
        return _api_error(state, "thread_not_found")
    reply = await _scripted(state, API_ERRORS, as_text=False, space=space)
    if isinstance(reply, web.Response):
        return reply
    space.clock += 1
    ts = f"{space.clock}.{len(space.messages) + 1:06d}"
    blocks = list(doc.get("blocks") or [])
    message = Message(channel, ts, str(doc.get("text", "")), blocks, doc.get("metadata"),
                      str(thread) if thread is not None else None)
    space.messages.append(message)
    action = understood(blocks, edited=False)
    if thread is not None and action != "note":
        action = None  # a mention in the thread: no Baton action of its own
    if action:
        key = incident_of(blocks) or incident_of(parent.blocks if parent else [])
        state.accept(action, (key,), seen)
    body = {"ok": True, "channel": channel, "ts": ts, "message": {
        "type": "message", "subtype": "bot_message", "text": message.text, "ts": ts,
        "bot_id": "B0BATON01", "blocks": blocks}}
    if reply.status == 204:
        return web.Response(status=204, headers=reply.headers)
    return web.json_response(body, status=reply.status, headers=reply.headers)


async def _update(request: web.Request) -> web.StreamResponse:
    state, space = request.app[STATE], request.app[WORKSPACE]
    seen = await state.record(request)
    doc = _checked(request, seen)
    if isinstance(doc, str):
        return _api_error(state, doc)
    channel = doc.get("channel")
    if channel not in CHANNELS:  # chat.update takes IDs only
        return _api_error(state, "channel_not_found")
    message = space.find(str(channel), str(doc.get("ts")))
    if message is None:
        return _api_error(state, "message_not_found")
    if problem := _content_problem(doc):
        return _api_error(state, problem)
    reply = await _scripted(state, API_ERRORS, as_text=False, space=space)
    if isinstance(reply, web.Response):
        return reply
    message.text, message.blocks = str(doc.get("text", "")), list(doc.get("blocks") or [])
    if "metadata" in doc:
        message.metadata = doc["metadata"]
    message.edits += 1
    if action := understood(message.blocks, edited=True):
        state.accept(action, (incident_of(message.blocks),), seen)
    if reply.status == 204:
        return web.Response(status=204, headers=reply.headers)
    return web.json_response({"ok": True, "channel": channel, "ts": message.ts,
                              "text": message.text}, status=reply.status,
                             headers=reply.headers)


async def _history(request: web.Request) -> web.StreamResponse:
    state, space = request.app[STATE], request.app[WORKSPACE]
    await state.record(request)
    auth = request.headers.get("Authorization")
    if auth != f"Bearer {BOT_TOKEN}":
        return _api_error(state, "invalid_auth" if auth else "not_authed")
    query = request.query
    channel = query.get("channel", "")
    if channel not in CHANNELS:
        return _api_error(state, "channel_not_found")
    try:
        limit = min(int(query.get("limit", "100")), 999)
        oldest = float(query.get("oldest", "0"))
    except ValueError:
        return _api_error(state, "invalid_arguments")
    if space.history_replies:
        reply = space.history_replies.popleft()
        if isinstance(reply, str):
            return _api_error(state, reply)
        if not 200 <= reply.status < 300:
            return web.json_response({"ok": False, "error": API_ERRORS.get(
                reply.status, "scripted_failure")}, status=reply.status, headers=reply.headers)
    with_meta = query.get("include_all_metadata") in ("true", "1")
    newer = [m for m in reversed(space.top_level(channel)) if float(m.ts) > oldest]
    page = [{"type": "message", "subtype": "bot_message", "bot_id": "B0BATON01",
             "text": m.text, "ts": m.ts, "blocks": m.blocks,
             **({"metadata": m.metadata} if with_meta and m.metadata else {})}
            for m in newer[:limit]]
    return web.json_response({"ok": True, "messages": page, "has_more": len(newer) > limit,
                              "pin_count": 0, "response_metadata": {"next_cursor": ""}})


# Slack refuses requests signed more than five minutes from now.
STALE = 300.0


def callback_request(action: str, incident_id: str, external_id: str | None, event_id: str,
                     now: float, forged: bool = False) -> tuple[bytes, dict[str, str]] | None:
    """A ``block_actions`` interaction: a person pressed one of Baton's buttons."""
    action_id = {"acknowledge": "baton_acknowledge", "resolve": "baton_resolve"}.get(action)
    if action_id is None:
        return None
    payload = {"type": "block_actions",
               "user": {"id": "U2CERLKJA", "username": "roadrunner", "team_id": "T9TK3CUKW"},
               "channel": {"id": CHANNEL}, "container": {"type": "message"},
               "actions": [{"type": "button", "action_id": action_id, "block_id": "baton",
                            "value": incident_id, "action_ts": event_id}]}
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(now))
    key = b"not-the-secret" if forged else SIGNING_SECRET.encode()
    signature = "v0=" + hmac.new(key, b"v0:" + stamp.encode() + b":" + body,
                                 hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/x-www-form-urlencoded",
                  "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}
