"""``baton import opsgenie``: Opsgenie's users, teams, schedules and escalations, from its
REST API or a saved export.

Read: ``GET /v2/users`` (paged by ``offset``/``limit``, following ``paging.next``),
``/v2/teams`` and each ``/v2/teams/{id}`` (for members), ``/v2/schedules?expand=rotation``
and each ``/v2/schedules/{id}/overrides``, ``/v2/escalations``. A saved export
(``--from-file``) is one JSON object: ``users`` (every page's ``data``), ``teams`` (each
team as ``GET /v2/teams/{id}`` answers, with ``members``), ``schedules`` (as listed with
``expand=rotation``, each with an ``overrides`` list: that schedule's overrides' ``data``)
and ``escalations``.

Mapping, with every gap reported:

- users -> people (e-mail = username, full name, time zone); teams -> teams.
- schedules -> schedules in their time zone; each rotation (hourly, daily, weekly, any
  length) is a layer, its time restrictions windows; overrides -> overrides.
- escalations -> policies: rules with the same delay form a level, the gap to the next
  delay its ``escalate_after``; ``repeat.count`` is ``repeat`` and ``repeat.waitInterval``
  the last level's wait. Routing rules and integrations are not imported.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from . import ImportFailed, Report, Result
from ._http import (
    MAX_PAGES,
    PAGE_CONNECTOR,
    check_base_url,
    duration,
    follow,
    get_json,
    hhmm,
    items,
    key,
    merge,
    obj,
    page_connector,
    read_export,
    rotation,
    span,
    token_from_env,
    zone,
)

HELP = "from Opsgenie's REST API or a saved export (--from-file)"
VENDOR = "Opsgenie"
DEFAULT_KEY_ENV = "OPSGENIE_API_KEY"
DEFAULT_URL = "https://api.opsgenie.com"
RESOURCES = ("users", "teams", "schedules", "escalations")
PAGE = 100
_UNIT = {"minutes": 60, "hours": 3600, "days": 86400}
_DAY = {name: i for i, name in enumerate(
    ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=DEFAULT_URL, help=f"API address (default "
                        f"{DEFAULT_URL}; https://api.eu.opsgenie.com for the EU instance)")
    parser.add_argument("--from-file", metavar="FILE", help="a saved export instead of "
                        "the API: users, teams, schedules (with rotations and overrides) "
                        "and escalations as one JSON object")
    parser.add_argument("--api-key-env", default=DEFAULT_KEY_ENV, metavar="VAR",
                        help=f"environment variable holding the API key (default "
                        f"{DEFAULT_KEY_ENV}); the key is never written anywhere")


def run(args: argparse.Namespace) -> Result:
    if args.from_file:
        data = read_export(args.from_file, RESOURCES, VENDOR)
    else:
        data = fetch(args.url, args.api_key_env)
    report = Report()
    return Result(_Opsgenie(data, report).build(), report)


def fetch(url: str, key_env: str) -> dict[str, Any]:
    base = check_base_url(url, VENDOR)
    headers = {"Authorization": f"GenieKey {token_from_env(key_env, VENDOR)}"}

    def pages(first: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page_url = base + first
        for _ in range(MAX_PAGES):
            body = get_json(page_url, headers, VENDOR, key_env)
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise ImportFailed(f"{VENDOR}: {first.split('?')[0]} did not answer a list "
                                   "in data; is --url the API address?")
            found += items(body["data"])
            paging = body.get("paging")
            nxt = paging.get("next") if isinstance(paging, dict) else None
            if not nxt or not body["data"]:
                break
            page_url = follow(str(nxt), base)
        return found

    def one(path: str) -> dict[str, Any]:
        body = get_json(base + path, headers, VENDOR, key_env)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise ImportFailed(f"{VENDOR}: {path.split('?')[0]} did not answer an object")
        return data

    teams = [one(f"/v2/teams/{t['id']}?identifierType=id") for t in pages("/v2/teams")]
    schedules = pages("/v2/schedules?expand=rotation")
    for s in schedules:
        s["overrides"] = pages(f"/v2/schedules/{s['id']}/overrides?scheduleIdentifierType=id")
    return {"users": pages(f"/v2/users?limit={PAGE}&offset=0"), "teams": teams,
            "schedules": schedules, "escalations": pages("/v2/escalations")}


class _Opsgenie:
    def __init__(self, data: dict[str, Any], report: Report) -> None:
        self.data, self.r = data, report
        self.users: dict[str, str] = {}  # id and username -> person key
        self.teams: dict[str, str] = {}
        self.schedules: dict[str, str] = {}

    def build(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        for name, section in (("people", self._people()), ("teams", self._teams()),
                              ("schedules", self._schedules()),
                              ("policies", self._policies())):
            if section:
                config[name] = section
        if "policies" in config:
            config["connectors"] = {PAGE_CONNECTOR: page_connector(self.r)}
        self.r.decided("routing", "team routing rules and integrations are not imported: "
                       "add sources and routes naming the imported policies")
        return config

    def _people(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        taken: set[str] = set()
        for i, u in enumerate(items(self.data["users"])):
            username = str(u.get("username") or "")
            k = key(username.split("@")[0] or str(u.get("id")), taken, "user")
            self.users[str(u.get("id"))] = self.users[username] = k
            person: dict[str, Any] = {}
            if u.get("fullName"):
                person["name"] = str(u["fullName"])
            if "@" in username:
                person["email"] = username
            if zone(u.get("timeZone")) is not None:
                person["timezone"] = u["timeZone"]
            elif u.get("timeZone"):
                self.r.skipped(f"users[{i}].timeZone", f"unknown time zone {u['timeZone']!r}")
            out[k] = person
        if out:
            self.r.decided("users", "phone numbers live in each user's contact methods, "
                           "which are not read: add people.<id>.phone by hand")
        return out

    def _ref(self, table: dict[str, str], ref: Any, what: str, path: str) -> str | None:
        ref = ref if isinstance(ref, dict) else {}
        for field in ("id", "username", "name"):
            if str(ref.get(field)) in table:
                return table[str(ref.get(field))]
        self.r.skipped(path, f"{what} {ref.get('name') or ref.get('username') or ref.get('id')}"
                       " was not imported")
        return None

    def _teams(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        taken: set[str] = set()
        for i, t in enumerate(items(self.data["teams"])):
            path = f'teams[{i}] "{t.get("name", "")}"'
            members = [p for n, m in enumerate(items(t.get("members"))) if (p := self._ref(
                self.users, m.get("user"), "user", f"{path}.members[{n}]"))]
            if not members:
                self.r.skipped(path, "no members Baton knows: a Baton team needs one")
                continue
            k = key(str(t.get("name") or t.get("id")), taken, "team")
            self.teams[str(t.get("id"))] = self.teams[str(t.get("name"))] = k
            entry: dict[str, Any] = {"members": list(dict.fromkeys(members))}
            if t.get("description"):
                entry["description"] = str(t["description"])
            out[k] = entry
        return out

    def _schedules(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        taken: set[str] = set()
        for i, s in enumerate(items(self.data["schedules"])):
            path = f'schedules[{i}] "{s.get("name", "")}"'
            tz = zone(s.get("timezone"))
            if tz is None:
                self.r.skipped(path, f"unknown time zone {s.get('timezone')!r}")
                continue
            if s.get("enabled") is False:
                self.r.decided(path, "disabled in Opsgenie; imported, and on call in Baton")
            layers, names = [], set[str]()
            rotations = items(s.get("rotations"))
            for j, rot in enumerate(rotations):
                layer = self._layer(rot, f"{path}.rotations[{j}]", tz, names)
                if layer is not None:
                    layers.append(layer)
            if len(rotations) > 1:
                self.r.decided(f"{path}.rotations", "Opsgenie notifies everyone its "
                               "rotations have on call at once; Baton the last layer listed "
                               "with someone on call")
            k = key(str(s.get("name") or s.get("id")), taken, "schedule")
            self.schedules[str(s.get("id"))] = self.schedules[str(s.get("name"))] = k
            entry: dict[str, Any] = {"timezone": tz.key}
            if s.get("description"):
                entry["description"] = str(s["description"])
            if layers:
                entry["layers"] = layers
            overrides = self._overrides(s, path, tz)
            if overrides:
                entry["overrides"] = overrides
            out[k] = entry
        return out

    def _layer(self, rot: dict[str, Any], path: str, tz: Any,
               names: set[str]) -> dict[str, Any] | None:
        try:
            local = datetime.fromisoformat(str(rot["startDate"]).replace("Z", "+00:00"))
            local = local.astimezone(tz)
        except (KeyError, ValueError):
            self.r.skipped(path, "no readable startDate")
            return None
        layer = rotation(str(rot.get("type")), int(rot.get("length") or 1), local)
        if layer is None:
            self.r.skipped(path, f"rotation type {rot.get('type')!r} is not hourly, daily "
                           "or weekly")
            return None
        members = []
        for n, p in enumerate(items(rot.get("participants"))):
            ppath = f"{path}.participants[{n}]"
            if p.get("type") == "user":
                person = self._ref(self.users, p, "user", ppath)
                if person:
                    members.append(person)
            elif p.get("type") == "none":
                self.r.skipped(ppath, "a turn with nobody on call: Baton rotates people "
                               "only, so this turn is dropped and later ones come sooner")
            else:
                self.r.skipped(ppath, f"a {p.get('type')} as participant: Baton rotates "
                               "people only")
        if not members:
            self.r.skipped(path, "no participant Baton knows")
            return None
        if rot.get("endDate"):
            self.r.skipped(f"{path}.endDate", f"ends {rot['endDate']}; Baton layers have "
                           "no end date")
        entry = {"name": key(str(rot.get("name") or rot.get("id")), names, "layer"),
                 **layer, "members": members}
        windows = self._windows(rot.get("timeRestriction"), f"{path}.timeRestriction")
        if windows:
            entry["restrictions"] = windows
        return entry

    def _windows(self, tr: Any, path: str) -> list[dict[str, Any]]:
        if not isinstance(tr, dict):
            return []
        try:
            if tr.get("type") == "time-of-day":
                r = tr["restriction"]
                return [{"start": hhmm(r["startHour"], r.get("startMin", 0)),
                         "end": hhmm(r["endHour"], r.get("endMin", 0))}]
            if tr.get("type") == "weekday-and-time-of-day":
                out = []
                for r in items(tr.get("restrictions")):
                    first = _DAY[r["startDay"]] * 1440 + r["startHour"] * 60 + r.get("startMin", 0)
                    last = _DAY[r["endDay"]] * 1440 + r["endHour"] * 60 + r.get("endMin", 0)
                    length = (last - first) % 10080 or 10080
                    out += span(first // 1440, first % 1440, length)
                return merge(out)
        except (KeyError, TypeError, ValueError):
            pass
        self.r.skipped(path, "a time restriction Baton cannot read; the rotation is "
                       "imported without it")
        return []

    def _overrides(self, s: dict[str, Any], path: str, tz: Any) -> list[dict[str, Any]]:
        out = []
        for n, o in enumerate(items(s.get("overrides"))):
            opath = f"{path}.overrides[{n}]"
            user = obj(o, "user")
            if user.get("type") not in (None, "user"):
                self.r.skipped(opath, f"an override by a participant of type {user.get('type')}: "
                               "Baton overrides name one person")
                continue
            person = self._ref(self.users, user, "user", opath)
            if person is None or not o.get("startDate") or not o.get("endDate"):
                continue
            if o.get("rotations"):
                self.r.decided(opath, "limited to some rotations in Opsgenie; covers the "
                               "whole schedule in Baton")
            out.append({"person": person, "start": str(o["startDate"]),
                        "end": str(o["endDate"])})
        return out

    def _policies(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        taken: set[str] = set()
        for i, e in enumerate(items(self.data["escalations"])):
            path = f'escalations[{i}] "{e.get("name", "")}"'
            by_delay: dict[int, list[str]] = {}
            for n, rule in enumerate(items(e.get("rules"))):
                rpath = f"{path}.rules[{n}]"
                delay = obj(rule, "delay")
                wait = int(delay.get("timeAmount") or 0) * _UNIT.get(
                    str(delay.get("timeUnit") or "minutes"), 60)
                if rule.get("condition") == "if-not-closed":
                    self.r.decided(rpath, "if-not-closed: in Baton an acknowledgement stops "
                                   "escalation too")
                target = self._recipient(rule, rpath)
                if target:
                    by_delay.setdefault(wait, []).append(target)
            if not by_delay:
                self.r.skipped(path, "no rule notifies anyone Baton knows")
                continue
            delays = sorted(by_delay)
            if delays[0]:
                self.r.skipped(f"{path}.rules", f"the first rule waits {duration(delays[0])}"
                               "; Baton notifies the first level at once")
            levels = []
            for d, nxt in zip(delays, [*delays[1:], None], strict=True):
                level: dict[str, Any] = {"notify": [{"connector": PAGE_CONNECTOR, "to": t}
                                                    for t in dict.fromkeys(by_delay[d])]}
                if nxt is not None:
                    level["escalate_after"] = duration(nxt - d)
                levels.append(level)
            policy: dict[str, Any] = {"levels": levels}
            if e.get("description"):
                policy["description"] = str(e["description"])
            self._repeat(e.get("repeat"), f"{path}.repeat", policy)
            out[key(str(e.get("name") or e.get("id")), taken, "policy")] = policy
        return out

    def _recipient(self, rule: dict[str, Any], path: str) -> str | None:
        rec = obj(rule, "recipient")
        kind, how = rec.get("type"), rule.get("notifyType") or "default"
        if kind == "user" and how == "default":
            person = self._ref(self.users, rec, "user", path)
            return f"person:{person}" if person else None
        if kind == "schedule" and how == "default":
            sched = self._ref(self.schedules, rec, "schedule", path)
            return f"schedule:{sched}" if sched else None
        if kind == "team" and how in ("default", "all", "users"):
            team = self._ref(self.teams, rec, "team", path)
            if team and how != "all":
                self.r.decided(path, f"team with notifyType {how}: every member in Baton "
                               "(Opsgenie: " + ("its routing rules" if how == "default"
                                                else "members who are not admins") + ")")
            return f"team:{team}" if team else None
        why = {"next": "the next on-call person of a schedule",
               "previous": "the previous on-call person of a schedule",
               "admins": "a team's admins only"}.get(str(how), f"notifyType {how} for a {kind}")
        self.r.skipped(path, f"{why}: Baton has no equivalent")
        return None

    def _repeat(self, repeat: Any, path: str, policy: dict[str, Any]) -> None:
        if not isinstance(repeat, dict) or not int(repeat.get("count") or 0):
            return
        policy["repeat"] = int(repeat["count"])
        wait = int(repeat.get("waitInterval") or 0) * 60 or 60
        policy["levels"][-1]["escalate_after"] = duration(wait)
        self.r.decided(path, f"repeat {repeat['count']} times, {duration(wait)} after the "
                       "last level (Baton needs a wait of at least 1m)")
        if repeat.get("closeAlertAfterAll"):
            self.r.skipped(f"{path}.closeAlertAfterAll", "Baton does not close an incident "
                           "by itself")
        if repeat.get("resetRecipientStates"):
            self.r.decided(f"{path}.resetRecipientStates", "Baton notifies every repeat "
                           "anew anyway")

