"""Silences (list, preview, create, expire) and deliveries (dead letters, replay).

Silences are validated by ``silence.parse_request``, the API's own check, and saved and
expired through the store as the API does; replay is ``Store.retry_delivery`` for one
and for every dead letter, as ``baton deliveries retry --all`` does.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from ..api import state
from ..errors import BatonError, PayloadError
from ..matcher import matches_all, parse_matcher
from ..silence import parse_request
from .session import SESSION, Session, context, redirect
from .views_incidents import OPEN

PREVIEW_LIMIT = 500  # open incidents looked at per status for a preview
DELIVERY_PAGE = 200


def _silence_request(form: dict[str, str]) -> dict[str, Any]:
    matchers = [line.strip() for line in form.get("matchers", "").splitlines()
                if line.strip()]
    return {"matchers": matchers, "duration": form.get("duration", "").strip() or "2h"}


async def _form(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}


async def silences(request: web.Request) -> web.StreamResponse:
    now = request.config_dict[state.CLOCK].now()
    docs = await request.config_dict[state.STORE].list_silences(None, now)
    order = {"active": 0, "pending": 1, "expired": 2}
    docs.sort(key=lambda d: order.get(d.get("state", ""), 3))
    return aiohttp_jinja2.render_template("silences.html", request, {
        **context(request), "silences": docs})


async def preview(request: web.Request) -> web.StreamResponse:
    """The open incidents the silence in the form would match now (an htmx fragment)."""
    data = _silence_request(await _form(request))
    store = request.config_dict[state.STORE]
    errors: list[str] = []
    matched: list[dict[str, Any]] = []
    try:
        parse_request(data, request.config_dict[state.CLOCK].now())
        matchers = [parse_matcher(m) for m in data["matchers"]]
    except PayloadError as e:
        errors = e.errors or [str(e)]
    else:
        candidates: list[dict[str, Any]] = []
        for status in OPEN:
            page, _ = await store.list_incidents(status=status, limit=PREVIEW_LIMIT)
            candidates += page
        labels = await store.firing_labels([d["id"] for d in candidates])
        matched = [d for d in candidates
                   if any(matches_all(matchers, ls) for ls in labels.get(d["id"], []))]
    return aiohttp_jinja2.render_template("_silence_preview.html", request, {
        "errors": errors, "matched": matched, "checked": not errors})


async def create_silence(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    session: Session = request[SESSION]
    now = request.config_dict[state.CLOCK].now()
    try:
        matchers, start, end = parse_request(_silence_request(form), now)
        doc = await request.config_dict[state.STORE].create_silence(
            matchers, start, end, session.actor, form.get("comment", "").strip(), now)
    except PayloadError as e:
        message = "; ".join(e.errors or [str(e)])
        raise redirect(request, "/ui/silences", error=message) from None
    raise redirect(request, "/ui/silences", done=f"silence {doc['id']} created")


async def expire_silence(request: web.Request) -> web.StreamResponse:
    session: Session = request[SESSION]
    try:
        await request.config_dict[state.STORE].expire_silence(
            request.match_info["id"], session.actor, request.config_dict[state.CLOCK].now())
    except BatonError as e:
        raise redirect(request, "/ui/silences", error=str(e)) from None
    raise redirect(request, "/ui/silences", done="silence expired")


async def deliveries(request: web.Request) -> web.StreamResponse:
    store = request.config_dict[state.STORE]
    dead, _ = await store.list_deliveries(state="dead", limit=DELIVERY_PAGE)
    pending, _ = await store.list_deliveries(state="pending", limit=DELIVERY_PAGE)
    retrying = [d for d in pending if d["attempts"] > 0]
    return aiohttp_jinja2.render_template("deliveries.html", request, {
        **context(request), "dead": dead, "retrying": retrying})


async def replay(request: web.Request) -> web.StreamResponse:
    """``POST /ui/deliveries/{id}/replay``, or ``/ui/deliveries/replay-all`` (every dead
    letter)."""
    store = request.config_dict[state.STORE]
    session: Session = request[SESSION]
    now = request.config_dict[state.CLOCK].now()
    one = request.match_info.get("id")
    ids = [one] if one else await store.dead_ids()
    done = 0
    try:
        for delivery_id in ids:
            await store.retry_delivery(delivery_id, session.actor, now)
            done += 1
    except BatonError as e:
        raise redirect(request, "/ui/deliveries", error=str(e)) from None
    raise redirect(request, "/ui/deliveries", done=f"{done} replayed")


def routes(r: web.UrlDispatcher) -> None:
    r.add_get("/silences", silences)
    r.add_post("/silences", create_silence)
    r.add_post("/silences/preview", preview)
    r.add_post("/silences/{id}/expire", expire_silence)
    r.add_get("/deliveries", deliveries)
    r.add_post("/deliveries/replay-all", replay)
    r.add_post("/deliveries/{id}/replay", replay)
