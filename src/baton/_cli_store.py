"""``baton dlq``, ``silence``, ``report`` and ``prune``: commands that work on the
database a running ``baton serve`` keeps (they never create one)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ._cli_common import config_name, load
from .config import Config
from .errors import ConfigError, Conflict, NotFound, StorageUnavailable

if TYPE_CHECKING:
    from .store import Store


def open_store_of(config: Config) -> Store:
    """The store a server made, for reading (and the odd write: a silence, a replay).
    Never creates one: a typo in --config, a missing BATON_CONFIG or another working
    directory would otherwise leave an empty database behind and answer from it."""
    from .ingest import suppressor_for
    from .store import open_store
    from .store.sqlite import path_from_url

    url = config.storage.url
    if url.startswith("sqlite:"):
        path = path_from_url(url)
        if path == ":memory:" or not Path(path).is_file():
            where = url if path == ":memory:" else os.path.abspath(path)
            print(f"error: no database at {where} (storage.url of {config_name(config)}); "
                  "this command only reads the database baton serve keeps, and never "
                  "creates one", file=sys.stderr)
            raise SystemExit(1)
    try:
        store = open_store(url, config.storage.busy_timeout, create=False)
        # Config silences are listed beside stored ones and cannot be expired here.
        store.suppressor = suppressor_for(config)
        store.open()
    except ConfigError as e:
        for p in e.problems:
            print(f"config error: {p}", file=sys.stderr)
        raise SystemExit(1) from None
    except (OSError, sqlite3.Error, StorageUnavailable) as e:
        print(f"error: cannot open storage: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    return store


async def _dlq(args: argparse.Namespace, config: Config) -> int:
    store = open_store_of(config)
    try:
        if args.dlq_command == "list":
            docs, _ = await store.list_deliveries(state="dead", limit=args.limit)
            if args.json:
                print(json.dumps(docs, indent=2))
                return 0
            for d in docs:
                print(f"{d['id']}  {d['connector']:<16} {d['action']:<11} "
                      f"incident={d['incident_id']} attempts={d['attempts']} "
                      f"error={d['last_error']}")
            if not docs:
                print("no dead-lettered deliveries")
            return 0
        ids = await store.dead_ids() if args.all else [args.id]
        if not ids:
            print("no dead-lettered deliveries to replay")
            return 0
        failed = 0
        for delivery_id in ids:
            try:
                await store.retry_delivery(delivery_id, "cli", time.time())
                print(f"replaying {delivery_id}")
            except (NotFound, Conflict) as e:
                print(f"error: {e}", file=sys.stderr)
                failed += 1
        return 1 if failed else 0
    finally:
        store.close()


async def _silence(args: argparse.Namespace, config: Config) -> int:
    from .errors import PayloadError
    from .silence import parse_request
    store = open_store_of(config)
    now = time.time()
    try:
        if args.silence_command == "add":
            body = {"matchers": args.matchers, "duration": args.duration}
            try:
                matchers, start, end = parse_request(body, now)
            except PayloadError as e:
                for problem in e.errors:
                    print(f"error: {problem}", file=sys.stderr)
                return 1
            doc = await store.create_silence(matchers, start, end, args.by, args.comment, now)
            print(f"{doc['id']}  until {doc['ends_at']}  {' '.join(doc['matchers'])}")
            return 0
        if args.silence_command == "expire":
            doc = await store.expire_silence(args.id, args.by, now)
            print(f"{doc['id']} expired")
            return 0
        docs = await store.list_silences(args.state, now)
        if args.json:
            print(json.dumps(docs, indent=2))
        for d in [] if args.json else docs:
            origin = " (config)" if d.get("origin") == "config" else ""
            print(f"{d['id']}  {d['state']:<8} {d['starts_at']} .. {d['ends_at']}  "
                  f"{' '.join(d['matchers'])}  by {d['created_by']}: {d['comment']}{origin}")
        if not docs and not args.json:
            print("no silences" + (f" {args.state}" if args.state else ""))
        return 0
    except (NotFound, Conflict) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        store.close()


async def _report(args: argparse.Namespace, config: Config) -> int:
    from . import report
    from .errors import StorageUnavailable

    store = open_store_of(config)
    now = time.time()
    try:
        response = await report.response_doc(store, args.since, now)
        recurring = await report.recurring_doc(store, args.since, args.limit, now)
    except StorageUnavailable as e:
        print(f"error: cannot read storage: {e}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.json:
        print(json.dumps({"response": response, "recurring": recurring}, indent=2))
    else:
        print(report.render(response, recurring))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from . import report
    from .errors import PayloadError

    try:
        args.since = report.parse_since(args.since)
        args.limit = report.parse_limit(args.limit)
    except PayloadError as e:
        print(f"error: --{e.errors[0]}: {e.detail}", file=sys.stderr)
        return 2
    return asyncio.run(_report(args, load(args.config)))


def cmd_silence(args: argparse.Namespace) -> int:
    return asyncio.run(_silence(args, load(args.config)))


def cmd_dlq(args: argparse.Namespace) -> int:
    if args.dlq_command == "replay" and not (args.all or args.id):
        print("error: give a delivery ID or --all", file=sys.stderr)
        return 2
    return asyncio.run(_dlq(args, load(args.config)))


async def _prune(args: argparse.Namespace, config: Config) -> int:
    from .clock import SystemClock
    from .retention import Pruner

    store = open_store_of(config)
    try:
        pruner = Pruner(store, config.retention, SystemClock())
        counts = await (pruner.dry_run() if args.dry_run else pruner.run_once())
    except StorageUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.json:
        print(json.dumps(counts, indent=2))
        return 0
    verb = "would delete" if args.dry_run else "deleted"
    for table, n in counts.items():
        print(f"{table:<18} {n:>10}")
    print(f"{verb} {sum(counts.values())} row(s)")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    return asyncio.run(_prune(args, load(args.config)))
