"""End-to-end benchmark: Baton against a real Prometheus Alertmanager, plus ingest ceilings.

    /work/venv/bin/python bench/e2e.py [--alerts N] [--quick] [--out results.json]

One invocation starts a webhook sink, then for each case a fresh server (Alertmanager,
Baton, a bare aiohttp handler, Baton with its dispatcher off), drives it with the same
closed-loop load generator (1 and 50 alerts per request), waits until the sink has seen
every alert, and prints one table. See bench/README.md for what each figure means.

Everything listens on 127.0.0.1 ports chosen by the kernel; every phase has a hard
deadline, the whole run a global one; every child process is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"

# --------------------------------------------------------------------------- processes


class Procs:
    """Child processes, each in its own session, stopped (TERM, then KILL) on exit."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], *, stdout_pipe: bool = False,
              cwd: Path | None = None, env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:
        log = open(self.logdir / f"{name}.log", "wb")  # the child keeps its own copy
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE if stdout_pipe else log,
                                stderr=log, stdin=subprocess.DEVNULL, cwd=cwd, env=env,
                                start_new_session=True)
        log.close()
        self.running[name] = proc
        return proc

    def stop(self, name: str, grace: float = 5.0) -> None:
        proc = self.running.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far (Linux /proc), NaN if unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        tick = float(os.sysconf("SC_CLK_TCK"))
        return int(fields[11]) / tick, int(fields[12]) / tick
    except (OSError, ValueError, IndexError):
        return math.nan, math.nan


def cpu_seconds(pid: int) -> float:
    return sum(cpu_times(pid))


def load_now() -> dict[str, float]:
    """Machine load, to judge noise: 1-minute load average and, where the kernel has PSI,
    the share of the last 10 s in which some runnable task waited for a CPU."""
    out: dict[str, float] = {}
    with contextlib.suppress(OSError, ValueError):
        out["loadavg_1m"] = float(Path("/proc/loadavg").read_text().split()[0])
    with contextlib.suppress(OSError, ValueError, IndexError):
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0].split()
        out["cpu_pressure_avg10"] = float(some[1].split("=")[1])
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_port(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """The ``LISTENING <port>`` line a helper from _servers.py prints."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    os.set_blocking(proc.stdout.fileno(), False)
    buf = b""
    while time.monotonic() < deadline:
        chunk = proc.stdout.read()
        if chunk:
            buf += chunk
            for line in buf.splitlines():
                if line.startswith(b"LISTENING "):
                    return int(line.split()[1])
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    raise RuntimeError(f"helper did not report its port (exit code {proc.poll()})")


async def wait_ready(http: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes],
                     within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=1)) as r:
                if r.status == 200:
                    return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {within:g}s")


# --------------------------------------------------------------------------- payloads


def am_alert(alert_id: str) -> dict[str, Any]:
    """One alert as POST /api/v2/alerts takes it (Alertmanager sets startsAt/endsAt)."""
    return {"labels": {"alertname": "BatonBench", "bench_id": alert_id,
                       "severity": "warning", "service": "bench"},
            "annotations": {"summary": f"bench alert {alert_id}"}}


def generic_alert(alert_id: str) -> dict[str, Any]:
    """The same alert in Baton's generic format."""
    return {"dedup_key": alert_id, "summary": f"bench alert {alert_id}",
            "severity": "warning", "service": "bench",
            "labels": {"alertname": "BatonBench", "bench_id": alert_id}}


def make_bodies(shape: str, prefix: str, n: int, batch: int) -> list[tuple[list[str], bytes]]:
    make = am_alert if shape == "alertmanager" else generic_alert
    ids = [f"{prefix}-{i:06d}" for i in range(n)]
    out = []
    for i in range(0, n, batch):
        chunk = ids[i:i + batch]
        out.append((chunk, json.dumps([make(a) for a in chunk]).encode()))
    return out


# --------------------------------------------------------------------------- load


@dataclass
class Req:
    ids: list[str]
    t_send: float
    t_done: float = math.nan
    status: int = 0
    error: str = ""


HEADERS = {"Content-Type": "application/json"}


async def _post(http: aiohttp.ClientSession, url: str, ids: list[str], body: bytes,
                deadline: float) -> Req:
    req = Req(ids, time.monotonic())
    try:
        timeout = aiohttp.ClientTimeout(total=max(0.1, deadline - req.t_send))
        async with http.post(url, data=body, headers=HEADERS, timeout=timeout) as r:
            await r.read()
            req.status = r.status
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        req.error = type(e).__name__
    req.t_done = time.monotonic()
    return req


async def closed_loop(http: aiohttp.ClientSession, url: str,
                      bodies: list[tuple[list[str], bytes]], concurrency: int,
                      deadline: float) -> list[Req]:
    """``concurrency`` workers each send the next body as soon as their previous answer is
    in, until all are sent or the deadline passes."""
    it = iter(bodies)
    done: list[Req] = []

    async def worker() -> None:
        for ids, body in it:
            if time.monotonic() >= deadline:
                return
            done.append(await _post(http, url, ids, body, deadline))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


async def paced(http: aiohttp.ClientSession, url: str, bodies: list[tuple[list[str], bytes]],
                rate: float, max_inflight: int, deadline: float) -> tuple[list[Req], float]:
    """Open loop: body i is sent at t0 + i/rate whatever the answers do (up to
    ``max_inflight`` outstanding). Returns the requests and the worst lag behind schedule."""
    sem = asyncio.Semaphore(max_inflight)
    done: list[Req] = []
    tasks: set[asyncio.Task[None]] = set()
    worst_lag = 0.0

    async def one(ids: list[str], body: bytes) -> None:
        try:
            done.append(await _post(http, url, ids, body, deadline))
        finally:
            sem.release()

    t0 = time.monotonic() + 0.05
    for i, (ids, body) in enumerate(bodies):
        due = t0 + i / rate
        now = time.monotonic()
        if now >= deadline:
            break
        if due > now:
            await asyncio.sleep(due - now)
        await sem.acquire()
        worst_lag = max(worst_lag, time.monotonic() - due)
        t = asyncio.create_task(one(ids, body))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(list(tasks), timeout=max(0.1, deadline - time.monotonic()))
    for t in list(tasks):
        t.cancel()
    return done, worst_lag


async def wait_sink(http: aiohttp.ClientSession, sink: str, prefix: str, n: int,
                    deadline: float) -> dict[str, Any]:
    """Poll the sink until it has seen ``n`` distinct alerts of ``prefix`` (or the deadline)."""
    stats: dict[str, Any] = {"n": 0}
    while True:
        async with http.get(f"{sink}/stats", params={"prefix": prefix}) as r:
            stats = await r.json()
        if stats["n"] >= n or time.monotonic() >= deadline:
            return stats
        await asyncio.sleep(0.02)


async def arrivals(http: aiohttp.ClientSession, sink: str, prefix: str) -> dict[str, float]:
    async with http.get(f"{sink}/arrivals", params={"prefix": prefix}) as r:
        return dict(await r.json())


# --------------------------------------------------------------------------- figures


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


@dataclass
class Result:
    system: str
    case: str
    batch: int
    alerts: int                       # alerts we tried to send
    accepted: int = 0                 # alerts in requests answered 2xx
    errors: int = 0                   # requests not answered 2xx (incl. timeouts)
    ingest_seconds: float = math.nan  # first send -> last 2xx
    ingest_alerts_s: float = math.nan
    ingest_req_s: float = math.nan
    ingest_p50_ms: float = math.nan   # request sent -> 2xx answer, per request
    ingest_p99_ms: float = math.nan
    ingest_max_ms: float = math.nan
    delivered: int | None = None      # distinct alerts seen at the sink
    duplicates: int | None = None
    notifications: int | None = None  # POSTs the sink received for this run
    e2e_seconds: float = math.nan     # first send -> last arrival
    e2e_alerts_s: float = math.nan
    e2e_p50_ms: float = math.nan      # request sent -> alert arrives at the sink, per alert
    e2e_p99_ms: float = math.nan
    e2e_max_ms: float = math.nan
    server_cpu_s: float = math.nan    # CPU the server process used during the phase
    server_cpu_ms_per_alert: float = math.nan
    server_cpu_util: float = math.nan  # server CPU seconds / phase wall seconds (1.0 = a core)
    server_sys_s: float = math.nan    # of server_cpu_s, in the kernel (syscalls, fsync)
    sink_cpu_s: float = math.nan
    loadgen_cpu_s: float = math.nan
    store_trace: dict[str, Any] | None = None  # --trace-store: group commits, reads
    load_before: dict[str, float] = field(default_factory=dict)
    load_after: dict[str, float] = field(default_factory=dict)
    target_rate: float | None = None  # paced runs only
    schedule_lag_max_ms: float | None = None
    notes: list[str] = field(default_factory=list)


def ingest_figures(res: Result, reqs: list[Req]) -> None:
    ok = [r for r in reqs if 200 <= r.status < 300]
    res.accepted = sum(len(r.ids) for r in ok)
    res.errors = len(reqs) - len(ok)
    unsent = res.alerts - sum(len(r.ids) for r in reqs)
    if unsent:
        res.notes.append(f"{unsent} alerts not sent before the phase deadline")
    statuses: dict[str, int] = {}
    for r in reqs:
        if not 200 <= r.status < 300:
            key = r.error or str(r.status)
            statuses[key] = statuses.get(key, 0) + 1
    if statuses:
        res.notes.append(f"non-2xx: {statuses}")
    if not ok:
        return
    first = min(r.t_send for r in reqs)
    last = max(r.t_done for r in ok)
    res.ingest_seconds = last - first
    res.ingest_alerts_s = res.accepted / res.ingest_seconds
    res.ingest_req_s = len(ok) / res.ingest_seconds
    lat = [(r.t_done - r.t_send) * 1000 for r in ok]
    res.ingest_p50_ms, res.ingest_p99_ms = pct(lat, 50), pct(lat, 99)
    res.ingest_max_ms = max(lat)


def e2e_figures(res: Result, reqs: list[Req], seen: dict[str, float],
                stats: dict[str, Any]) -> None:
    res.delivered = len(seen)
    res.duplicates = int(stats.get("dups", 0))
    res.notifications = int(stats.get("posts", 0))
    sent = {a: r.t_send for r in reqs if 200 <= r.status < 300 for a in r.ids}
    lat = [(seen[a] - t) * 1000 for a, t in sent.items() if a in seen]
    if not lat:
        return
    first = min(r.t_send for r in reqs)
    last = max(seen[a] for a in sent if a in seen)
    res.e2e_seconds = last - first
    res.e2e_alerts_s = len(lat) / res.e2e_seconds
    res.e2e_p50_ms, res.e2e_p99_ms, res.e2e_max_ms = pct(lat, 50), pct(lat, 99), max(lat)
    if len(lat) < len(sent):
        res.notes.append(f"{len(sent) - len(lat)} accepted alerts never reached the sink "
                         "before the deadline")


# --------------------------------------------------------------------------- configs


def alertmanager_config(sink: str) -> str:
    # One notification per alert, as fast as Alertmanager forwards: see bench/README.md.
    return f"""\
route:
  receiver: sink
  group_by: ['...']      # every label set its own group: no batching of alerts
  group_wait: 0s         # first notification of a new group at once
  group_interval: 5m     # only for later changes to a group; long so it adds no work
  repeat_interval: 24h   # no re-notification during the run
receivers:
  - name: sink
    webhook_configs:
      - url: {sink}/hook
        send_resolved: false
        max_alerts: 0    # 0 = all alerts of the group (one here)
"""


def baton_config(db: Path, sink: str, listen: str, args: argparse.Namespace) -> str:
    return f"""\
server:
  listen: "{listen}"
  shutdown_grace: 2s
storage:
  url: "sqlite:///{db}"
sources:
  bench: {{type: generic, auth: {{type: none}}}}
connectors:
  sink:
    type: webhook
    url: "{sink}/hook"
    concurrency: {args.connector_concurrency}
    timeout: 10s
routes:
  - name: all
    policy: notify
    group_by: ['...']
policies:
  notify:
    levels:
      - notify: [sink]
dispatch:
  poll_interval: {args.poll_interval}
logging:
  level: {args.baton_log_level}
"""


def prefill_history(db: Path, n: int) -> int:
    """Clone a delivered ``deliveries`` row ``n`` times (fresh id, incident id and
    idempotency key), as months of traffic would leave them. Baton must not be running."""
    import sqlite3

    conn = sqlite3.connect(db, isolation_level=None)
    try:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(deliveries)")]
        row = conn.execute("SELECT * FROM deliveries WHERE state = 'delivered' LIMIT 1"
                           ).fetchone()
        if row is None:
            raise RuntimeError("--history: no delivered row to clone (warm-up failed?)")
        template = dict(zip(cols, row, strict=True))
        sql = (f"INSERT INTO deliveries ({', '.join(cols)}) "
               f"VALUES ({', '.join('?' for _ in cols)})")

        def rows() -> Any:
            for i in range(n):
                r = dict(template)
                r["id"] = f"0HISTORY{i:018d}"  # sorts before any real id
                r["incident_id"] = f"0HISTORYINC{i:015d}"
                r["idempotency_key"] = f"history/{i}"
                yield [r[c] for c in cols]

        conn.execute("BEGIN")
        conn.executemany(sql, rows())
        conn.execute("COMMIT")
        return n
    finally:
        conn.close()


# --------------------------------------------------------------------------- the run


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path, procs: Procs) -> None:
        self.args = args
        self.tmp = tmp
        self.procs = procs
        self.sink = ""
        self.results: list[Result] = []
        self.t_end: float = time.monotonic() + float(args.budget)
        self.seq = 0
        self._load_before: dict[str, float] = {}

    def phase_deadline(self, seconds: float) -> float:
        return min(time.monotonic() + seconds, self.t_end)

    def prefix(self, name: str) -> str:
        self.seq += 1
        return f"{name}{self.seq}"

    def out_of_time(self, what: str) -> bool:
        if time.monotonic() < self.t_end:
            return False
        print(f"  skipped {what}: global --budget of {self.args.budget:g}s used up",
              file=sys.stderr)
        return True

    # -- servers ----------------------------------------------------------------------
    async def start_sink(self, http: aiohttp.ClientSession) -> None:
        proc = self.procs.start("sink", [PY, str(HERE / "_servers.py"), "sink",
                                         "--max-seconds", str(self.args.budget + 120)],
                                stdout_pipe=True)
        port = read_port(proc, 15)
        self.sink = f"http://127.0.0.1:{port}"
        await wait_ready(http, f"{self.sink}/stats", proc, 10)

    async def start_alertmanager(self, http: aiohttp.ClientSession, name: str) -> str:
        d = self.tmp / name
        d.mkdir()
        (d / "am.yml").write_text(alertmanager_config(self.sink))
        port = free_port()
        proc = self.procs.start(name, [
            ALERTMANAGER, f"--config.file={d / 'am.yml'}", f"--storage.path={d / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
            "--log.level=warn"])
        base = f"http://127.0.0.1:{port}"
        await wait_ready(http, f"{base}/-/ready", proc, 20)
        return base

    async def with_history(self, http: aiohttp.ClientSession, name: str) -> None:
        """--history N: give the database the past of a gateway that has run for a while.
        Baton creates its schema and delivers a warm-up; then, with Baton stopped, the
        delivered outbox row is cloned N times (new ids and keys, state delivered)."""
        base = await self.start_baton(http, name)
        try:
            await self.warm(http, f"{base}/v1/ingest/bench", "generic", deliver=True)
        finally:
            self.procs.stop(name, grace=10)
        t = time.monotonic()
        n = prefill_history(self.tmp / name / "baton.db", self.args.history)
        print(f"  {name}: {n} delivered outbox rows of history added in "
              f"{time.monotonic() - t:.1f}s", flush=True)

    async def start_baton(self, http: aiohttp.ClientSession, name: str,
                          ingest_only: bool = False, reuse: bool = False) -> str:
        d = self.tmp / name
        d.mkdir(exist_ok=reuse)
        port = free_port()
        cfg = d / "baton.yaml"
        cfg.write_text(baton_config(d / "baton.db", self.sink, f"127.0.0.1:{port}", self.args))
        if ingest_only:
            argv = [PY, str(HERE / "_servers.py"), "baton-ingest", "--config", str(cfg),
                    "--listen", f"127.0.0.1:{port}"]
        elif self.args.trace_store:
            argv = [PY, str(HERE / "_servers.py"), "baton-traced", "--config", str(cfg),
                    "--listen", f"127.0.0.1:{port}", "--trace-out",
                    str(d / "store-trace.json")]
            if self.args.switch_interval:
                argv += ["--switch-interval", str(self.args.switch_interval)]
        else:
            argv = [PY, "-m", "baton", "serve", "--config", str(cfg),
                    "--listen", f"127.0.0.1:{port}"]
        proc = self.procs.start(name, argv, cwd=d)
        base = f"http://127.0.0.1:{port}"
        await wait_ready(http, f"{base}/readyz", proc, 30)
        return base

    @contextlib.contextmanager
    def profiled(self, name: str, label: str | None = None) -> Any:
        """With --py-spy, sample the named Baton process while the block runs (raw folded
        stacks, one file per case; load them into speedscope or flamegraph.pl)."""
        proc = self.procs.running.get(name)
        if not self.args.py_spy or proc is None:
            yield
            return
        out = Path(self.args.py_spy).resolve() / f"{label or name}.folded"
        out.parent.mkdir(parents=True, exist_ok=True)
        spy = self.procs.start(f"py-spy-{name}", [
            str(Path(PY).parent / "py-spy"), "record", "--pid", str(proc.pid), "--format",
            "raw", "--rate", "250", "--threads", "--nonblocking", "-o", str(out),
            *(["--gil"] if self.args.py_spy_gil else [])])
        time.sleep(0.5)  # let it attach
        try:
            yield
        finally:
            if spy.poll() is None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
                with contextlib.suppress(subprocess.TimeoutExpired):
                    spy.wait(15)
            self.procs.stop(f"py-spy-{name}")
            print(f"    py-spy profile: {out}", flush=True)

    # -- cases ------------------------------------------------------------------------
    async def warm(self, http: aiohttp.ClientSession, url: str, shape: str,
                   deliver: bool) -> None:
        """Open connections, compile schemas, fill caches: not measured."""
        prefix = self.prefix("warm")
        n = self.args.warmup
        bodies = make_bodies(shape, prefix, n, 1)
        await closed_loop(http, url, bodies, self.args.concurrency, self.phase_deadline(20))
        if deliver:
            await wait_sink(http, self.sink, prefix, n, self.phase_deadline(20))

    async def measure(self, http: aiohttp.ClientSession, system: str, case: str, url: str,
                      shape: str, batch: int, deliver: bool, server: str) -> Result:
        n = self.args.alerts
        prefix = self.prefix(case.replace("-", ""))
        bodies = make_bodies(shape, prefix, n, batch)
        res = Result(system=system, case=case, batch=batch, alerts=n)
        cpu = self.cpu_start(server)
        reqs = await closed_loop(http, url, bodies, self.args.concurrency,
                                 self.phase_deadline(self.args.phase_timeout))
        ingest_figures(res, reqs)
        if deliver:
            stats = await wait_sink(http, self.sink, prefix, res.accepted,
                                    self.phase_deadline(self.args.phase_timeout))
            e2e_figures(res, reqs, await arrivals(http, self.sink, prefix), stats)
        self.cpu_end(res, cpu)
        self.report(res)
        return res

    def cpu_start(self, server: str) -> tuple[Any, ...]:
        proc = self.procs.running.get(server)
        pid = proc.pid if proc is not None else None
        sink = self.procs.running.get("sink")
        self._load_before = load_now()
        return (pid, time.monotonic(), cpu_times(pid) if pid else (math.nan, math.nan),
                cpu_seconds(sink.pid) if sink else math.nan, time.process_time())

    def cpu_end(self, res: Result, start: tuple[Any, ...]) -> None:
        pid, t0, (user0, sys0), sink0, gen0 = start
        res.load_before, res.load_after = self._load_before, load_now()
        wall = time.monotonic() - t0
        if pid:
            user, system = cpu_times(pid)
            res.server_cpu_s = user + system - user0 - sys0
            res.server_sys_s = system - sys0
            res.server_cpu_util = res.server_cpu_s / wall
            if res.accepted:
                res.server_cpu_ms_per_alert = res.server_cpu_s * 1000 / res.accepted
        sink = self.procs.running.get("sink")
        if sink:
            res.sink_cpu_s = cpu_seconds(sink.pid) - sink0
        res.loadgen_cpu_s = time.process_time() - gen0

    async def measure_paced(self, http: aiohttp.ClientSession, system: str, url: str,
                            shape: str, server: str) -> Result:
        rate, seconds = self.args.rate, self.args.paced_seconds
        n = int(rate * seconds)
        prefix = self.prefix("paced")
        bodies = make_bodies(shape, prefix, n, 1)
        res = Result(system=system, case=f"paced {rate:g}/s", batch=1, alerts=n,
                     target_rate=rate)
        cpu = self.cpu_start(server)
        reqs, lag = await paced(http, url, bodies, rate, 512,
                                self.phase_deadline(seconds + self.args.phase_timeout))
        res.schedule_lag_max_ms = lag * 1000
        ingest_figures(res, reqs)
        stats = await wait_sink(http, self.sink, prefix, res.accepted,
                                self.phase_deadline(self.args.phase_timeout))
        e2e_figures(res, reqs, await arrivals(http, self.sink, prefix), stats)
        self.cpu_end(res, cpu)
        self.report(res)
        return res

    def report(self, r: Result) -> None:
        self.results.append(r)
        line = (f"  {r.system:<20} {r.case:<12} alerts={r.accepted}/{r.alerts} "
                f"ingest={r.ingest_alerts_s:8.0f}/s p50={r.ingest_p50_ms:6.1f}ms "
                f"p99={r.ingest_p99_ms:6.1f}ms")
        if r.delivered is not None:
            line += (f" | e2e={r.e2e_alerts_s:7.0f}/s p50={r.e2e_p50_ms:7.1f}ms "
                     f"p99={r.e2e_p99_ms:7.1f}ms delivered={r.delivered}")
        line += (f" | cpu={r.server_cpu_s:.2f}s ({r.server_cpu_ms_per_alert:.2f} ms/alert)"
                 f" load={r.load_after.get('loadavg_1m', math.nan):.1f}")
        print(line, flush=True)
        for note in r.notes:
            print(f"    note: {note}", flush=True)

    async def case_alertmanager(self, http: aiohttp.ClientSession, batch: int) -> None:
        if self.out_of_time(f"alertmanager batch {batch}"):
            return
        name = f"alertmanager-b{batch}"
        base = await self.start_alertmanager(http, name)
        try:
            url = f"{base}/api/v2/alerts"
            await self.warm(http, url, "alertmanager", deliver=True)
            await self.measure(http, "alertmanager", f"b{batch}", url, "alertmanager",
                               batch, deliver=True, server=name)
        finally:
            self.procs.stop(name)

    async def case_baton(self, http: aiohttp.ClientSession, batch: int) -> None:
        if self.out_of_time(f"baton batch {batch}"):
            return
        name = f"baton-b{batch}"
        if self.args.history:
            await self.with_history(http, name)
        base = await self.start_baton(http, name, reuse=bool(self.args.history))
        try:
            url = f"{base}/v1/ingest/bench"
            await self.warm(http, url, "generic", deliver=True)
            with self.profiled(name):
                res = await self.measure(http, "baton", f"b{batch}", url, "generic", batch,
                                         deliver=True, server=name)
        finally:
            self.procs.stop(name, grace=10)
        self.attach_trace(res, name)

    def attach_trace(self, res: Result, name: str) -> None:
        path = self.tmp / name / "store-trace.json"
        if not self.args.trace_store or not path.exists():
            return
        t = json.loads(path.read_text())
        sizes, commits = t["batch_sizes"], t["commit_ms"]
        res.store_trace = {
            "note": "whole process life, warm-up included",
            "group_commits": t["batches"], "ops": t["ops"],
            "ops_per_commit_mean": sum(sizes) / max(1, len(sizes)),
            "ops_per_commit_p50": pct(sizes, 50), "ops_per_commit_max": max(sizes, default=0),
            "commit_ms_p50": pct(commits, 50), "commit_ms_p99": pct(commits, 99),
            "commit_ms_total": sum(commits), "batch_ms_total": sum(t["batch_ms"]),
            "batch_ms_p50": pct(t["batch_ms"], 50), "batch_ms_p99": pct(t["batch_ms"], 99),
            "reads": t["reads"], "read_ms_p50": pct(t["read_ms"], 50),
            "read_ms_p99": pct(t["read_ms"], 99),
        }
        st = res.store_trace
        print(f"    store: {st['group_commits']} commits, {st['ops_per_commit_mean']:.1f} "
              f"ops/commit (max {st['ops_per_commit_max']}), ops {st['ops']}; commit "
              f"p50 {st['commit_ms_p50']:.1f} ms p99 {st['commit_ms_p99']:.1f} ms, total "
              f"{st['commit_ms_total'] / 1000:.2f} s of {st['batch_ms_total'] / 1000:.2f} s "
              f"in batches; reads {st['reads']} p50 {st['read_ms_p50']:.1f} ms "
              f"p99 {st['read_ms_p99']:.1f} ms", flush=True)

    async def case_bare(self, http: aiohttp.ClientSession) -> None:
        if self.out_of_time("bare aiohttp"):
            return
        proc = self.procs.start("bare", [PY, str(HERE / "_servers.py"), "bare",
                                         "--max-seconds", str(self.args.budget + 60)],
                                stdout_pipe=True)
        try:
            url = f"http://127.0.0.1:{read_port(proc, 15)}/ingest"
            await self.warm(http, url, "generic", deliver=False)
            for batch in (1, 50):
                await self.measure(http, "bare-aiohttp", f"b{batch}", url, "generic", batch,
                                   deliver=False, server="bare")
        finally:
            self.procs.stop("bare")

    async def case_baton_ingest_only(self, http: aiohttp.ClientSession) -> None:
        if self.out_of_time("baton ingest-only"):
            return
        name = "baton-ingest-only"
        base = await self.start_baton(http, name, ingest_only=True)
        try:
            url = f"{base}/v1/ingest/bench"
            await self.warm(http, url, "generic", deliver=False)
            for batch in (1, 50):
                with self.profiled(name, f"{name}-b{batch}"):
                    await self.measure(http, "baton-ingest-only", f"b{batch}", url,
                                       "generic", batch, deliver=False, server=name)
        finally:
            self.procs.stop(name)

    async def case_paced(self, http: aiohttp.ClientSession, system: str) -> None:
        if self.out_of_time(f"{system} paced"):
            return
        name = f"{system}-paced"
        if system == "baton":
            base = await self.start_baton(http, name)
            url, shape = f"{base}/v1/ingest/bench", "generic"
        else:
            base = await self.start_alertmanager(http, name)
            url, shape = f"{base}/api/v2/alerts", "alertmanager"
        try:
            await self.warm(http, url, shape, deliver=True)
            with self.profiled(name) if system == "baton" else contextlib.nullcontext():
                res = await self.measure_paced(http, system, url, shape, server=name)
        finally:
            self.procs.stop(name, grace=10)
        self.attach_trace(res, name)

    async def run(self) -> None:
        conn = aiohttp.TCPConnector(limit=0, limit_per_host=0, force_close=False)
        async with aiohttp.ClientSession(connector=conn) as http:
            await self.start_sink(http)
            only = set(self.args.only.split(",")) if self.args.only else None

            def want(key: str) -> bool:
                return only is None or key in only

            for batch in (1, 50):
                if want("alertmanager"):
                    await self.case_alertmanager(http, batch)
                if want("baton"):
                    await self.case_baton(http, batch)
            if want("bare"):
                await self.case_bare(http)
            if want("ingest"):
                await self.case_baton_ingest_only(http)
            if want("paced"):
                await self.case_paced(http, "baton")
                if not self.args.no_paced_alertmanager:
                    await self.case_paced(http, "alertmanager")


# --------------------------------------------------------------------------- output


def fmt(v: float | int | None, digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}"


def find(results: list[Result], system: str, case: str) -> Result | None:
    return next((r for r in results if r.system == system and r.case == case), None)


def ratio(a: float | None, b: float | None) -> float:
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return math.nan
    return a / b


def ratios(results: list[Result]) -> dict[str, float]:
    out: dict[str, float] = {}
    for b in ("b1", "b50"):
        bt, am = find(results, "baton", b), find(results, "alertmanager", b)
        bare = find(results, "bare-aiohttp", b)
        only = find(results, "baton-ingest-only", b)
        if bt and am:
            out[f"{b} e2e alerts/s baton/alertmanager"] = ratio(bt.e2e_alerts_s, am.e2e_alerts_s)
            out[f"{b} e2e p50 baton/alertmanager"] = ratio(bt.e2e_p50_ms, am.e2e_p50_ms)
            out[f"{b} e2e p99 baton/alertmanager"] = ratio(bt.e2e_p99_ms, am.e2e_p99_ms)
            out[f"{b} ingest alerts/s baton/alertmanager"] = ratio(bt.ingest_alerts_s,
                                                                   am.ingest_alerts_s)
        if bt and bare:
            out[f"{b} ingest alerts/s baton (dispatcher on)/bare"] = ratio(
                bt.ingest_alerts_s, bare.ingest_alerts_s)
        if only and bare:
            out[f"{b} ingest alerts/s baton-ingest-only/bare"] = ratio(
                only.ingest_alerts_s, bare.ingest_alerts_s)
    return out


def table(results: list[Result]) -> str:
    head = ["system", "case", "alerts", "delivered", "e2e al/s", "e2e p50 ms", "e2e p99 ms",
            "ingest al/s", "ingest req/s", "ing p50 ms", "ing p99 ms", "cpu ms/al"]
    rows = [head]
    for r in results:
        rows.append([r.system, r.case, fmt(r.accepted) + ("" if r.accepted == r.alerts
                                                          else f"/{r.alerts}"),
                     fmt(r.delivered), fmt(r.e2e_alerts_s), fmt(r.e2e_p50_ms, 1),
                     fmt(r.e2e_p99_ms, 1), fmt(r.ingest_alerts_s), fmt(r.ingest_req_s),
                     fmt(r.ingest_p50_ms, 1), fmt(r.ingest_p99_ms, 1),
                     fmt(r.server_cpu_ms_per_alert, 2)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = []
    for j, row in enumerate(rows):
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in
                 enumerate(zip(row, widths, strict=True))]
        lines.append("| " + " | ".join(cells) + " |")
        if j == 0:
            lines.append("|" + "|".join("-" * (w + 2) if i < 2 else "-" * (w + 1) + ":"
                                        for i, w in enumerate(widths)) + "|")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "platform": platform.platform(), "aiohttp": aiohttp.__version__}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([ALERTMANAGER, "--version"], capture_output=True, text=True,
                             timeout=10)
        info["alertmanager"] = (out.stdout or out.stderr).splitlines()[0]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src",
                                "connectors"], capture_output=True, text=True,
                               timeout=10).stdout.splitlines()
        info["baton_commit"] = head + (f" + {len(dirty)} uncommitted file(s) in src/, "
                                       "connectors/" if dirty else "")
    return info


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alerts", type=int, help="alerts per closed-loop case (default 2000; "
                   "--quick: 300)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 300 alerts per case, 3 s paced, under 30 seconds")
    p.add_argument("--concurrency", type=int, default=32, help="requests in flight (32)")
    p.add_argument("--rate", type=float, default=500.0, help="paced run: alerts/s (500)")
    p.add_argument("--paced-seconds", type=float, help="paced run length (10; --quick: 3)")
    p.add_argument("--no-paced-alertmanager", action="store_true",
                   help="skip the paced case against Alertmanager")
    p.add_argument("--connector-concurrency", type=int, default=16,
                   help="Baton webhook connector concurrency (16)")
    p.add_argument("--poll-interval", default="100ms", help="Baton dispatch.poll_interval")
    p.add_argument("--baton-log-level", default="info",
                   help="Baton logging.level (info, the default a deployment runs with)")
    p.add_argument("--warmup", type=int, default=50, help="unmeasured alerts per server")
    p.add_argument("--phase-timeout", type=float, default=60.0,
                   help="hard deadline per send phase and per drain phase, seconds")
    p.add_argument("--budget", type=float, help="global deadline in seconds after which "
                   "remaining cases are skipped (default 240; --quick: 60)")
    p.add_argument("--only", help="comma list of: alertmanager,baton,bare,ingest,paced")
    p.add_argument("--py-spy", metavar="DIR", help="sample each measured Baton phase with "
                   "py-spy (pip install py-spy), raw folded stacks into DIR")
    p.add_argument("--py-spy-gil", action="store_true", help="with --py-spy: only sample "
                   "the thread holding the GIL (pure Python CPU, no waits)")
    p.add_argument("--history", type=int, default=0, metavar="N",
                   help="Baton e2e cases: first add N delivered outbox rows to the "
                   "database, as a gateway that has run for months has")
    p.add_argument("--trace-store", action="store_true", help="run Baton (dispatcher on) "
                   "with its SQLite engine timed: commits, ops per commit, read latency")
    p.add_argument("--switch-interval", type=float, help="with --trace-store: run Baton "
                   "with sys.setswitchinterval(N) (an experiment on GIL hand-over)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, dbs)")
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    args.alerts = args.alerts or (300 if args.quick else 2000)
    args.paced_seconds = args.paced_seconds or (3.0 if args.quick else 10.0)
    args.budget = args.budget or (60.0 if args.quick else 240.0)
    if args.quick:
        args.warmup = min(args.warmup, 20)
        args.phase_timeout = min(args.phase_timeout, 20.0)
    if args.alerts < 1 or args.concurrency < 1 or args.rate <= 0:
        p.error("--alerts, --concurrency and --rate must be positive")
    return args


def run_guarded(run: Callable[[], Coroutine[Any, Any, None]], procs: Procs, tmp: Path,
                keep: bool) -> tuple[int, bool]:
    """Run a bench's main coroutine so that whatever happens every child process is
    stopped and the temp dir removed (kept when asked, or when the run failed, for its
    logs). SIGTERM counts as an interrupt. Returns (exit code, whether tmp was kept)."""

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except Exception as e:  # report what was measured so far, then fail
        print(f"error: {type(e).__name__}: {e} (logs in {tmp})", file=sys.stderr)
        keep = True
        code = 1
    finally:
        procs.stop_all()
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return code, keep


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not os.access(ALERTMANAGER, os.X_OK):
        print(f"warning: {ALERTMANAGER} not found; Alertmanager cases will fail",
              file=sys.stderr)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="baton-bench-"))
    procs = Procs(tmp)
    bench = Bench(args, tmp, procs)
    print(f"baton e2e bench: {args.alerts} alerts per case, concurrency {args.concurrency}, "
          f"temp dir {tmp}", flush=True)
    code, args.keep = run_guarded(bench.run, procs, tmp, args.keep)
    elapsed = time.monotonic() - t0
    print()
    print(table(bench.results))
    rs = ratios(bench.results)
    if rs:
        print()
        for k, v in rs.items():
            print(f"  {k:<48} {fmt(v, 2)}")
    print(f"\ntotal {elapsed:.0f}s", flush=True)
    if args.out:
        doc = {"started": started.isoformat(), "seconds": round(elapsed, 1),
               "machine": machine(),
               "args": {k: v for k, v in vars(args).items()},
               "results": [asdict(r) for r in bench.results], "ratios": rs}
        Path(args.out).write_text(json.dumps(doc, indent=2, default=str) + "\n")
        print(f"results written to {args.out}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
