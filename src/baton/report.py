"""The reports of ``GET /v1/reports/*`` and ``baton report``: one document for both.

The window is ``[now - since, now]`` over incident creation times; ``since`` is a duration
(``24h``, ``7d``, ``30d``; default 30d, at most 365d, which also bounds the rows a median
is taken over).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .duration import format_duration, parse_duration
from .errors import PayloadError
from .store import Store
from .store.views import ts

DEFAULT_SINCE = "30d"
MAX_SINCE = 365 * 86400.0
DEFAULT_LIMIT = 10
MAX_LIMIT = 100


def parse_since(value: str | None) -> float:
    """Seconds of ``since`` (unset or empty: 30d); PayloadError naming ``since``."""
    try:
        seconds = parse_duration(value or DEFAULT_SINCE)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= MAX_SINCE:
        raise PayloadError(f"since must be a duration from 1s to 365d, like 24h, 7d or 30d; "
                           f"got {value!r}", ["since"])
    return seconds


def parse_limit(value: str | None) -> int:
    raw = value or str(DEFAULT_LIMIT)
    # isascii and a length: str.isdigit takes "²" and 5,000 digits, which int() refuses.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= MAX_LIMIT:
        raise PayloadError(f"limit must be an integer from 1 to {MAX_LIMIT}", ["limit"])
    return int(raw)


def _window(since: float, now: float) -> dict[str, Any]:
    return {"since": format_duration(since), "from": ts(now - since), "to": ts(now)}


async def response_doc(store: Store, since: float, now: float) -> dict[str, Any]:
    return {**_window(since, now), **await store.response_report(now - since, now)}


async def recurring_doc(store: Store, since: float, limit: int, now: float) -> dict[str, Any]:
    problems = await store.recurring_report(now - since, now, limit)
    return {**_window(since, now), "limit": limit, "problems": problems}


# --- text ---------------------------------------------------------------------------------

def _dur(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(round(seconds))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]],
           left: tuple[int, ...] = (0,)) -> list[str]:
    """Columns two spaces apart: text (``left``) left-aligned, numbers right-aligned."""
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return ["  ".join(c.ljust(w) if i in left else c.rjust(w)
                      for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
            for r in (header, *rows)]


def _response_row(name: str, s: dict[str, Any]) -> list[str]:
    rate = s["escalation_rate"]
    escalated = f"{s['escalated']} ({rate:.0%})" if rate is not None else "0"
    return [name, str(s["incidents"]), str(s["acknowledged"]), str(s["resolved"]),
            _dur(s["mtta_seconds"]["mean"]), _dur(s["mtta_seconds"]["median"]),
            _dur(s["mttr_seconds"]["mean"]), _dur(s["mttr_seconds"]["median"]),
            escalated, str(s["suppressed"])]


def render(response: dict[str, Any], recurring: dict[str, Any]) -> str:
    lines = [f"Incidents created {response['from']} .. {response['to']} "
             f"(last {response['since']})", ""]
    if not response["overall"]["incidents"]:
        lines.append("no incidents")
    else:
        header = ["service", "incidents", "acked", "resolved", "MTTA mean", "MTTA median",
                  "MTTR mean", "MTTR median", "escalated", "suppressed"]
        rows = [_response_row(s["service"], s) for s in response["services"]]
        rows.append(_response_row("all services", response["overall"]))
        lines += _table(header, rows)
    lines += ["", f"Recurring problems (top {recurring['limit']})"]
    if not recurring["problems"]:
        lines.append("none: no incident key opened again in this window")
        return "\n".join(lines)
    rows = [[p["title"] or "", str(p["incidents"]), str(p["recurrences"]), str(p["events"]),
             p["last_seen"], p["service"] or "-"] for p in recurring["problems"]]
    lines += _table(["title", "incidents", "recurrences", "events", "last seen", "service"],
                    rows, left=(0, 4, 5))
    return "\n".join(lines)
