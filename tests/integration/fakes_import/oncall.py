"""A fake Grafana OnCall public API (``/api/v1/<resource>/``), as strict as its reference:
``Authorization: <token>`` exactly (no scheme), pages of ``page_size`` with absolute
``next``/``previous`` links, and 400 for a query parameter the endpoint does not take."""

from __future__ import annotations

from typing import Any

from aiohttp import web

RESOURCES = ("users", "schedules", "on_call_shifts", "escalation_chains",
             "escalation_policies", "integrations", "routes")
# The filters OnCall's reference lists per list endpoint, plus ``page``.
ALLOWED = {"users": {"username"}, "schedules": {"name"}, "on_call_shifts": {"name", "schedule_id"},
           "escalation_chains": set(), "escalation_policies": {"escalation_chain_id"},
           "integrations": {"name"}, "routes": {"integration_id", "routing_regex"}}
SEEN = web.AppKey("seen", list[str])  # every request's path and query, in order


def create_app(data: dict[str, list[dict[str, Any]]], token: str,
               page_size: int = 2) -> web.Application:
    app = web.Application()
    seen: list[str] = []
    app[SEEN] = seen

    async def listing(request: web.Request) -> web.Response:
        resource = request.match_info["resource"]
        seen.append(str(request.rel_url))
        if request.headers.get("Authorization") != token:
            return web.json_response({"detail": "Invalid token."}, status=401)
        if resource not in RESOURCES:
            return web.json_response({"detail": "Not found."}, status=404)
        unknown = set(request.query) - ALLOWED[resource] - {"page"}
        if unknown:
            return web.json_response({"detail": f"unknown parameters {sorted(unknown)}"},
                                     status=400)
        rows = data.get(resource, [])
        try:
            page = int(request.query.get("page", "1"))
        except ValueError:
            return web.json_response({"detail": "Invalid page."}, status=404)
        pages = max((len(rows) + page_size - 1) // page_size, 1)
        if not 1 <= page <= pages:
            return web.json_response({"detail": "Invalid page."}, status=404)
        base = f"{request.url.scheme}://{request.host}/api/v1/{resource}/"
        return web.json_response({
            "count": len(rows),
            "next": f"{base}?page={page + 1}" if page < pages else None,
            "previous": f"{base}?page={page - 1}" if page > 1 else None,
            "results": rows[(page - 1) * page_size: page * page_size],
            "page_size": page_size, "current_page_number": page, "total_pages": pages})

    app.router.add_get("/api/v1/{resource}/", listing)
    return app
