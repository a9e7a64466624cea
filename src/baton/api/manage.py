"""The management API: incidents and the delivery ledger."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from ..errors import PayloadError
from ..store import Store
from . import state
from .auth import check_management
from .problem import Handler, check_headers, json_body

MAX_BODY = 64 * 1024
INCIDENT_STATUSES = ("triggered", "acknowledged", "resolved")
DELIVERY_STATES = ("pending", "in_flight", "delivered", "dead", "superseded")


def authorize(request: web.Request) -> str | None:
    # The token first, checking only its header: a stranger's other headers cost nothing.
    check_headers(request.headers, ("Authorization",))
    if "id" in request.match_info:
        kind = request.path.split("/")[2]  # /v1/<kind>/{id}...
        key = {"deliveries": "delivery_id", "silences": "silence_id"}.get(kind, "incident_id")
        structlog.contextvars.bind_contextvars(**{key: request.match_info["id"]})
    name = check_management(request.app[state.CONFIG].api_tokens, request)
    check_headers(request.headers)  # handlers may read any of them
    return name


def actor_name(token: str | None, by: str | None) -> str:
    """Who acted: the person named in the body, qualified by the API token used, so the
    timeline shows both what was claimed and which credential claimed it."""
    name = by or "api"
    return f"{name} (token:{token})" if token else name


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit") or "50"  # "?limit=" is unset, as for every parameter
    # isascii: str.isdigit also takes "²", which int() refuses (a 500, not a 400).
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3) or not 1 <= int(raw) <= 500:
        raise PayloadError("limit must be an integer from 1 to 500", ["limit"])
    return int(raw)


def _choice(request: web.Request, key: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query.get(key) or None
    if value is not None and value not in allowed:
        raise PayloadError(f"{key} must be one of {', '.join(allowed)}", [key])
    return value


async def _body(request: web.Request, required: tuple[str, ...],
                optional: tuple[str, ...]) -> dict[str, Any]:
    _raw, data = await json_body(request, MAX_BODY)
    if not isinstance(data, dict):
        raise PayloadError("body must be a JSON object")
    errors = [f"{k}: required" for k in required if k not in data]
    errors += [f"{k}: must be a non-empty string" for k in (*required, *optional)
               if k in data and (not isinstance(data[k], str) or not data[k].strip())]
    errors += [f"{k}: unknown field" for k in data if k not in (*required, *optional)]
    if errors:
        raise PayloadError("invalid request body", sorted(errors))
    return data


async def list_incidents(request: web.Request) -> web.Response:
    authorize(request)
    docs, cursor = await request.app[state.STORE].list_incidents(
        status=_choice(request, "status", INCIDENT_STATUSES),
        service=request.query.get("service"), limit=_limit(request),
        cursor=request.query.get("cursor"))
    return web.json_response({"incidents": docs, "next_cursor": cursor})


async def get_incident(request: web.Request) -> web.Response:
    authorize(request)
    doc = await request.app[state.STORE].get_incident(request.match_info["id"])
    return web.json_response(doc)


# (store, incident id, actor, body, now) -> the incident document after the change
IncidentCall = Callable[[Store, str, str, dict[str, Any], float],
                        Awaitable[dict[str, Any]]]


def _incident_action(required: tuple[str, ...], optional: tuple[str, ...],
                     call: IncidentCall, status: int = 200) -> Handler:
    """A ``POST /v1/incidents/{id}/<action>`` handler: authorize, validate the body, act as
    ``by`` (qualified by the token), answer with the incident as it now is."""
    async def handler(request: web.Request) -> web.Response:
        token = authorize(request)
        data = await _body(request, required, optional)
        store, clock = request.app[state.STORE], request.app[state.CLOCK]
        doc = await call(store, request.match_info["id"], actor_name(token, data["by"]),
                         data, clock.now())
        return web.json_response(doc, status=status)
    return handler


acknowledge = _incident_action(("by",), ("note",), lambda st, i, by, d, now: st.acknowledge(
    i, by, d.get("note"), now))
unacknowledge = _incident_action(("by",), ("note",), lambda st, i, by, d, now:
                                 st.unacknowledge(i, by, d.get("note"), now))
escalate = _incident_action(("by", "reason"), (), lambda st, i, by, d, now: st.escalate(
    i, by, d["reason"], now))
resolve = _incident_action(("by",), ("note",), lambda st, i, by, d, now: st.resolve(
    i, by, d.get("note"), now))
add_note = _incident_action(("by", "text"), (), lambda st, i, by, d, now: st.add_note(
    i, by, d["text"], now), status=201)


async def list_deliveries(request: web.Request) -> web.Response:
    authorize(request)
    docs, cursor = await request.app[state.STORE].list_deliveries(
        state=_choice(request, "state", DELIVERY_STATES),
        connector=request.query.get("connector"), limit=_limit(request),
        cursor=request.query.get("cursor"))
    return web.json_response({"deliveries": docs, "next_cursor": cursor})


async def retry_delivery(request: web.Request) -> web.Response:
    actor = actor_name(authorize(request), None)
    store, clock = request.app[state.STORE], request.app[state.CLOCK]
    doc = await store.retry_delivery(request.match_info["id"], actor, clock.now())
    return web.json_response(doc, status=202)
