"""``baton import alertmanager FILE``: a Prometheus Alertmanager config as a Baton config.

The route tree keeps Alertmanager's shape and semantics (Baton's router is Alertmanager's):
Alertmanager's root route, which matches everything and is itself a result, becomes the one
top-level Baton route without matchers, its children below it. Each route is named by its
path in the input (``route.routes[2]``). A receiver becomes a policy of the same name
(letters, digits, ``_`` and ``-`` kept; others become ``-``) with one level notifying
the receiver's connectors; a route's receiver becomes its policy. A receiver with no
integration Baton can send to (``null`` receivers, or only Telegram, ...) gets no policy:
routes ending at it are muted at all times, so they still catch their alerts, as
Alertmanager's do, and notify nobody.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..duration import format_duration
from ..matcher import Matcher, parse_matchers
from ..sources.alertmanager import SEVERITY_WORDS
from . import ImportFailed, Report, Result, secret_ref
from ._am_receivers import Receivers, slug

HELP = "a Prometheus Alertmanager config file (alertmanager.yml)"

ALWAYS = "baton-import-always"  # a time interval containing every instant
_AM_DEFAULT_REPEAT = 4 * 3600.0
_LEVELS = ("critical", "error", "warning", "info")
_DURATION = re.compile(r"([0-9]+)(ms|y|w|d|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400,
          "y": 365 * 86400}
_ROUTE_KEYS = {"receiver", "group_by", "continue", "match", "match_re", "matchers",
               "mute_time_intervals", "active_time_intervals", "routes", "group_wait",
               "group_interval", "repeat_interval"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the Alertmanager config (alertmanager.yml)")
    parser.add_argument("--source-name", default="alertmanager",
                        help="name of the Baton source Alertmanager will post to "
                        "(default alertmanager: POST /v1/ingest/alertmanager)")


def run(args: argparse.Namespace) -> Result:
    path = Path(args.file)
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except OSError as e:
        raise ImportFailed(f"cannot read {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise ImportFailed(f"{path} is not YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("route"), dict):
        raise ImportFailed(f"{path} is not an Alertmanager config: it has no 'route'")
    return convert(data, source_name=args.source_name, base=path.resolve().parent)


def convert(am: Mapping[str, Any], *, source_name: str = "alertmanager",
            base: Path = Path(".")) -> Result:
    """The Baton config for the Alertmanager config ``am`` (already parsed)."""
    return _Importer(am, source_name, base).result()


def am_duration(value: Any) -> float | None:
    """Seconds in an Alertmanager duration (``1h30m``, ``1w``, ``0``), or None."""
    text = str(value).strip()
    if text == "0":
        return 0.0
    if not text or _DURATION.sub("", text):
        return None
    return float(sum(int(n) * _UNITS[u] for n, u in _DURATION.findall(text)))


class _Importer:
    def __init__(self, am: Mapping[str, Any], source_name: str, base: Path) -> None:
        self.am = am
        self.source_name = source_name
        self.report = Report()
        glob = am.get("global") if isinstance(am.get("global"), dict) else {}
        self.receivers = Receivers(self.report, glob or {}, base)
        self.policy_of: dict[str, str | None] = {}  # receiver -> policy (None: blackhole)
        self.policies: dict[str, dict[str, Any]] = {}
        self.repeats: dict[str, set[float]] = {}  # receiver -> effective repeat_intervals
        self.uses_always = False
        self.severities: set[str] = set()  # Baton levels that severity matchers name

    def result(self) -> Result:
        report = self.report
        token = secret_ref(report, "a bearer token Alertmanager sends to Baton (any long "
                           "random string)", self.source_name, "token")
        config: dict[str, Any] = {"sources": {self.source_name: {
            "type": "alertmanager", "auth": {"type": "bearer", "token": token}}}}
        report.decided(f"sources.{self.source_name}", (
            f"Alertmanager posts to POST /v1/ingest/{self.source_name}: give it one receiver "
            f"with webhook_configs [{{url: http://BATON/v1/ingest/{self.source_name}, "
            f"send_resolved: true, http_config: {{authorization: {{credentials_file: FILE "
            f"holding ${token['env']}}}}}}}] and a root route to it without child routes, "
            "so Baton does the routing imported here"))
        self._global()
        for i, rec in enumerate(self._list("receivers")):
            if isinstance(rec, dict) and isinstance(rec.get("name"), str):
                self._receiver(rec, f"receivers[{i}]")
        routes = [self._route(self.am["route"], "route", None, (), _AM_DEFAULT_REPEAT, True)]
        self._reminders()
        config["connectors"] = self.receivers.connectors
        config["routes"] = [r for r in routes if r is not None]
        config["policies"] = self.policies
        intervals = self._time_intervals()
        if intervals:
            config["time_intervals"] = intervals
        rules = [r for i, rule in enumerate(self._list("inhibit_rules"))
                 if (r := self._inhibit(rule, f"inhibit_rules[{i}]")) is not None]
        if rules:
            config["inhibit_rules"] = rules
        self._default_severity(config["sources"][self.source_name])
        for key in self.am:
            if key not in ("global", "route", "receivers", "inhibit_rules", "time_intervals",
                           "mute_time_intervals"):
                why = ("Baton writes its own messages" if key == "templates"
                       else "no equivalent in Baton")
                report.skipped(key, why)
        return Result({k: v for k, v in config.items() if v or k == "routes"}, report)

    def _list(self, key: str) -> list[Any]:
        value = self.am.get(key)
        return value if isinstance(value, list) else []

    def _global(self) -> None:
        used = {"smtp_smarthost", "smtp_from", "smtp_auth_username", "smtp_auth_password",
                "smtp_auth_password_file", "smtp_require_tls", "smtp_hello",
                "slack_api_url", "slack_api_url_file", "opsgenie_api_key",
                "opsgenie_api_key_file", "opsgenie_api_url", "pagerduty_url"}
        for key in self.receivers.glob:
            if key == "resolve_timeout":
                self.report.skipped("global.resolve_timeout", "Baton resolves an alert when "
                                    "Alertmanager sends it resolved (send_resolved: true)")
            elif key not in used:
                self.report.skipped(f"global.{key}", "no equivalent in Baton")

    def _default_severity(self, source: dict[str, Any]) -> None:
        """In Alertmanager ``severity="warning"`` does not match an alert without a severity
        label; Baton gives such an alert (and one with an unknown word) the source's
        default_severity. A level no severity matcher names keeps them apart."""
        if not self.severities:
            return
        free = [lv for lv in ("warning", "error", "info", "critical")
                if lv not in self.severities]
        where = f"sources.{self.source_name}.default_severity"
        if not free:
            self.report.decided(where, "every level is named by a severity matcher: an "
                                "alert without a recognised severity label is a warning "
                                "in Baton and matches what matches warnings")
            return
        if free[0] != "warning":
            source["default_severity"] = free[0]
        self.report.decided(where, f"{free[0]}: no severity matcher names it, so an alert "
                            "without a recognised severity label matches none of them, as "
                            "in Alertmanager")

    # --- receivers -----------------------------------------------------------------------

    def _receiver(self, rec: Mapping[str, Any], where: str) -> None:
        name = rec["name"]
        made = self.receivers.connectors_for(rec, where)
        if not made:
            self.policy_of[name] = None
            self.report.decided(where, f"receiver {name!r} has no integration Baton can "
                                "send to: routes to it are muted at all times (time "
                                f"interval {ALWAYS}), so they still catch their alerts and "
                                "notify nobody")
            return
        policy, n = slug(name, 64), 2
        while policy in self.policies:
            policy, n = f"{slug(name, 60)}-{n}", n + 1
        if policy != name:
            self.report.decided(where, f"receiver {name!r} is policy {policy!r}")
        self.policy_of[name] = policy
        self.policies[policy] = {"description": f"Alertmanager receiver {name!r}",
                                 "levels": [{"notify": made}]}

    def _reminders(self) -> None:
        """Alertmanager re-sends a firing group every repeat_interval; Baton's nearest is a
        level's ``remind_every`` (while unacknowledged), which is per policy."""
        for receiver, seen in self.repeats.items():
            policy = self.policy_of.get(receiver)
            if policy is None or not seen:
                continue
            every = min(seen)
            self.policies[policy]["levels"][0]["remind_every"] = format_duration(every)
            self.report.decided(f"policies.{policy}.levels[0].remind_every", (
                f"{format_duration(every)} from repeat_interval: notified again while "
                "firing and unacknowledged, as Alertmanager repeats while firing"))
            if len(seen) > 1:
                self.report.decided(f"policies.{policy}", "routes to this receiver repeat "
                                    "at " + ", ".join(format_duration(s) for s in
                                                      sorted(seen)) +
                                    f"; one policy reminds at one interval: the shortest, "
                                    f"{format_duration(every)}")

    # --- routes --------------------------------------------------------------------------

    def _route(self, node: Any, path: str, receiver: str | None, group_by: tuple[str, ...],
               repeat: float, root: bool = False) -> dict[str, Any] | None:
        if not isinstance(node, dict):
            return None
        out: dict[str, Any] = {"name": path}
        matchers = self._matchers(node, path)
        if matchers is None:
            self.report.skipped(path, "a matcher Baton cannot read (above): the route and "
                                "its children are left out")
            return None
        if matchers:
            out["matchers"] = matchers
        if root and matchers:
            self.report.skipped(f"{path}.matchers", "Alertmanager ignores matchers on the "
                                "root route")
            del out["matchers"]
        own = node.get("receiver")
        if isinstance(own, str) and own:
            receiver = own
            if self.policy_of.get(own) is not None:
                out["policy"] = self.policy_of[own]
        if node.get("continue") is True:
            if root:
                self.report.skipped(f"{path}.continue", "no effect on the root route")
            else:
                out["continue"] = True
        if "group_by" in node and isinstance(node["group_by"], list):
            group_by = tuple(dict.fromkeys(str(x) for x in node["group_by"]))
            if "..." in group_by:
                group_by = ("...",)
            if not group_by:
                group_by = ("...",)
                self.report.decided(f"{path}.group_by", "an empty group_by puts all of the "
                                    "route's alerts in one notification; Baton opens one "
                                    "incident per alert ([...])")
            out["group_by"] = list(group_by)
        elif root:
            self.report.decided(f"{path}.group_by", "unset: Alertmanager groups all alerts "
                                "of a route together; Baton opens one incident per alert "
                                "unless group_by names labels")
        for key in ("mute_time_intervals", "active_time_intervals"):
            names = node.get(key)
            if isinstance(names, list) and names:
                out[key] = [str(x) for x in names]
        for key in ("group_wait", "group_interval"):
            if key in node:
                self.report.skipped(f"{path}.{key}", "Baton notifies when an incident "
                                    "opens and sends later alerts of the group as updates")
        if "repeat_interval" in node:
            seconds = am_duration(node["repeat_interval"])
            if seconds is not None:
                repeat = seconds
        if receiver is not None:
            self.repeats.setdefault(receiver, set()).add(repeat)
            if self.policy_of.get(receiver, "") is None:
                out["mute_time_intervals"] = [*out.get("mute_time_intervals", []), ALWAYS]
                self.uses_always = True
        for key in node:
            if key not in _ROUTE_KEYS:
                self.report.skipped(f"{path}.{key}", "no equivalent in Baton's routes")
        children = node.get("routes")
        if isinstance(children, list) and children:
            kids = [self._route(c, f"{path}.routes[{i}]", receiver, group_by, repeat)
                    for i, c in enumerate(children)]
            out["routes"] = [k for k in kids if k is not None]
        return out

    def _matchers(self, node: Mapping[str, Any], path: str) -> list[str] | None:
        """Matcher strings for ``match``, ``match_re`` and ``matchers``; None when one of
        them cannot be read."""
        found: list[Matcher] = []
        try:
            for key, op in (("match", "="), ("match_re", "=~")):
                for name, value in (node.get(key) or {}).items():
                    found.append(Matcher(str(name), op, str(value)))  # type: ignore[arg-type]
        except ValueError as e:
            self.report.skipped(f"{path}.{key}", str(e))
            return None
        for i, text in enumerate(node.get("matchers") or []):
            try:
                found.extend(parse_matchers(str(text)))
            except ValueError as e:
                self.report.skipped(f"{path}.matchers[{i}]", str(e))
                return None
        return [str(self._severity(m, path)) for m in found]

    def _severity(self, m: Matcher, path: str) -> Matcher:
        """Baton's matchers see ``severity`` as one of its four levels (the source maps
        Alertmanager's word), so a matcher on other words is rewritten to their levels."""
        if m.name != "severity":
            return m
        new = self._level_matcher(m, path)
        self.severities.update(lv for lv in _LEVELS if Matcher(
            "severity", "=~" if new.op in ("=~", "!~") else "=", new.value
        ).matches({"severity": lv}))
        return new

    def _level_matcher(self, m: Matcher, path: str) -> Matcher:
        if m.op in ("=", "!="):
            level = SEVERITY_WORDS.get(m.value.strip().lower())
            if level == m.value:
                return m
            if level is None:
                self.report.skipped(f"{path}: {m}", "Baton sees severity as critical, "
                                    "error, warning or info; this value is none of their "
                                    "words (the source maps it to its default_severity), "
                                    "so the matcher is kept as written and will not match")
                return m
            self.report.decided(f"{path}: {m}", f'Baton sees severity as its level: '
                                f'severity{m.op}"{level}" (also matches the other words '
                                f'of that level)')
            return Matcher("severity", m.op, level)
        levels = [lv for lv in _LEVELS if any(
            Matcher("severity", "=~", m.value).matches({"severity": w})
            for w in (lv, *(k for k, v in SEVERITY_WORDS.items() if v == lv)))]
        exact = all(Matcher("severity", "=~", m.value).matches({"severity": w}) ==
                    (v in levels) for w, v in SEVERITY_WORDS.items())
        new = Matcher("severity", m.op, "|".join(levels) if levels else "$^")
        if not exact or str(new) != str(m):
            self.report.decided(f"{path}: {m}", f"Baton sees severity as its level: {new}"
                                + ("" if exact else " (approximate: the regex matches only "
                                   "some words of a level)"))
        return new

    # --- time intervals and inhibition -------------------------------------------------

    def _time_intervals(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        fields = {"times", "weekdays", "days_of_month", "months", "years", "location"}
        for key in ("time_intervals", "mute_time_intervals"):
            for i, item in enumerate(self._list(key)):
                if not isinstance(item, dict) or "name" not in item:
                    continue
                entries = []
                for j, entry in enumerate(item.get("time_intervals") or []):
                    entry = entry if isinstance(entry, dict) else {}
                    for k in entry:
                        if k not in fields:
                            self.report.skipped(f"{key}[{i}].time_intervals[{j}].{k}",
                                                "no such field in Baton's time intervals")
                    entries.append({k: v for k, v in entry.items() if k in fields})
                out.append({"name": str(item["name"]), "time_intervals": entries})
        if self.uses_always:
            out.append({"name": ALWAYS, "time_intervals": [{}]})
        return out

    def _inhibit(self, rule: Any, path: str) -> dict[str, Any] | None:
        if not isinstance(rule, dict):
            return None
        out: dict[str, Any] = {}
        for side in ("source", "target"):
            node = {"match": rule.get(f"{side}_match"), "match_re": rule.get(f"{side}_match_re"),
                    "matchers": rule.get(f"{side}_matchers")}
            matchers = self._matchers(node, path)
            if matchers is None:
                self.report.skipped(path, "a matcher Baton cannot read: rule left out")
                return None
            if matchers:
                out[f"{side}_matchers"] = matchers
        equal = rule.get("equal")
        if isinstance(equal, list) and equal:
            out["equal"] = list(dict.fromkeys(str(x) for x in equal))
        return out
