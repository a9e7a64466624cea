"""``POST /v1/ingest/{source}``: answer only once the alerts are committed."""

from __future__ import annotations

import time
from typing import Any

import structlog
from aiohttp import web

from ..config import SourceConfig
from ..errors import AuthError, PayloadError, StorageUnavailable
from . import state
from .auth import auth_headers, check_signature, check_source
from .problem import check_headers, decode, raw_json_body

log = structlog.get_logger("baton.ingest")


def printable(text: str, limit: int = 100) -> str:
    return text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")


async def ingest(request: web.Request) -> web.Response:
    """``POST /v1/ingest/{source}``, and ``PUT`` for the source types whose senders use it
    (``Source.methods``: Grafana's webhook contact point offers POST or PUT)."""
    name = request.match_info["source"]
    src_cfg = configured(request, name)
    methods = request.app[state.PIPELINE].sources[name].methods
    if request.method not in methods:
        # Before authentication, so not naming the source's type to whoever asks.
        raise web.HTTPMethodNotAllowed(request.method, methods,
                                       text=f"source {name!r} takes {' or '.join(methods)}")
    return web.json_response(await take(request, name, src_cfg), status=202)


def configured(request: web.Request, name: str) -> SourceConfig:
    """The configured source ``name``; 404 otherwise, counted and (rate-limited) logged."""
    src_cfg = request.app[state.CONFIG].sources.get(name)
    if src_cfg is None:
        request.app[state.METRICS].rejected.labels("", "unknown_source").inc()
        held = request.app[state.PROBES].take(name, request.app[state.CLOCK].now())
        if held is not None:
            # Sender-controlled text, cut and made printable (no lone surrogates).
            log.warning("unknown source", source=printable(name), remote=request.remote,
                        user_agent=printable(request.headers.get("User-Agent", "")),
                        suppressed=held)
        raise web.HTTPNotFound(text=f"no source named {name!r} is configured")
    return src_cfg


async def take(request: web.Request, name: str, src_cfg: SourceConfig,
               raw: bytes | None = None) -> dict[str, Any]:
    """Authenticate, parse and store one request for source ``name``; the 202 body.

    ``raw``: the body, when the caller had to read it to find the source (the PagerDuty
    Events path that selects it by routing key); it still passes the source's own checks.
    """
    config = request.app[state.CONFIG]
    pipeline = request.app[state.PIPELINE]
    metrics = request.app[state.METRICS]
    structlog.contextvars.bind_contextvars(source=name)
    started = time.perf_counter()
    stage = "auth"
    try:
        # Authenticate first, checking only the headers that takes: a stranger's other
        # headers cost nothing (issue 10, finding 4).
        check_headers(request.headers, auth_headers(src_cfg.auth))
        check_source(src_cfg.auth, request)
        stage = "body"
        adapter = pipeline.sources[name]
        limit = src_cfg.max_body_bytes or config.server.max_body_bytes
        if raw is None:
            # Overloaded: refuse before reading the body, so a storm cannot fill memory.
            pipeline.store.admit(request.content_length or 0)
            raw = await raw_json_body(request, limit, adapter.content_types)
        elif len(raw) > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(raw))
        stage = "auth"
        now = request.app[state.CLOCK].now()
        message_id = check_signature(src_cfg.auth, raw, request.headers, now)
        check_headers(request.headers)  # the adapter may read any of them
        stage = "payload"
        payload = decode(raw)
        http = request.app[state.DISPATCHER].http
        if http is None:
            # Only before startup has finished; a source's checks (an SNS signature) must
            # never be skipped, so the sender is asked to come back instead.
            raise StorageUnavailable("the gateway is starting", retry_after=1)
        message_id = await adapter.prepare(raw, payload, request.headers, now,
                                           http) or message_id
        alerts = adapter.parse(payload, request.headers)
        stage = "storage"
        result = await pipeline.ingest(name, raw.decode("utf-8"), alerts, message_id)
    except (PayloadError, AuthError, StorageUnavailable, web.HTTPException) as e:
        # Bad input leaves only this log line and the metric: nothing was stored.
        reason = next((r for t, r in _REASONS if isinstance(e, t)), stage)
        metrics.rejected.labels(name, reason).inc()
        log.warning("ingest rejected", reason=reason, error=str(e)[:300])
        raise
    if result.replayed:
        log.info("replayed message ignored", message_id=message_id)
        # The vendor's reply keys too: a sender that reads them (PagerDuty's dedup_key)
        # must not take a redelivery for a failure.
        return {"accepted": 0, "incidents": [], "replayed": True,
                **adapter.response(alerts)}
    metrics.ingest_latency.labels(name).observe(time.perf_counter() - started)
    structlog.contextvars.bind_contextvars(incident_ids=list(result.incident_ids))
    log.info("ingested", alerts=len(alerts), incidents=len(result.incident_ids),
             opened=result.opened, deduplicated=result.deduplicated,
             resolved=result.resolved, event_id=result.event_id)
    return {"accepted": len(alerts), "incidents": list(result.incident_ids),
            **adapter.response(alerts)}


_REASONS = ((PayloadError, "payload"), (AuthError, "auth"), (StorageUnavailable, "storage"))
