"""Config values every connector reads the same way: a vendor's base URL and a secret."""

from __future__ import annotations

from typing import Any

import aiohttp
from yarl import URL

from baton.errors import ConfigError
from baton.secret import Secret


def base_url(connector: str, key: str, value: Any) -> str:
    """``value`` as an absolute http(s) URL without a trailing slash, or a ConfigError
    naming ``connectors.<connector>.<key>`` (the message never quotes the value: it may
    carry a token)."""
    try:
        url = URL(str(value))
    except ValueError:
        url = URL()
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError([f"connectors.{connector}.{key}: not an absolute http(s) URL"])
    return str(url).rstrip("/")


def reveal(value: Any) -> str:
    """A secret's value for the wire ("" when unset); plain strings pass through."""
    if isinstance(value, Secret):
        return value.reveal()
    return "" if value is None else str(value)


class ResponseTooLarge(aiohttp.ClientPayloadError):
    """A vendor answer longer than the connector reads. A ``ClientError``, so every
    connector reports it as it reports a broken connection: retryable, never a silently
    truncated body taken for "not JSON" or "nothing found"."""


async def read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body of ``resp``, read until EOF: one ``content.read(n)`` returns only
    what has arrived so far (a chunk of a few KB), not ``n`` bytes. A body longer than
    ``limit`` bytes raises ``ResponseTooLarge`` rather than being cut short."""
    parts: list[bytes] = []
    size = 0
    while chunk := await resp.content.read(limit + 1 - size):
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(
                f"the answer to {resp.method} {resp.url.path} (HTTP {resp.status}) is longer "
                f"than the {limit} bytes this connector reads")
    return b"".join(parts)
