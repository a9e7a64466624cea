"""The PagerDuty Events API v2 paths, so PagerDuty's own clients can send to Baton.

Those clients (``pagerduty``, ``pdpyras``, and most tools' PagerDuty integrations) post to
``<base>/v2/enqueue``, where only the base is configurable. Two ways in, both for sources
of ``type: pagerduty-events``:

- ``POST /v1/ingest/{source}/v2/enqueue``: base ``https://baton.example/v1/ingest/{source}``.
  The source is named in the path; its ``routing_key`` setting, when given, is checked as a
  credential (401 when wrong), exactly as on ``/v1/ingest/{source}``.
- ``POST /v2/enqueue``: for senders whose base is only a host. The body's ``routing_key``
  selects the ``pagerduty-events`` source configured with that key; a key no source has is
  answered as PagerDuty answers it (400 ``invalid event``). Sources without a
  ``routing_key`` cannot be reached this way.

Either way the source's own ``auth`` still applies and the store is protected the same way
(503 + Retry-After when overloaded). Answers are PagerDuty's: 202 ``{"status": "success",
"message": "Event processed", "dedup_key": ...}`` (beside Baton's ``accepted`` and
``incidents``), and errors as ``{"status", "message", "errors"}`` with the same HTTP status
Baton would give, since the clients read that shape.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from aiohttp import web

from ..config import Config, SourceConfig
from ..errors import AuthError, MalformedBody, PayloadError, StorageUnavailable
from ..secret import Secret
from . import state
from .ingest import configured, printable, take
from .problem import decode, raw_json_body

TYPE = "pagerduty-events"
log = structlog.get_logger("baton.ingest")


async def enqueue(request: web.Request) -> web.Response:
    """``POST /v1/ingest/{source}/v2/enqueue``."""
    name = request.match_info["source"]
    src_cfg = configured(request, name)
    if src_cfg.type != TYPE:
        # A problem, not PagerDuty's shape: this source speaks another format. Its type is
        # not named: the sender is not authenticated yet.
        raise web.HTTPNotFound(text=f"the Events API v2 path serves {TYPE} sources only, "
                                    f"and {name!r} is not one")
    try:
        return web.json_response(await take(request, name, src_cfg), status=202)
    except (PayloadError, AuthError, StorageUnavailable, web.HTTPException) as e:
        return answer_error(e)


async def enqueue_by_key(request: web.Request) -> web.Response:
    """``POST /v2/enqueue``: the source is the one whose ``routing_key`` the body carries."""
    config = request.app[state.CONFIG]
    stage = "storage"
    try:
        request.app[state.PIPELINE].store.admit(request.content_length or 0)
        stage = "body"
        # The source is not known yet: read up to the largest limit one of them takes
        # (``take`` then holds the body to the selected source's own).
        raw = await raw_json_body(request, largest_limit(config))
        stage = "payload"
        body = decode(raw)
        key = body.get("routing_key") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            raise PayloadError("'routing_key' is missing or not a string")
        src_cfg = select(config.sources.values(), key)
        if src_cfg is None:
            stage = ""  # counted and logged as an unknown source
            unknown_key(request)
            raise PayloadError("Invalid routing key")
        stage = ""  # from here on the source's own processing counts what it refuses
        return web.json_response(await take(request, src_cfg.name, src_cfg, raw),
                                 status=202)
    except (PayloadError, AuthError, StorageUnavailable, web.HTTPException) as e:
        if stage:  # refused before any source was known
            request.app[state.METRICS].rejected.labels("", stage).inc()
        return answer_error(e)


def largest_limit(config: Config) -> int:
    """The largest body a source reachable here accepts (its max_body_bytes, else the
    server's)."""
    limits = [src.max_body_bytes or config.server.max_body_bytes
              for src in config.sources.values()
              if src.type == TYPE and src.options.get("routing_key") is not None]
    return max(limits, default=config.server.max_body_bytes)


def unknown_key(request: web.Request) -> None:
    """Counted as an unknown source; logged as those are, at most once a minute (a
    scan with guessed keys must not flood the log). The key itself is never logged."""
    request.app[state.METRICS].rejected.labels("", "unknown_source").inc()
    held = request.app[state.PROBES].take("/v2/enqueue", request.app[state.CLOCK].now())
    if held is not None:
        log.warning("unknown routing key", remote=request.remote, suppressed=held,
                    user_agent=printable(request.headers.get("User-Agent", "")))


def select(sources: Iterable[SourceConfig], key: str) -> SourceConfig | None:
    """The ``pagerduty-events`` source configured with routing key ``key``.

    Every configured key is compared, in constant time, whichever matches: the time taken
    tells nothing about which keys exist. The loader refuses two sources with one key.
    """
    found = None
    for src in sources:
        expected = src.options.get("routing_key") if src.type == TYPE else None
        if isinstance(expected, str):
            expected = Secret(expected)
        if isinstance(expected, Secret) and expected.equals(key):
            found = src
    return found


def answer_error(e: Exception) -> web.Response:
    """An error in the shape PagerDuty's Events API answers it, same HTTP status as the
    problem+json answer elsewhere (and its Retry-After / WWW-Authenticate headers)."""
    if isinstance(e, MalformedBody):
        # PagerDuty's own answer to a body that does not parse.
        return _error(400, "Unrecognized object", "Event object format is unrecognized",
                      ["JSON parse error", e.detail])
    if isinstance(e, PayloadError):
        return _error(400, "invalid event", "Event object is invalid",
                      e.errors or [e.detail])
    if isinstance(e, AuthError):
        return _error(401, "unauthorized", str(e), [str(e)],
                      {"WWW-Authenticate": e.challenge})
    if isinstance(e, StorageUnavailable):
        return _error(503, "unavailable", str(e), [str(e)],
                      {"Retry-After": str(e.retry_after)})
    assert isinstance(e, web.HTTPException)
    if e.status < 400:
        raise e
    headers = {k: v for k, v in e.headers.items()
               if k.lower() in ("allow", "retry-after", "www-authenticate")}
    detail = e.text if e.text and e.text != f"{e.status}: {e.reason}" else e.reason
    return _error(e.status, e.reason.lower(), detail, [detail], headers)


def _error(status: int, title: str, message: str, errors: list[str],
           headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"status": title, "message": message, "errors": errors},
                             status=status, headers=headers)
