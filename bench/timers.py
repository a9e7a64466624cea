"""Timer benchmark: a gateway holding 100,000 open incidents with pending escalation timers.

    /work/venv/bin/python bench/timers.py [--incidents 100000] [--quick] [--out results.json]

One invocation starts a webhook sink (``_servers.py level-sink``) and a ``baton serve``
subprocess on a temp SQLite database, then:

1. **empty**: memory (VmRSS) and idle CPU of the gateway with an empty database;
2. **populate**: ``--incidents`` alerts POSTed to a generic source (lists of ``--batch``,
   ``--concurrency`` requests in flight), each opening an incident whose level-1 trigger
   is delivered to the sink and whose escalation timer is armed ``--background-after``
   (1 h) ahead, so it stays pending for the whole run; waits until every level-1
   trigger has reached the sink;
3. **populated**: memory and idle CPU with those timers pending;
4. **restarted**: the gateway stopped (SIGTERM) and started again on the same database:
   memory and idle CPU of a fresh process with the timers pending;
5. **firing**: ``--fire`` more alerts at a steady rate over ``--fire-seconds``, each with
   an escalation timer ``--fire-after`` (20 s) ahead, so their due times spread over a
   window while the background timers stay pending; waits for every level-2 trigger.

Per fired timer, from the database (read-only, after the run) and the sink:
``fire`` = the timer's ``fired_at`` (the ``at`` of its ``escalated`` timeline entry) minus
its ``due_at`` (incident creation + escalate_after); ``delivered`` = the level-2 trigger's
arrival at the sink (wall clock) minus ``due_at``. See bench/README.md ("Timers").

Everything listens on 127.0.0.1; every wait has a deadline, the whole run a global one
(``--budget``); every child process is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
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
    cpu_times,
    fmt,
    free_port,
    load_now,
    machine,
    pct,
    read_port,
    run_guarded,
    wait_ready,
)

HEADERS = {"Content-Type": "application/json"}

# The queries the dispatcher runs against the timers table (store/escalations.py), for
# EXPLAIN QUERY PLAN on the populated database.
PLANS = {
    "fire_due": "SELECT t.* FROM timers t WHERE t.state = 'pending' AND t.due_at <= ? "
                "ORDER BY t.due_at, t.id LIMIT ?",
    "next_due": "SELECT MIN(due_at) AS t FROM timers WHERE state = 'pending'",
}


# --------------------------------------------------------------------------- /proc


def memory(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (peak RSS) and RssAnon of a process, in KiB."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[key] = int(rest.split()[0])
    return out


def mib(kib: int | None) -> float:
    return math.nan if kib is None else kib / 1024


def db_size(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())


# --------------------------------------------------------------------------- payloads


def alert(alert_id: str, group: str) -> dict[str, Any]:
    return {"dedup_key": alert_id, "summary": f"timer bench {alert_id}",
            "severity": "warning", "service": "bench",
            "labels": {"alertname": "TimerBench", "bench_id": alert_id, "set": group}}


def baton_config(db: Path, sink: str, listen: str, args: argparse.Namespace) -> str:
    return f"""\
server:
  listen: "{listen}"
  shutdown_grace: 5s
storage:
  url: "sqlite:///{db}"
sources:
  bench: {{type: generic, auth: {{type: none}}}}
connectors:
  hook:
    type: webhook
    url: "{sink}/hook"
    concurrency: {args.connector_concurrency}
    timeout: 10s
  bulk:              # the background set's level-1 triggers: drained fast, before measuring
    type: webhook
    url: "{sink}/hook"
    concurrency: {args.bulk_concurrency}
    timeout: 10s
routes:
  - name: timed
    matchers: ['set="timed"']
    policy: timed
    group_by: ['...']
  - name: background
    policy: background
    group_by: ['...']
policies:
  background:        # the 100k: escalate long after the run ends, so the timer stays pending
    levels:
      - notify: [bulk]
        escalate_after: {args.background_after}
      - notify: [bulk]
  timed:             # the measured ones
    levels:
      - notify: [hook]
        escalate_after: {args.fire_after}
      - notify: [hook]
dispatch:
  poll_interval: {args.poll_interval}
logging:
  level: {args.baton_log_level}
"""


# --------------------------------------------------------------------------- results


@dataclass
class Snapshot:
    """The gateway at one moment: memory, and CPU over an idle window."""

    phase: str
    pending_timers: int = 0
    rss_mib: float = math.nan
    hwm_mib: float = math.nan         # peak RSS of this process so far
    anon_mib: float = math.nan
    threads: int = 0
    idle_seconds: float = math.nan
    idle_cpu_s: float = math.nan
    idle_cpu_pct: float = math.nan    # of one core
    db_mib: float = math.nan          # database + WAL on disk
    load: dict[str, float] = field(default_factory=dict)


@dataclass
class Results:
    incidents: int = 0
    populate_accepted: int = 0
    populate_errors: int = 0
    populate_retries: int = 0
    populate_seconds: float = math.nan
    populate_alerts_s: float = math.nan
    populate_cpu_s: float = math.nan
    populate_backlog_max: int = 0     # most level-1 triggers sent but not yet at the sink
    populate_held_back_s: float = 0.0  # mean time a worker waited for the backlog to fall
    drain_seconds: float = math.nan   # last 202 -> last level-1 trigger at the sink
    level1_delivered: int = 0
    restart_ready_seconds: float = math.nan
    snapshots: list[Snapshot] = field(default_factory=list)
    fire_sent: int = 0
    fire_accepted: int = 0
    fire_rate: float = math.nan
    fire_after_s: float = math.nan
    fired: int = 0                    # timers of the measured set in state fired
    escalated_entries: int = 0        # ... with an 'escalated' timeline entry at fired_at
    level2_delivered: int = 0
    fire_ms: dict[str, float] = field(default_factory=dict)       # due -> fired_at
    delivered_ms: dict[str, float] = field(default_factory=dict)  # due -> sink arrival
    level1_ms: dict[str, float] = field(default_factory=dict)     # created -> sink (L1)
    fire_phase_cpu_pct: float = math.nan
    fire_phase_rss_max_mib: float = math.nan
    background_still_pending: int = 0
    background_fired: int = 0
    sink_dups: int = 0
    query_plans: dict[str, list[str]] = field(default_factory=dict)
    query_ms: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def dist(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"n": len(values), "min": min(values), "p50": pct(values, 50),
            "p90": pct(values, 90), "p99": pct(values, 99), "max": max(values),
            "mean": sum(values) / len(values)}


# --------------------------------------------------------------------------- the run


class TimerBench:
    def __init__(self, args: argparse.Namespace, tmp: Path, procs: Procs) -> None:
        self.args = args
        self.tmp = tmp
        self.procs = procs
        self.res = Results(incidents=args.incidents)
        self.t_end = time.monotonic() + args.budget
        self.sink = ""
        self.base = ""
        self.db = tmp / "baton.db"
        self.cfg = tmp / "baton.yaml"

    def deadline(self, seconds: float, capped: bool = True) -> float:
        """``seconds`` from now; capped by the global --budget unless told (the firing
        phase has its own bounded deadlines: it is the measurement, never cut short)."""
        end = time.monotonic() + seconds
        return min(end, self.t_end) if capped else end

    def note(self, text: str) -> None:
        self.res.notes.append(text)
        print(f"  note: {text}", flush=True)

    @property
    def pid(self) -> int:
        return self.procs.running["baton"].pid

    # -- processes --------------------------------------------------------------------
    async def start_sink(self, http: aiohttp.ClientSession) -> None:
        proc = self.procs.start("sink", [PY, str(HERE / "_servers.py"), "level-sink",
                                         "--max-seconds", str(self.args.budget + 120)],
                                stdout_pipe=True)
        self.sink = f"http://127.0.0.1:{read_port(proc, 15)}"
        await wait_ready(http, f"{self.sink}/stats", proc, 10)

    async def start_baton(self, http: aiohttp.ClientSession) -> float:
        port = free_port()
        self.cfg.write_text(baton_config(self.db, self.sink, f"127.0.0.1:{port}", self.args))
        t = time.monotonic()
        proc = self.procs.start("baton", [PY, "-m", "baton", "serve", "--config",
                                          str(self.cfg), "--listen", f"127.0.0.1:{port}"],
                                cwd=self.tmp)
        self.base = f"http://127.0.0.1:{port}"
        await wait_ready(http, f"{self.base}/readyz", proc, 60)
        return time.monotonic() - t

    async def sink_stats(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        async with http.get(f"{self.sink}/stats") as r:
            return dict(await r.json())

    async def wait_sink(self, http: aiohttp.ClientSession, key: str, n: int,
                        deadline: float, every: float = 0.1) -> int:
        """Poll the sink until ``n`` distinct ids of ``key`` (``prefix@level``) arrived."""
        while True:
            got = int((await self.sink_stats(http))["count"].get(key, 0))
            if got >= n or time.monotonic() >= deadline:
                return got
            if self.procs.running["baton"].poll() is not None:
                raise RuntimeError("baton exited")
            await asyncio.sleep(every)

    # -- measurements -----------------------------------------------------------------
    def pending(self) -> int:
        with self.ro() as conn:
            row = conn.execute("SELECT COUNT(*) FROM timers WHERE state = 'pending'"
                               ).fetchone()
        return int(row[0])

    @contextlib.contextmanager
    def ro(self) -> Any:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            yield conn
        finally:
            conn.close()

    async def snapshot(self, phase: str) -> Snapshot:
        """Let the gateway settle, then sample memory and CPU over an idle window."""
        await asyncio.sleep(self.args.settle)
        s = Snapshot(phase=phase, pending_timers=self.pending())
        s.load = load_now()
        u0, k0 = cpu_times(self.pid)
        t0 = time.monotonic()
        await asyncio.sleep(self.args.idle_seconds)
        u1, k1 = cpu_times(self.pid)
        s.idle_seconds = time.monotonic() - t0
        s.idle_cpu_s = (u1 + k1) - (u0 + k0)
        s.idle_cpu_pct = 100 * s.idle_cpu_s / s.idle_seconds
        m = memory(self.pid)
        s.rss_mib, s.hwm_mib = mib(m.get("VmRSS")), mib(m.get("VmHWM"))
        s.anon_mib, s.threads = mib(m.get("RssAnon")), m.get("Threads", 0)
        s.db_mib = db_size(self.db) / 2**20
        self.res.snapshots.append(s)
        print(f"  {phase:<11} pending timers {s.pending_timers:>7,}  RSS {s.rss_mib:6.1f} MiB "
              f"(peak {s.hwm_mib:6.1f})  idle CPU {s.idle_cpu_pct:5.2f} % of a core over "
              f"{s.idle_seconds:.0f} s  db {s.db_mib:6.1f} MiB", flush=True)
        return s

    async def _post(self, http: aiohttp.ClientSession, url: str, body: bytes,
                    deadline: float) -> tuple[int, float]:
        """POST until 2xx, a 4xx, or the deadline; returns (status, answer time)."""
        tries = 0
        while True:
            status = 0
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                timeout = aiohttp.ClientTimeout(total=max(0.5, deadline - time.monotonic()))
                async with http.post(url, data=body, headers=HEADERS, timeout=timeout) as r:
                    await r.read()
                    status = r.status
            if 200 <= status < 300 or (400 <= status < 500 and status != 429):
                return status, time.monotonic()
            tries += 1
            self.res.populate_retries += 1
            if time.monotonic() >= deadline or tries > 20:
                return status, time.monotonic()
            await asyncio.sleep(0.2 * tries)  # 503 (write queue full) or a reset

    async def populate(self, http: aiohttp.ClientSession) -> None:
        """Open ``--incidents`` incidents, ``--batch`` alerts per request, ``--concurrency``
        requests in flight; a request is sent only while fewer than ``--max-backlog``
        level-1 triggers wait for delivery (sent or accepted, not yet at the sink)."""
        n, batch = self.args.incidents, self.args.batch
        url = f"{self.base}/v1/ingest/bench"
        ids = [f"bg-{i:07d}" for i in range(n)]
        chunks = [ids[i:i + batch] for i in range(0, n, batch)]
        it = iter(chunks)
        deadline = self.deadline(self.args.populate_timeout)
        accepted = errors = 0
        sent = 0          # alerts in requests sent so far (answered or not)
        delivered = 0     # level-1 triggers at the sink, polled
        waited = 0.0      # worker-seconds spent held back by --max-backlog
        backlog_max = 0

        async def poll_sink() -> None:
            nonlocal delivered
            while True:
                delivered = int((await self.sink_stats(http))["count"].get("bg@1", 0))
                await asyncio.sleep(0.2)

        async def worker() -> None:
            nonlocal accepted, errors, sent, waited, backlog_max
            for chunk in it:
                cap = self.args.max_backlog
                t = time.monotonic()
                while cap and sent - errors * batch + len(chunk) - delivered > cap:
                    if time.monotonic() >= deadline:
                        return
                    await asyncio.sleep(0.05)
                waited += time.monotonic() - t
                if time.monotonic() >= deadline:
                    return
                body = json.dumps([alert(a, "bg") for a in chunk]).encode()
                sent += len(chunk)
                backlog_max = max(backlog_max, sent - delivered)
                status, _ = await self._post(http, url, body, deadline)
                if 200 <= status < 300:
                    accepted += len(chunk)
                else:
                    errors += 1

        async def progress() -> None:
            while True:
                await asyncio.sleep(10)
                el = time.monotonic() - t0
                print(f"    populate: {accepted:,}/{n:,} accepted, {delivered:,} level-1 "
                      f"triggers delivered in {el:.0f} s ({accepted / el:,.0f}/s, "
                      f"{delivered / el:,.0f}/s)", flush=True)

        c0 = sum(cpu_times(self.pid))
        t0 = time.monotonic()
        helpers = [asyncio.create_task(progress()), asyncio.create_task(poll_sink())]
        try:
            await asyncio.gather(*(worker() for _ in range(self.args.concurrency)))
        finally:
            for h in helpers:
                h.cancel()
        self.res.populate_backlog_max = backlog_max
        self.res.populate_held_back_s = waited / self.args.concurrency
        t_last = time.monotonic()
        r = self.res
        r.populate_accepted, r.populate_errors = accepted, errors
        r.populate_seconds = t_last - t0
        r.populate_alerts_s = accepted / r.populate_seconds
        print(f"  populate    {accepted:,}/{n:,} incidents opened in {r.populate_seconds:.1f} s "
              f"({r.populate_alerts_s:,.0f}/s, {errors} failed requests, "
              f"{r.populate_retries} retries)", flush=True)
        if accepted < n:
            self.note(f"only {accepted} of {n} background alerts accepted before the "
                      "deadline")
        # Every level-1 trigger delivered: the state of a gateway whose incidents were
        # opened a while ago, with nothing but the pending timers left to do.
        got = await self.wait_sink(http, "bg@1", accepted,
                                   self.deadline(self.args.populate_timeout), every=0.5)
        r.level1_delivered = got
        r.drain_seconds = time.monotonic() - t_last
        r.populate_cpu_s = sum(cpu_times(self.pid)) - c0
        print(f"  drain       {got:,} level-1 triggers at the sink {r.drain_seconds:.1f} s "
              f"after the last 202 (gateway CPU for populate+drain "
              f"{r.populate_cpu_s:.1f} s)", flush=True)
        if got < accepted:
            self.note(f"{accepted - got} level-1 triggers not delivered before the deadline: "
                      "idle figures include that delivery work")

    async def fire(self, http: aiohttp.ClientSession) -> dict[str, float]:
        """Post the measured set at a steady rate (1 alert per request, open loop); returns
        each id's send time (wall clock)."""
        n, secs = self.args.fire, self.args.fire_seconds
        rate = n / secs
        url = f"{self.base}/v1/ingest/bench"
        sent: dict[str, float] = {}
        accepted = 0
        tasks: set[asyncio.Task[None]] = set()
        sem = asyncio.Semaphore(256)
        deadline = self.deadline(secs + 60, capped=False)

        async def one(alert_id: str, body: bytes) -> None:
            nonlocal accepted
            try:
                status, _ = await self._post(http, url, body, deadline)
                accepted += 200 <= status < 300
            finally:
                sem.release()

        t0 = time.monotonic() + 0.05
        for i in range(n):
            due = t0 + i / rate
            now = time.monotonic()
            if now >= deadline:
                break
            if due > now:
                await asyncio.sleep(due - now)
            await sem.acquire()
            alert_id = f"t-{i:06d}"
            sent[alert_id] = time.time()
            task = asyncio.create_task(one(alert_id, json.dumps([alert(alert_id, "timed")])
                                           .encode()))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(list(tasks), timeout=max(0.1, deadline - time.monotonic()))
        self.res.fire_sent, self.res.fire_accepted = len(sent), accepted
        self.res.fire_rate = rate
        print(f"  fire        {accepted:,}/{n:,} incidents with timers due in "
              f"{self.args.fire_after} posted at {rate:,.0f}/s over {secs:g} s", flush=True)
        return sent

    async def watch_firing(self, http: aiohttp.ClientSession, n: int, until: float) -> None:
        """Wait for every level-2 trigger, sampling the gateway's CPU and RSS meanwhile."""
        u0, k0 = cpu_times(self.pid)
        t0 = time.monotonic()
        rss_max = 0.0
        while True:
            got = int((await self.sink_stats(http))["count"].get("t@2", 0))
            rss_max = max(rss_max, mib(memory(self.pid).get("VmRSS")))
            if got >= n or time.monotonic() >= until:
                break
            if self.procs.running["baton"].poll() is not None:
                raise RuntimeError("baton exited")
            await asyncio.sleep(0.25)
        u1, k1 = cpu_times(self.pid)
        self.res.fire_phase_cpu_pct = 100 * ((u1 + k1) - (u0 + k0)) / (time.monotonic() - t0)
        self.res.fire_phase_rss_max_mib = rss_max
        self.res.level2_delivered = got
        if got < n:
            self.note(f"{n - got} level-2 triggers not at the sink before the deadline")

    async def arrivals(self, http: aiohttp.ClientSession, prefix: str,
                       level: str) -> dict[str, float]:
        async with http.get(f"{self.sink}/arrivals",
                            params={"prefix": prefix, "level": level}) as r:
            return {k: float(v) for k, v in (await r.json()).items()}

    def figures(self, l1: dict[str, float], l2: dict[str, float]) -> None:
        """Per measured incident, from the database (read-only): created_at, the escalate
        timer's due_at/fired_at and the escalated timeline entry's at."""
        r = self.res
        with self.ro() as conn:
            rows = conn.execute(
                "SELECT a.dedup_key, i.created_at, t.due_at, t.fired_at, t.state, "
                "  (SELECT MIN(e.at) FROM timeline e WHERE e.incident_id = i.id "
                "     AND e.type = 'escalated') "
                "FROM alerts a JOIN incidents i ON i.id = a.incident_id "
                "JOIN timers t ON t.incident_id = i.id AND t.kind = 'escalate' "
                "  AND t.level = 1 "
                "WHERE a.dedup_key >= 't-' AND a.dedup_key < 't.'").fetchall()
            bg = dict(conn.execute(
                "SELECT t.state, COUNT(*) FROM timers t JOIN alerts a "
                "ON a.incident_id = t.incident_id WHERE a.dedup_key >= 'bg-' "
                "AND a.dedup_key < 'bg.' GROUP BY t.state").fetchall())
        r.background_still_pending = int(bg.get("pending", 0))
        r.background_fired = int(bg.get("fired", 0))
        fire, delivered, first = [], [], []
        for key, created, due, fired_at, state, esc_at in rows:
            if key in l1:
                first.append((l1[key] - created) * 1000)
            if state != "fired" or fired_at is None:
                continue
            r.fired += 1
            fire.append((fired_at - due) * 1000)
            if esc_at is not None and abs(esc_at - fired_at) < 1e-6:
                r.escalated_entries += 1
            if key in l2:
                delivered.append((l2[key] - due) * 1000)
        r.fire_ms, r.delivered_ms, r.level1_ms = dist(fire), dist(delivered), dist(first)
        if r.fired != r.escalated_entries:
            self.note(f"{r.fired - r.escalated_entries} fired timers without an 'escalated' "
                      "timeline entry at fired_at")
        if r.background_fired:
            self.note(f"{r.background_fired} background timers fired (due in "
                      f"{self.args.background_after}): should be 0")

    def plans(self) -> None:
        """EXPLAIN QUERY PLAN and timing of the dispatcher's timer queries on the populated
        database (read-only, with the gateway idle)."""
        with self.ro() as conn:
            now = time.time()
            for name, sql in PLANS.items():
                params: tuple[Any, ...] = (now, 200) if "?" in sql else ()
                plan = [row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
                self.res.query_plans[name] = plan
                t = time.perf_counter()
                for _ in range(100):
                    conn.execute(sql, params).fetchall()
                self.res.query_ms[name] = (time.perf_counter() - t) * 1000 / 100
                print(f"  plan {name:<9} {' / '.join(plan)}  "
                      f"({self.res.query_ms[name]:.3f} ms)", flush=True)

    async def run(self) -> None:
        a = self.args
        conn = aiohttp.TCPConnector(limit=0, limit_per_host=0)
        async with aiohttp.ClientSession(connector=conn) as http:
            await self.start_sink(http)
            await self.start_baton(http)
            await self.snapshot("empty")
            await self.populate(http)
            await self.snapshot("populated")
            self.plans()
            # Restart on the populated database: a fresh process must not load the
            # pending timers into memory either.
            self.procs.stop("baton", grace=15)
            self.res.restart_ready_seconds = await self.start_baton(http)
            print(f"  restart     ready in {self.res.restart_ready_seconds:.1f} s", flush=True)
            await self.snapshot("restarted")
            # Firing with the background timers pending.
            self.res.fire_after_s = float(a.fire_after_seconds)
            sent = await self.fire(http)
            last_due = max(sent.values(), default=time.time()) + a.fire_after_seconds
            until = self.deadline(max(0.0, last_due - time.time()) + a.drain_timeout,
                                  capped=False)
            await self.watch_firing(http, self.res.fire_accepted, until)
            l1 = await self.arrivals(http, "t", "1")
            l2 = await self.arrivals(http, "t", "2")
            self.res.sink_dups = int((await self.sink_stats(http)).get("dups", 0))
            self.figures(l1, l2)


# --------------------------------------------------------------------------- output


def report(r: Results) -> str:
    lines = ["| phase | pending timers | RSS MiB | peak RSS MiB | idle CPU % of a core | "
             "db+WAL MiB |", "|---|---:|---:|---:|---:|---:|"]
    for s in r.snapshots:
        lines.append(f"| {s.phase} | {s.pending_timers:,} | {fmt(s.rss_mib, 1)} | "
                     f"{fmt(s.hwm_mib, 1)} | {fmt(s.idle_cpu_pct, 2)} | {fmt(s.db_mib, 1)} |")
    lines += ["", "| lateness after due time, ms | n | p50 | p90 | p99 | max |",
              "|---|---:|---:|---:|---:|---:|"]
    for label, d in (("timer fired (escalated entry at)", r.fire_ms),
                     ("level-2 trigger at the sink", r.delivered_ms)):
        lines.append(f"| {label} | {d.get('n', 0):,} | {fmt(d.get('p50'), 1)} | "
                     f"{fmt(d.get('p90'), 1)} | {fmt(d.get('p99'), 1)} | "
                     f"{fmt(d.get('max'), 1)} |")
    d = r.level1_ms
    lines.append(f"| (level-1 trigger at the sink after creation) | {d.get('n', 0):,} | "
                 f"{fmt(d.get('p50'), 1)} | {fmt(d.get('p90'), 1)} | {fmt(d.get('p99'), 1)} "
                 f"| {fmt(d.get('max'), 1)} |")
    lines += ["",
              f"populate: {r.populate_accepted:,} incidents in {fmt(r.populate_seconds, 1)} s "
              f"({fmt(r.populate_alerts_s)}/s), level-1 triggers drained "
              f"{fmt(r.drain_seconds, 1)} s later; restart ready in "
              f"{fmt(r.restart_ready_seconds, 1)} s",
              f"firing: {r.fired:,}/{r.fire_accepted:,} timers fired, "
              f"{r.level2_delivered:,} level-2 triggers delivered, gateway CPU "
              f"{fmt(r.fire_phase_cpu_pct, 1)} % of a core, RSS max "
              f"{fmt(r.fire_phase_rss_max_mib, 1)} MiB; background timers still pending "
              f"{r.background_still_pending:,} (fired {r.background_fired})"]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--incidents", type=int, help="background incidents with a pending "
                   "timer (100000; --quick: 5000)")
    p.add_argument("--quick", action="store_true", help="smoke run, under a minute")
    p.add_argument("--batch", type=int, default=500, help="alerts per populate request")
    p.add_argument("--concurrency", type=int, default=8, help="populate requests in flight")
    p.add_argument("--max-backlog", type=int, default=3000,
                   help="populate: hold requests back while this many level-1 triggers "
                   "are undelivered (3000; 0: no limit, see bench/README.md)")
    p.add_argument("--background-after", default="1h",
                   help="escalate_after of the background incidents (1h)")
    p.add_argument("--fire", type=int, help="measured incidents (2000; --quick: 300)")
    p.add_argument("--fire-seconds", type=float, help="post them over this long "
                   "(10; --quick: 3)")
    p.add_argument("--fire-after", type=int, help="their escalate_after in seconds "
                   "(20; --quick: 8)")
    p.add_argument("--connector-concurrency", type=int, default=16,
                   help="concurrency of the measured set's webhook connector (16)")
    p.add_argument("--bulk-concurrency", type=int, default=64,
                   help="concurrency of the background set's webhook connector (64)")
    p.add_argument("--poll-interval", default="1s", help="dispatch.poll_interval (1s, the "
                   "default)")
    p.add_argument("--baton-log-level", default="info", help="Baton logging.level (info)")
    p.add_argument("--idle-seconds", type=float, help="idle CPU window (10; --quick: 3)")
    p.add_argument("--settle", type=float, default=2.0,
                   help="seconds to wait before each idle window")
    p.add_argument("--populate-timeout", type=float, default=300.0,
                   help="deadline for populating, and for draining the level-1 triggers")
    p.add_argument("--drain-timeout", type=float, default=30.0,
                   help="after the last due time, how long to wait for level-2 triggers")
    p.add_argument("--budget", type=float, help="global deadline, seconds (400; --quick: 90)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (db, logs)")
    p.add_argument("--out", help="write the results as JSON here")
    a = p.parse_args(argv)
    q = a.quick
    a.incidents = a.incidents if a.incidents is not None else (5000 if q else 100_000)
    a.fire = a.fire or (300 if q else 2000)
    a.fire_seconds = a.fire_seconds or (3.0 if q else 10.0)
    a.fire_after_seconds = a.fire_after or (8 if q else 20)
    a.fire_after = f"{a.fire_after_seconds}s"
    a.idle_seconds = a.idle_seconds or (3.0 if q else 10.0)
    a.budget = a.budget or (90.0 if q else 400.0)
    if a.incidents < 0 or a.fire < 1 or a.batch < 1 or a.concurrency < 1:
        p.error("--incidents must be >= 0, --fire, --batch and --concurrency positive")
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="baton-timers-"))
    procs = Procs(tmp)
    bench = TimerBench(args, tmp, procs)
    print(f"baton timer bench: {args.incidents:,} background incidents, {args.fire:,} "
          f"timed ({args.fire_after}), temp dir {tmp}", flush=True)
    code, args.keep = run_guarded(bench.run, procs, tmp, args.keep)
    elapsed = time.monotonic() - t0
    print()
    print(report(bench.res))
    print(f"\ntotal {elapsed:.0f}s", flush=True)
    if args.out:
        info = machine()
        info.pop("alertmanager", None)
        doc = {"started": started.isoformat(), "seconds": round(elapsed, 1),
               "machine": info, "args": vars(args), "results": asdict(bench.res)}
        Path(args.out).write_text(json.dumps(doc, indent=2, default=str) + "\n")
        print(f"results written to {args.out}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
