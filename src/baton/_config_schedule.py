"""``people:``, ``teams:`` and ``schedules:`` of the config, built into ``baton.schedule``
values. Like the other builders, these read defensively (the schema step reported anything
malformed) and add what a schema cannot know: time zones, references to people, and the
parts of a layer that must agree with each other. A part the schema rejected is skipped
without a second message, and a schedule with any problem is not built.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from ._config_check import Checker
from ._wallclock import (
    WEEKDAYS,
    parse_clock,
    parse_date,
    parse_days,
    parse_handoff,
    parse_instant,
    zone,
)
from .duration import parse_duration
from .schedule import (
    DEFAULT_START,
    MIN_EVERY,
    Layer,
    Override,
    Person,
    Restriction,
    Schedule,
    check_handoff,
)

CONTACT_KEYS = ("email", "phone", "slack")


def plain_times(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the dates and times YAML parsed itself under ``schedules`` turned back
    into text: unquoted, ``2026-01-05`` is a ``date`` and ``2026-03-28T18:00:00+01:00`` a
    ``datetime``, while the schema, like JSON, knows only strings."""
    def plain(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: plain(v) for k, v in node.items()}
        if isinstance(node, list):
            return [plain(v) for v in node]
        return node.isoformat() if isinstance(node, date | datetime) else node

    return {**data, "schedules": plain(data["schedules"])} if "schedules" in data else data


def _entries(data: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    raw = data.get(section)
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, dict)}


def _strings(node: dict[str, Any], key: str) -> list[tuple[int, str]]:
    value = node.get(key)
    items = value if isinstance(value, list) else []
    return [(i, v) for i, v in enumerate(items) if isinstance(v, str)]


class _Builder:
    def __init__(self, ctx: Checker, data: dict[str, Any]) -> None:
        self.ctx = ctx
        people = data.get("people", {})
        # A malformed ``people`` section was reported; every reference would repeat it.
        self.people: set[str] | None = set(people) if isinstance(people, dict) else None

    def ok(self, path: str) -> bool:
        """Nothing at or below ``path`` was rejected by the schema."""
        return not any(b == path or b.startswith((path + ".", path + "["))
                       for b in self.ctx.bad)

    def members(self, node: dict[str, Any], path: str) -> tuple[str, ...]:
        found = _strings(node, "members")
        for i, name in found:
            self.person(name, f"{path}.members[{i}]")
        return tuple(name for _, name in found)

    def person(self, name: str, path: str) -> bool:
        if self.people is not None and name not in self.people:
            self.ctx.add(path, f'unknown person "{name}"')
            return False
        return True

    def check(self, path: str, fn: Any, value: Any, *args: Any) -> Any:
        """``fn(value, *args)``; a ValueError becomes a problem at ``path`` and the result
        None. A value the schema rejected, or a missing one (``required`` said so), is
        skipped: None without a second problem."""
        if value is None or not self.ok(path):
            return None
        try:
            return fn(value, *args)
        except ValueError as exc:
            self.ctx.add(path, str(exc))
            return None


def build_people(ctx: Checker, data: dict[str, Any]) -> dict[str, Person]:
    b, out = _Builder(ctx, data), {}
    for key, raw in _entries(data, "people").items():
        path = f"people.{key}"
        contacts = {k: raw[k] for k in CONTACT_KEYS if isinstance(raw.get(k), str)}
        extra = raw.get("contacts")
        if isinstance(extra, dict):
            contacts.update({k: v for k, v in extra.items()
                             if isinstance(k, str) and isinstance(v, str)})
        tz = raw.get("timezone")
        if isinstance(tz, str):
            b.check(f"{path}.timezone", zone, tz)
        name = raw.get("name")
        out[key] = Person(name if isinstance(name, str) else key, contacts,
                          tz if isinstance(tz, str) else None)
    return out


def build_teams(ctx: Checker, data: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    b = _Builder(ctx, data)
    return {key: b.members(raw, f"teams.{key}") for key, raw in _entries(data, "teams").items()}


def build_schedules(ctx: Checker, data: dict[str, Any]) -> dict[str, Schedule]:
    b, out = _Builder(ctx, data), {}
    for key, raw in _entries(data, "schedules").items():
        before = len(ctx.problems)
        schedule = _schedule(b, key, raw)
        if schedule is not None and len(ctx.problems) == before:
            out[key] = schedule
    return out


def _schedule(b: _Builder, key: str, raw: dict[str, Any]) -> Schedule | None:
    """The schedule, or None after reporting why not (or when the schema did)."""
    path = f"schedules.{key}"
    tz_name = raw.get("timezone")
    tz = b.check(f"{path}.timezone", zone, tz_name) if isinstance(tz_name, str) else None
    layers: list[Layer | None] = []
    names: dict[str, str] = {}
    for i, item in _items(raw, "layers"):
        lpath = f"{path}.layers[{i}]"
        name = item.get("name")
        name = name if isinstance(name, str) else str(i + 1)
        if name in names:
            b.ctx.add(f"{lpath}.name", f'duplicate layer name "{name}" (also {names[name]})')
        names.setdefault(name, f"layers[{i}]")
        layers.append(_layer(b, item, name, lpath))
    # Without a valid zone, offset-less times are read as UTC just to check the rest.
    overrides = [_override(b, item, tz or UTC, f"{path}.overrides[{i}]")
                 for i, item in _items(raw, "overrides")]
    good_layers = tuple(x for x in layers if x is not None)
    good_overrides = tuple(x for x in overrides if x is not None)
    if tz is None or len(good_layers) < len(layers) or len(good_overrides) < len(overrides):
        return None
    return Schedule(key, tz, good_layers, good_overrides)


def _items(node: dict[str, Any], key: str) -> list[tuple[int, dict[str, Any]]]:
    value = node.get(key)
    items = value if isinstance(value, list) else []
    return [(i, v) for i, v in enumerate(items) if isinstance(v, dict)]


def _rotation(raw: Any) -> str | timedelta:
    if isinstance(raw, str):
        return raw
    every = timedelta(seconds=parse_duration(raw["every"]))
    if every < MIN_EVERY:
        raise ValueError(f"must be at least 1h, got {raw['every']}")
    return every


def _layer(b: _Builder, raw: dict[str, Any], name: str, path: str) -> Layer | None:
    """Each part is checked on its own, so one run reports every problem of the layer."""
    before = len(b.ctx.problems)
    members = b.members(raw, path)
    rotation: str | timedelta | None = None
    if "rotation" in raw:
        every = isinstance(raw["rotation"], dict) and "every" in raw["rotation"]
        rotation = b.check(f"{path}.rotation" + (".every" if every else ""), _rotation,
                           raw["rotation"])
    default_handoff = "mon 00:00" if rotation == "weekly" else "00:00"
    handoff = b.check(f"{path}.handoff", parse_handoff, raw.get("handoff", default_handoff))
    if rotation is not None and handoff is not None:
        b.check(f"{path}.handoff", check_handoff, rotation, handoff[0])
    start = b.check(f"{path}.start", parse_date, raw.get("start", DEFAULT_START))
    restrictions = []
    for i, r in _items(raw, "restrictions"):
        rpath = f"{path}.restrictions[{i}]"
        parts = (b.check(f"{rpath}.days", parse_days, r.get("days", WEEKDAYS)),
                 b.check(f"{rpath}.start", parse_clock, r.get("start")),
                 b.check(f"{rpath}.end", parse_clock, r.get("end")))
        restrictions.append(None if None in parts else Restriction(*parts))
    if len(b.ctx.problems) > before or not b.ok(path) or rotation is None:
        return None
    return Layer(name, members, rotation, handoff[1], handoff[0], start,
                 tuple(r for r in restrictions if r is not None))


def _override(b: _Builder, raw: dict[str, Any], tz: tzinfo, path: str) -> Override | None:
    person = raw.get("person")
    known = isinstance(person, str) and b.person(person, f"{path}.person")
    start = b.check(f"{path}.start", parse_instant, raw.get("start"), tz)
    end = b.check(f"{path}.end", parse_instant, raw.get("end"), tz)
    if start is not None and end is not None and end <= start:
        b.ctx.add(f"{path}.end", f"must be after start ({raw['start']})")
        return None
    if not b.ok(path) or not known or start is None or end is None:
        return None
    return Override(str(person), start, end)
