"""The incidents list and the incident page, with its actions.

Actions call the store's own operations, the ones the management API's handlers call
(``Store.acknowledge`` ...), with the session's token name as the actor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web

from ..api import state
from ..api.manage import INCIDENT_STATUSES
from ..errors import BatonError
from ..store import Store
from .session import SESSION, Session, context, redirect

OPEN = ("triggered", "acknowledged")
STATUS_VIEWS = ("open", *INCIDENT_STATUSES, "all")
SEVERITIES = ("critical", "error", "warning", "info")
PAGE = 200  # incidents read per status for one page of the list


def _filters(request: web.Request) -> dict[str, str]:
    q = request.query
    status = q.get("status") or "open"
    return {"status": status if status in STATUS_VIEWS else "open",
            "service": q.get("service", "").strip()[:200],
            "severity": q.get("severity", "").strip()[:50],
            "source": q.get("source", "").strip()[:200],
            "q": q.get("q", "").strip()[:200]}


def _matches_text(doc: dict[str, Any], needle: str) -> bool:
    """Search by title and label: the text in the title, a label's name or value, or
    ``name=value``."""
    n = needle.casefold()
    if n in (doc.get("title") or "").casefold():
        return True
    return any(n in k.casefold() or n in v.casefold() or n == f"{k}={v}".casefold()
               for k, v in (doc.get("labels") or {}).items())


async def _sources(store: Store, incident_id: str) -> set[str]:
    doc = await store.get_incident(incident_id, deliveries=False, timeline=False)
    return {a["source"]["name"] for a in doc.get("alerts", [])}


async def find_incidents(store: Store, f: dict[str, str]) -> list[dict[str, Any]]:
    """The list for the filters: the store filters by status and service, the rest here
    on at most ``PAGE`` incidents per status (newest first)."""
    statuses: tuple[str | None, ...] = {"open": OPEN, "all": (None,)}.get(
        f["status"], (f["status"],))
    docs: list[dict[str, Any]] = []
    for status in statuses:
        page, _ = await store.list_incidents(status=status, service=f["service"] or None,
                                             limit=PAGE)
        docs += page
    # Open first: triggered before acknowledged, then newest first.
    docs.sort(key=lambda d: d["created_at"], reverse=True)
    docs.sort(key=lambda d: {"triggered": 0, "acknowledged": 1}.get(d["status"], 2))
    if f["severity"]:
        docs = [d for d in docs if d["severity"] == f["severity"]]
    if f["q"]:
        docs = [d for d in docs if _matches_text(d, f["q"])]
    if f["source"]:
        docs = [d for d in docs if f["source"] in await _sources(store, d["id"])]
    return docs


async def _list_context(request: web.Request) -> dict[str, Any]:
    store = request.config_dict[state.STORE]
    f = _filters(request)
    counts, _ = await store.incident_stats()
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in f.items() if v)
    return {**context(request), "filters": f, "incidents": await find_incidents(store, f),
            "counts": {s: counts.get(s, 0) for s in INCIDENT_STATUSES},
            "open_count": sum(counts.get(s, 0) for s in OPEN),
            "statuses": STATUS_VIEWS, "severities": SEVERITIES,
            "sources": sorted(request.config_dict[state.CONFIG].sources),
            "fragment_url": "/ui/incidents/list?" + query}


async def incidents(request: web.Request) -> web.StreamResponse:
    return aiohttp_jinja2.render_template("incidents.html", request,
                                          await _list_context(request))


async def incident_rows(request: web.Request) -> web.StreamResponse:
    """The list alone, for live updates (htmx swaps it in when the SSE stream says)."""
    return aiohttp_jinja2.render_template("_incident_list.html", request,
                                          await _list_context(request))


async def incident(request: web.Request) -> web.StreamResponse:
    store = request.config_dict[state.STORE]
    doc = await store.get_incident(request.match_info["id"])
    return aiohttp_jinja2.render_template("incident.html", request, {
        **context(request), "incident": doc})


async def incident_part(request: web.Request) -> web.StreamResponse:
    """A live part of the incident page (``?part=meta|events``), swapped in by htmx when
    the SSE stream says something changed."""
    part = request.query.get("part")
    if part not in ("meta", "events"):
        raise web.HTTPNotFound()
    doc = await request.config_dict[state.STORE].get_incident(request.match_info["id"])
    return aiohttp_jinja2.render_template(f"_incident_{part}.html", request,
                                          {**context(request), "incident": doc})


# (store, incident id, actor, form fields, now): the store operation an action runs
Action = Callable[[Store, str, str, dict[str, str], float], Awaitable[Any]]


def _note(form: dict[str, str]) -> str | None:
    return form.get("note", "").strip() or None


ACTIONS: dict[str, Action] = {
    "acknowledge": lambda st, i, by, f, now: st.acknowledge(i, by, _note(f), now),
    "unacknowledge": lambda st, i, by, f, now: st.unacknowledge(i, by, _note(f), now),
    "resolve": lambda st, i, by, f, now: st.resolve(i, by, _note(f), now),
    "escalate": lambda st, i, by, f, now: st.escalate(
        i, by, f.get("reason", "").strip() or "escalated from the web console", now),
    "notes": lambda st, i, by, f, now: st.add_note(i, by, f.get("text", "").strip(), now),
}


async def act(request: web.Request) -> web.StreamResponse:
    """``POST /ui/incidents/{id}/{action}``, then back to the incident page (303)."""
    incident_id, action = request.match_info["id"], request.match_info["action"]
    if action not in ACTIONS:
        raise web.HTTPNotFound()
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    session: Session = request[SESSION]
    target = f"/ui/incidents/{quote(incident_id, safe='')}"
    if action == "notes" and not form.get("text", "").strip():
        raise redirect(request, target, error="a note needs text")
    try:
        await ACTIONS[action](request.config_dict[state.STORE], incident_id, session.actor,
                              form, request.config_dict[state.CLOCK].now())
    except BatonError as e:  # a conflict (already resolved ...): said on the page
        raise redirect(request, target, error=str(e)) from None
    raise redirect(request, target, done=action)


def routes(r: web.UrlDispatcher) -> None:
    r.add_get("/", incidents)
    r.add_get("/incidents", incidents)
    r.add_get("/incidents/list", incident_rows)
    r.add_get("/incidents/{id}", incident)
    r.add_get("/incidents/{id}/live", incident_part)
    r.add_post("/incidents/{id}/{action}", act)
