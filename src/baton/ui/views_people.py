"""On call (now, and the next 14 days per schedule) and reports (MTTA/MTTR per service,
recurring problems). The figures come from the same functions as the API's answers
(``oncall_doc``, ``Schedule.shifts``, ``report.response_doc``/``recurring_doc``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from .. import report
from ..api import state
from ..api.schedules import oncall_doc
from ..errors import PayloadError
from ..schedule import Schedule
from ..store import Store
from ..store.views import ts
from .session import context

DAYS = 14


def calendar(schedule: Schedule, now: datetime) -> list[dict[str, Any]]:
    """One row per day (in the schedule's time zone) from today: the shifts in it, cut at
    midnight, with local start and end times."""
    tz = schedule.timezone
    today = now.astimezone(tz).date()
    rows = []
    for i in range(DAYS):
        day = today + timedelta(days=i)
        start = datetime.combine(day, datetime.min.time(), tz)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
        shifts = [{"person": s.person, "source": s.source,
                   "start": s.start.astimezone(tz).strftime("%H:%M"),
                   "end": "24:00" if s.end >= end else s.end.astimezone(tz).strftime("%H:%M")}
                  for s in schedule.shifts(start, end)]
        rows.append({"date": day.isoformat(), "weekday": day.strftime("%a"),
                     "shifts": shifts})
    return rows


async def oncall(request: web.Request) -> web.StreamResponse:
    config = request.config_dict[state.CONFIG]
    now = datetime.fromtimestamp(request.config_dict[state.CLOCK].now(), UTC)
    schedules = [{"name": name, "timezone": str(s.timezone),
                  "now": oncall_doc(name, s, config.people, now),
                  "days": calendar(s, now)}
                 for name, s in sorted(config.schedules.items())]
    return aiohttp_jinja2.render_template("oncall.html", request, {
        **context(request), "schedules": schedules, "people": config.people})


# --- reports -----------------------------------------------------------------------------

BAR_HEIGHT, GAP, LABEL_WIDTH, CHART_WIDTH = 14, 6, 130, 420


def _bars(services: list[dict[str, Any]]) -> dict[str, Any]:
    """Geometry of the server-side SVG: per service two bars (MTTA, MTTR means) on one
    scale. Text goes through the template, so service names are escaped like all else."""
    top = max([v for s in services for v in (s["mtta_seconds"]["mean"],
                                             s["mttr_seconds"]["mean"]) if v] or [1.0])
    rows, y = [], GAP
    for s in services:
        bars = []
        for kind in ("mtta", "mttr"):
            value = s[f"{kind}_seconds"]["mean"]
            width = 0.0 if not value else max(1.0, (CHART_WIDTH - LABEL_WIDTH - 70)
                                              * value / top)
            bars.append({"kind": kind, "y": y, "width": round(width, 1), "value": value})
            y += BAR_HEIGHT + 2
        rows.append({"service": s["service"], "label_y": y - BAR_HEIGHT, "bars": bars})
        y += GAP
    return {"rows": rows, "height": max(y, 30), "width": CHART_WIDTH, "x0": LABEL_WIDTH,
            "bar_height": BAR_HEIGHT}


PERIODS = 6


async def trend(store: Store, since: float, now: float) -> dict[str, Any]:
    """MTTA/MTTR over time: the window cut into ``PERIODS`` equal parts, each the same
    report as the whole (``Store.response_report``) over the incidents created in it."""
    step = since / PERIODS
    periods = []
    for i in range(PERIODS):
        start = now - since + i * step
        doc = await store.response_report(start, start + step)
        periods.append({"from": ts(start), "to": ts(start + step), "overall": doc["overall"],
                        "services": {s["service"]: s for s in doc["services"]}})
    services = sorted({name for p in periods for name in p["services"]})
    top = max([v for p in periods for k in ("mtta_seconds", "mttr_seconds")
               if (v := p["overall"][k]["mean"])] or [1.0])
    height = 120.0
    bars = [{"x": 40 + i * 60, "mtta": round(height * (p["overall"]["mtta_seconds"]["mean"]
                                                       or 0) / top, 1),
             "mttr": round(height * (p["overall"]["mttr_seconds"]["mean"] or 0) / top, 1),
             "label": (p["from"] or "")[5:10]}
            for i, p in enumerate(periods)]
    return {"periods": periods, "services": services, "bars": bars, "height": height,
            "width": 40 + PERIODS * 60}


async def reports(request: web.Request) -> web.StreamResponse:
    store = request.config_dict[state.STORE]
    now = request.config_dict[state.CLOCK].now()
    raw = request.query.get("since") or "30d"
    try:
        since = report.parse_since(raw)
    except PayloadError:
        raw, since = "30d", report.parse_since("30d")
    response = await report.response_doc(store, since, now)
    recurring = await report.recurring_doc(store, since, 20, now)
    return aiohttp_jinja2.render_template("reports.html", request, {
        **context(request), "since": raw, "response": response, "recurring": recurring,
        "chart": _bars(response["services"]), "trend": await trend(store, since, now)})


def routes(r: web.UrlDispatcher) -> None:
    r.add_get("/oncall", oncall)
    r.add_get("/reports", reports)
