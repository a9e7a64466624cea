"""``baton import oncall``: Grafana OnCall's setup, from its public API or a saved export.

Read (``/api/v1/<resource>/``, paginated by ``next`` links): users, schedules,
on_call_shifts, escalation_chains, escalation_policies, integrations, routes. A saved
export (``--from-file``) is one JSON object with those seven keys, each the ``results`` of
every page of that resource concatenated, e.g. ``{"users": [...], "schedules": [...]}``.

Mapping, with every gap reported:

- users -> people (email, Slack member id, time zone; OnCall's API has no phone numbers).
- schedules (``web``, ``calendar``) -> schedules; each rolling_users/recurrent_event shift is
  a layer (ordered by ``level``: in OnCall the higher level wins, in Baton the later layer),
  by_day and a duration shorter than the period become restrictions; ``override`` and
  ``single_event`` shifts become overrides. ``ical`` schedules live in an outside calendar.
- escalation chains -> policies: notify steps up to a ``wait`` form a level whose
  ``escalate_after`` is the wait; ``repeat_escalation`` is ``repeat: 5`` (OnCall's limit).
- integrations -> sources with a new bearer token each, tagged with the label
  ``oncall_integration``; routes -> child routes where a jinja2 filter compares payload
  labels (``{{ payload.labels.severity == "critical" }}``); regex routes are reported.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from . import ImportFailed, Report, Result, secret_ref
from ._http import (
    MAX_PAGES,
    PAGE_CONNECTOR,
    check_base_url,
    duration,
    follow,
    get_json,
    items,
    key,
    page_connector,
    read_export,
    token_from_env,
    zone,
)
from ._oncall_schedule import ScheduleMapper

HELP = "from Grafana OnCall's public API (--url) or a saved export (--from-file)"
VENDOR = "Grafana OnCall"
DEFAULT_TOKEN_ENV = "ONCALL_API_TOKEN"  # noqa: S105 - a variable's name
RESOURCES = ("users", "schedules", "on_call_shifts", "escalation_chains",
             "escalation_policies", "integrations", "routes")
LABEL = "oncall_integration"
REPEATS = 5  # OnCall's repeat_escalation starts the chain over at most five times

SOURCE_TYPES = {
    "alertmanager": "alertmanager", "legacy_alertmanager": "alertmanager",
    "grafana_alerting": "grafana", "legacy_grafana_alerting": "grafana", "grafana": "grafana",
    "webhook": "generic", "formatted_webhook": "generic", "datadog": "datadog",
    "newrelic": "newrelic", "pingdom": "pingdom", "sentry": "sentry", "zabbix": "zabbix",
    "kibana": "kibana", "amazon_sns": "cloudwatch", "stackdriver": "gcp-monitoring",
    "uptime_kuma": "uptime-kuma", "uptimekuma": "uptime-kuma",
}
STEP_GAPS = {
    "notify_user_group": "notifies a Slack user group; Baton notifies people, teams or "
                         "schedules",
    "notify_team_members": "OnCall teams are not imported (the public API lists no members)",
    "notify_whole_channel": "posts to the integration's Slack channel; add a slack "
                            "connector to a level instead",
    "trigger_webhook": "an outgoing webhook; add a webhook connector to a level instead",
    "trigger_action": "an outgoing webhook; add a webhook connector to a level instead",
    "notify_if_time_from_to": "a time-of-day condition on the rest of the chain",
    "notify_if_num_alerts_in_window": "an alert-count condition on the rest of the chain",
    "declare_incident": "Grafana Incident has no Baton equivalent",
}
_JINJA = re.compile(r'\{\{\s*(.*?)\s*\}\}', re.S)
_CMP = re.compile(r'payload\.(?:common)?[Ll]abels\.([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=)\s*'
                  r'(?:"([^"\\]*)"|\'([^\'\\]*)\')$')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--url", help="OnCall API URL as its settings page shows it, e.g. "
                     "https://oncall.example.com (/api/v1/... is added)")
    src.add_argument("--from-file", metavar="FILE",
                     help="a saved export: a JSON object with users, schedules, "
                     "on_call_shifts, escalation_chains, escalation_policies, integrations "
                     "and routes, each the results of every API page concatenated")
    parser.add_argument("--token-env", default=DEFAULT_TOKEN_ENV, metavar="VAR",
                        help=f"environment variable holding the API token (default "
                        f"{DEFAULT_TOKEN_ENV}); the token is never written anywhere")
    parser.add_argument("--grafana-url", help="Grafana Cloud only: the stack URL, sent "
                        "as X-Grafana-URL")


def run(args: argparse.Namespace) -> Result:
    if args.from_file:
        data = read_export(args.from_file, RESOURCES, VENDOR)
    else:
        data = fetch(args.url, args.token_env, getattr(args, "grafana_url", None))
    report = Report()
    return Result(_OnCall(data, report).build(), report)


def fetch(url: str, token_env: str, grafana_url: str | None = None) -> dict[str, Any]:
    base = check_base_url(url, VENDOR)
    headers = {"Authorization": token_from_env(token_env, VENDOR)}  # OnCall: no scheme
    if grafana_url:
        headers["X-Grafana-URL"] = grafana_url
    data: dict[str, Any] = {}
    for resource in RESOURCES:
        page_url, found = f"{base}/api/v1/{resource}/", []
        for _ in range(MAX_PAGES):
            page = get_json(page_url, headers, VENDOR, token_env)
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise ImportFailed(f"{VENDOR}: /api/v1/{resource}/ did not answer a page "
                                   f"of results; is --url the OnCall API URL?")
            found += page["results"]
            if not page.get("next"):
                break
            page_url = follow(str(page["next"]), base)
        data[resource] = found
    return data


class _OnCall:
    def __init__(self, data: dict[str, Any], report: Report) -> None:
        self.data, self.r = data, report
        self.people: dict[str, dict[str, Any]] = {}
        self.user_keys: dict[str, str] = {}
        self.schedule_keys: dict[str, str] = {}
        self.policy_keys: dict[str, str] = {}

    def build(self) -> dict[str, Any]:
        self._users()
        schedules, self.schedule_keys = ScheduleMapper(self.data, self.r,
                                                       self._person).build()
        policies = self._policies()
        sources, routes = self._integrations()
        config: dict[str, Any] = {}
        for name, section in (("sources", sources), ("people", self.people),
                              ("schedules", schedules), ("policies", policies),
                              ("routes", routes)):
            if section:
                config[name] = section
        if policies:
            config["connectors"] = {PAGE_CONNECTOR: page_connector(self.r)}
        return config

    # -- people -------------------------------------------------------------------------
    def _users(self) -> None:
        taken: set[str] = set()
        phones = False
        for i, u in enumerate(items(self.data["users"])):
            name = u.get("username") or str(u.get("email", "")).split("@")[0]
            k = key(str(name), taken, "user")
            self.user_keys[str(u.get("id"))] = k
            person: dict[str, Any] = {}
            if u.get("name"):
                person["name"] = str(u["name"])
            if u.get("email"):
                person["email"] = str(u["email"])
            slack = u.get("slack")
            if isinstance(slack, dict) and slack.get("user_id"):
                person["slack"] = str(slack["user_id"])
            if zone(u.get("timezone")) is not None:
                person["timezone"] = u["timezone"]
            elif u.get("timezone"):
                self.r.skipped(f"users[{i}].timezone", f"unknown time zone {u['timezone']!r}")
            phones = phones or bool(u.get("is_phone_number_verified"))
            self.people[k] = person
        if phones:
            self.r.decided("users", "OnCall's public API does not show phone numbers: add "
                           "people.<id>.phone by hand for SMS or call connectors")

    def _person(self, user_id: Any, path: str) -> str | None:
        k = self.user_keys.get(str(user_id))
        if k is None:
            self.r.skipped(path, f"user {user_id} is not among the users read")
        return k

    # -- escalation chains --------------------------------------------------------------
    def _policies(self) -> dict[str, Any]:
        steps: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for i, p in enumerate(items(self.data["escalation_policies"])):
            steps.setdefault(str(p.get("escalation_chain_id")), []).append((i, p))
        out: dict[str, Any] = {}
        taken: set[str] = set()
        for i, chain in enumerate(items(self.data["escalation_chains"])):
            path = f'escalation_chains[{i}] "{chain.get("name", "")}"'
            chain_steps = sorted(steps.get(str(chain.get("id")), []),
                                 key=lambda x: int(x[1].get("position") or 0))
            policy = self._chain(chain_steps)
            if policy is None:
                self.r.skipped(path, "no step notifies anyone Baton knows")
                continue
            k = key(str(chain.get("name") or chain.get("id")), taken, "policy")
            self.policy_keys[str(chain.get("id"))] = k
            out[k] = policy
        return out

    def _chain(self, steps: list[tuple[int, dict[str, Any]]]) -> dict[str, Any] | None:
        levels: list[list[Any]] = []  # [targets, wait seconds or None]
        current: list[str] = []
        repeat, repeat_path = 0, ""
        for i, step in steps:
            path, kind = f"escalation_policies[{i}]", step.get("type")
            if step.get("important"):
                self.r.decided(path, "'important' picks OnCall's personal rules; Baton "
                               "has none: notified like any other step")
            if kind == "wait":
                wait = int(step.get("duration") or 0)
                if current:
                    levels.append([current, wait])
                    current = []
                elif levels:
                    levels[-1][1] = (levels[-1][1] or 0) + wait
                else:
                    self.r.skipped(path, "a wait before the first notification: Baton "
                                   "notifies the first level at once")
            elif kind == "notify_persons":
                current += [f"person:{p}" for n, u in enumerate(step.get(
                    "persons_to_notify") or []) if (p := self._person(
                        u, f"{path}.persons_to_notify[{n}]"))]
            elif kind == "notify_person_next_each_time":
                users = step.get("persons_to_notify_next_each_time") or []
                if len(users) > 1:
                    self.r.skipped(path, "round robin (next person each time) has no "
                                   "Baton equivalent: the first person is notified")
                if users and (p := self._person(users[0], path)):
                    current.append(f"person:{p}")
            elif kind == "notify_on_call_from_schedule":
                sid = str(step.get("notify_on_call_from_schedule"))
                if sid in self.schedule_keys:
                    current.append(f"schedule:{self.schedule_keys[sid]}")
                else:
                    self.r.skipped(path, f"schedule {sid} was not imported")
            elif kind == "repeat_escalation":
                repeat, repeat_path = REPEATS, path
                self.r.decided(path, f"repeat_escalation: repeat {REPEATS} (OnCall's limit)")
                break
            elif kind == "resolve":
                self.r.skipped(path, "resolving from the chain: Baton does not resolve by "
                               "itself; later steps are not reached either")
                break
            else:
                self.r.skipped(path, STEP_GAPS.get(str(kind), f"step type {kind!r} has "
                                                   "no Baton equivalent"))
        if current:
            levels.append([current, None])
        if not levels:
            return None
        if not repeat:
            levels[-1][1] = None  # a trailing wait leads nowhere
        elif not levels[-1][1]:
            # Baton waits the last level's escalate_after before starting over; without
            # one it would never repeat.
            levels[-1][1] = 60
            self.r.decided(repeat_path, "OnCall repeats right after the last step; Baton "
                           "waits 1m first")
        out_levels = []
        for targets, wait in levels:
            level: dict[str, Any] = {"notify": [{"connector": PAGE_CONNECTOR, "to": t}
                                                for t in dict.fromkeys(targets)]}
            if wait:
                level["escalate_after"] = duration(wait)
            out_levels.append(level)
        policy: dict[str, Any] = {"levels": out_levels}
        if repeat:
            policy["repeat"] = repeat
        return policy

    # -- integrations and routes --------------------------------------------------------
    def _integrations(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        routes_of: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for i, r in enumerate(items(self.data["routes"])):
            routes_of.setdefault(str(r.get("integration_id")), []).append((i, r))
        sources: dict[str, Any] = {}
        tree: list[dict[str, Any]] = []
        taken: set[str] = set()
        route_names: set[str] = set()
        for i, integ in enumerate(items(self.data["integrations"])):
            path = f'integrations[{i}] "{integ.get("name", "")}"'
            kind = str(integ.get("type"))
            if kind not in SOURCE_TYPES:
                self.r.skipped(path, f"integration type {kind!r} has no Baton source")
                continue
            name = key(str(integ.get("name") or kind), taken, "source")
            sources[name] = {
                "type": SOURCE_TYPES[kind],
                "auth": {"type": "bearer", "token": secret_ref(
                    self.r, f"a new token for senders to source '{name}'", "source", name,
                    "token")},
                "labels": {LABEL: name}}
            self.r.decided(path, f"source {name} ({SOURCE_TYPES[kind]}): point the sender "
                           f"at /v1/ingest/{name} with a bearer token; OnCall's "
                           "integration URL is not carried over")
            tree.append(self._route_tree(name, sorted(
                routes_of.get(str(integ.get("id")), []),
                key=lambda x: int(x[1].get("position") or 0)), route_names))
        return sources, tree

    def _route_tree(self, source: str, routes: list[tuple[int, dict[str, Any]]],
                    names: set[str]) -> dict[str, Any]:
        children: list[dict[str, Any]] = []
        default: str | None = None
        for i, r in routes:
            path = f"routes[{i}]"
            policy = self.policy_keys.get(str(r.get("escalation_chain_id")))
            if r.get("escalation_chain_id") and policy is None:
                self.r.skipped(f"{path}.escalation_chain_id", "its chain was not imported: "
                               "matching alerts notify nobody")
            if r.get("is_the_last_route"):
                default = policy
                continue
            matchers = _matchers(r)
            if matchers is None:
                self.r.skipped(f"{path}.routing_regex", f"{r.get('routing_type')} filter "
                               f"{r.get('routing_regex')!r} is not a label comparison: "
                               "write it as Baton matchers")
                continue
            child: dict[str, Any] = {"name": key(f"{source}-{r.get('id')}", names),
                                     "matchers": matchers}
            if policy:
                child["policy"] = policy
            children.append(child)
        last: dict[str, Any] = {"name": key(f"{source}-default", names)}
        if default:
            last["policy"] = default
        # The default route is the last child, not the parent's policy: a route without a
        # chain then notifies nobody, as in OnCall, instead of inheriting the default's.
        return {"name": key(source, names), "matchers": [f'{LABEL}="{source}"'],
                "routes": [*children, last]}


def _matchers(route: dict[str, Any]) -> list[str] | None:
    """Matchers for a jinja2 filter of ``payload.labels.X == "v"`` comparisons joined by
    ``and``; None for anything else (regex routes search the whole payload text)."""
    text = str(route.get("routing_regex") or "")
    m = _JINJA.fullmatch(text.strip())
    if route.get("routing_type") != "jinja2" or m is None:
        return None
    out = []
    for part in re.split(r"\s+and\s+", m.group(1)):
        c = _CMP.fullmatch(part.strip().strip("()").strip())
        if c is None:
            return None
        value = c.group(3) if c.group(3) is not None else c.group(4)
        out.append(f'{c.group(1)}{"=" if c.group(2) == "==" else "!="}"{value}"')
    return out

