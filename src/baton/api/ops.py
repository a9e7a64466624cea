"""Liveness, readiness, metrics and the API description."""

from __future__ import annotations

import asyncio
import json
from importlib import resources

from aiohttp import web

from ..errors import StorageUnavailable
from . import state


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


# The readiness probe answers within this, whatever storage does: a probe that hangs is
# as bad as none (kubelet and load balancers time out at 1-5 s by default).
READY_TIMEOUT = 2.0


async def readyz(request: web.Request) -> web.Response:
    """Ready when storage takes a write now (reachable is not enough: a full disk or a
    read-only database still answers reads)."""
    try:
        await asyncio.wait_for(request.app[state.STORE].ready(), READY_TIMEOUT)
    except TimeoutError:
        raise StorageUnavailable(
            f"storage did not take a write within {READY_TIMEOUT:g}s") from None
    except (StorageUnavailable, OSError) as e:
        raise StorageUnavailable(f"storage cannot take writes: {e}") from None
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    m = request.app[state.METRICS]
    for key, n in (await request.app[state.STORE].depth()).items():
        m.queue_depth.labels(key).set(n)
    return web.Response(body=m.render(), headers={
        "Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def openapi(request: web.Request) -> web.Response:
    doc = json.loads(resources.files("baton.schemas").joinpath("openapi.json")
                     .read_text("utf-8"))
    return web.json_response(doc)
