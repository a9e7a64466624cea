"""Reports through the management API: ``/v1/reports/response`` and ``/recurring``."""

from __future__ import annotations

from aiohttp import web

from .. import report
from . import state
from .manage import authorize


async def response(request: web.Request) -> web.Response:
    authorize(request)
    since = report.parse_since(request.query.get("since"))
    doc = await report.response_doc(request.app[state.STORE], since,
                                    request.app[state.CLOCK].now())
    return web.json_response(doc)


async def recurring(request: web.Request) -> web.Response:
    authorize(request)
    since = report.parse_since(request.query.get("since"))
    limit = report.parse_limit(request.query.get("limit"))
    doc = await report.recurring_doc(request.app[state.STORE], since, limit,
                                     request.app[state.CLOCK].now())
    return web.json_response(doc)
