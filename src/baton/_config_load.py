"""``baton.config`` loading: YAML, then each section built into its dataclass.

Builders read the document defensively (``isinstance`` before use) because the schema step
has already reported anything malformed; they add only what the schema cannot know:
plugin types, secrets, references between sections, matcher syntax. A builder that meets
a problem records it and carries on, so one run reports them all.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from . import plugin
from ._config_auth import build_auth, check_replay_window, check_routing_keys
from ._config_check import TEST_SETTINGS_ENV, Checker
from ._config_check import as_dict as _dict
from ._config_check import as_list as _list
from ._config_check import opt as _opt
from ._config_keys import CONNECTOR_KEYS, LEVEL, SOURCE_KEYS, default
from ._config_schedule import build_people, build_schedules, build_teams, plain_times
from .config import (
    ApiToken,
    Config,
    ConnectorConfig,
    DispatchConfig,
    Level,
    LoggingConfig,
    Policy,
    RetentionConfig,
    Route,
    ServerConfig,
    SourceConfig,
    StorageConfig,
    Target,
    parse_listen,
)
from .duration import format_duration
from .inhibit import parse_inhibit_rules
from .matcher import Matcher, parse_matchers
from .secret import Secret
from .silence import parse_config_silences
from .timeinterval import parse_time_intervals

# ``to: <kind>:<id>`` kinds checked against the section that defines them.
RECIPIENT_SECTIONS = {"person": "people", "team": "teams", "schedule": "schedules"}


class _Loader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a config typo would vanish."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False
                          ) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        # An unquoted 2026-02-30 looks like a date to YAML and raises a bare ValueError.
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid date {node.value!r}: {exc}", node.start_mark) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def parse_yaml(text: str) -> tuple[Any, list[str]]:
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(root)"
        return None, [f"{where}: invalid YAML: {exc.problem or exc.context}"]
    except yaml.YAMLError as exc:
        return None, [f"(root): invalid YAML: {exc}"]
    if data is None:
        return None, ["(root): the config is empty"]
    return data, []


def _unknown(data: dict[str, Any], section: str, name: str) -> bool:
    """``name`` is not in ``section``; False when the section itself is malformed (the
    schema said so already, and every reference to it would repeat that)."""
    entries = data.get(section, {})
    return isinstance(entries, dict) and name not in entries


def _strings(node: dict[str, Any], key: str) -> tuple[str, ...]:
    return tuple(v for v in _list(node, key) if isinstance(v, str))


def _server(ctx: Checker, raw: dict[str, Any]) -> ServerConfig:
    listen = _opt(raw, "listen", str, default("server.listen"))
    if "server.listen" not in ctx.bad:  # the schema's pattern said it already
        try:
            parse_listen(listen)
        except ValueError as exc:
            ctx.add("server.listen", str(exc))
    return ServerConfig(
        listen=listen,
        max_body_bytes=_opt(raw, "max_body_bytes", int, default("server.max_body_bytes")),
        shutdown_grace=ctx.duration(raw, "shutdown_grace", "server",
                                    default("server.shutdown_grace")),
        read_timeout=ctx.duration(raw, "read_timeout", "server",
                                  default("server.read_timeout")),
        max_connections=_opt(raw, "max_connections", int,
                             default("server.max_connections")))


def _api_tokens(ctx: Checker, raw: dict[str, Any]) -> tuple[ApiToken, ...]:
    out: list[ApiToken] = []
    indices: list[int] = []  # position in the YAML list of each entry of ``out``
    seen: dict[str, int] = {}
    for i, item in enumerate(_list(raw, "tokens")):
        path = f"api.tokens[{i}]"
        name = _dict(item).get("name")
        token = ctx.secrets(_dict(item).get("token"), f"{path}.token")
        if not isinstance(name, str) or not isinstance(token, Secret):
            continue
        if name in seen:
            ctx.add(f"{path}.name",
                    f'duplicate token name "{name}" (also api.tokens[{seen[name]}])')
        # A shared token would make the recorded actor a guess.
        twin = next((j for j, t in zip(indices, out, strict=True) if t.token == token), None)
        if twin is not None:
            ctx.add(f"{path}.token", f"same token as api.tokens[{twin}]: each holder needs its own")
        seen.setdefault(name, i)
        indices.append(i)
        out.append(ApiToken(name, token))
    return tuple(out)


def _source(ctx: Checker, name: str, block: dict[str, Any]) -> SourceConfig:
    path = f"sources.{name}"
    options = {k: v for k, v in block.items() if k not in SOURCE_KEYS}
    ctx.typed("source", plugin.SOURCE_GROUP, block.get("type"), options, path)
    labels = {k: v for k, v in _dict(block, "labels").items() if isinstance(v, str)}
    return SourceConfig(
        name=name, type=_opt(block, "type", str, ""), auth=build_auth(ctx, block.get("auth"),
                                                                 f"{path}.auth"),
        options=ctx.secrets(options, path), labels=labels,
        defaults={k: v for k, v in _dict(block, "defaults").items() if isinstance(v, str)},
        severity_map={k: v for k, v in _dict(block, "severity_map").items()
                      if isinstance(v, str)},
        no_data=_opt(block, "no_data", str, default("sources.*.no_data")),
        test=_opt(block, "test", str, default("sources.*.test")),
        max_body_bytes=_opt(block, "max_body_bytes", int, default("sources.*.max_body_bytes")))


def _connector(ctx: Checker, name: str, block: dict[str, Any]) -> ConnectorConfig:
    path = f"connectors.{name}"
    options = {k: v for k, v in block.items() if k not in CONNECTOR_KEYS}
    ctx.typed("connector", plugin.CONNECTOR_GROUP, block.get("type"), options, path)
    backoff = _dict(block, "backoff")
    initial = ctx.duration(backoff, "initial", f"{path}.backoff",
                           default("connectors.*.backoff.initial"), positive=True)
    maximum = ctx.duration(backoff, "max", f"{path}.backoff",
                           default("connectors.*.backoff.max"), positive=True)
    if initial > maximum:
        ctx.add(f"{path}.backoff", f"initial ({format_duration(initial)}) is larger than "
                                   f"max ({format_duration(maximum)})")
    return ConnectorConfig(
        name=name, type=_opt(block, "type", str, ""), options=ctx.secrets(options, path),
        timeout=ctx.duration(block, "timeout", path, default("connectors.*.timeout"),
                             positive=True),
        max_attempts=_opt(block, "max_attempts", int, default("connectors.*.max_attempts")),
        max_age=ctx.duration(block, "max_age", path, default("connectors.*.max_age"),
                             positive=True),
        concurrency=_opt(block, "concurrency", int, default("connectors.*.concurrency")),
        backoff_initial=initial, backoff_max=maximum,
        max_retry_after=ctx.duration(block, "max_retry_after", path,
                                     default("connectors.*.max_retry_after")),
        rate_limit=_rate_limit(ctx, block, path),
        sync_interval=ctx.duration(block, "sync_interval", path,
                                   default("connectors.*.sync_interval"), positive=True))


def _rate_limit(ctx: Checker, block: dict[str, Any], path: str) -> tuple[int, float] | None:
    raw = block.get("rate_limit")
    if not isinstance(raw, dict) or not isinstance(raw.get("count"), int):
        return None  # absent, or already reported by the schema
    per = ctx.duration(raw, "per", f"{path}.rate_limit",
                       default("connectors.*.rate_limit.per"), positive=True)
    return raw["count"], per


def _target(ctx: Checker, raw: Any, path: str, data: dict[str, Any]) -> Target | None:
    if isinstance(raw, str):
        target, where = Target(raw), path
    elif isinstance(raw, dict) and isinstance(raw.get("connector"), str):
        params = {k: v for k, v in raw.items() if k not in ("connector", "to")}
        target = Target(raw["connector"], _opt(raw, "to", str, None), params)
        where = f"{path}.connector"
    else:
        return None
    if _unknown(data, "connectors", target.connector):
        ctx.add(where, f'unknown connector "{target.connector}"')
    kind, _, ident = (target.to or "").partition(":")
    # Other kinds (a chat channel, an e-mail address) are the connector's to interpret.
    if kind in RECIPIENT_SECTIONS and _unknown(data, RECIPIENT_SECTIONS[kind], ident):
        ctx.add(f"{path}.to", f'unknown {kind} "{ident}"')
    return target


def _policy(ctx: Checker, name: str, raw: dict[str, Any], data: dict[str, Any]) -> Policy:
    levels = []
    for i, level in enumerate(_list(raw, "levels")):
        path = f"policies.{name}.levels[{i}]"
        targets = (_target(ctx, t, f"{path}.notify[{j}]", data)
                   for j, t in enumerate(_list(level, "notify")))
        levels.append(Level(
            notify=tuple(t for t in targets if t is not None),
            escalate_after=ctx.duration(_dict(level), "escalate_after", path,
                                        default(f"{LEVEL}.escalate_after"), positive=True),
            remind_every=ctx.duration(_dict(level), "remind_every", path,
                                      default(f"{LEVEL}.remind_every"), positive=True)))
    return Policy(name, tuple(levels), _opt(raw, "repeat", int, default("policies.*.repeat")),
                  ctx.duration(raw, "ack_timeout", f"policies.{name}",
                               default("policies.*.ack_timeout"), positive=True))


def _interval_names(raw: Any) -> set[str]:
    if isinstance(raw, dict):
        return {str(k) for k in raw}
    return {i["name"] for i in raw if isinstance(i, dict) and isinstance(i.get("name"), str)} \
        if isinstance(raw, list) else set()


def _routes(ctx: Checker, items: list[Any], path: str, data: dict[str, Any],
            names: dict[str, str]) -> tuple[Route, ...]:
    out = []
    for i, raw in enumerate(items):
        rpath = f"{path}[{i}]"
        if not isinstance(raw, dict):
            continue
        name = _opt(raw, "name", str, "") or rpath
        if name in names:
            ctx.add(f"{rpath}.name", f'duplicate route name "{name}" (also {names[name]})')
        names.setdefault(name, rpath)
        matchers: list[Matcher] = []
        for j, text in enumerate(_list(raw, "matchers")):
            try:
                matchers.extend(parse_matchers(text) if isinstance(text, str) else ())
            except ValueError as exc:
                ctx.add(f"{rpath}.matchers[{j}]", str(exc))
        policy = _opt(raw, "policy", str, default("routes[].policy"))
        if policy is not None and _unknown(data, "policies", policy):
            ctx.add(f"{rpath}.policy", f'unknown policy "{policy}"')
        group_by = _strings(raw, "group_by")
        if "..." in group_by and len(group_by) > 1:
            ctx.add(f"{rpath}.group_by", '"..." (all labels) cannot be combined with names')
        known = _interval_names(data.get("time_intervals"))
        for key in ("mute_time_intervals", "active_time_intervals"):
            for j, ref in enumerate(_strings(raw, key)):
                if ref not in known:
                    ctx.add(f"{rpath}.{key}[{j}]", f'unknown time interval "{ref}"')
        out.append(Route(
            name=name, matchers=tuple(matchers), policy=policy,
            continue_=raw.get("continue", default("routes[].continue")) is True,
            group_by=group_by,
            routes=_routes(ctx, _list(raw, "routes"), f"{rpath}.routes", data, names),
            mute_time_intervals=_strings(raw, "mute_time_intervals"),
            active_time_intervals=_strings(raw, "active_time_intervals")))
    return tuple(out)


def _retention(ctx: Checker, raw: dict[str, Any],
               sources: Mapping[str, SourceConfig]) -> RetentionConfig:
    replay_ids = ctx.duration(raw, "replay_ids", "retention",
                              default("retention.replay_ids"), positive=True)
    check_replay_window(ctx, sources, replay_ids)
    return RetentionConfig(
        raw_events=ctx.duration(raw, "raw_events", "retention",
                                default("retention.raw_events"), positive=True),
        resolved_incidents=ctx.duration(raw, "resolved_incidents", "retention",
                                        default("retention.resolved_incidents"),
                                        positive=True),
        replay_ids=replay_ids,
        interval=ctx.duration(raw, "interval", "retention", default("retention.interval"),
                              positive=True),
        batch_size=_opt(raw, "batch_size", int, default("retention.batch_size")))


def build(data: Any, base_dir: Path, environ: Mapping[str, str]
          ) -> tuple[Config | None, list[str]]:
    try:
        return _build(data, base_dir, environ)
    except RecursionError:
        # YAML aliases can make a structure contain itself (``routes: &r [{routes: *r}]``).
        return None, ["(root): the config refers to itself through a YAML alias"]


def _build(data: Any, base_dir: Path, environ: Mapping[str, str]
           ) -> tuple[Config | None, list[str]]:
    ctx = Checker(base_dir, environ)
    if not isinstance(data, dict):
        return None, [f"(root): expected a mapping of sections, got {ctx.type_name(data)}"]
    data = plain_times(data)
    ctx.schema("config.schema.json", data, "")
    named = {
        section: {k: v for k, v in _dict(data, section).items()
                  if isinstance(k, str) and isinstance(v, dict)}
        for section in ("sources", "connectors", "policies")}
    storage, dispatch, log = _dict(data, "storage"), _dict(data, "dispatch"), _dict(data, "logging")
    url = _opt(storage, "url", str, default("storage.url"))
    if url == "sqlite://:memory:" and ctx.environ.get(TEST_SETTINGS_ENV) != "1":
        ctx.add("storage.url", "an in-memory database is lost on exit, for tests only; "
                               f"refused unless the environment has {TEST_SETTINGS_ENV}=1")
    api = _dict(data, "api")
    config = Config(
        server=_server(ctx, _dict(data, "server")),
        storage=StorageConfig(
            url=url,
            busy_timeout=ctx.duration(storage, "busy_timeout", "storage",
                                      default("storage.busy_timeout")),
            max_pending_writes=_opt(storage, "max_pending_writes", int,
                                    default("storage.max_pending_writes")),
            operation_timeout=ctx.duration(storage, "operation_timeout", "storage",
                                           default("storage.operation_timeout")),
            max_queue_age=ctx.duration(storage, "max_queue_age", "storage",
                                       default("storage.max_queue_age")),
            max_pending_bytes=_opt(storage, "max_pending_bytes", int,
                                   default("storage.max_pending_bytes"))),
        api_tokens=_api_tokens(ctx, api),
        api_open=api.get("open", default("api.open")) is True,
        sources={n: _source(ctx, n, b) for n, b in named["sources"].items()},
        connectors={n: _connector(ctx, n, b) for n, b in named["connectors"].items()},
        routes=_routes(ctx, _list(data, "routes"), "routes", data, {}),
        policies={n: _policy(ctx, n, b, data) for n, b in named["policies"].items()},
        dispatch=DispatchConfig(
            poll_interval=ctx.duration(dispatch, "poll_interval", "dispatch",
                                       default("dispatch.poll_interval"), positive=True),
            lease=ctx.duration(dispatch, "lease", "dispatch", default("dispatch.lease"),
                               positive=True),
            batch_size=_opt(dispatch, "batch_size", int, default("dispatch.batch_size"))),
        logging=LoggingConfig(level=_opt(log, "level", str, default("logging.level")),
                              format=_opt(log, "format", str, default("logging.format"))),
        people=build_people(ctx, data), teams=build_teams(ctx, data),
        schedules=build_schedules(ctx, data),
        time_intervals=parse_time_intervals(data.get("time_intervals"), ctx.add),
        inhibit_rules=parse_inhibit_rules(data.get("inhibit_rules"), ctx.add),
        silences=parse_config_silences(data.get("silences"), ctx.add))
    check_routing_keys(ctx, config.sources)
    config = replace(config, retention=_retention(ctx, _dict(data, "retention"),
                                                  config.sources))
    return (None if ctx.problems else config), ctx.problems
