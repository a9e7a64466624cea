"""Console sessions: log in with an API token, a signed cookie, CSRF tokens.

The cookie holds the token's *name*, an expiry and the session's CSRF token, signed with
HMAC-SHA256. The key is derived from a per-process secret and the token's value, so a
session ends when the process restarts, when its token is removed from the config, or
when the token's value changes. No session state is kept on the server.

With no ``api.tokens`` the console follows the management API's rule (``baton serve``
offers it only on a loopback address unless ``api: {open: true}``): nobody logs in, but
every visitor still gets a session cookie, so state-changing requests carry a CSRF token
all the same.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..api import state
from ..config import ApiToken

COOKIE = "baton_session"
FLASH_COOKIE = "baton_flash"  # what the last action did, shown once by the next page
LOGIN_COOKIE = "baton_login"  # the login form's own CSRF nonce (double submit)
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "_csrf"
LIFETIME = 12 * 3600.0
ANONYMOUS = ""  # the session's name when no tokens are configured

SECRET = web.AppKey("ui_secret", bytes)


@dataclass(frozen=True)
class Session:
    name: str  # the API token's name; ANONYMOUS without tokens
    expires: float
    csrf: str

    @property
    def actor(self) -> str:
        """Who acted, on the timeline: the token's name."""
        return self.name or "console"


SESSION = web.RequestKey("ui_session", Session)
NEW_COOKIE = web.RequestKey("ui_session_cookie", str)  # a session started by this request


def new_secret() -> bytes:
    return secrets.token_bytes(32)


def _key(secret: bytes, name: str, tokens: tuple[ApiToken, ...]) -> bytes | None:
    if not tokens:
        return hmac.new(secret, b"anonymous", hashlib.sha256).digest() if not name else None
    for t in tokens:
        if t.name == name:
            return hmac.new(secret, b"token\0" + name.encode() + b"\0"
                            + t.token.reveal().encode(), hashlib.sha256).digest()
    return None  # the token is gone from the config: its sessions end


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(secret: bytes, tokens: tuple[ApiToken, ...], session: Session) -> str:
    key = _key(secret, session.name, tokens)
    assert key is not None
    body = _b64(json.dumps([session.name, session.expires, session.csrf]).encode())
    return body + "." + _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def decode(secret: bytes, tokens: tuple[ApiToken, ...], cookie: str | None,
           now: float) -> Session | None:
    if not cookie or len(cookie) > 1024 or "." not in cookie:
        return None
    body, _, sig = cookie.partition(".")
    try:
        name, expires, csrf = json.loads(_unb64(body))
        offered = _unb64(sig)
    except (ValueError, TypeError, binascii.Error):
        return None
    if not (isinstance(name, str) and isinstance(expires, float | int)
            and isinstance(csrf, str)):
        return None
    key = _key(secret, name, tokens)
    if key is None or not hmac.compare_digest(
            offered, hmac.new(key, body.encode(), hashlib.sha256).digest()):
        return None
    if expires <= now:
        return None
    return Session(name, float(expires), csrf)


def token_name(tokens: tuple[ApiToken, ...], offered: str) -> str | None:
    """The name of the token offered at login; every token is compared (no early exit)."""
    name = None
    for t in tokens:
        if t.token.equals(offered):
            name = t.name
    return name


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def new_session(name: str) -> Session:
    return Session(name, time.time() + LIFETIME, new_csrf())


def start(request: web.Request, response: web.StreamResponse, name: str) -> Session:
    """A new session for ``name``: its cookie set on ``response``."""
    config = request.config_dict[state.CONFIG]
    session = new_session(name)
    set_cookie(request, response, COOKIE,
               encode(request.config_dict[SECRET], config.api_tokens, session), LIFETIME)
    return session


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str,
               max_age: float) -> None:
    response.set_cookie(name, value, max_age=int(max_age), path="/ui", httponly=True,
                        samesite="Strict", secure=over_tls(request))


def over_tls(request: web.Request) -> bool:
    """TLS here, or at a proxy in front that says so. Trusting the header costs nothing:
    it can only add ``Secure``, and a client that fakes it only loses its own cookie."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def current(request: web.Request) -> Session | None:
    config = request.config_dict[state.CONFIG]
    return decode(request.config_dict[SECRET], config.api_tokens, request.cookies.get(COOKIE),
                  time.time())


async def offered_csrf(request: web.Request) -> str:
    """The CSRF token a request carries: htmx sends the header, plain forms the field."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


def csrf_ok(expected: str, offered: str) -> bool:
    return bool(expected) and hmac.compare_digest(expected.encode(), offered.encode())


def redirect(request: web.Request, location: str, *, error: str = "",
             done: str = "") -> web.HTTPSeeOther:
    """303 to ``location`` (a console path), the outcome carried in a short-lived cookie
    rather than the URL: a crafted link cannot make a console page say anything."""
    response = web.HTTPSeeOther(location)
    set_cookie(request, response, FLASH_COOKIE,
               _b64(json.dumps([error[:400], done[:100]]).encode()), 60)
    return response


def flash(request: web.Request) -> tuple[str, str]:
    """(error, done) from the last action's redirect; empty when none."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw or len(raw) > 2048:
        return "", ""
    try:
        error, done = json.loads(_unb64(raw))
    except (ValueError, TypeError, binascii.Error):
        return "", ""
    return (error if isinstance(error, str) else "", done if isinstance(done, str) else "")


def context(request: web.Request) -> dict[str, Any]:
    """What every page's template needs from the session, and the last action's outcome."""
    session = request.get(SESSION)
    error, done = flash(request)
    return {"session": session, "csrf": session.csrf if session else "",
            "logins": bool(request.config_dict[state.CONFIG].api_tokens),
            "error": error, "done": done}
