"""Template filters. Escaping itself is Jinja's (autoescape on); these decide what may
become a link at all."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ..duration import format_duration

SAFE_SCHEMES = ("http", "https")


def safe_href(url: Any) -> str | None:
    """``url`` when it is an absolute http(s) URL, else None: ``javascript:``, ``data:``
    and the like (in any case, with any whitespace or control characters a browser would
    skip) never become links."""
    if not isinstance(url, str) or len(url) > 4096:
        return None
    text = url.strip()
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in SAFE_SCHEMES or not parts.netloc:
        return None
    return text


def short_time(value: Any) -> str:
    """``2026-01-01T00:00:00.000Z`` as ``2026-01-01 00:00:00Z``."""
    if not isinstance(value, str):
        return "-"
    return value.replace("T", " ").replace(".000Z", "Z")


def seconds(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    return format_duration(round(value)) if value >= 1 else f"{value:.1f}s"


def as_json(value: Any) -> str:
    """A detail object as text (escaped by the template like any other text)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


FILTERS: dict[str, Callable[..., Any]] = {
    "safe_href": safe_href, "short_time": short_time, "seconds": seconds,
    "as_json": as_json,
}
