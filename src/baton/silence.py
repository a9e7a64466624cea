"""Validation of silences: API and CLI requests, and the ``silences`` config section."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from . import limits
from .duration import parse_duration
from .errors import PayloadError
from .matcher import parse_matcher
from .model import parse_iso
from .suppression import ConfigSilence

MAX_DURATION = 366 * 86400.0


def parse_request(data: Mapping[str, Any], now: float) -> tuple[list[str], float, float]:
    """``matchers`` (Alertmanager syntax), ``starts_at`` (default now) and either
    ``ends_at`` or ``duration``. Returns the canonical matchers and the time range."""
    errors: list[str] = []
    raw = data.get("matchers")
    matchers: list[str] = []
    if not isinstance(raw, list) or not raw:
        errors.append("matchers: a non-empty list of matchers is required")
    elif len(raw) > limits.MAX_SILENCE_MATCHERS:
        errors.append(f"matchers: {len(raw)} matchers, at most {limits.MAX_SILENCE_MATCHERS}")
    else:
        for i, m in enumerate(raw):
            if isinstance(m, str) and (n := limits.size(m)) > limits.MAX_MATCHER_BYTES:
                errors.append(f"matchers[{i}]: {n} bytes, at most {limits.MAX_MATCHER_BYTES}")
                continue
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


def parse_config_silences(raw: Any, report: Callable[[str, str], None],
                          path: str = "silences") -> tuple[ConfigSilence, ...]:
    """The ``silences`` section: maintenance windows as code, beside the API's. Each is
    checked like an API silence (matchers that cannot mute everything, ``ends`` after
    ``starts``); a silence with a problem is reported with its path and left out. Its id
    is derived from what it says, so it stays the same across restarts and reloads."""
    out: list[ConfigSilence] = []
    for i, item in enumerate(raw if isinstance(raw, list) else ()):
        if not isinstance(item, dict):
            continue  # the schema reported it
        where = f"{path}[{i}]"
        matchers = []
        for j, text in enumerate(item.get("matchers") or ()):
            try:
                matchers.append(parse_matcher(text if isinstance(text, str) else ""))
            except ValueError as e:
                report(f"{where}.matchers[{j}]", str(e))
        if matchers and all(m.matches({}) for m in matchers):
            report(f"{where}.matchers", "at least one matcher must not match an empty label "
                                        "(this silence would mute every alert)")
            continue
        times = {}
        for key in ("starts", "ends"):
            value = item.get(key)
            if value is None:
                continue
            try:
                dt = parse_iso(value) if isinstance(value, str) else None
            except ValueError:
                dt = None
            if dt is None:
                report(f"{where}.{key}", f"not an RFC 3339 time: {value!r}")
            else:
                times[key] = dt.timestamp()
        if "ends" not in times or len(matchers) != len(item.get("matchers") or ()):
            continue
        start = times.get("starts", 0.0)
        if times["ends"] <= start:
            report(f"{where}.ends", "must be after starts")
            continue
        text = json.dumps([[str(m) for m in matchers], start, times["ends"]])
        ident = "config-" + hashlib.sha256(text.encode()).hexdigest()[:12]
        out.append(ConfigSilence(ident, tuple(matchers), start, times["ends"],
                                 str(item.get("comment") or ""),
                                 str(item.get("created_by") or "config")))
    return tuple(out)
