"""Standard Webhooks signatures (https://www.standardwebhooks.com/, spec 1.0.0), both ways.

The webhook connector signs what it sends; inbound source auth can verify senders that sign
the same way. The scheme: HMAC-SHA256 over ``{msg_id}.{timestamp}.{body}`` keyed with the
shared secret, sent as ``webhook-signature: v1,<base64>`` beside ``webhook-id`` and
``webhook-timestamp`` (integer Unix seconds). The header may hold several space-separated
signatures so a secret can be rotated without downtime; one match is enough.

Only the symmetric ``v1`` scheme is implemented; ``v1a`` (ed25519) entries are ignored
when verifying, as the spec lets a receiver skip schemes it does not trust.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

SECRET_PREFIX = "whsec_"  # noqa: S105 - the spec's marker, not a secret
VERSION = "v1"
HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"
DEFAULT_TOLERANCE = 300  # seconds either way; the spec's suggested replay window


MIN_KEY_BYTES = 24  # the spec: secrets SHOULD be 24 to 64 random bytes
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def decode_secret(value: str) -> bytes:
    """The HMAC key Baton signs with (the webhook connector) for a configured secret.

    ``whsec_<base64>`` is the spec's serialisation and decodes to the key bytes, with the
    padding optional as the reference library reads it (it appends ``==``), so a receiver
    using the library with the very secret Baton was given verifies. Any other string is
    used as its own UTF-8 bytes, so a receiver that was simply told "the secret is X" can
    verify with X; note that the reference libraries instead base64-decode an unprefixed
    secret, so give those receivers the ``whsec_`` form. Inbound source auth decodes as
    the senders do instead: ``sender_key``.

    Raises ``ValueError`` (never quoting the value) when the key is empty or not base64.
    """
    if value.startswith(SECRET_PREFIX):
        text = value[len(SECRET_PREFIX):]
        # Standard alphabet only: the library would skip other characters and sign with a
        # key nobody meant, so those are still refused here rather than guessed at.
        if (not _BASE64.fullmatch(text) or len(text.rstrip("=")) % 4 == 1
                or ("=" in text and len(text) % 4)):
            raise ValueError("signing secret after 'whsec_' is not valid base64")
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("signing secret after 'whsec_' is not valid base64") from None
    else:
        key = value.encode("utf-8")
    if not key:
        raise ValueError("signing secret is empty")
    return key


def sender_key(value: str) -> bytes:
    """The key a Standard Webhooks sender signs with, given the secret it was configured
    with: decoded exactly as the reference library does (``standardwebhooks.Webhook``:
    strip an optional ``whsec_``, then base64 with the padding optional), whether or not
    the prefix is there.

    The library's decoder skips any character outside the base64 alphabet, so a password
    or a URL-safe secret would still "decode" to some key, and every request would then
    fail with 401. Here such a secret is refused instead: it must be standard base64 and
    decode to at least ``MIN_KEY_BYTES`` (the spec's lower bound; a plain word that happens
    to be valid base64 decodes to fewer). Raises ``ValueError``, never quoting the value.
    """
    text = value[len(SECRET_PREFIX):] if value.startswith(SECRET_PREFIX) else value
    if not text:
        raise ValueError("signing secret is empty")
    if (not _BASE64.fullmatch(text) or len(text.rstrip("=")) % 4 == 1
            or ("=" in text and len(text) % 4)):
        raise ValueError("signing secret is not base64 (standard alphabet), with or "
                         "without whsec_")
    # The library's own step: padding added, excess padding ignored.
    key = base64.b64decode(text + "==")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"signing secret decodes to {len(key)} bytes; Standard Webhooks "
                         f"keys are at least {MIN_KEY_BYTES} random bytes")
    return key


def _digest(secret: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest())


def sign(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) for one message.

    ``body`` must be the exact bytes sent: re-serialising JSON changes them. The id may not
    contain ``.`` or whitespace: the spec forbids the dot because ``a.1`` + ``2`` and ``a`` +
    ``1.2`` would sign the same content, and whitespace cannot travel in the header.
    """
    if not msg_id or "." in msg_id or any(c.isspace() for c in msg_id):
        raise ValueError("webhook id must be non-empty, without '.' or whitespace")
    return f"{VERSION},{_digest(secret, msg_id, str(int(timestamp)), body).decode('ascii')}"


def message_id(key: str) -> str:
    """A valid ``webhook-id`` for any stable key, the key itself when it already is one.

    Keys may hold ``.``, spaces or non-ASCII (a recipient such as ``person:a.smith``), which
    ``sign`` refuses and headers cannot carry. Those bytes, and ``%`` itself, are
    percent-encoded as UTF-8, so the mapping is reversible (``urllib.parse.unquote``) and two
    keys never share an id: a receiver's dedup stays exact.
    """
    return "".join(
        chr(b) if 0x21 <= b <= 0x7E and b not in b".%" else f"%{b:02X}" for b in key.encode()
    )


def headers(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one message."""
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(int(timestamp)),
        HEADER_SIGNATURE: sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: bytes,
    msg_id: str,
    timestamp: int | str,
    body: bytes,
    signature_header: str,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> bool:
    """Whether any ``v1`` signature in the header matches and the timestamp is fresh.

    ``timestamp`` may be the header text as received: it is signed as sent, so it is used
    verbatim rather than re-formatted. A timestamp further than ``tolerance`` seconds from
    ``now`` (either way) fails, which stops replays of captured requests. Each candidate is
    compared in constant time so a wrong guess learns nothing about the right one.
    """
    ts_text = str(timestamp).strip()
    if not ts_text.isascii() or not ts_text.isdigit() or len(ts_text) > 12:
        return False  # a longer one is no Unix time (and overflows float arithmetic)
    if abs(now - int(ts_text)) > tolerance:
        return False
    expected = _digest(secret, msg_id, ts_text, body)
    for entry in signature_header.split():
        version, _, candidate = entry.partition(",")
        if version == VERSION and hmac.compare_digest(candidate.encode(), expected):
            return True
    return False
