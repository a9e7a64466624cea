"""A fake Opsgenie REST API for the importer, as strict as Opsgenie's reference:
``Authorization: GenieKey <key>`` exactly, users paged by ``offset``/``limit`` with
absolute ``paging`` links (at most ``page_size`` a page, to force several), and 422 for a
query parameter the endpoint does not take. Lists leave out what only ``GET`` of one
object (team members) or ``expand=rotation`` (rotations) shows."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

SEEN = web.AppKey("seen", list[str])  # every request's path and query, in order


def _answer(data: Any, status: int = 200, **extra: Any) -> web.Response:
    body = {"data": data, **extra, "took": 0.01, "requestId": str(uuid.uuid4())}
    return web.json_response(body, status=status)


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"message": message, "took": 0.0,
                              "requestId": str(uuid.uuid4())}, status=status)


def create_app(data: dict[str, Any], key: str, page_size: int = 2) -> web.Application:
    app = web.Application()
    seen: list[str] = []
    app[SEEN] = seen

    @web.middleware
    async def strict(request: web.Request, handler: Any) -> web.StreamResponse:
        seen.append(str(request.rel_url))
        if request.headers.get("Authorization") != f"GenieKey {key}":
            return _error("Could not authenticate", 401)
        allowed: set[str] = getattr(handler, "params", set())
        unknown = set(request.query) - allowed
        if unknown:
            return _error(f"Unknown parameters: {sorted(unknown)}", 422)
        response: web.StreamResponse = await handler(request)
        return response

    def takes(*names: str) -> Any:
        def mark(fn: Any) -> Any:
            fn.params = set(names)
            return fn
        return mark

    @takes("limit", "offset", "sort", "order", "query")
    async def users(request: web.Request) -> web.Response:
        try:
            offset = int(request.query.get("offset", "0"))
            limit = min(int(request.query.get("limit", "20")), page_size)
        except ValueError:
            return _error("offset and limit must be numbers", 422)
        rows = data["users"]
        base = f"{request.url.scheme}://{request.host}/v2/users?limit={limit}"
        paging = {"first": f"{base}&offset=0",
                  "last": f"{base}&offset={max(len(rows) - 1, 0) // limit * limit}"}
        if offset + limit < len(rows):
            paging["next"] = f"{base}&offset={offset + limit}"
        if offset > 0:
            paging["prev"] = f"{base}&offset={max(offset - limit, 0)}"
        return _answer(rows[offset:offset + limit], totalCount=len(rows), paging=paging)

    @takes()
    async def teams(request: web.Request) -> web.Response:
        return _answer([{k: v for k, v in t.items() if k != "members"} for t in data["teams"]])

    @takes("identifierType")
    async def team(request: web.Request) -> web.Response:
        by = request.query.get("identifierType", "id")
        for t in data["teams"]:
            if t.get(by) == request.match_info["ident"]:
                return _answer(t)
        return _error("No team exists with identifier", 404)

    @takes("expand")
    async def schedules(request: web.Request) -> web.Response:
        if request.query.get("expand", "rotation") != "rotation":
            return _error("expand may only be rotation", 422)
        hide = {"overrides"} | ({"rotations"} if "expand" not in request.query else set())
        return _answer([{k: v for k, v in s.items() if k not in hide}
                        for s in data["schedules"]], expandable=["rotation"])

    @takes("scheduleIdentifierType")
    async def overrides(request: web.Request) -> web.Response:
        by = request.query.get("scheduleIdentifierType", "id")
        for s in data["schedules"]:
            if s.get(by) == request.match_info["ident"]:
                return _answer(s.get("overrides", []))
        return _error("No schedule exists with identifier", 404)

    @takes()
    async def escalations(request: web.Request) -> web.Response:
        return _answer(data["escalations"])

    app.middlewares.append(strict)
    app.router.add_get("/v2/users", users)
    app.router.add_get("/v2/teams", teams)
    app.router.add_get("/v2/teams/{ident}", team)
    app.router.add_get("/v2/schedules", schedules)
    app.router.add_get("/v2/schedules/{ident}/overrides", overrides)
    app.router.add_get("/v2/escalations", escalations)
    return app
