"""The ``baton`` command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import _cli_import
from ._cli_common import config_path, load
from ._cli_store import cmd_dlq, cmd_prune, cmd_report, cmd_silence
from .config import (
    Config,
    check_config,
    config_warnings,
    load_config,
    open_api_refusal,
    parse_listen,
)
from .errors import ConfigError, StorageUnavailable

if TYPE_CHECKING:
    pass


def cmd_serve(args: argparse.Namespace) -> int:
    from ._serve import serve
    from .api.state import METRICS, RELOADER
    from .app import create_app
    from .logging import configure

    config = load(args.config)
    configure(config.logging.level, config.logging.format)
    listen = args.listen or config.server.listen
    try:
        host, port = parse_listen(listen)
    except ValueError as e:
        print(f"error: --listen {listen}: {e}", file=sys.stderr)
        return 1
    listening = dataclasses.replace(config, server=dataclasses.replace(
        config.server, listen=listen))
    refusal = open_api_refusal(listening)
    if refusal is not None:
        print(f"error: refusing to start: {refusal}", file=sys.stderr)
        return 1
    try:
        app = create_app(config)
    except ConfigError as e:
        for p in e.problems:
            print(f"config error: {p}", file=sys.stderr)
        return 1
    for warning in config_warnings(listening):
        print(f"warning: {warning}", file=sys.stderr)
    app[RELOADER].listen = listen  # a reload checks the open-API rule on this address
    if config.path is None:
        print(f"baton: no config given; running the built-in demo config on "
              f"{config.storage.url}, listening on {listen}", file=sys.stderr)
    try:
        serve(app, host, port, shutdown_timeout=config.server.shutdown_grace,
              read_timeout=config.server.read_timeout,
              max_connections=config.server.max_connections, metrics=app[METRICS],
              on_hangup=app[RELOADER].hangup)
    except ConfigError as e:
        for p in e.problems:
            print(f"config error: {p}", file=sys.stderr)
        return 1
    except (OSError, sqlite3.Error, StorageUnavailable) as e:
        # Port taken, storage directory not writable, database locked or corrupt: say
        # so in one line, not a traceback.
        print(f"error: cannot start: {e}", file=sys.stderr)
        return 1
    return 0


def _plugin_problems(config: Config) -> list[str]:
    """What only the plugins themselves can check when they are built (a mapping
    expression, a URL, a key's length), as serve would find it at start."""
    from .plugin import CONNECTOR_GROUP, SOURCE_GROUP, load

    problems: list[str] = []
    plugins = [(SOURCE_GROUP, n, c.type, c.options) for n, c in config.sources.items()]
    plugins += [(CONNECTOR_GROUP, n, c.type, c.options) for n, c in config.connectors.items()]
    for group, name, type_, options in plugins:
        try:
            load(group, type_)(name, options)
        except ConfigError as e:
            problems += e.problems
    return problems


def cmd_check_config(args: argparse.Namespace) -> int:
    if args.file and args.config and args.file != args.config:
        print(f"error: two configs given: {args.file} and --config {args.config}",
              file=sys.stderr)
        return 2
    path = config_path(args.file or args.config)
    if path is None:
        print("error: no config to check: give FILE or --config FILE, or set BATON_CONFIG",
              file=sys.stderr)
        return 2
    args.file = str(path)
    problems = check_config(path)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s) in {args.file}", file=sys.stderr)
        return 1
    config = load_config(Path(args.file))
    problems = _plugin_problems(config)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s) in {args.file}", file=sys.stderr)
        return 1
    for warning in config_warnings(config):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{args.file}: ok")
    return 0


def cmd_oncall(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from ._wallclock import parse_instant
    from .api.schedules import oncall_doc

    config = load(args.config)
    schedule = config.schedules.get(args.schedule)
    if schedule is None:
        known = ", ".join(sorted(config.schedules)) or "none configured"
        print(f'error: unknown schedule "{args.schedule}" (known: {known})', file=sys.stderr)
        return 1
    try:
        at = parse_instant(args.at, schedule.timezone) if args.at else datetime.now(UTC)
    except ValueError as e:
        print(f"error: --at: {e}", file=sys.stderr)
        return 2
    doc = oncall_doc(args.schedule, schedule, config.people, at)
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0

    def local(dt: datetime) -> str:
        return dt.astimezone(schedule.timezone).strftime("%Y-%m-%d %H:%M %Z")

    shift = schedule.shift_at(at)
    who = "nobody is on call"
    if doc["person"] is not None:
        named = f" ({doc['name']})" if doc["name"] != doc["person"] else ""
        who = f"{doc['person']}{named} via {doc['source']}"
    print(f"{args.schedule} at {local(at)}: {who}")
    print(f"  from {local(shift.start)} until {local(shift.end)}")
    for method, address in doc["contacts"].items():
        print(f"  {method}: {address}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from .errors import AuthError, PayloadError
    from .simulate import render, simulate

    config = load(args.config)
    if args.source not in config.sources:
        print(f"error: no source {args.source!r} in the config (have: "
              f"{', '.join(sorted(config.sources))})", file=sys.stderr)
        return 2
    try:
        payload = json.loads(Path(args.payload).read_text("utf-8"))
        silences = (json.loads(Path(args.silences).read_text("utf-8"))
                    if args.silences else [])
        if isinstance(silences, dict):  # the body of GET /v1/silences
            silences = silences.get("silences", [])
        at = _parse_at(args.at)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RecursionError:
        print("error: the payload is nested too deeply", file=sys.stderr)
        return 2
    try:
        report = simulate(config, args.source, payload, at, silences)
    except (PayloadError, AuthError) as e:
        print(f"error: the payload is not valid for source {args.source!r}: {e}",
              file=sys.stderr)
        for problem in getattr(e, "errors", []):
            print(f"  {problem}", file=sys.stderr)
        return 1
    except ConfigError as e:  # what only the adapter can check, e.g. a mapping expression
        for p in e.problems:
            print(f"config error: {p}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def _parse_at(value: str | None) -> float:
    if not value:
        return time.time()
    from .model import parse_iso

    dt = parse_iso(value)
    if dt is None:
        raise ValueError(f"--at: not a time: {value!r}")
    return dt.timestamp()


CONFIG_HELP = "config file (default: $BATON_CONFIG, else the built-in demo)"


def _with_config(p: argparse.ArgumentParser, top: bool = False) -> argparse.ArgumentParser:
    """``--config`` on ``p``. Every parser on the way to a command takes it, so it goes
    before or after the command's name alike (``baton --config F dlq list``, ``baton dlq
    list --config F``); below the top it defaults to SUPPRESS, so a parser that did not
    see it leaves what an outer one parsed in place."""
    p.add_argument("--config", metavar="FILE", help=CONFIG_HELP,
                   default=None if top else argparse.SUPPRESS)
    return p


def parser() -> argparse.ArgumentParser:
    p = _with_config(argparse.ArgumentParser(prog="baton",
                                             description="Incident escalation gateway."),
                     top=True)
    sub = p.add_subparsers(dest="command", required=True)
    s = _with_config(sub.add_parser("serve", help="run the gateway"))
    s.add_argument("--listen", help="HOST:PORT, overrides server.listen")
    s.set_defaults(func=cmd_serve)
    c = _with_config(sub.add_parser("check-config",
                                    help="validate a config file; exit 1 on any problem"))
    c.add_argument("file", nargs="?", help="the config (or --config FILE, $BATON_CONFIG)")
    c.set_defaults(func=cmd_check_config)
    m = sub.add_parser("simulate", help="dry run: parse, route and print the escalation "
                       "timeline of a payload without sending anything")
    m.add_argument("payload", help="a JSON file as the source would send it")
    _with_config(m)
    m.add_argument("--source", required=True, help="the configured source name")
    m.add_argument("--at", help="RFC 3339 time to simulate at (default: now)")
    m.add_argument("--silences", help="JSON file of silences (e.g. GET /v1/silences)")
    m.add_argument("--json", action="store_true", help="print the report as JSON")
    m.set_defaults(func=cmd_simulate)
    si = sub.add_parser("silence", help="mute notifications of matching alerts for a time")
    _with_config(si)
    si.set_defaults(func=cmd_silence)
    ssub = si.add_subparsers(dest="silence_command", required=True)
    sa = _with_config(ssub.add_parser("add", help="add a silence"))
    sa.add_argument("matchers", nargs="+", help='Alertmanager matchers, e.g. service="db"')
    sa.add_argument("--duration", default="1h", help="how long (default 1h)")
    sa.add_argument("--comment", default="", help="why")
    sa.add_argument("--by", default=os.environ.get("USER", "cli"), help="who (default $USER)")
    sl = _with_config(ssub.add_parser("list", help="list silences"))
    sl.add_argument("--state", choices=("active", "pending", "expired"))
    sl.add_argument("--json", action="store_true")
    se = _with_config(ssub.add_parser("expire", help="end a silence now"))
    se.add_argument("id")
    se.add_argument("--by", default=os.environ.get("USER", "cli"), help="who (default $USER)")
    d = sub.add_parser("dlq", help="dead-lettered deliveries")
    _with_config(d)
    d.set_defaults(func=cmd_dlq)
    dsub = d.add_subparsers(dest="dlq_command", required=True)
    dl = _with_config(dsub.add_parser("list", help="list dead-lettered deliveries"))
    dl.add_argument("--limit", type=int, default=100)
    dl.add_argument("--json", action="store_true")
    dr = _with_config(dsub.add_parser("replay", help="send dead-lettered deliveries again"))
    dr.add_argument("id", nargs="?", help="delivery id")
    dr.add_argument("--all", action="store_true", help="every dead-lettered delivery")
    r = sub.add_parser("report", help="MTTA/MTTR by service, escalation rate and the top "
                       "recurring problems over incidents created in the last --since")
    r.add_argument("--since", default="30d", help="window, e.g. 24h, 7d (default 30d, "
                   "at most 365d)")
    r.add_argument("--limit", default="10", help="recurring problems shown (default 10, "
                   "at most 100)")
    _with_config(r)
    r.add_argument("--json", action="store_true", help="the API's documents: "
                   '{"response": ..., "recurring": ...}')
    r.set_defaults(func=cmd_report)
    o = sub.add_parser("oncall", help="who is on call on a schedule, now or at --at")
    o.add_argument("schedule")
    o.add_argument("--at", help="RFC 3339 time; without an offset, the schedule's local time")
    _with_config(o)
    o.add_argument("--json", action="store_true", help="the API's JSON answer")
    o.set_defaults(func=cmd_oncall)
    pr = sub.add_parser("prune", help="apply the retention policy now (the gateway also "
                        "does, continuously)")
    pr.add_argument("--dry-run", action="store_true",
                    help="print what would be deleted, per table; change nothing")
    pr.add_argument("--config", help="config file (default: $BATON_CONFIG, else the demo)")
    pr.add_argument("--json", action="store_true", help="rows per table as JSON")
    pr.set_defaults(func=cmd_prune)
    _cli_import.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
