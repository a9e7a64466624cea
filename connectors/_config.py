"""Config values every connector reads the same way: a vendor's base URL and a secret."""

from __future__ import annotations

from typing import Any

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
