"""Liveness, readiness, metrics and the API description."""

from __future__ import annotations

import json
from importlib import resources

from aiohttp import web

from ..errors import StorageUnavailable
from . import state


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    try:
        await request.app[state.STORE].ping()
    except (StorageUnavailable, OSError) as e:
        raise StorageUnavailable(f"storage not reachable: {e}") from None
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
