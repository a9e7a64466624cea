"""Escalation timers survive ``kill -9``: a real Baton process, real seconds.

The policy: level 1 (``sink``) for 2 s, level 2 (``pager`` to bob) for 3 s, level 3
(``sink`` to carol). Baton is SIGKILLed 1 s after the incident opened, between levels 1
and 2, and started again on the same database:

- at once: level 2 still comes at open + 2 s, once;
- after the due time has passed: level 2 comes right after the start, once, and the
  timeline records how late it was.

Either way level 3 follows 3 s after level 2, and every level reaches the sink exactly
once with its own idempotency key. Times at the sink are the test's monotonic clock;
times in the timeline are Baton's wall clock, compared with the incident's ``created_at``.
"""

from __future__ import annotations

import collections
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from procs import Baton, Received, WebhookSink, baton_config, http, query, wait_until, write_yaml

pytestmark = pytest.mark.integration

L1_AFTER, L2_AFTER = 2.0, 3.0
KILL_AT = 1.0  # seconds after the incident opened
DOWN_UNTIL = 4.0  # test (b): Baton stays down until open + this
TOLERANCE = 2.5  # a timer fires within this after its due time (poll interval: 0.2 s)
WAIT = 15.0  # the longest any single wait here may take


@pytest.fixture
def baton(tmp_path: Path, token: str, sink: WebhookSink) -> Iterator[Baton]:
    """A started Baton with the three-level policy on every route; killed at teardown."""
    workdir = tmp_path / "baton"
    workdir.mkdir()
    db = tmp_path / "baton.db"
    data = baton_config(db, sink.url)
    data["connectors"]["pager"] = {**data["connectors"]["sink"]}
    data["people"] = {"bob": {"email": "bob@example.com", "phone": "+15550101"},
                      "carol": {"email": "carol@example.com"}}
    policy = {"levels": [
        {"notify": ["sink"], "escalate_after": f"{L1_AFTER:g}s"},
        {"notify": [{"connector": "pager", "to": "person:bob"}],
         "escalate_after": f"{L2_AFTER:g}s"},
        {"notify": [{"connector": "sink", "to": "person:carol"}]},
    ]}
    data["policies"] = {"page": policy, "notify": policy}
    b = Baton(workdir, write_yaml(workdir / "baton.yaml", data), db, env={"PROM_TOKEN": token})
    b.start()
    try:
        yield b
    finally:
        b.stop(grace=5.0)


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def level_keys(inc: str) -> dict[int, str]:
    return {1: f"{inc}/sink/trigger",
            2: f"{inc}/pager/trigger/person:bob/L2.0",
            3: f"{inc}/sink/trigger/person:carol/L3.0"}


def triggers(sink: WebhookSink) -> list[Received]:
    return [r for r in sink.received if r.note.get("action") == "trigger"]


def arrivals(sink: WebhookSink, idem: str) -> list[float]:
    return [r.at for r in triggers(sink) if r.note.get("idempotency_key") == idem]


def open_incident(baton: Baton, token: str) -> tuple[str, float, float]:
    """Opens one incident; returns its id and the monotonic times around the request."""
    before = time.monotonic()
    answer = http("POST", baton.url("/v1/ingest/gen"), token=token,
                  body={"dedup_key": "restart-1", "summary": "disk full", "service": "db"})
    after = time.monotonic()
    assert answer.status == 202, answer
    return answer.body["incidents"][0], before, after


def kill_between_levels(baton: Baton, sink: WebhookSink, inc: str, after: float) -> float:
    """Waits until level 1 is delivered and recorded, then SIGKILLs Baton at open + 1 s.
    Returns the monotonic time of the kill."""
    keys = level_keys(inc)
    wait_until(lambda: arrivals(sink, keys[1]), WAIT, "level 1 at the sink",
               detail=baton.log_tail)
    wait_until(lambda: [d for d in baton.deliveries("delivered")
                        if d["idempotency_key"] == keys[1]],
               WAIT, "level 1 recorded as delivered", detail=baton.log_tail)
    time.sleep(max(0.0, after + KILL_AT - time.monotonic()))  # the scenario: kill at +1 s
    killed = time.monotonic()
    assert baton.kill() == -signal.SIGKILL, baton.log_tail()
    assert killed < after + L1_AFTER - 0.3, (
        f"the kill came {killed - after:.2f}s after opening, too close to level 2's due time "
        f"for this test to mean anything")
    assert arrivals(sink, keys[2]) == [], "level 2 came before its time"
    return killed


def timeline(baton: Baton, inc: str) -> dict[str, Any]:
    doc: dict[str, Any] = baton.get(f"/v1/incidents/{inc}")
    return doc


def escalations(doc: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The escalated entries by the level they went to (asserting one per level)."""
    entries = [e for e in doc["timeline"] if e["type"] == "escalated"]
    levels = collections.Counter(e["detail"]["to"]["level"] for e in entries)
    assert all(n == 1 for n in levels.values()), f"a level escalated twice: {entries}"
    return {e["detail"]["to"]["level"]: e for e in entries}


def settled(baton: Baton, inc: str) -> bool:
    """All three levels escalated and their triggers delivered (the updates each
    escalation sends to those told before are not counted), no timer left pending."""
    pending = query(baton.db_path, "SELECT COUNT(*) FROM timers WHERE incident_id = ? AND "
                    "state = 'pending'", (inc,))[0][0]
    delivered = [d for d in baton.deliveries("delivered")
                 if d["incident_id"] == inc and d["action"] == "trigger"]
    return pending == 0 and len(delivered) == 3


def check_each_level_once(baton: Baton, sink: WebhookSink, inc: str) -> None:
    wait_until(lambda: settled(baton, inc), WAIT, "all levels delivered, no timer pending",
               detail=baton.log_tail)
    keys = level_keys(inc)
    seen = collections.Counter(r.note["idempotency_key"] for r in triggers(sink))
    assert seen == {keys[1]: 1, keys[2]: 1, keys[3]: 1}, seen
    assert [r.note["connector"] for r in triggers(sink)] == ["sink", "pager", "sink"]
    fired = query(baton.db_path, "SELECT kind, level, loop_no, state FROM timers WHERE "
                  "incident_id = ? ORDER BY level", (inc,))
    assert fired == [("escalate", 1, 0, "fired"), ("escalate", 2, 0, "fired")], fired


def test_killed_between_levels_restarted_at_once_next_level_on_time(
        baton: Baton, sink: WebhookSink, token: str) -> None:
    inc, before, after = open_incident(baton, token)
    keys = level_keys(inc)
    kill_between_levels(baton, sink, inc, after)
    baton.start(port=baton.port)

    (l2,) = wait_until(lambda: arrivals(sink, keys[2]), WAIT, "level 2 after the restart",
                       detail=baton.log_tail)
    assert before + L1_AFTER <= l2 <= after + L1_AFTER + TOLERANCE, (
        f"level 2 at open + {l2 - after:.2f}s, due at open + {L1_AFTER:g}s")
    wait_until(lambda: arrivals(sink, keys[3]), WAIT, "level 3", detail=baton.log_tail)
    check_each_level_once(baton, sink, inc)

    doc = timeline(baton, inc)
    opened = epoch(doc["created_at"])
    steps = escalations(doc)
    at2, at3 = epoch(steps[2]["at"]), epoch(steps[3]["at"])
    assert opened + L1_AFTER <= at2 <= opened + L1_AFTER + TOLERANCE
    assert at2 + L2_AFTER <= at3 <= at2 + L2_AFTER + TOLERANCE
    assert steps[2]["detail"]["reason"] == "not acknowledged within 2s"
    assert steps[2]["detail"]["targets"][0]["person"] == "bob"
    assert steps[3]["detail"]["reason"] == "not acknowledged within 3s"
    # The delay is recorded only when it was one (>= 1 s): a slow restart can make it so.
    overdue = at2 - opened - L1_AFTER
    if overdue > 1.01:
        assert steps[2]["detail"]["late_by_seconds"] == pytest.approx(overdue, abs=0.01)
    elif overdue < 0.99:
        assert "late_by_seconds" not in steps[2]["detail"], steps[2]
    print(f"level 2 at open + {l2 - after:.3f}s (sink), + {at2 - opened:.3f}s (timeline)")
    assert doc["escalation"] == {"policy": "notify", "level": 3, "loops": 0, "next_at": None}


def test_down_past_the_due_time_fires_once_on_start_with_the_delay(
        baton: Baton, sink: WebhookSink, token: str) -> None:
    inc, _before, after = open_incident(baton, token)
    keys = level_keys(inc)
    kill_between_levels(baton, sink, inc, after)
    # The scenario itself: Baton stays down across level 2's due time (open + 2 s).
    time.sleep(max(0.0, after + DOWN_UNTIL - time.monotonic()))
    assert arrivals(sink, keys[2]) == []
    baton.start(port=baton.port)
    ready = time.monotonic()

    (l2,) = wait_until(lambda: arrivals(sink, keys[2]), WAIT, "level 2 after the restart",
                       detail=baton.log_tail)
    assert l2 <= ready + TOLERANCE, f"level 2 came {l2 - ready:.2f}s after the restart"
    wait_until(lambda: arrivals(sink, keys[3]), WAIT, "level 3", detail=baton.log_tail)
    check_each_level_once(baton, sink, inc)

    doc = timeline(baton, inc)
    opened = epoch(doc["created_at"])
    steps = escalations(doc)
    at2, at3 = epoch(steps[2]["at"]), epoch(steps[3]["at"])
    late = steps[2]["detail"]["late_by_seconds"]
    assert late >= DOWN_UNTIL - L1_AFTER - 0.1  # it was down for at least this long past due
    assert late == pytest.approx(at2 - opened - L1_AFTER, abs=0.01)
    assert steps[2]["actor"] == "baton"
    # level 3 waits its full 3 s from when level 2 was actually sent, and is on time
    assert at2 + L2_AFTER <= at3 <= at2 + L2_AFTER + TOLERANCE
    assert "late_by_seconds" not in steps[3]["detail"]
