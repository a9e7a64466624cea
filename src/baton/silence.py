"""Validation of silence requests, shared by the API and the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .duration import parse_duration
from .errors import PayloadError
from .matcher import parse_matcher
from .model import parse_iso

MAX_DURATION = 366 * 86400.0


def parse_request(data: Mapping[str, Any], now: float) -> tuple[list[str], float, float]:
    """``matchers`` (Alertmanager syntax), ``starts_at`` (default now) and either
    ``ends_at`` or ``duration``. Returns the canonical matchers and the time range."""
    errors: list[str] = []
    raw = data.get("matchers")
    matchers: list[str] = []
    if not isinstance(raw, list) or not raw:
        errors.append("matchers: a non-empty list of matchers is required")
    else:
        for i, m in enumerate(raw):
            try:
                matchers.append(str(parse_matcher(m if isinstance(m, str) else "")))
            except ValueError as e:
                errors.append(f"matchers[{i}]: {e}")
        # As in Alertmanager: a silence must not match every alert by accident.
        if matchers and len(matchers) == len(raw) and all(
                parse_matcher(m).matches({}) for m in matchers):
            errors.append("matchers: at least one matcher must not match an empty label "
                          "(this silence would mute every alert)")
    start, end = now, None
    try:
        if data.get("starts_at") is not None:
            start = _instant(data["starts_at"])
        if data.get("ends_at") is not None:
            end = _instant(data["ends_at"])
        elif data.get("duration") is not None:
            end = start + parse_duration(data["duration"])
        else:
            errors.append("ends_at: give ends_at or duration")
    except (ValueError, TypeError) as e:
        errors.append(f"time: {e}")
    if end is not None and end <= max(start, now):
        errors.append("ends_at: must be after starts_at and in the future")
    if end is not None and end - start > MAX_DURATION:
        errors.append("ends_at: a silence may last at most 366 days")
    if errors:
        raise PayloadError("invalid silence", errors)
    assert end is not None
    return matchers, start, end


def _instant(value: Any) -> float:
    if not isinstance(value, str):
        raise ValueError("times are RFC 3339 strings")
    dt = parse_iso(value)
    if dt is None:
        raise ValueError(f"not a time: {value!r}")
    return dt.timestamp()
