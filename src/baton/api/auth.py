"""Credential checks for senders (per source) and for the management API."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence

from aiohttp import web

from ..config import ApiToken, AuthConfig
from ..errors import AuthError
from ..secret import Secret

BASIC = 'Basic realm="baton", charset="UTF-8"'


def _any_equal(secrets: Iterable[Secret], offered: str) -> bool:
    # Compare against every secret (no early exit), so timing does not tell which matched.
    matched = False
    for s in secrets:
        matched |= s.equals(offered)
    return matched


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def check_source(auth: AuthConfig, request: web.Request) -> None:
    if auth.type == "none":
        return
    if auth.type == "bearer":
        token = bearer(request)
        if token is None:
            raise AuthError("missing bearer token")
        if not _any_equal(auth.tokens, token):
            raise AuthError("invalid bearer token")
        return
    if auth.type == "basic":
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise AuthError("missing basic credentials", BASIC)
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError("malformed basic credentials", BASIC) from None
        user_ok = Secret(auth.username or "").equals(user)
        if not sep or not (_any_equal(auth.passwords, password) & user_ok):
            raise AuthError("invalid basic credentials", BASIC)
        return
    raise AuthError(f"unsupported auth type {auth.type!r}")


def check_management(tokens: Sequence[ApiToken], request: web.Request) -> str | None:
    """The name of the API token the request carries; None when no token is configured
    (the management API is then open, as on the demo config)."""
    if not tokens:
        return None
    offered = bearer(request)
    if offered is None:
        raise AuthError("missing API token")
    name = None
    for t in tokens:
        if t.token.equals(offered):
            name = t.name
    if name is None:
        raise AuthError("invalid API token")
    return name
