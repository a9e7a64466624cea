"""``POST /v1/ingest/{source}``: answer only once the alerts are committed."""

from __future__ import annotations

import time

import structlog
from aiohttp import web

from ..errors import AuthError, PayloadError, StorageUnavailable
from . import state
from .auth import auth_headers, check_signature, check_source
from .problem import check_headers, decode, raw_json_body

log = structlog.get_logger("baton.ingest")


def _printable(text: str, limit: int = 100) -> str:
    return text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")


async def ingest(request: web.Request) -> web.Response:
    name = request.match_info["source"]
    config = request.app[state.CONFIG]
    pipeline = request.app[state.PIPELINE]
    metrics = request.app[state.METRICS]
    src_cfg = config.sources.get(name)
    if src_cfg is None:
        metrics.rejected.labels("", "unknown_source").inc()
        held = request.app[state.PROBES].take(name, request.app[state.CLOCK].now())
        if held is not None:
            # Sender-controlled text, cut and made printable (no lone surrogates).
            log.warning("unknown source", source=_printable(name), remote=request.remote,
                        user_agent=_printable(request.headers.get("User-Agent", "")),
                        suppressed=held)
        raise web.HTTPNotFound(text=f"no source named {name!r} is configured")
    structlog.contextvars.bind_contextvars(source=name)
    started = time.perf_counter()
    stage = "auth"
    try:
        # Authenticate first, checking only the headers that takes: a stranger's other
        # headers cost nothing (issue 10, finding 4).
        check_headers(request.headers, auth_headers(src_cfg.auth))
        check_source(src_cfg.auth, request)
        stage = "body"
        # Overloaded: refuse before reading the body, so a storm cannot fill memory.
        pipeline.store.admit(request.content_length or 0)
        adapter = pipeline.sources[name]
        raw = await raw_json_body(request,
                                  src_cfg.max_body_bytes or config.server.max_body_bytes,
                                  adapter.content_types)
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
        reason = {PayloadError: "payload", AuthError: "auth",
                  StorageUnavailable: "storage"}.get(type(e), stage)
        metrics.rejected.labels(name, reason).inc()
        log.warning("ingest rejected", reason=reason, error=str(e)[:300])
        raise
    if result.replayed:
        log.info("replayed message ignored", message_id=message_id)
        return web.json_response({"accepted": 0, "incidents": [], "replayed": True},
                                 status=202)
    metrics.ingest_latency.labels(name).observe(time.perf_counter() - started)
    structlog.contextvars.bind_contextvars(incident_ids=list(result.incident_ids))
    log.info("ingested", alerts=len(alerts), incidents=len(result.incident_ids),
             opened=result.opened, deduplicated=result.deduplicated,
             resolved=result.resolved, event_id=result.event_id)
    return web.json_response({"accepted": len(alerts), "incidents": list(result.incident_ids),
                              **adapter.response(alerts)}, status=202)
