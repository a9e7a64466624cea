"""Helper processes for bench/e2e.py; each runs in its own process so it does not share an
event loop (or the GIL) with the load generator.

    python bench/_servers.py sink         the webhook sink: records when each alert arrives
    python bench/_servers.py level-sink   the same per escalation level, in wall-clock time
                                          (for bench/timers.py)
    python bench/_servers.py bare         the ingest ceiling: json-decode the body, answer 202
    python bench/_servers.py baton-ingest --config FILE
                                          Baton with its dispatcher switched off (ingest only)
    python bench/_servers.py baton-traced --config FILE --trace-out JSON
                                          ``baton serve`` with the SQLite engine timed

``sink`` and ``bare`` bind an ephemeral port on 127.0.0.1 and print ``LISTENING <port>``
on stdout; ``baton-ingest`` listens where ``--listen`` says. Every process stops on
SIGTERM/SIGINT, and ``sink``/``bare`` also stop by themselves after ``--max-seconds``.

Arrival times are ``time.monotonic()`` (CLOCK_MONOTONIC on Linux), the same clock in every
process on the machine, so the load generator can subtract its send times from them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from typing import Any

from aiohttp import web


def _prefix(alert_id: str) -> str:
    return alert_id.split("-", 1)[0]


class Sink:
    """Answers 200 to every POST /hook and remembers the first arrival of each alert id.

    The id is the ``bench_id`` label of each element of the body's ``alerts`` list: where
    both Alertmanager's webhook (``alerts[].labels``) and Baton's webhook connector (the
    incident's ``alerts[].labels``) put an alert's labels.
    """

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.count: dict[str, int] = {}       # distinct ids per run prefix
        self.dups: dict[str, int] = {}        # repeated arrivals per run prefix
        self.posts: dict[str, int] = {}       # notifications (requests) per run prefix
        self.unknown = 0                      # bodies without any bench_id

    async def hook(self, request: web.Request) -> web.Response:
        now = time.monotonic()  # the request line and headers are in: the sender is done
        body = await request.read()
        try:
            doc = json.loads(body)
            alerts = doc.get("alerts") if isinstance(doc, dict) else None
        except ValueError:
            alerts = None
        seen_prefix = None
        for a in alerts or ():
            labels = a.get("labels") if isinstance(a, dict) else None
            alert_id = labels.get("bench_id") if isinstance(labels, dict) else None
            if not isinstance(alert_id, str):
                continue
            p = _prefix(alert_id)
            seen_prefix = p
            if alert_id in self.first:
                self.dups[p] = self.dups.get(p, 0) + 1
            else:
                self.first[alert_id] = now
                self.count[p] = self.count.get(p, 0) + 1
        if seen_prefix is None:
            self.unknown += 1
        else:
            self.posts[seen_prefix] = self.posts.get(seen_prefix, 0) + 1
        return web.Response(status=200, text="ok")

    async def stats(self, request: web.Request) -> web.Response:
        p = request.query.get("prefix", "")
        return web.json_response({"n": self.count.get(p, 0), "dups": self.dups.get(p, 0),
                                  "posts": self.posts.get(p, 0), "unknown": self.unknown})

    async def arrivals(self, request: web.Request) -> web.Response:
        p = request.query.get("prefix", "") + "-"
        return web.json_response({k: v for k, v in self.first.items() if k.startswith(p)})


class LevelSink:
    """For bench/timers.py: answers 200 to every POST /hook and remembers, per ``bench_id``
    and escalation level, the first arrival of a trigger in **wall-clock** time
    (``time.time()``, the clock Baton stamps incidents and timers with), so the benchmark
    can subtract a timer's due time from it.

    The level is read from the notification's idempotency key: Baton tags the triggers of
    an escalation step with ``/L<level>.<loop>`` (the first level's have no tag), so a
    level-1 trigger sent late, after its incident escalated, is still counted as level 1.
    """

    def __init__(self) -> None:
        self.first: dict[str, dict[str, float]] = {}  # level ("1", "2", ...) -> id -> time
        self.count: dict[str, int] = {}               # "<prefix>@<level>" -> distinct ids
        self.dups = 0
        self.other = 0                                # not a trigger, or no bench_id

    @staticmethod
    def _level(key: str) -> str:
        tag = key.rsplit("/", 1)[-1]
        if tag.startswith("L") and "." in tag and tag[1:].split(".", 1)[0].isdigit():
            return tag[1:].split(".", 1)[0] + ("" if tag.count(".") == 1 else "r")
        return "1"

    async def hook(self, request: web.Request) -> web.Response:
        now = time.time()
        body = await request.read()
        try:
            doc = json.loads(body)
            note = doc.get("notification") or {}
            alerts = doc.get("alerts") or []
        except (ValueError, AttributeError):
            self.other += 1
            return web.Response(status=200, text="ok")
        if note.get("action") != "trigger":
            self.other += 1
            return web.Response(status=200, text="ok")
        level = self._level(str(note.get("idempotency_key", "")))
        seen = self.first.setdefault(level, {})
        for a in alerts:
            labels = a.get("labels") if isinstance(a, dict) else None
            alert_id = labels.get("bench_id") if isinstance(labels, dict) else None
            if not isinstance(alert_id, str):
                continue
            if alert_id in seen:
                self.dups += 1
                continue
            seen[alert_id] = now
            k = f"{_prefix(alert_id)}@{level}"
            self.count[k] = self.count.get(k, 0) + 1
        return web.Response(status=200, text="ok")

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({"count": self.count, "dups": self.dups,
                                  "other": self.other})

    async def arrivals(self, request: web.Request) -> web.Response:
        p = request.query.get("prefix", "") + "-"
        level = request.query.get("level", "1")
        return web.json_response({k: v for k, v in self.first.get(level, {}).items()
                                  if k.startswith(p)})


async def bare_ingest(request: web.Request) -> web.Response:
    """The floor any aiohttp ingest endpoint pays: read, json-decode, answer 202."""
    payload: Any = json.loads(await request.read())
    n = len(payload) if isinstance(payload, list) else 1
    return web.json_response({"accepted": n}, status=202)


async def _serve(app: web.Application, max_seconds: float) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"LISTENING {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), max_seconds)
    except TimeoutError:
        print("stopping: --max-seconds reached", file=sys.stderr)
    finally:
        await runner.cleanup()


def _baton_ingest_only(config_path: str, listen: str) -> None:
    """``baton serve`` minus the dispatcher: ingest is measured without delivery work
    competing for the event loop and the SQLite writer."""
    from pathlib import Path

    from baton.app import create_app
    from baton.config import load_config
    from baton.logging import configure

    config = load_config(Path(config_path))
    configure(config.logging.level, config.logging.format)
    host, _, port = listen.rpartition(":")
    app = create_app(config, run_dispatcher=False)
    web.run_app(app, host=host, port=int(port), access_log=None, print=None,
                handle_signals=True, shutdown_timeout=2)


def _baton_traced(config_path: str, listen: str, out: str,
                  switch_interval: float | None = None) -> None:
    """``baton serve`` with the SQLite engine instrumented (bench-only monkeypatching, the
    code under test is unchanged): per group commit, how many operations of which kind it
    carried, how long the batch and its COMMIT took; per read, how long it took. Written as
    JSON to ``out`` at shutdown."""
    import atexit
    import sqlite3
    import threading
    from pathlib import Path

    from baton.app import create_app
    from baton.config import load_config
    from baton.logging import configure
    from baton.store import sqlite as engine_mod

    lock = threading.Lock()
    stats: dict[str, Any] = {"batches": 0, "ops": {}, "batch_sizes": [], "batch_ms": [],
                             "commit_ms": [], "reads": {}, "read_ms": []}

    def kind(fn: Any) -> str:
        return getattr(fn, "__qualname__", "?").split(".<locals>")[0]

    class TimedConnection(sqlite3.Connection):
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            if sql != "COMMIT":
                return super().execute(sql, *args)
            t = time.perf_counter()
            try:
                return super().execute(sql, *args)
            finally:
                if threading.current_thread().name == "baton-sqlite-writer":
                    with lock:
                        stats["commit_ms"].append((time.perf_counter() - t) * 1000)

    real_connect = sqlite3.connect

    def connect(*a: Any, **kw: Any) -> Any:
        kw["factory"] = TimedConnection
        return real_connect(*a, **kw)

    # This process runs only Baton, so patching the module it connects through is safe.
    setattr(engine_mod.sqlite3, "connect", connect)  # noqa: B010
    real_batch = engine_mod.SQLiteEngine._run_batch

    def run_batch(self: Any, conn: Any, tx: Any, batch: list[Any]) -> None:
        t = time.perf_counter()
        real_batch(self, conn, tx, batch)
        ms = (time.perf_counter() - t) * 1000
        with lock:
            stats["batches"] += 1
            stats["batch_sizes"].append(len(batch))
            stats["batch_ms"].append(ms)
            for fn, _loop, _fut in batch:
                k = kind(fn)
                stats["ops"][k] = stats["ops"].get(k, 0) + 1

    setattr(engine_mod.SQLiteEngine, "_run_batch", run_batch)  # noqa: B010
    real_read = engine_mod.SQLiteEngine.read

    async def read(self: Any, fn: Any) -> Any:
        t = time.perf_counter()
        try:
            return await real_read(self, fn)
        finally:
            k = kind(fn)
            stats["reads"][k] = stats["reads"].get(k, 0) + 1
            stats["read_ms"].append((time.perf_counter() - t) * 1000)

    setattr(engine_mod.SQLiteEngine, "read", read)  # noqa: B010

    def dump() -> None:
        with lock:
            Path(out).write_text(json.dumps(stats))

    atexit.register(dump)
    if switch_interval:
        sys.setswitchinterval(switch_interval)  # an experiment: GIL hand-over latency
    config = load_config(Path(config_path))
    configure(config.logging.level, config.logging.format)
    host, _, port = listen.rpartition(":")
    web.run_app(create_app(config), host=host, port=int(port), access_log=None, print=None,
                handle_signals=True, shutdown_timeout=config.server.shutdown_grace)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["sink", "level-sink", "bare", "baton-ingest",
                                    "baton-traced"])
    p.add_argument("--trace-out")
    p.add_argument("--switch-interval", type=float)
    p.add_argument("--max-seconds", type=float, default=900.0)
    p.add_argument("--config")
    p.add_argument("--listen", default="127.0.0.1:0")
    args = p.parse_args()
    if args.mode == "baton-ingest":
        _baton_ingest_only(args.config, args.listen)
        return
    if args.mode == "baton-traced":
        _baton_traced(args.config, args.listen, args.trace_out, args.switch_interval)
        return
    app = web.Application(client_max_size=64 * 1024 * 1024)
    if args.mode == "sink":
        sink = Sink()
        app.router.add_post("/hook", sink.hook)
        app.router.add_get("/stats", sink.stats)
        app.router.add_get("/arrivals", sink.arrivals)
    elif args.mode == "level-sink":
        level_sink = LevelSink()
        app.router.add_post("/hook", level_sink.hook)
        app.router.add_get("/stats", level_sink.stats)
        app.router.add_get("/arrivals", level_sink.arrivals)
    else:
        app.router.add_post("/ingest", bare_ingest)
    asyncio.run(_serve(app, args.max_seconds))


if __name__ == "__main__":
    main()
