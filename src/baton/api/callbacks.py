"""``POST /v1/callbacks/{connector}``: what a human did at a ticketing or paging tool.

The connector verifies the request the vendor's way (signature, shared secret) and says
what it means; storage applies each vendor event once (see ``store.callbacks``). The
management API's tokens do not apply here: vendors cannot send them, their signatures are
the credential.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from ..errors import AuthError, PayloadError
from ..storable import storable
from . import state
from .problem import check_headers, read_limited

log = structlog.get_logger("baton.callbacks")

# Vendors' callbacks are small (a Jira issue event with its changelog is the largest).
MAX_BODY = 1024 * 1024


async def callback(request: web.Request) -> web.Response:
    name = request.match_info["connector"]
    lane = request.app[state.DISPATCHER].lanes.get(name)
    if lane is None:
        raise web.HTTPNotFound(text=f"no connector named {name!r} is configured")
    connector = lane.connector
    if not connector.accepts_callbacks:
        raise web.HTTPNotFound(text=f"connector {name!r} (type {connector.type}) takes no "
                                    "callbacks")
    structlog.contextvars.bind_contextvars(connector=name)
    metrics = request.app[state.METRICS]
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY,
                                            actual_size=request.content_length)
    body = await read_limited(request, MAX_BODY)
    now = request.app[state.CLOCK].now()
    try:
        check_headers(request.headers)
        try:
            # NUL in a vendor's text is stored as U+FFFD, as at ingest.
            events = storable(connector.callback(body, request.headers, now))
        except RecursionError:  # JSON nested as deep as the decoder goes: the sender's
            raise PayloadError("body nested too deeply") from None
        for event in events:
            _storable(event.event_id, event.actor, event.text or "", event.incident_id or "",
                      event.external_id or "")
    except (AuthError, PayloadError) as e:
        reason = "auth" if isinstance(e, AuthError) else "payload"
        metrics.callbacks.labels(name, reason).inc()
        log.warning("callback rejected", reason=reason, error=str(e)[:300])
        raise
    result = await request.app[state.STORE].apply_callbacks(name, events, now)
    for outcome in ("applied", "unchanged", "replayed", "unknown"):
        if result[outcome]:
            metrics.callbacks.labels(name, outcome).inc(result[outcome])
    log.info("callback", events=len(events), **result)
    return web.json_response({"events": len(events), **result})


def _storable(*texts: str) -> None:
    """What a vendor's event brings must be storable text: a lone surrogate (a JSON
    ``\\ud800`` escape) would fail the insert, a 500 after the signature was checked."""
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise PayloadError("body carries text that is not valid Unicode "
                               "(an unpaired surrogate escape)") from None
