"""``kill -9`` in the middle of a burst: what was answered 202 survives, once, and is sent.

A client fires alerts at Baton (one per request, distinct dedup keys, 32 at a time) and
SIGKILLs the process as soon as ~1000 have been answered 202, with requests, commits and
deliveries in flight. Baton is restarted on the same SQLite file and nothing is sent again.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest
from procs import Baton, WebhookSink, query, wait_until

pytestmark = pytest.mark.integration

TOTAL = 3000
KILL_AFTER = 1000  # answered 202s before the SIGKILL
CONCURRENCY = 32
DELIVER_TIMEOUT = 120.0  # all stored incidents at the sink after the restart


@dataclass
class Burst:
    accepted: dict[str, str | None] = field(default_factory=dict)  # key -> incident id
    unanswered: set[str] = field(default_factory=set)  # sent; connection cut or refused
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    sent: int = 0
    accepted_at_kill: int = 0
    seconds_to_kill: float = 0.0


def alert(i: int) -> dict[str, Any]:
    return {"dedup_key": f"crash-{i:05d}", "summary": f"crash test alert {i}",
            "severity": "warning", "service": "crash", "labels": {"n": str(i)}}


async def burst(url: str, token: str, pid: int) -> Burst:
    """Send up to TOTAL alerts; SIGKILL ``pid`` once KILL_AFTER got 202; stop sending."""
    out = Burst()
    todo = collections.deque(range(TOTAL))
    killed = asyncio.Event()
    started = time.monotonic()

    async def worker(session: aiohttp.ClientSession) -> None:
        while todo and not killed.is_set():  # bounded: each turn takes one of TOTAL items
            body = alert(todo.popleft())
            key = body["dedup_key"]
            out.sent += 1
            try:
                async with session.post(url, json=body) as resp:
                    out.statuses[resp.status] += 1
                    if resp.status != 202:
                        continue
                    # The status line is only written after the commit: this key counts
                    # as accepted even if the body is cut off by the kill.
                    out.accepted[key] = None
                    answer = await resp.json()
                    out.accepted[key] = answer["incidents"][0]
            except (aiohttp.ClientError, OSError, TimeoutError):
                if key not in out.accepted:
                    out.unanswered.add(key)
                continue
            if len(out.accepted) >= KILL_AFTER and not killed.is_set():
                os.kill(pid, signal.SIGKILL)
                killed.set()
                out.accepted_at_kill = len(out.accepted)
                out.seconds_to_kill = time.monotonic() - started

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     headers={"Authorization": f"Bearer {token}"}) as s:
        await asyncio.wait_for(asyncio.gather(*(worker(s) for _ in range(CONCURRENCY))),
                               timeout=120)
    return out


def test_sigkill_mid_burst_loses_nothing_answered(
        make_baton: Any, sink: WebhookSink, token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    baton: Baton = make_baton(connector={"concurrency": 16})
    db = baton.db_path

    b = asyncio.run(burst(baton.url("/v1/ingest/gen"), token, baton.pid))
    assert baton.wait(10.0) == -signal.SIGKILL, f"died on its own\n{baton.log_tail()}"
    assert len(b.accepted) >= KILL_AFTER, f"killed too early: {b.statuses}"
    # 503 (cannot store now, retry) is a legitimate answer under load; anything else
    # means the test sent something wrong.
    odd = {s: n for s, n in b.statuses.items() if s not in (202, 503)}
    assert not odd, f"unexpected answers before the kill: {odd}"
    at_sink_before = len(sink.received)

    restarted = time.monotonic()
    baton.start(port=baton.port)  # same config, same database; nothing is sent again

    # --- storage: every 202 is there exactly once, in the incident its answer named.
    rows = query(db, "SELECT dedup_key, incident_id FROM alerts")
    copies = collections.Counter(k for k, _ in rows)
    stored = dict(rows)
    assert not [k for k, n in copies.items() if n > 1], "an alert was stored twice"
    lost = sorted(set(b.accepted) - set(stored))
    assert not lost, f"{len(lost)} alerts answered 202 are not stored, e.g. {lost[:5]}"
    moved = {k: (i, stored[k]) for k, i in b.accepted.items() if i and i != stored[k]}
    assert not moved, f"alerts stored in another incident than answered: {moved}"
    assert set(stored) <= set(b.accepted) | b.unanswered, "stored something never sent"
    incidents = {i for (i,) in query(db, "SELECT id FROM incidents")}
    assert incidents == set(stored.values()), "one incident per alert, no orphans"
    events = query(db, "SELECT COUNT(*) FROM events")[0][0]
    assert events == len(incidents), "raw payload and incident are committed together"
    triggers = dict(query(db, "SELECT incident_id, COUNT(*) FROM deliveries "
                              "WHERE action = 'trigger' GROUP BY incident_id"))
    assert triggers == dict.fromkeys(incidents, 1), "each incident has its outbox row"

    # --- delivery: every stored incident reaches the sink; repeats reuse their key.
    def states() -> dict[str, int]:
        return dict(query(db, "SELECT state, COUNT(*) FROM deliveries GROUP BY state"))

    wait_until(lambda: states() == {"delivered": len(incidents)}, DELIVER_TIMEOUT,
               "every delivery to be delivered", interval=0.2,
               detail=lambda: f"{states()}\n{baton.log_tail(2000)}")
    delivered_after = time.monotonic() - restarted
    ledger = baton.deliveries()
    assert len(ledger) == len(incidents)
    assert {d["state"] for d in ledger} == {"delivered"}
    ledger_key = {d["incident_id"]: d["idempotency_key"] for d in ledger}

    seen: dict[str, list[str]] = collections.defaultdict(list)
    for r in sink.received:
        assert r.note.get("action") == "trigger", r.body
        seen[r.body["id"]].append(r.headers.get("Idempotency-Key", ""))
    assert set(seen) >= incidents, f"{len(incidents - set(seen))} incidents never arrived"
    assert set(seen) <= incidents, "the sink got incidents that are not stored"
    mixed = {i: keys for i, keys in seen.items() if {unquote(k) for k in keys} != {ledger_key[i]}}
    assert not mixed, f"repeats under another idempotency key: {list(mixed.items())[:3]}"
    duplicates = sum(len(keys) - 1 for keys in seen.values())

    with capsys.disabled():
        print(f"\n[crash] sent={b.sent} accepted(202)={len(b.accepted)} "
              f"(at kill {b.accepted_at_kill}, {b.seconds_to_kill:.2f}s into the burst) "
              f"unanswered={len(b.unanswered)} 503s={b.statuses[503]} "
              f"stored_but_unanswered={len(set(stored) - set(b.accepted))} "
              f"stored={len(stored)} at_sink_before_kill={at_sink_before} "
              f"sink_posts={len(sink.received)} duplicates={duplicates} "
              f"all_delivered_after_restart={delivered_after:.2f}s")
