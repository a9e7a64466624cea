"""Retention benchmark: a gateway under steady churn, with pruning on and off.

    /work/venv/bin/python bench/retention.py [--events 12000] [--rate 200] [--out r.json]

One invocation starts a webhook sink (``_servers.py sink``) and, per case, a fresh
``baton serve`` on a temp SQLite database, then sends ``--events`` ingest requests at a
steady ``--rate`` (open loop, one alert each, ``--body-bytes`` of description): request
``i`` opens incident ``i`` and also resolves incident ``i - --open``, so about ``--open``
incidents are open at any time and every other one is resolved, delivered and, past the
horizon, prunable. Meanwhile the database is sampled every ``--sample`` seconds: the main
file, the WAL, and rows in ``incidents`` and ``events`` (read-only, beside the gateway).

Cases (``--cases``, default both, same invocation):
- ``on``: every retention horizon ``--horizon`` (5 s), rounds every ``--interval`` (1 s);
- ``off``: horizons of 3650 days: the pruner still runs its rounds (and finds nothing), so
  the difference is the deleting, not the loop.

Printed: size and rows over time per case (flat with pruning, growing without), and
ingest latency p50/p99 (request sent -> 202, per request) both ways, over the whole run
and over its second half (when pruning is in steady state). No figure is asserted.

Everything listens on 127.0.0.1; every wait has a deadline and the whole run a global one
(``--budget``); every child process is stopped in ``finally`` (``run_guarded``).
``--events 1000000 --rate 2000`` is the issue's million events (about 17 minutes per case).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from e2e import (  # noqa: E402  (bench/ is not a package)
    PY,
    Procs,
    fmt,
    free_port,
    load_now,
    machine,
    paced,
    pct,
    read_port,
    run_guarded,
    wait_ready,
)


@dataclass
class Sample:
    t: float  # seconds since the case's first request
    scheduled: int  # requests the open loop had sent by then (on schedule)
    db_bytes: int
    wal_bytes: int
    incidents: int
    events: int
    undelivered: int  # deliveries pending or in flight: their incidents cannot go yet


@dataclass
class Case:
    name: str
    horizon: str
    samples: list[Sample] = field(default_factory=list)
    requests: int = 0
    errors: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    late_p50_ms: float = float("nan")  # second half of the run
    late_p99_ms: float = float("nan")
    seconds: float = float("nan")
    pruned: dict[str, float] = field(default_factory=dict)  # from /metrics at the end
    load: dict[str, float] = field(default_factory=dict)


def baton_config(db: Path, sink: str, listen: str, horizon: str,
                 args: argparse.Namespace) -> str:
    return f"""\
server:
  listen: "{listen}"
  shutdown_grace: 5s
storage:
  url: "sqlite:///{db}"
sources:
  bench: {{type: generic, auth: {{type: none}}}}
connectors:
  hook: {{type: webhook, url: "{sink}/hook", timeout: 10s}}
routes:
  - {{name: all, policy: notify, group_by: ['...']}}
policies:
  notify: {{levels: [{{notify: [hook]}}]}}
dispatch:
  poll_interval: 100ms
retention:
  raw_events: {horizon}
  resolved_incidents: {horizon}
  replay_ids: {horizon}
  interval: {args.interval}
  batch_size: {args.batch_size}
logging:
  level: warning
"""


def bodies(prefix: str, n: int, keep_open: int, size: int) -> list[tuple[list[str], bytes]]:
    """Request i: alert i fires, alert i - keep_open resolves (one request, two alerts)."""
    text = "d" * size
    out = []
    for i in range(n):
        alerts: list[dict[str, Any]] = [
            {"dedup_key": f"{prefix}-{i}", "summary": f"churn {i}", "severity": "warning",
             "service": "bench", "description": text, "labels": {"bench_id": f"{prefix}-{i}"}}]
        if i >= keep_open:
            alerts.append({"dedup_key": f"{prefix}-{i - keep_open}", "status": "resolved",
                           "summary": f"churn {i - keep_open}"})
        out.append(([f"{prefix}-{i}"], json.dumps(alerts).encode()))
    return out


def sample(db: Path, t: float, scheduled: int) -> Sample:
    wal = db.with_name(db.name + "-wal")
    counts = [0, 0, 0]
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            counts = [int(conn.execute(sql).fetchone()[0]) for sql in (
                "SELECT COUNT(*) FROM incidents", "SELECT COUNT(*) FROM events",
                "SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'in_flight')")]
        finally:
            conn.close()
    except sqlite3.Error:
        pass  # a busy moment: the sizes still count
    return Sample(round(t, 2), scheduled, db.stat().st_size if db.exists() else 0,
                  wal.stat().st_size if wal.exists() else 0, *counts)


async def run_case(case: Case, args: argparse.Namespace, tmp: Path, procs: Procs,
                   sink: str, http: aiohttp.ClientSession, deadline: float) -> None:
    db = tmp / f"{case.name}.db"
    port = free_port()
    cfg = tmp / f"{case.name}.yaml"
    cfg.write_text(baton_config(db, sink, f"127.0.0.1:{port}", case.horizon, args))
    proc = procs.start(f"baton-{case.name}", [PY, "-m", "baton", "serve", "--config",
                                              str(cfg)])
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(http, f"{base}/readyz", proc, 30)
        work = bodies(case.name, args.events, args.open, args.body_bytes)
        t0 = time.monotonic()

        async def sampler() -> None:
            while True:  # cancelled when the load is done
                t = time.monotonic() - t0
                case.samples.append(await asyncio.to_thread(
                    sample, db, t, min(args.events, int(t * args.rate))))
                await asyncio.sleep(args.sample)

        task = asyncio.create_task(sampler())
        try:
            phase_end = min(deadline, t0 + args.events / args.rate * 1.5 + 30)
            reqs, _lag = await paced(http, f"{base}/v1/ingest/bench", work, args.rate,
                                     args.max_inflight, phase_end)
        finally:
            task.cancel()
        case.seconds = time.monotonic() - t0
        case.samples.append(await asyncio.to_thread(sample, db, case.seconds, len(reqs)))
        ok = [r for r in reqs if 200 <= r.status < 300]
        case.requests, case.errors = len(reqs), len(reqs) - len(ok)
        lat = [(r.t_done - r.t_send) * 1000 for r in sorted(ok, key=lambda r: r.t_send)]
        late = lat[len(lat) // 2:]
        case.p50_ms, case.p99_ms = pct(lat, 50), pct(lat, 99)
        case.late_p50_ms, case.late_p99_ms = pct(late, 50), pct(late, 99)
        async with http.get(f"{base}/metrics") as r:
            for line in (await r.text()).splitlines():
                if line.startswith("baton_pruned_rows_total{"):
                    table = line.split('"')[1]
                    case.pruned[table] = float(line.rsplit(" ", 1)[1])
        case.load = load_now()
    finally:
        procs.stop(f"baton-{case.name}")


def report(cases: list[Case], args: argparse.Namespace) -> str:
    lines = [f"{args.events} requests at {args.rate:g}/s, ~{args.open} incidents open, "
             f"{args.body_bytes} B descriptions; on: horizons {args.horizon}, "
             f"interval {args.interval}, batch {args.batch_size}"]
    by = {c.name: c for c in cases}
    for c in cases:
        lines.append(f"\n{c.name} (horizons {c.horizon}): size over time")
        lines.append("     t s    sched   db MiB  wal MiB  incidents   events  undelivered")
        step = max(1, len(c.samples) // 12)
        shown = sorted({*range(0, len(c.samples), step), len(c.samples) - 1})
        for s in (c.samples[i] for i in shown if i >= 0):
            lines.append(f"  {s.t:>6.1f} {s.scheduled:>8} {s.db_bytes / 2**20:>8.2f} "
                         f"{s.wal_bytes / 2**20:>8.2f} {s.incidents:>10} {s.events:>8} "
                         f"{s.undelivered:>12}")
    lines.append("\ningest latency (request sent -> 202), ms")
    lines.append("  case   requests errors    p50    p99   2nd-half p50  p99")
    for c in cases:
        lines.append(f"  {c.name:<6} {c.requests:>8} {c.errors:>6} {fmt(c.p50_ms, 1):>6} "
                     f"{fmt(c.p99_ms, 1):>6} {fmt(c.late_p50_ms, 1):>13} "
                     f"{fmt(c.late_p99_ms, 1):>5}")
    if "on" in by and "off" in by:
        on, off = by["on"], by["off"]
        end_on, end_off = on.samples[-1], off.samples[-1]
        lines.append("\nratios (on / off)")
        for label, a, b in (
                ("db file at the end", end_on.db_bytes, end_off.db_bytes),
                ("db + wal at the end", end_on.db_bytes + end_on.wal_bytes,
                 end_off.db_bytes + end_off.wal_bytes),
                ("ingest p50", on.p50_ms, off.p50_ms),
                ("ingest p99", on.p99_ms, off.p99_ms),
                ("ingest p99, 2nd half", on.late_p99_ms, off.late_p99_ms)):
            lines.append(f"  {label:<24} {fmt(a / b if b else float('nan'), 2)}")
        half = [s for s in on.samples if s.t >= on.seconds / 2]
        if half:
            sizes = [s.db_bytes for s in half]
            lines.append(f"  on: db file over the 2nd half, max / min "
                         f"{fmt(max(sizes) / max(1, min(sizes)), 2)}")
    if any(c.pruned for c in cases):
        lines.append("\nrows pruned (baton_pruned_rows_total): " + "; ".join(
            f"{c.name}: " + ", ".join(f"{t}={int(n)}" for t, n in sorted(c.pruned.items()))
            for c in cases if c.pruned))
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=12000, help="ingest requests per case")
    p.add_argument("--rate", type=float, default=200.0,
                   help="requests per second (each is two deliveries: keep it below what "
                   "the dispatcher sends, or resolved incidents wait for their resolve)")
    p.add_argument("--open", type=int, default=50, help="incidents kept open at a time")
    p.add_argument("--body-bytes", type=int, default=1000, help="description size")
    p.add_argument("--horizon", default="5s", help="every retention horizon, case on")
    p.add_argument("--interval", default="1s", help="retention.interval")
    p.add_argument("--batch-size", type=int, default=50, help="retention.batch_size")
    p.add_argument("--sample", type=float, default=1.0, help="seconds between samples")
    p.add_argument("--max-inflight", type=int, default=256)
    p.add_argument("--cases", default="on,off", help="on,off or one of them")
    p.add_argument("--budget", type=float, default=0.0,
                   help="seconds for the whole run (default: 2.5x the load time + 60)")
    p.add_argument("--out", help="also write every figure as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = p.parse_args(argv)
    if args.events < 1 or args.rate <= 0 or args.open < 1:
        p.error("--events, --rate and --open must be positive")
    args.cases = [c for c in args.cases.split(",") if c]
    if not set(args.cases) <= {"on", "off"}:
        p.error("--cases: on, off")
    args.budget = args.budget or (len(args.cases) * 1.5 * args.events / args.rate + 60)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="baton-retention-"))
    procs = Procs(tmp)
    cases = [Case(name, args.horizon if name == "on" else "3650d") for name in args.cases]
    print(f"baton retention bench: {args.events} requests per case at {args.rate:g}/s, "
          f"temp dir {tmp}", flush=True)

    async def run() -> None:
        deadline = time.monotonic() + args.budget
        sink_proc = procs.start("sink", [PY, str(HERE / "_servers.py"), "sink",
                                         "--max-seconds", str(args.budget + 60)],
                                stdout_pipe=True)
        sink = f"http://127.0.0.1:{read_port(sink_proc, 30)}"
        conn = aiohttp.TCPConnector(limit=args.max_inflight)
        async with aiohttp.ClientSession(connector=conn) as http:
            for case in cases:
                print(f"case {case.name} ...", flush=True)
                await run_case(case, args, tmp, procs, sink, http, deadline)

    code, args.keep = run_guarded(run, procs, tmp, args.keep)
    print()
    print(report(cases, args))
    print(f"\ntotal {time.monotonic() - t0:.0f}s", flush=True)
    if args.out:
        doc = {"started": started.isoformat(), "machine": machine(),
               "args": {k: v for k, v in vars(args).items()},
               "cases": [asdict(c) for c in cases]}
        Path(args.out).write_text(json.dumps(doc, indent=2, default=str) + "\n")
        print(f"results written to {args.out}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
