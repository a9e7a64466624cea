"""Vendor answers in details and logs without the secrets they may quote.

Scrub first, then cut: a detail cut to a few hundred characters before scrubbing leaves
the first characters of a secret that straddles the cut (issue 10, finding 8: the start
of a Twilio token reached ``last_error``, the timeline and the log). Each secret is
hidden in the forms a vendor or a library may quote it in: raw, base64 (as in a Basic
header) and percent-encoded (as in a URL).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from .secret import Secret

DETAIL_CHARS = 200
MASK = "***"


def secret_values(value: Any) -> list[str]:
    """Every ``Secret`` value in a config, however deeply nested."""
    if isinstance(value, Secret):
        return [value.reveal()]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in secret_values(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in secret_values(v)]
    return []


def secret_forms(values: Iterable[str | None]) -> tuple[str, ...]:
    """The raw, base64 and percent-encoded forms of ``values``, longest first (so a form
    that contains another is replaced whole)."""
    forms: set[str] = set()
    for value in values:
        if not value:
            continue  # replacing "" would put the mask between every character
        raw = value.encode("utf-8", "surrogatepass")
        b64 = base64.b64encode(raw).decode()
        url64 = base64.urlsafe_b64encode(raw).decode()
        forms.update((value, b64, url64, b64.rstrip("="), url64.rstrip("="),
                      quote(value, safe=""), quote(value), quote_plus(value)))
    forms.discard("")
    return tuple(sorted(forms, key=len, reverse=True))


def redact(text: str, forms: Iterable[str], limit: int = DETAIL_CHARS) -> str:
    """``text`` with every form replaced by ``***``, on one line, then cut to ``limit``
    characters: in that order, so no part of a secret survives the cut."""
    for form in forms:
        if form in text:
            text = text.replace(form, MASK)
    text = " ".join(text.split())
    return text[:limit]
