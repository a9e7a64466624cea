"""What every connector does the same way: read its base URL and secrets, and make one
JSON request to its vendor."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Answer:
    """A vendor's answer to one JSON request, read whole."""

    status: int
    text: str  # the body as text, "" when empty
    doc: Any  # the decoded JSON, None when the body is empty or not JSON
    retry_after: str | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


async def json_request(http: aiohttp.ClientSession, method: str, url: str,
                       headers: Mapping[str, str], *, limit: int,
                       params: Any = None, body: Any = None) -> Answer:
    """One request with an optional JSON body, never following redirects, its answer read
    whole up to ``limit`` bytes (``read_capped``) and decoded if it is JSON. Errors of the
    connection propagate (``aiohttp.ClientError``, ``OSError``, ``TimeoutError``), as does
    cancellation; what the status means is the caller's (``classify_status``)."""
    sent = dict(headers)
    data = None
    if body is not None:
        sent["Content-Type"] = "application/json"
        data = json.dumps(body, ensure_ascii=False).encode()
    async with http.request(method, url, params=params, data=data, headers=sent,
                            allow_redirects=False) as resp:
        text = (await read_capped(resp, limit)).decode("utf-8", "replace")
        try:
            doc = json.loads(text) if text.strip() else None
        except ValueError:
            doc = None
        return Answer(resp.status, text, doc, resp.headers.get("Retry-After"))
