"""A strict Twilio Programmable Messaging API, the vendor behind the ``sms`` connector.

Written from Twilio's Message resource reference. ``/2010-04-01/Accounts/{AccountSid}/
Messages.json``: HTTP basic auth AccountSid:AuthToken or 401 (error 20003, with a
``WWW-Authenticate`` challenge); another account's path 404 (20404). Create (POST) reads
form-encoded parameters only (a JSON body reads as no parameters at all): ``To`` is
required (21604) and must be E.164 (21211); ``From`` (21603 when neither it nor
``MessagingServiceSid`` is given) must be the account's number (21606); a
``MessagingServiceSid`` must be a known service (21701); ``Body`` is required (21602) and at
most 1600 characters (21617). It answers 201 with the message (``sid`` ``SM`` + 32 hex,
``status: queued``). Errors are ``{"code", "message", "more_info", "status"}``. Read (GET)
lists messages newest first, filtered by ``To`` and ``From``, ``PageSize`` of them.

Accepted messages are recorded with the Baton action the text announces (``[ACK]``
acknowledge, ``[RESOLVED]`` resolve, ``[NOTE]`` note, ``[<SEVERITY>] Updated`` update,
``[<SEVERITY>]`` trigger) and the keys ``(To, Body)``.
"""

from __future__ import annotations

import base64
import email.utils
import re
import uuid
from typing import Any

from aiohttp import web

from baton.secret import Secret

from . import STATE, FakeState, chunked_json

ACCOUNT_SID = "AC5ef8732a3c49700934481addd5ce1659"
AUTH_TOKEN = "s3cr3t-TWILIO-auth-token-do-not-leak"
FROM = "+15557770100"
SERVICE_SID = "MG9752274e9e519418a7406176694466fa"
DEFAULT_TO = "+15550100"
PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
TAGS = {"ACK": "acknowledge", "RESOLVED": "resolve", "NOTE": "note"}
_TEXT = re.compile(r"^\[(?P<tag>[A-Z]+)\](?P<updated> Updated)?")
_SCRIPTED_CODES = {429: 20429, 500: 20500, 503: 20503}

# The basic-auth credential as it travels: the Secret's value in another form.
SENSITIVE = (base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode(),)

MESSAGES: web.AppKey[list[dict[str, Any]]] = web.AppKey("messages")


def config(base_url: str) -> dict[str, Any]:
    return {"account_sid": ACCOUNT_SID,
            "auth_token": Secret(AUTH_TOKEN, "env:TWILIO_AUTH_TOKEN"),
            "from": FROM, "default_to": DEFAULT_TO, "url": base_url,
            "incident_url": "https://oncall.example.com/incidents/{id}"}


def make_app(state: FakeState) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app[MESSAGES] = []
    route = "/2010-04-01/Accounts/{account}/Messages.json"
    app.router.add_post(route, _create)
    app.router.add_get(route, _list)
    return app


def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


def _refuse(state: FakeState, status: int, code: int, message: str) -> web.Response:
    state.rejected.append((status, f"{code}: {message}"))
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else None
    return web.json_response(error_body(status, code, message), status=status,
                             headers=headers)


def _auth_problem(request: web.Request) -> tuple[int, int, str] | None:
    expected = Secret(f"{ACCOUNT_SID}:{AUTH_TOKEN}")
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    try:
        given = base64.b64decode(value, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        given = ""
    if scheme.lower() != "basic" or not expected.equals(given):
        return 401, 20003, "Authenticate"
    if request.match_info["account"] != ACCOUNT_SID:
        return 404, 20404, f"The requested resource {request.path} was not found"
    return None


def action_of(body: str) -> str | None:
    match = _TEXT.match(body)
    if not match:
        return None
    if match["tag"] in TAGS:
        return TAGS[match["tag"]]
    return "update" if match["updated"] else "trigger"


def _form_problem(form: dict[str, str]) -> tuple[int, str] | None:
    to = form.get("To")
    if not to:
        return 21604, "A 'To' phone number is required."
    if not E164.match(to):
        return 21211, f"Invalid 'To' Phone Number: {to}"
    service, sender = form.get("MessagingServiceSid"), form.get("From")
    if not service and not sender:
        return 21603, "A 'From' phone number is required."
    if service and service != SERVICE_SID:
        return 21701, f"The Messaging Service Sid {service} is invalid."
    if sender and not service and sender != FROM:
        return 21606, (f"The From phone number {sender} is not a valid, SMS-capable inbound "
                       "phone number or short code for your account.")
    body = form.get("Body")
    if not body:
        return 21602, "Message body is required."
    if len(body) > 1600:
        return 21617, "The concatenated message body exceeds the 1600 character limit."
    if action_of(body) is None:  # a test aid, not Twilio: the fake names Baton's action
        return 21602, "test fake: the text does not start with a Baton tag"
    return None


async def _scripted(state: FakeState) -> tuple[int, dict[str, str]] | web.Response:
    reply = await state.next_reply()
    status = reply.status if reply else 0
    headers = dict(reply.headers) if reply else {}
    if reply and not 200 <= status < 300:
        code = _SCRIPTED_CODES.get(status, 20001)
        return web.json_response(error_body(status, code, reply.message),
                                 status=status, headers=headers)
    return status, headers


async def _create(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    if problem := _auth_problem(request):
        return _refuse(state, *problem)
    form: dict[str, str] = {}
    if request.content_type == "application/x-www-form-urlencoded":
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    if bad := _form_problem(form):
        return _refuse(state, 400, *bad)
    scripted = await _scripted(state)
    if isinstance(scripted, web.Response):
        return scripted
    status, headers = scripted
    sid = "SM" + uuid.uuid4().hex
    message = {
        "sid": sid, "account_sid": ACCOUNT_SID, "to": form["To"],
        "from": None if form.get("MessagingServiceSid") else form["From"],
        "messaging_service_sid": form.get("MessagingServiceSid"), "body": form["Body"],
        "status": "accepted" if form.get("MessagingServiceSid") else "queued",
        "direction": "outbound-api", "num_segments": "1", "num_media": "0",
        "date_created": email.utils.formatdate(usegmt=False), "date_sent": None,
        "error_code": None, "error_message": None, "price": None, "api_version": "2010-04-01",
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
    }
    request.app[MESSAGES].append(message)
    state.accept(str(action_of(form["Body"])), (form["To"], form["Body"]), seen)
    if status == 204:
        return web.Response(status=204, headers=headers)
    return web.json_response(message, status=status or 201, headers=headers)


async def _list(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    await state.record(request)
    if problem := _auth_problem(request):
        return _refuse(state, *problem)
    try:
        size = min(int(request.query.get("PageSize", "50")), 1000)
    except ValueError:
        return _refuse(state, 400, 20001, "Invalid PageSize")
    scripted = await _scripted(state)
    if isinstance(scripted, web.Response):
        return scripted
    messages = request.app[MESSAGES]
    wanted = [m for m in messages[::-1]
              if request.query.get("To") in (None, m["to"])
              and request.query.get("From") in (None, m["from"])][:size]
    return await chunked_json(request, {
        "messages": wanted, "page": 0, "page_size": size, "start": 0,
        "end": max(len(wanted) - 1, 0), "uri": request.path_qs,
        "first_page_uri": request.path_qs, "next_page_uri": None, "previous_page_uri": None,
    })
