"""Overload benchmark: ``baton serve`` offered twice what it can take, on SQLite and on
PostgreSQL (issue 10, findings 6 and 7).

    .venv/bin/python bench/overload.py [--seconds 60] [--engines sqlite,postgres] [--out F]

Per engine: a fresh ``baton serve`` sending to the webhook sink of bench/_servers.py;
its capacity measured first (closed loop, single alerts, a few seconds); then an open-loop
storm at ``--factor`` (2) times that rate for ``--seconds``, every request with a 10 s
client timeout, as a sender would. Reported: the share answered 503 (shed, with
Retry-After) and of client timeouts, p50/p99 of the accepted (202) requests, deliveries
per second at the sink during the storm, Baton's peak RSS, and how many alerts answered
202 never reached the sink (must be 0: accepted-then-lost).

Everything listens on 127.0.0.1; every phase has a deadline; children are stopped in
``finally``. PostgreSQL: ``$BATON_TEST_POSTGRES_URL`` or postgresql://postgres@127.0.0.1/test,
in a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from e2e import (
    HERE,
    PY,
    Procs,
    Req,
    closed_loop,
    free_port,
    generic_alert,
    paced,
    pct,
    read_port,
    wait_ready,
)

PG_URL = os.environ.get("BATON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CLIENT_TIMEOUT = 10.0


def config(storage_url: str, sink: str, listen: str) -> str:
    return f"""\
server: {{listen: "{listen}", shutdown_grace: 2s}}
storage: {{url: "{storage_url}"}}
sources:
  bench: {{type: generic, auth: {{type: none}}}}
connectors:
  sink: {{type: webhook, url: "{sink}/hook", concurrency: 16, timeout: 10s}}
routes:
  - {{name: all, policy: notify, group_by: ['...']}}
policies:
  notify: {{levels: [{{notify: [sink]}}]}}
logging: {{level: warning}}
"""


def bodies(prefix: str, n: int) -> list[tuple[list[str], bytes]]:
    ids = [f"{prefix}-{i:07d}" for i in range(n)]
    return [([a], json.dumps(generic_alert(a)).encode()) for a in ids]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return math.nan


async def sink_count(http: aiohttp.ClientSession, sink: str, prefix: str) -> int:
    async with http.get(f"{sink}/stats", params={"prefix": prefix}) as r:
        return int((await r.json())["n"])


async def run_engine(name: str, url: str, args: argparse.Namespace, procs: Procs,
                     http: aiohttp.ClientSession, sink: str, tmp: Path) -> dict[str, Any]:
    port = free_port()
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(config(url, sink, f"127.0.0.1:{port}"))
    proc = procs.start(name, [PY, "-m", "baton", "serve", "--config", str(cfg)], cwd=tmp)
    base = f"http://127.0.0.1:{port}"
    ingest = f"{base}/v1/ingest/bench"
    try:
        await wait_ready(http, f"{base}/readyz", proc, 30)
        # Capacity: a closed loop of single alerts.
        warm = time.monotonic()
        done = await closed_loop(http, ingest, bodies(f"{name}cap", 200000), 32,
                                 warm + args.capacity_seconds)
        took = max(1e-3, max((r.t_done for r in done), default=warm) - warm)
        capacity = sum(r.status == 202 for r in done) / took
        rate = capacity * args.factor
        print(f"{name}: capacity {capacity:.0f}/s; storm at {rate:.0f}/s for "
              f"{args.seconds:g}s", file=sys.stderr)
        # Let deliveries of the capacity run drain a little so the storm starts level.
        await asyncio.sleep(2)
        prefix = f"{name}storm"
        before = await sink_count(http, sink, prefix)
        peak = [rss_mb(proc.pid)]

        async def sample() -> None:
            while True:
                peak.append(rss_mb(proc.pid))
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample())
        t0 = time.monotonic()
        storm, lag = await paced(http, ingest, bodies(prefix, int(rate * args.seconds) + 1),
                                 rate, 4000, t0 + args.seconds + CLIENT_TIMEOUT)
        during = await sink_count(http, sink, prefix) - before
        storm_took = time.monotonic() - t0
        sampler.cancel()
        accepted = {r.ids[0] for r in storm if r.status == 202}
        # Every accepted alert must reach the sink (bounded wait).
        deadline = time.monotonic() + args.drain_seconds
        while time.monotonic() < deadline:
            if await sink_count(http, sink, prefix) >= len(accepted):
                break
            await asyncio.sleep(0.5)
        async with http.get(f"{sink}/arrivals", params={"prefix": prefix}) as r:
            arrived = set((await r.json()).keys())
        return summary(name, capacity, rate, storm, lag, during / storm_took,
                       max(peak), len(accepted - arrived))
    finally:
        procs.stop(name)


def summary(name: str, capacity: float, rate: float, storm: list[Req], lag: float,
            deliveries_per_s: float, rss: float, lost: int) -> dict[str, Any]:
    n = max(1, len(storm))
    ok = [r.t_done - r.t_send for r in storm if r.status == 202]
    return {
        "engine": name, "capacity_per_s": round(capacity, 1), "offered_per_s": round(rate, 1),
        "requests": len(storm), "accepted": len(ok),
        "share_503": round(sum(r.status == 503 for r in storm) / n, 4),
        "share_timeout": round(sum(r.error == "TimeoutError" for r in storm) / n, 4),
        "share_other": round(sum(r.status not in (202, 503) and r.error != "TimeoutError"
                                 for r in storm) / n, 4),
        "p50_accepted_s": round(pct(ok, 50), 3), "p99_accepted_s": round(pct(ok, 99), 3),
        "deliveries_per_s_during_storm": round(deliveries_per_s, 1),
        "peak_rss_mb": round(rss, 1), "accepted_then_lost": lost,
        "worst_send_lag_s": round(lag, 3),
    }


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="baton-overload-"))
    procs = Procs(tmp)
    results = []
    schema = f"bench_overload_{secrets.token_hex(4)}"
    conn = aiohttp.TCPConnector(limit=0)
    try:
        async with aiohttp.ClientSession(connector=conn) as http:
            proc = procs.start("sink", [PY, str(HERE / "_servers.py"), "sink",
                                        "--max-seconds", str(args.seconds * 4 + 600)],
                               stdout_pipe=True)
            sink = f"http://127.0.0.1:{read_port(proc, 15)}"
            await wait_ready(http, f"{sink}/stats", proc, 10)
            urls = {"sqlite": f"sqlite:///{tmp / 'baton.db'}",
                    "postgres": f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"}
            for engine in args.engines.split(","):
                results.append(await run_engine(engine, urls[engine], args, procs, http,
                                                sink, tmp))
    finally:
        procs.stop_all()
        if "postgres" in args.engines:
            drop_schema(schema)
    return results


def cli() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="storm length")
    p.add_argument("--factor", type=float, default=2.0, help="storm rate / capacity")
    p.add_argument("--capacity-seconds", type=float, default=5.0)
    p.add_argument("--drain-seconds", type=float, default=180.0)
    p.add_argument("--engines", default="sqlite,postgres")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    results = asyncio.run(main(args))
    cols = list(results[0]) if results else []
    print(" | ".join(cols))
    for r in results:
        print(" | ".join(str(r[c]) for c in cols))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 1 if any(r["accepted_then_lost"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(cli())
