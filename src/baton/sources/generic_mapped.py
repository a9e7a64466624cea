"""Any JSON webhook, mapped onto the common alert by JMESPath expressions in the config.

The escape hatch for tools without an adapter: the config says where the alerts are in the
body and where each field of an alert is in one of them. Expressions are compiled (and
their function names and argument counts checked) once, when the source is built, so a
typo is a config error at start-up rather than a 400 on the first alert.

Severity goes through the same door as in every other adapter: the sender's value is kept
in the ``severity`` label, mapped by the table below, and the source's common
``severity_map`` setting (applied by the core) overrides that table per value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import jmespath
from jmespath import functions as jp_functions
from jmespath.parser import ParsedResult

from ..errors import ConfigError, PayloadError
from ..model import SEVERITIES, Alert, AlertStatus, Condition, Link, Severity
from ..plugin import Source
from ._common import parse_time, quote, stable_hash
from .alertmanager import SEVERITY_WORDS as _PROMETHEUS_WORDS

# Alertmanager's words plus Zabbix's (Information, Average, Not classified) and Checkmk's
# (CRIT, WARN), lowercased; anything else is default_severity unless severity_map says.
SEVERITY_WORDS: dict[str, Severity] = {
    **_PROMETHEUS_WORDS,
    "crit": "critical", "fatal": "critical", "average": "warning",
    "information": "info", "not classified": "info", "notice": "info", "debug": "info",
}
# Zabbix PROBLEM/OK, Checkmk PROBLEM/RECOVERY, Grafana alerting/ok, lowercased; status_map
# is looked up first, and what neither knows is default_status.
STATUS_WORDS: dict[str, AlertStatus] = {
    **dict.fromkeys(("firing", "problem", "alerting", "alert", "triggered", "trigger",
                     "open", "active"), "firing"),
    **dict.fromkeys(("resolved", "resolve", "ok", "recovery", "recovered", "closed",
                     "inactive", "normal"), "resolved"),
}
# A batch larger than this is refused, as the generic source does: one request must not
# turn into an unbounded transaction.
MAX_ALERTS = 1000

_EXPRESSIONS = ("alerts", "dedup_key", "summary", "name", "status", "severity", "description",
                "service", "component", "environment", "resource", "impact", "started_at",
                "ended_at", "condition")
_MAPS = ("labels_from", "links")  # one expression, or a map of name -> expression
_REQUIRED = ("dedup_key", "summary")
_STATUSES: dict[str, AlertStatus] = {"firing": "firing", "resolved": "resolved"}
_CONDITIONS: dict[str, Condition] = {"normal": "normal", "no_data": "no_data", "test": "test"}
_FIELDS = ("service", "component", "environment", "resource", "impact")
_FUNCTIONS: dict[str, Any] = jp_functions.Functions().FUNCTION_TABLE
# What a user's expression can raise on a sender's data: JMESPath's own errors (ValueError
# subclasses) and Python's, e.g. sum() of an integer too large for a float.
_EVAL_ERRORS = (ValueError, TypeError, ArithmeticError, RecursionError)


class GenericMappedSource(Source):
    """``type: generic-mapped``: the keys of schemas/sources/generic-mapped.schema.json."""

    type: ClassVar[str] = "generic-mapped"
    severity_label: ClassVar[str | None] = "severity"

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        problems = [f"sources.{name}.{key}: required" for key in _REQUIRED if key not in config]
        self._expr: dict[str, ParsedResult] = {}  # labels_from and links when one expression
        self._maps: dict[str, dict[str, ParsedResult]] = {}  # ... when a map of them
        for key in (*_EXPRESSIONS, *_MAPS):
            value, path = config.get(key), f"sources.{name}.{key}"
            if key in _MAPS and isinstance(value, Mapping):
                self._maps[key] = {str(k): e for k, v in value.items()
                                   if (e := _compile(v, f"{path}.{k}", problems))}
            elif key in config and (e := _compile(value, path, problems)):
                self._expr[key] = e
        # The config schema says the same; this is for adapters built without the loader.
        for key, allowed in (("default_status", _STATUSES), ("default_severity", SEVERITIES),
                             ("status_map", _STATUSES), ("condition_map", _CONDITIONS)):
            values = config.get(key)
            values = values.values() if isinstance(values, Mapping) else [values]
            if key in config and any(v not in allowed for v in values):
                problems.append(f"sources.{name}.{key}: values must be one of "
                                f"{', '.join(allowed)}")
        self._status_map: dict[str, AlertStatus] = {
            k: _STATUSES[v] for k, v in _text_keys(config.get("status_map")).items()
            if v in _STATUSES}
        self._condition_map: dict[str, Condition] = {
            k: _CONDITIONS[v] for k, v in _text_keys(config.get("condition_map")).items()
            if v in _CONDITIONS}
        if problems:
            raise ConfigError(problems)

    def parse(self, payload: Any, headers: Mapping[str, str]) -> list[Alert]:
        if "alerts" not in self._expr:
            return [self._alert(payload, "payload")]
        items = self._search("alerts", payload, "alerts")
        # An empty list is "nothing", as for a required value: a body with no alerts in
        # the configured place more likely means the mapping is wrong than that all is well.
        if not isinstance(items, list) or not items:
            raise PayloadError(
                f"alerts: expression `{self._expr['alerts'].expression}` gave {_kind(items)}, "
                "not a list of alerts",
                [f"alerts: {quote(items)} is not a non-empty list"])
        if len(items) > MAX_ALERTS:
            raise PayloadError(f"alerts: {len(items)} items, at most {MAX_ALERTS} per request")
        return [self._alert(item, f"alerts[{i}]") for i, item in enumerate(items)]

    def _alert(self, item: Any, path: str) -> Alert:
        dedup_value = self._required(item, "dedup_key", path)
        dedup_key = _text(dedup_value, f"{path}.dedup_key")
        if isinstance(dedup_value, list | dict):
            dedup_key = stable_hash(dedup_key)  # the text is canonical JSON already
        status = self._status(item, path)
        severity_value = self._optional_text(item, "severity", path)
        labels = self._labels(item, path)
        if severity_value is not None:
            # Where the core's severity_map looks for the sender's value (severity_label).
            labels["severity"] = severity_value
        default_severity: Severity = self.config.get("default_severity") or "warning"
        severity = SEVERITY_WORDS.get((severity_value or "").strip().lower(), default_severity)
        fields = {key: self._optional_text(item, key, path) for key in _FIELDS}
        started = parse_time(self._optional(item, "started_at", path), f"{path}.started_at")
        # As for Alertmanager's endsAt: an end time only means something once resolved.
        ended = (parse_time(self._optional(item, "ended_at", path), f"{path}.ended_at")
                 if status == "resolved" else None)
        return Alert(
            dedup_key=dedup_key,
            status=status,
            severity=severity,
            summary=_text(self._required(item, "summary", path), f"{path}.summary"),
            source_type=self.type,
            source_name=self.name,
            description=self._optional_text(item, "description", path) or "",
            service=fields["service"],
            component=fields["component"],
            environment=fields["environment"],
            resource=fields["resource"],
            labels=labels,
            links=self._links(item, path),
            started_at=started,
            ended_at=ended,
            impact=fields["impact"],
            condition=self._condition(item, path),
            name=self._optional_text(item, "name", path),
        )

    def _search(self, key: str, item: Any, path: str, expr: ParsedResult | None = None) -> Any:
        expr = expr or self._expr[key]
        try:
            return expr.search(item)
        except _EVAL_ERRORS as exc:
            raise PayloadError(f"{path}: expression `{expr.expression}` failed: {_short(exc)}",
                               [f"{path}: {_short(exc)}"]) from None

    def _required(self, item: Any, key: str, path: str) -> Any:
        value = self._search(key, item, f"{path}.{key}")
        if _empty(value):
            where = f"{path}.{key}"
            raise PayloadError(f"{where}: expression `{self._expr[key].expression}` gave "
                               "nothing",
                               [f"{where}: required, but {quote(value)} was found"])
        return value

    def _optional(self, item: Any, key: str, path: str) -> Any:
        if key not in self._expr:
            return None
        value = self._search(key, item, f"{path}.{key}")
        return None if _empty(value) else value

    def _optional_text(self, item: Any, key: str, path: str) -> str | None:
        value = self._optional(item, key, path)
        return None if value is None else _text(value, f"{path}.{key}")

    def _status(self, item: Any, path: str) -> AlertStatus:
        default: AlertStatus = self.config.get("default_status") or "firing"
        value = self._optional_text(item, "status", path)
        if value is None:
            return default
        return self._status_map.get(value) or STATUS_WORDS.get(value.strip().lower(), default)

    def _condition(self, item: Any, path: str) -> Condition:
        value = self._optional_text(item, "condition", path)
        return self._condition_map.get(value or "", "normal")

    def _labels(self, item: Any, path: str) -> dict[str, str]:
        if "labels_from" in self._maps:
            pairs = {k: self._search("labels_from", item, f"{path}.labels_from.{k}", e)
                     for k, e in self._maps["labels_from"].items()}
        elif "labels_from" in self._expr:
            found = self._optional(item, "labels_from", path)
            if found is None:
                return {}
            if not isinstance(found, dict):
                raise PayloadError(
                    f"{path}.labels_from: expression `{self._expr['labels_from'].expression}`"
                    f" gave {_kind(found)}, not an object",
                    [f"{path}.labels_from: {quote(found)}"])
            pairs = found
        else:
            return {}
        # As in Prometheus, an empty value means no label.
        return {str(k): _text(v, f"{path}.labels_from.{k}")
                for k, v in sorted(pairs.items()) if not _empty(v)}

    def _links(self, item: Any, path: str) -> tuple[Link, ...]:
        found = [(self._search("links", item, f"{path}.links.{k}", e), k)
                 for k, e in self._maps.get("links", {}).items()]
        if "links" in self._expr:
            found.append((self._search("links", item, f"{path}.links"), ""))
        return tuple(link for value, text in found
                     for entry in (value if isinstance(value, list) else [value])
                     if (link := _link(entry, text)) is not None)


def _compile(source: Any, path: str, problems: list[str]) -> ParsedResult | None:
    if not isinstance(source, str) or not source.strip():
        problems.append(f"{path}: must be a JMESPath expression (a non-empty string)")
        return None
    try:
        compiled = jmespath.compile(source)
    except jmespath.exceptions.JMESPathError as exc:
        problems.append(f"{path}: not a valid JMESPath expression: {_short(exc)}")
        return None
    problems.extend(f"{path}: {p}" for p in _check_calls(compiled.parsed))
    return compiled


def _check_calls(node: Any) -> list[str]:
    """Unknown functions and wrong argument counts, which JMESPath only reports when the
    call is evaluated: found here they are a config error instead of a 400 on some alert."""
    if not isinstance(node, dict):
        return []
    found: list[str] = []
    children = node.get("children") or []
    if node.get("type") == "function_expression":
        name = node.get("value")
        spec = _FUNCTIONS.get(name) if isinstance(name, str) else None
        if spec is None:
            found.append(f"unknown function {name}()")
        else:
            signature = spec["signature"]
            variadic = bool(signature) and signature[-1].get("variadic", False)
            if len(children) < len(signature) or (len(children) > len(signature)
                                                  and not variadic):
                found.append(f"{name}() takes {len(signature)}"
                             f"{' or more' if variadic else ''} arguments, "
                             f"not {len(children)}")
    for child in children:
        found.extend(_check_calls(child))
    return found


def _text_keys(mapping: Any) -> dict[str, str]:
    """A YAML map keyed by the sender's values; ``1``/``true`` keys become "1"/"true", the
    text the value is compared as."""
    if not isinstance(mapping, Mapping):
        return {}
    return {_text(k, "config"): str(v) for k, v in mapping.items()}


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {} or (
        isinstance(value, str) and not value.strip())


def _text(value: Any, path: str) -> str:
    """A sender's value as the string the alert holds: strings as they are, numbers and
    booleans as JSON writes them, lists and objects as compact JSON with sorted keys."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (ValueError, TypeError, RecursionError) as exc:
        raise PayloadError(f"{path}: value cannot be written as text: {_short(exc)}",
                           [f"{path}: {_short(exc)}"]) from None


def _link(entry: Any, text: str) -> Link | None:
    """A URL string, or an object with ``href``/``url`` and ``text``/``title``/``name``;
    anything else is no link (a broken link must not cost the alert)."""
    if isinstance(entry, str) and entry.strip():
        return Link(entry, text)
    if isinstance(entry, dict):
        href = next((v for k in ("href", "url") if isinstance(v := entry.get(k), str)
                     and v.strip()), None)
        label = next((v for k in ("text", "title", "name")
                      if isinstance(v := entry.get(k), str)), text)
        return Link(href, label) if href else None
    return None


def _kind(value: Any) -> str:
    """The JSON name of a value's type, as the sender would say it."""
    if _empty(value):
        return "nothing"
    for kind, name in ((bool, "a boolean"), (dict, "an object"), (list, "a list"),
                       (str, "a string")):
        if isinstance(value, kind):
            return name
    return "a number"


def _short(exc: BaseException, limit: int = 160) -> str:
    # JMESPath's messages can quote the whole value it choked on: keep the answer small.
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."
