"""Silences through the management API: ``/v1/silences``."""

from __future__ import annotations

from aiohttp import web

from ..errors import PayloadError
from ..silence import parse_request
from . import state
from .manage import actor_name, authorize
from .problem import json_body

STATES = ("active", "pending", "expired")


async def create(request: web.Request) -> web.Response:
    token = authorize(request)
    _raw, data = await json_body(request, 64 * 1024)
    if not isinstance(data, dict):
        raise PayloadError("body must be a JSON object")
    unknown = sorted(set(data) - {"matchers", "starts_at", "ends_at", "duration",
                                  "created_by", "comment"})
    by, comment = data.get("created_by"), data.get("comment", "")
    errors = [f"{k}: unknown field" for k in unknown]
    if not isinstance(by, str) or not by.strip():
        errors.append("created_by: required, a non-empty string")
    if not isinstance(comment, str):
        errors.append("comment: must be a string")
    now = request.app[state.CLOCK].now()
    try:
        matchers, start, end = parse_request(data, now)
    except PayloadError as e:
        errors += e.errors
    if errors:
        raise PayloadError("invalid silence", errors)
    doc = await request.app[state.STORE].create_silence(
        matchers, start, end, actor_name(token, str(by)), str(comment), now)
    return web.json_response(doc, status=201)


async def listing(request: web.Request) -> web.Response:
    authorize(request)
    wanted = request.query.get("state") or None
    if wanted is not None and wanted not in STATES:
        raise PayloadError(f"state must be one of {', '.join(STATES)}", ["state"])
    docs = await request.app[state.STORE].list_silences(wanted,
                                                        request.app[state.CLOCK].now())
    return web.json_response({"silences": docs})


async def get(request: web.Request) -> web.Response:
    authorize(request)
    doc = await request.app[state.STORE].get_silence(request.match_info["id"],
                                                     request.app[state.CLOCK].now())
    return web.json_response(doc)


async def expire(request: web.Request) -> web.Response:
    token = authorize(request)
    doc = await request.app[state.STORE].expire_silence(
        request.match_info["id"], actor_name(token, None), request.app[state.CLOCK].now())
    return web.json_response(doc)
