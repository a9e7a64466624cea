"""SIGTERM: stop taking alerts at once, finish what is in flight within the grace, exit 0.

The sink takes ~1 s to answer, so deliveries are still in flight when Baton is told to
stop. It must close its listener first (new ingests are refused while it drains), let the
attempts in flight finish and record them, leave the rest pending in storage, and exit
cleanly well within ``server.shutdown_grace``. The next start delivers the rest, once.
"""

from __future__ import annotations

import collections
import signal
import time
import urllib.error
from typing import Any
from urllib.parse import unquote

import pytest
from procs import Answer, Baton, WebhookSink, http, query, wait_until

pytestmark = pytest.mark.integration

GRACE = 5.0  # server.shutdown_grace
SINK_DELAY = 1.0
ALERTS = 8
CONCURRENCY = 2  # fewer slots than alerts: some wait in storage through the restart


def alerts(prefix: str, n: int) -> list[dict[str, Any]]:
    return [{"dedup_key": f"{prefix}-{i}", "summary": f"shutdown test alert {i}",
             "severity": "warning"} for i in range(n)]


def ingest(baton: Baton, token: str, body: Any) -> Answer:
    return http("POST", baton.url("/v1/ingest/gen"), body, token=token, timeout=5.0)


def test_sigterm_drains_in_flight_refuses_new_and_loses_nothing(
        make_baton: Any, sink: WebhookSink, token: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    sink.delay = SINK_DELAY
    baton: Baton = make_baton(shutdown_grace=f"{GRACE:g}s",
                              connector={"concurrency": CONCURRENCY})
    answer = ingest(baton, token, alerts("drain", ALERTS))
    assert answer.status == 202, answer
    expected = set(answer.body["incidents"])
    assert len(expected) == ALERTS

    wait_until(lambda: len(sink.received) >= CONCURRENCY, 10.0,
               "deliveries in flight at the slow sink", detail=baton.log_tail)
    sent_at_term = len(sink.received)
    term = time.monotonic()
    baton.signal(signal.SIGTERM)

    # From now on a new ingest is refused at the TCP level, while the process is still
    # alive finishing its deliveries. (An ingest that slips in before the listener closes
    # must then be answered and kept like any other: it is tracked, not forbidden.)
    late: set[str] = set()
    attempts = collections.Counter[str]()

    def refused_while_alive() -> str | None:
        try:
            a = ingest(baton, token, alerts(f"late{sum(attempts.values())}", 1))
        except urllib.error.URLError as e:
            kind = "refused" if isinstance(e.reason, ConnectionRefusedError) else "cut"
        except ConnectionError:
            kind = "cut"  # accepted by the kernel just before the close, then reset
        else:
            kind = f"http {a.status}"
            if a.status == 202:
                late.update(a.body["incidents"])
        attempts[kind] += 1
        if kind == "refused":
            return "alive" if baton.alive() else "exited"
        return None

    when = wait_until(refused_while_alive, GRACE, "ingest to be refused after SIGTERM",
                      interval=0.01, detail=baton.log_tail)
    refused_after = time.monotonic() - term
    assert when == "alive", "refused only because the process had already gone"
    assert not [k for k in attempts if k.startswith("http") and k != "http 202"], attempts

    code = baton.wait(GRACE + 5.0)
    stopped_after = time.monotonic() - term
    assert code == 0, baton.log_tail()
    assert stopped_after < GRACE, f"took {stopped_after:.2f}s, grace is {GRACE:g}s"
    assert "baton stopped" in baton.log_tail(), "the shutdown did not run to its end"

    # Behind the closed door: the attempts in flight were finished and recorded, none
    # is left claimed, the rest wait in storage.
    states = dict(query(baton.db_path, "SELECT state, COUNT(*) FROM deliveries "
                                       "GROUP BY state"))
    assert states.get("in_flight", 0) == 0, states
    assert states.get("delivered", 0) == len(sink.received) >= sent_at_term, states
    assert states.get("pending", 0) >= 1, f"nothing left for the restart to prove: {states}"
    assert sum(states.values()) == len(expected | late), states

    sink.delay = 0.0
    restarted = time.monotonic()
    baton.start(port=baton.port)
    wait_until(lambda: all(d["state"] == "delivered" for d in baton.deliveries()), 30.0,
               "every delivery delivered after the restart", interval=0.1,
               detail=baton.log_tail)
    delivered_after = time.monotonic() - restarted
    ledger = baton.deliveries()
    assert {d["incident_id"] for d in ledger} == expected | late

    # A graceful stop resends nothing: each incident reached the sink exactly once,
    # under the key the ledger holds.
    at_sink = collections.Counter(r.body["id"] for r in sink.received)
    assert at_sink == collections.Counter(expected | late), at_sink
    key = {d["incident_id"]: d["idempotency_key"] for d in ledger}
    for r in sink.received:
        assert unquote(r.headers["Idempotency-Key"]) == key[r.body["id"]]

    with capsys.disabled():
        print(f"\n[shutdown] in flight at SIGTERM={sent_at_term}, ingest refused "
              f"{refused_after:.3f}s after it, exit 0 after {stopped_after:.2f}s, "
              f"probes={dict(attempts)}, rest delivered {delivered_after:.2f}s after restart")
