"""The operator's web console at ``/ui``: server-rendered pages, htmx, live updates by SSE.

A sub-application whose middleware authenticates (a signed session cookie) and checks
the CSRF token of every state-changing request; its handlers call the same store and
domain functions as the JSON management API, so the console adds no business rules.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from urllib.parse import quote

import aiohttp_jinja2
import jinja2
from aiohttp import web

from ..api import state
from ..api.problem import Handler
from . import session as sess
from . import sse, views_incidents, views_ops, views_people
from .filters import FILTERS

# No inline script or style, nothing from another origin: a payload that slips past
# escaping still cannot run, and the console makes no external requests.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
           "Cache-Control": "no-store"}
STATIC = "/ui/static/"
LOGIN = "/ui/login"


def _forbidden(reason: str) -> web.Response:
    return web.Response(status=403, text=f"403 Forbidden: {reason}\n", headers=HEADERS)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sessions and CSRF for every console route, before any handler runs."""
    if request.path == "/ui":  # the prefix alone: no route, but people type it
        raise web.HTTPPermanentRedirect("/ui/")
    if request.path != LOGIN and not request.path.startswith(STATIC):
        current = sess.current(request)
        tokens = request.config_dict[state.CONFIG].api_tokens
        safe = request.method in ("GET", "HEAD")
        if current is None:
            if not safe:
                return _forbidden("no session (log in first)")
            if tokens:
                if request.headers.get("HX-Request") or request.path == "/ui/events":
                    return web.Response(status=401, text="log in first\n", headers=HEADERS)
                raise web.HTTPSeeOther("/ui/login?next=" + quote(request.path_qs, safe=""))
            # No tokens: a first visit gets a session, so its pages carry a CSRF token.
            current = sess.new_session(sess.ANONYMOUS)
            request[sess.NEW_COOKIE] = sess.encode(request.config_dict[sess.SECRET],
                                                   tokens, current)
        request[sess.SESSION] = current
        if not safe:
            if not sess.csrf_ok(current.csrf, await sess.offered_csrf(request)):
                return _forbidden("missing or wrong CSRF token")
    response = await handler(request)
    if response.prepared:  # a stream (SSE): its headers went out with its first bytes
        return response
    if sess.NEW_COOKIE in request:
        sess.set_cookie(request, response, sess.COOKIE, request[sess.NEW_COOKIE],
                        sess.LIFETIME)
    if not request.path.startswith(STATIC):
        response.headers.update(HEADERS)
        if sess.FLASH_COOKIE in request.cookies and request.method == "GET":
            response.del_cookie(sess.FLASH_COOKIE, path="/ui")  # shown once
    return response


def _safe_next(raw: str | None) -> str:
    # Only a path inside the console: never another site (open redirect).
    if raw and raw.startswith("/ui") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return "/ui/"


async def login_page(request: web.Request) -> web.StreamResponse:
    if not request.config_dict[state.CONFIG].api_tokens:
        raise web.HTTPSeeOther("/ui/")
    nonce = sess.new_csrf()
    error = "That token is not valid." if request.query.get("error") else ""
    response = aiohttp_jinja2.render_template(
        "login.html", request, {"nonce": nonce, "next": _safe_next(request.query.get("next")),
                                "error": error, "session": None, "csrf": "", "logins": True})
    sess.set_cookie(request, response, sess.LOGIN_COOKIE, nonce, 600)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    tokens = request.config_dict[state.CONFIG].api_tokens
    form = await request.post()
    nonce = request.cookies.get(sess.LOGIN_COOKIE, "")
    if not tokens or not sess.csrf_ok(nonce, str(form.get(sess.CSRF_FIELD, ""))):
        return _forbidden("missing or wrong CSRF token")
    name = sess.token_name(tokens, str(form.get("token", "")).strip())
    target = _safe_next(str(form.get("next", "")))
    if name is None:
        raise web.HTTPSeeOther("/ui/login?error=1&next=" + quote(target, safe=""))
    response = web.HTTPSeeOther(target)
    sess.start(request, response, name)
    response.del_cookie(sess.LOGIN_COOKIE, path="/ui")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    response = web.HTTPSeeOther("/ui/login" if request.config_dict[state.CONFIG].api_tokens
                                else "/ui/")
    response.del_cookie(sess.COOKIE, path="/ui")
    raise response


def static_dir() -> Path:
    return Path(str(resources.files("baton.ui").joinpath("static")))


def create_ui() -> web.Application:
    """The console, to be mounted at ``/ui`` on the main application."""
    ui = web.Application(middlewares=[guard])
    ui[sess.SECRET] = sess.new_secret()
    env = aiohttp_jinja2.setup(
        ui, loader=jinja2.PackageLoader("baton.ui", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True)
    env.filters.update(FILTERS)
    env.globals["static"] = lambda name: f"/ui/static/{name}"

    ui.cleanup_ctx.append(sse.watcher_context)
    ui.on_shutdown.append(sse.stopping)
    r = ui.router
    r.add_get("/login", login_page)
    r.add_post("/login", login)
    r.add_post("/logout", logout)
    r.add_get("/events", sse.events)
    views_incidents.routes(r)
    views_ops.routes(r)
    views_people.routes(r)
    r.add_static("/static", static_dir())
    return ui


def mount(app: web.Application) -> None:
    """The console at ``/ui/`` on the main application (``guard`` sends ``/ui`` there)."""
    app.add_subapp("/ui", create_ui())
