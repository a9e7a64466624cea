"""What inbound vendor callbacks share: HMAC checks and decoding JSON bodies.

Every comparison is constant-time; errors never quote a secret or a signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from typing import Any

from baton.errors import AuthError, PayloadError

from ._config import reveal


def reveal_all(value: Any) -> list[bytes]:
    """One secret or a list of them (several active during a rotation), as bytes."""
    items = value if isinstance(value, list | tuple) else [value] if value else []
    return [reveal(s).encode() for s in items]


def hmac_sha256_hex(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def any_signature_matches(secrets: Sequence[bytes], message: bytes,
                          candidates: Iterable[str]) -> bool:
    """Whether any candidate is the hex HMAC-SHA256 of ``message`` under any secret.
    Every pair is compared, so the time taken does not tell which one matched."""
    wanted = [hmac_sha256_hex(s, message) for s in secrets]
    found = False
    for candidate in candidates:
        for expected in wanted:
            found |= hmac.compare_digest(candidate.strip().lower().encode(),
                                         expected.encode())
    return found


def any_token_matches(tokens: Sequence[bytes], given: str) -> bool:
    """Whether ``given`` is one of the configured tokens, compared in constant time."""
    found = False
    for token in tokens:
        found |= hmac.compare_digest(given.encode(), token)
    return found


def require(condition: bool, detail: str, challenge: str) -> None:
    if not condition:
        raise AuthError(detail, challenge)


def json_object(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise PayloadError("body is not UTF-8 JSON") from None
    if not isinstance(doc, dict):
        raise PayloadError("body must be a JSON object")
    return doc
