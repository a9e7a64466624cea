"""Credential checks for senders (per source) and for the management API."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence

from aiohttp import web

from .. import signing
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


def auth_headers(auth: AuthConfig) -> tuple[str, ...]:
    """The headers the source's authentication reads: the only ones worth checking before
    the sender is known."""
    if auth.type in ("bearer", "basic"):
        return ("Authorization",)
    if auth.type == "hmac":
        return tuple(h for h in (auth.header, auth.timestamp_header) if h)
    if auth.type == "standard-webhooks":
        return (signing.HEADER_ID, signing.HEADER_TIMESTAMP, signing.HEADER_SIGNATURE)
    return ()


def check_source(auth: AuthConfig, request: web.Request) -> None:
    """The checks that need only the headers; signatures over the body come after it is
    read (``check_signature``)."""
    if auth.type in ("none", "hmac", "standard-webhooks"):
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
    (the management API is then open, as on the demo config: ``baton serve`` allows that
    only on a loopback address, or off it when the config says ``api: {open: true}``)."""
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


HMAC = 'HMAC-SHA256 realm="baton"'
STANDARD_WEBHOOKS = 'Standard-Webhooks realm="baton"'


def check_signature(auth: AuthConfig, raw: bytes, headers: Mapping[str, str],
                    now: float) -> str | None:
    """Verify a body signature (``hmac``, ``standard-webhooks``); returns the sender's
    message id when the scheme has one (``webhook-id``), for replay protection."""
    if auth.type == "hmac":
        return _check_hmac(auth, raw, headers, now)
    if auth.type == "standard-webhooks":
        return _check_standard_webhooks(auth, raw, headers, now)
    return None


def _check_hmac(auth: AuthConfig, raw: bytes, headers: Mapping[str, str],
                now: float) -> str | None:
    """Verify; with a signed timestamp, the replay id of the signed message: the same
    timestamp and body again inside the tolerance window is a replay (as a repeated
    ``webhook-id``), however the signature is spelled. Without a timestamp a replay
    cannot be told from a sender repeating itself, so there is none."""
    given = headers.get(auth.header, "").strip()
    if not given:
        raise AuthError(f"missing {auth.header} signature", HMAC)
    if auth.prefix:
        if not given.startswith(auth.prefix):
            raise AuthError(f"{auth.header} must start with {auth.prefix!r}", HMAC)
        given = given[len(auth.prefix):]
    message = raw
    if auth.timestamp_header:
        stamp = headers.get(auth.timestamp_header, "").strip()
        # Unix seconds have 10 digits until 2286; a longer one is no time (and too big
        # for float arithmetic).
        if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
            raise AuthError(f"missing or malformed {auth.timestamp_header}", HMAC)
        if abs(now - int(stamp)) > auth.tolerance:
            raise AuthError(f"{auth.timestamp_header} is too far from now (replayed or "
                            "clock skew)", HMAC)
        message = stamp.encode() + b":" + raw
    matched = False
    for secret in auth.secrets:
        digest = hmac.new(secret.reveal().encode(), message, hashlib.sha256).digest()
        expected = (digest.hex() if auth.encoding == "hex"
                    else base64.b64encode(digest).decode())
        # Hex is case-insensitive; base64 is not.
        offered = given.lower() if auth.encoding == "hex" else given
        matched |= hmac.compare_digest(offered.encode(), expected.encode())
    if not matched:
        raise AuthError(f"{auth.header} does not match the body", HMAC)
    if not auth.timestamp_header:
        return None
    return "hmac:" + hashlib.sha256(message).hexdigest()


def _check_standard_webhooks(auth: AuthConfig, raw: bytes, headers: Mapping[str, str],
                             now: float) -> str:
    msg_id = headers.get(signing.HEADER_ID, "").strip()
    stamp = headers.get(signing.HEADER_TIMESTAMP, "").strip()
    signature = headers.get(signing.HEADER_SIGNATURE, "").strip()
    if not (msg_id and stamp and signature):
        raise AuthError("webhook-id, webhook-timestamp and webhook-signature are required",
                        STANDARD_WEBHOOKS)
    if (not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12
            or abs(now - int(stamp)) > auth.tolerance):
        raise AuthError("webhook-timestamp is missing, malformed or too far from now",
                        STANDARD_WEBHOOKS)
    matched = False
    for secret in auth.secrets:
        matched |= signing.verify(signing.sender_key(secret.reveal()), msg_id, stamp, raw,
                                  signature, now, auth.tolerance)
    if not matched:
        raise AuthError("webhook-signature does not match", STANDARD_WEBHOOKS)
    return msg_id
