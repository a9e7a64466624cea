"""Unauthenticated header flood against a real ``baton serve``: /healthz latency beside it.

Issue 10, finding 4: ten requests a second with big headers and no token took /healthz
p50 from 3.9 ms to 1.2 s, because every character of every header was checked in Python
before authentication. This runs Baton as its own process on a temp SQLite store, measures
/healthz alone, then again while ``--rate`` requests a second, each with ``--headers``
headers of ``--size`` bytes and no token, hit a bearer-protected source.

    .venv/bin/python bench/header_flood.py            # about 2 x --seconds (5 s)

Loopback only; every phase is bounded in time; the child is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

CONFIG = """\
storage: {url: "sqlite:///%(db)s"}
sources:
  prom: {type: generic, auth: {type: bearer, token: {env: FLOOD_TOKEN}}}
connectors:
  hook: {type: webhook, url: "http://127.0.0.1:9/hook"}
routes: [{policy: p}]
policies: {p: {levels: [{notify: [hook]}]}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(base: str, deadline: float) -> None:
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"{base}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("baton did not become ready")


async def probe(base: str, seconds: float, interval: float = 0.02) -> list[float]:
    """/healthz latencies (ms), one probe every ``interval`` for ``seconds``."""
    out: list[float] = []
    end = time.monotonic() + seconds
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < end:
            started = time.perf_counter()
            async with http.get(f"{base}/healthz") as resp:
                await resp.read()
            out.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(interval)
    return out


async def flood(base: str, seconds: float, rate: float, headers: dict[str, str]) -> dict[str, int]:
    statuses: dict[str, int] = {}
    end = time.monotonic() + seconds
    async with aiohttp.ClientSession() as http:
        async def one() -> None:
            try:
                async with http.post(f"{base}/v1/ingest/prom", data=b"{}",
                                     headers=headers) as resp:
                    statuses[str(resp.status)] = statuses.get(str(resp.status), 0) + 1
            except aiohttp.ClientError as e:
                statuses[type(e).__name__] = statuses.get(type(e).__name__, 0) + 1
        tasks = []
        while time.monotonic() < end:
            tasks.append(asyncio.create_task(one()))
            await asyncio.sleep(1 / rate)
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    return statuses


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2)}


async def run(args: argparse.Namespace, base: str) -> dict[str, object]:
    await wait_ready(base, time.monotonic() + 30)
    alone = await probe(base, args.seconds)
    headers = {f"X-Filler-{n}": "a" * args.size for n in range(args.headers)}
    flooded, statuses = await asyncio.gather(
        probe(base, args.seconds), flood(base, args.seconds, args.rate, headers))
    return {"healthz_alone": summary(alone), "healthz_during_flood": summary(flooded),
            "flood": {"rate_per_s": args.rate, "headers": args.headers,
                      "bytes_each": args.size, "answers": statuses}}


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    port = free_port()
    config = tmp / "baton.yaml"
    config.write_text(CONFIG % {"db": tmp / "b.db"})
    env = {**os.environ, "FLOOD_TOKEN": "flood-bench-token"}
    child = subprocess.Popen(
        [sys.executable, "-m", "baton", "serve", "--config", str(config),
         "--listen", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return asyncio.run(run(args, f"http://127.0.0.1:{port}"))
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=10.0, help="flood requests per second")
    parser.add_argument("--headers", type=int, default=100)
    parser.add_argument("--size", type=int, default=8000, help="bytes per header value")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="baton-flood-") as tmp:
        print(json.dumps(measure(args, Path(tmp)), indent=2))


if __name__ == "__main__":
    main()
