"""``GET /v1/schedules/{name}/oncall?at=TIME``: who is on call, for people and scripts.

Part of the management API: the answer names people and their contact addresses.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .._wallclock import parse_instant
from ..errors import NotFound, PayloadError
from ..model import iso
from ..schedule import Person, Schedule
from . import state
from .auth import check_management


def oncall_doc(name: str, schedule: Schedule, people: Mapping[str, Person],
               at: datetime) -> dict[str, Any]:
    """The answer of the endpoint (and of ``baton oncall --json``)."""
    shift = schedule.shift_at(at)
    person = people.get(shift.person) if shift.person is not None else None
    return {
        "schedule": name,
        "at": iso(at),
        "person": shift.person,
        "name": person.name if person else None,
        "contacts": dict(person.contacts) if person else {},
        "source": shift.source if shift.person is not None else None,
        # The stretch around ``at`` with the same answer (looked for up to a year away).
        "shift": {"start": iso(shift.start), "end": iso(shift.end)},
    }


async def oncall(request: web.Request) -> web.Response:
    config = request.app[state.CONFIG]
    check_management(config.api_tokens, request)
    name = request.match_info["name"]
    schedule = config.schedules.get(name)
    if schedule is None:
        raise NotFound(f'unknown schedule "{name}"')
    raw = request.query.get("at")
    if raw is None:
        at = datetime.fromtimestamp(request.app[state.CLOCK].now(), UTC)
    else:
        try:
            at = parse_instant(raw, None)
        except ValueError as exc:
            raise PayloadError(str(exc), ["at"]) from None
    return web.json_response(oncall_doc(name, schedule, config.people, at))
