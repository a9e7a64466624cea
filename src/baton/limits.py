"""Bounds on what one alert may carry, checked at ingest after the source's adapter parsed
the body and before anything is stored, so every source gets them.

Labels, the dedup key and the well-known fields that matchers see are identity and
routing: cut short they would silently merge or misroute alerts, so an alert past a bound
refuses the whole request (400 naming the alert and field, nothing stored). Summary and
description are prose: a long one is cut at a UTF-8 boundary with a marker, because a page
with a shortened text beats no page.

Sizes are UTF-8 bytes, as storage and vendors count them. The same numbers are listed in
README.md ("Limits").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from .errors import PayloadError
from .model import Alert

MAX_LABELS = 128
MAX_LABEL_NAME_BYTES = 256
MAX_LABEL_VALUE_BYTES = 8192
MAX_DEDUP_KEY_BYTES = 512
MAX_SUMMARY_BYTES = 1024
MAX_DESCRIPTION_BYTES = 16384
TRUNCATED = " …[truncated]"
# API/CLI silences: each active one is matched against every alert on the storage writer,
# so their number and size bound that work. Config silences are the operator's own.
MAX_SILENCE_MATCHERS = 32
MAX_MATCHER_BYTES = 1024
MAX_SILENCES = 1000  # active and pending at once
# Enough to fix a batch; a body of a thousand bad alerts does not need a thousand lines.
MAX_REPORTED = 20
# Fields that join the labels matchers see (Alert.match_labels), bounded like values.
_LABEL_FIELDS = ("service", "component", "environment", "resource")


def size(text: str) -> int:
    """UTF-8 bytes of ``text`` (a lone surrogate from JSON counts, it cannot crash this)."""
    return len(text.encode("utf-8", "surrogatepass"))


def _clip(text: str, limit: int) -> str:
    if len(text) * 4 <= limit or size(text) <= limit:  # the cheap test first
        return text
    room = limit - size(TRUNCATED)
    cut = text.encode("utf-8", "surrogatepass")[:room]
    # Drop a multi-byte character split by the cut rather than emit half of it.
    return cut.decode("utf-8", "ignore") + TRUNCATED


def _shown(name: str) -> str:
    """A label name as an error shows it: a 10 KB name is not echoed back whole."""
    return name if len(name) <= 64 else name[:64] + "…"


def problems(alert: Alert, where: str) -> list[str]:
    """What in ``alert`` (at ``where``, e.g. ``alerts[3]``) exceeds a bound."""
    out = []
    if (n := size(alert.dedup_key)) > MAX_DEDUP_KEY_BYTES:
        out.append(f"{where}.dedup_key: {n} bytes, at most {MAX_DEDUP_KEY_BYTES}")
    if len(alert.labels) > MAX_LABELS:
        out.append(f"{where}.labels: {len(alert.labels)} labels, at most {MAX_LABELS}")
    for name, value in alert.labels.items():
        if (n := size(name)) > MAX_LABEL_NAME_BYTES:
            out.append(f"{where}.labels: name {_shown(name)!r} is {n} bytes, "
                       f"at most {MAX_LABEL_NAME_BYTES}")
        elif (n := size(value)) > MAX_LABEL_VALUE_BYTES:
            out.append(f"{where}.labels.{_shown(name)}: value is {n} bytes, "
                       f"at most {MAX_LABEL_VALUE_BYTES}")
    for key in _LABEL_FIELDS:
        value = getattr(alert, key)
        if value is not None and (n := size(value)) > MAX_LABEL_VALUE_BYTES:
            out.append(f"{where}.{key}: {n} bytes, at most {MAX_LABEL_VALUE_BYTES}")
    return out


def bounded(alerts: Sequence[Alert]) -> list[Alert]:
    """``alerts`` with long summaries and descriptions cut; raises PayloadError (a 400,
    every problem with its path) when any alert exceeds a bound that cannot be cut."""
    errors: list[str] = []
    out = []
    for i, alert in enumerate(alerts):
        errors += problems(alert, f"alerts[{i}]")
        summary = _clip(alert.summary, MAX_SUMMARY_BYTES)
        description = _clip(alert.description, MAX_DESCRIPTION_BYTES)
        name = _clip(alert.name, MAX_SUMMARY_BYTES) if alert.name is not None else None
        if (summary is not alert.summary or description is not alert.description
                or name is not alert.name):
            alert = dataclasses.replace(alert, summary=summary, description=description,
                                        name=name)
        out.append(alert)
    if errors:
        more = len(errors) - MAX_REPORTED
        shown = errors[:MAX_REPORTED] + ([f"... and {more} more"] if more > 0 else [])
        raise PayloadError(f"{len(errors)} alert field(s) exceed Baton's limits "
                           "(see README, Limits)", shown)
    return out
