"""``POST /-/reload``: re-read the config file (Alertmanager's endpoint; see baton.reload).

Protected as the management API is (a token when ``api.tokens`` is set; otherwise the
gateway serves it only on loopback or with ``api: {open: true}``). A config that cannot
be applied answers 422 with every problem in ``problems``: the request was understood,
the file it names is what is wrong, and nothing changed (Alertmanager answers 500 with the
error text; a 5xx would tell proxies and retrying clients that the gateway is broken).
"""

from __future__ import annotations

from aiohttp import web

from ..errors import ConfigError
from . import state
from .manage import authorize
from .problem import problem


async def reload(request: web.Request) -> web.Response:
    authorize(request)
    try:
        summary = await request.app[state.RELOADER].reload()
    except ConfigError as e:
        return problem(422, "Unprocessable Content",
                       f"config not reloaded; the running config stays "
                       f"({len(e.problems)} problem(s))", problems=e.problems)
    return web.json_response({"status": "reloaded", **summary})
