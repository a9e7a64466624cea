"""A strict Standard Webhooks receiver, the vendor behind the ``webhook`` connector.

It answers as a careful receiver would: 404 off its path, 401 without the right token,
Authorization or signature (including a stale timestamp), 415 unless the body is JSON,
400 when the idempotency headers are missing or disagree, 422 when the JSON has no valid
``notification``. Accepted requests are recorded with the action from
``notification.action`` and the keys ``(Idempotency-Key, webhook-id)``.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from baton import signing
from baton.secret import Secret

from . import STATE, FakeState

PATH = "/hooks/baton"
URL_TOKEN = "s3cr3t-XYZ-url-token-do-not-leak"
AUTHORIZATION = "Bearer s3cr3t-XYZ-header-do-not-leak"
SIGNING_KEY = b"s3cr3t-XYZ-do-not-leak-signing-key"
SIGNING_SECRET = "whsec_" + base64.b64encode(SIGNING_KEY).decode()
ACTIONS = frozenset({"trigger", "update", "acknowledge", "resolve", "note"})

# The URL token is not a Secret object and the decoded key never appears in config text,
# yet either would be as bad to leak.
SENSITIVE = (URL_TOKEN, SIGNING_KEY.decode())


def config(base_url: str) -> dict[str, Any]:
    return {
        "url": f"{base_url}{PATH}?token={URL_TOKEN}",
        "headers": {"Authorization": Secret(AUTHORIZATION, "env:WEBHOOK_TOKEN"),
                    "X-Team": "ops"},
        "secret": Secret(SIGNING_SECRET, "env:WEBHOOK_SECRET"),
    }


def make_app(state: FakeState) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app.router.add_post(PATH, _receive)
    return app


def _signature_problem(request: web.Request, body: bytes) -> str | None:
    h = request.headers
    parts = [h.get(signing.HEADER_ID), h.get(signing.HEADER_TIMESTAMP),
             h.get(signing.HEADER_SIGNATURE)]
    msg_id, timestamp, signature = parts
    if msg_id is None or timestamp is None or signature is None:
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    if not signing.verify(SIGNING_KEY, msg_id, timestamp, body, signature, now=time.time()):
        return "signature does not verify or timestamp outside tolerance"
    return None


def _notification_problem(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return "body is not JSON"
    note = doc.get("notification") if isinstance(doc, dict) else None
    if not isinstance(note, dict):
        return "no notification object"
    if note.get("action") not in ACTIONS or not note.get("idempotency_key"):
        return "notification needs a known action and an idempotency_key"
    if not isinstance(doc.get("id"), str) or not isinstance(doc.get("status"), str):
        return "incident id and status are required"
    return None


async def _receive(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    if request.query.get("token") != URL_TOKEN:
        return state.reject(401, "missing or wrong token")
    if request.headers.get("Authorization") != AUTHORIZATION:
        return state.reject(401, "missing or wrong Authorization")
    if problem := _signature_problem(request, seen.body):
        return state.reject(401, problem)
    if request.content_type != "application/json":
        return state.reject(415, "Content-Type must be application/json")
    key = request.headers.get("Idempotency-Key")
    if not key or key != request.headers[signing.HEADER_ID]:
        return state.reject(400, "Idempotency-Key missing or not equal to webhook-id")
    if problem := _notification_problem(seen.body):
        return state.reject(422, problem)
    note = json.loads(seen.body)["notification"]
    if unquote(key) != note["idempotency_key"]:  # the header form is percent-encoded
        return state.reject(400, "Idempotency-Key differs from notification.idempotency_key")

    reply = await state.next_reply()
    status = reply.status if reply else 200
    headers = dict(reply.headers) if reply else {}
    if not 200 <= status < 300:
        return web.json_response({"error": reply.message if reply else "scripted failure"},
                                 status=status, headers=headers)
    state.accept(note["action"], (key, request.headers[signing.HEADER_ID]), seen)
    if status == 204:
        return web.Response(status=204, headers=headers)
    return web.json_response({"received": note["idempotency_key"]}, status=status,
                             headers=headers)
