"""Inhibition and silence checks with many open incidents: what one new alert costs on the
storage writer when an outage has filled the store.

Builds a SQLite store (in a temp dir) with ``--open`` open incidents (1 % of them
``NodeDown``, the rest ``HighLoad``, each on its own instance) and ``--silences`` active
silences that match none of the probes, under one rule (``NodeDown`` inhibits warnings of
the same instance). Then sends ``--probes`` warnings, one per request, half of them on an
instance whose ``NodeDown`` fires (inhibited), and reports:

- ingest: the store's ``ingest`` call per probe alert (one write transaction: dedup,
  routing decision stored, suppression check, timeline, outbox), p50/p99 in ms;
- check: the suppression check alone (silences + inhibition) in a read transaction, p50/p99
  in ms, where this version has it (``baton.suppression``).

The ingest figure runs on any Baton version with the same store API, so a run on an older
checkout gives the "before" (that version scanned every firing alert of every open
incident). Bounded: the store is filled in batches of 200, every loop has a count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from baton.model import Alert
from baton.store import RoutedAlert, open_store

SNAPSHOT = {"name": "p", "repeat": 0, "ack_timeout": None,
            "levels": [{"escalate_after": None, "remind_every": None,
                        "notify": [{"connector": "hook", "to": None, "params": {}}]}]}
RULE = {"source_matchers": ['alertname="NodeDown"'], "target_matchers": ['severity="warning"'],
        "equal": ["instance"]}


def alert(key: str, severity: str, alertname: str, instance: str) -> Alert:
    return Alert(dedup_key=key, status="firing", severity=severity,  # type: ignore[arg-type]
                 summary=f"{alertname} on {instance}", source_type="generic",
                 source_name="bench", labels={"alertname": alertname, "instance": instance,
                                              "team": f"t{hash(instance) % 20}"})


def routed(a: Alert) -> RoutedAlert:
    return RoutedAlert(a, f"r|{a.dedup_key}", "r", "p", SNAPSHOT)


def suppressor(rule: dict[str, Any]) -> Any:
    from baton.inhibit import parse_inhibit_rules

    rules = parse_inhibit_rules([rule], lambda path, msg: None)
    try:  # before the lifecycle module: the store's own
        from baton.store.suppression import Suppressor as Old  # type: ignore[import-not-found]
        return Old(rules)
    except ImportError:  # this version
        from baton.suppression import Suppressor
        return Suppressor(rules)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    store = open_store(f"sqlite:///{tmp}/bench.db")
    store.suppressor = suppressor(RULE)
    store.open()
    now = time.time()
    rng = random.Random(7)
    try:
        for i in range(args.silences):
            await store.create_silence([f'service="maintenance-{i}"', 'team=~"t1.*"'],
                                       now - 60, now + 86400, "bench", "", now)
        built = time.monotonic()
        downs = []
        for start in range(0, args.open, 200):
            batch = []
            for i in range(start, min(args.open, start + 200)):
                down = i % 100 == 0
                if down:
                    downs.append(f"node-{i}")
                batch.append(routed(alert(f"open-{i}", "critical",
                                          "NodeDown" if down else "HighLoad", f"node-{i}")))
            await store.ingest("bench", "{}", batch, now)
        built = time.monotonic() - built
        ingest, inhibited = [], 0
        for n in range(args.probes):
            instance = rng.choice(downs) if n % 2 == 0 else f"node-{rng.randrange(args.open)}"
            ra = routed(alert(f"probe-{n}", "warning", "DiskSlow", instance))
            t = time.perf_counter()
            result = await store.ingest("bench", "{}", [ra], now)
            ingest.append(time.perf_counter() - t)
            doc = await store.get_incident(result.incident_ids[0], alerts=False,
                                           deliveries=False, timeline=False)
            inhibited += doc["suppressed"] is not None
        checks: list[float] = []
        try:
            from baton.store.repo import Repo
        except ImportError:
            Repo = None  # before this version
        if Repo is not None:
            sup = store.suppressor
            for n in range(args.probes):
                instance = (rng.choice(downs) if n % 2 == 0
                            else f"node-{rng.randrange(args.open)}")
                labels = alert(f"check-{n}", "warning", "DiskSlow", instance).match_labels()

                def check(tx: Any, labels: dict[str, str] = labels) -> float:
                    t = time.perf_counter()
                    sup.check_alert(Repo(tx), ("x", "bench", "check"), labels, now)
                    return time.perf_counter() - t

                checks.append(await store.engine.read(check))
        out: dict[str, Any] = {
            "open_incidents": args.open, "silences": args.silences, "probes": args.probes,
            "fill_seconds": round(built, 1), "probes_inhibited": inhibited,
            "ingest_ms": {"p50": round(pct(ingest, 0.5), 3), "p99": round(pct(ingest, 0.99), 3),
                          "mean": round(statistics.mean(ingest) * 1000, 3)}}
        if checks:
            out["check_ms"] = {"p50": round(pct(checks, 0.5), 3),
                               "p99": round(pct(checks, 0.99), 3)}
        return out
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--open", type=int, default=10_000, help="open incidents (10000)")
    ap.add_argument("--silences", type=int, default=100, help="active silences (100)")
    ap.add_argument("--probes", type=int, default=500, help="probe alerts (500)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="baton-bench-inhibit-") as tmp:
        print(json.dumps(asyncio.run(run(args, Path(tmp))), indent=2))


if __name__ == "__main__":
    main()
