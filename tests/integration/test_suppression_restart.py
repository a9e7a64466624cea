"""A suppression that ends while Baton is down (even killed with SIGKILL) is still lifted,
once: the recheck is a stored timer. A real Baton process, real seconds.

(a) a silence from config holds an incident; Baton is SIGKILLed, stays down past the
    silence's end, is started again: the trigger comes right after the start, once.
(b) an API silence is expired and Baton is SIGKILLed right after: the incident is
    notified once, before the kill or after the restart.
"""

from __future__ import annotations

import collections
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from procs import Baton, WebhookSink, baton_config, http, wait_until, write_yaml

pytestmark = pytest.mark.integration

WAIT = 15.0
TOLERANCE = 2.5  # poll interval 0.2 s, plus a loaded machine


def start(tmp_path: Path, sink: WebhookSink, token: str, silence_for: float | None) -> Baton:
    workdir = tmp_path / "baton"
    workdir.mkdir(exist_ok=True)
    db = tmp_path / "baton.db"
    data = baton_config(db, sink.url)
    if silence_for is not None:
        ends = datetime.now(UTC) + timedelta(seconds=silence_for)
        data["silences"] = [{"matchers": ['service="db"'], "comment": "failover drill",
                             "created_by": "ops", "ends": ends.isoformat()}]
    b = Baton(workdir, write_yaml(workdir / "baton.yaml", data), db, env={"PROM_TOKEN": token})
    b.start()
    return b


def open_db_incident(baton: Baton, token: str) -> str:
    answer = http("POST", baton.url("/v1/ingest/gen"), token=token,
                  body={"dedup_key": "db-1", "summary": "replica lag", "service": "db"})
    assert answer.status == 202, answer
    return str(answer.body["incidents"][0])


def triggers(sink: WebhookSink, inc: str) -> collections.Counter[str]:
    return collections.Counter(r.note["idempotency_key"] for r in sink.received
                               if r.note.get("action") == "trigger"
                               and r.note.get("idempotency_key", "").startswith(inc))


def test_a_config_silence_ending_while_killed_lifts_once_after_restart(
        tmp_path: Path, sink: WebhookSink, token: str) -> None:
    baton = start(tmp_path, sink, token, silence_for=3.0)
    try:
        inc = open_db_incident(baton, token)
        doc = baton.get(f"/v1/incidents/{inc}")
        assert doc["suppressed"]["reason"] == "silenced"
        listed = baton.get("/v1/silences")["silences"]
        assert [(s["origin"], s["comment"]) for s in listed] == [("config", "failover drill")]
        assert baton.kill() == -signal.SIGKILL
        time.sleep(4.0)  # the scenario: down across the silence's end
        assert triggers(sink, inc) == {}
        baton.start(port=baton.port)
        ready = time.monotonic()
        wait_until(lambda: triggers(sink, inc), WAIT, "the trigger after the restart",
                   detail=baton.log_tail)
        assert time.monotonic() - ready <= TOLERANCE
        time.sleep(1.0)  # a second one would have come by now
        assert triggers(sink, inc) == {f"{inc}/sink/trigger": 1}
        doc = baton.get(f"/v1/incidents/{inc}")
        assert doc["suppressed"] is None
        assert [e["type"] for e in doc["timeline"]].count("unsuppressed") == 1
    finally:
        baton.stop(grace=5.0)


def test_a_silence_expired_just_before_a_kill_lifts_once_after_restart(
        tmp_path: Path, sink: WebhookSink, token: str) -> None:
    baton = start(tmp_path, sink, token, silence_for=None)
    try:
        made = http("POST", baton.url("/v1/silences"), body={
            "matchers": ['service="db"'], "duration": "4h", "created_by": "ops"})
        assert made.status == 201, made
        inc = open_db_incident(baton, token)
        answer = http("DELETE", baton.url(f"/v1/silences/{made.body['id']}"))
        assert answer.status == 200, answer
        # Killed at once: the lift may or may not have gone out before (the recheck is due
        # now); either way it reaches the sink once, across the kill and the restart.
        assert baton.kill() == -signal.SIGKILL
        baton.start(port=baton.port)
        wait_until(lambda: triggers(sink, inc), WAIT, "the trigger after the restart",
                   detail=baton.log_tail)
        time.sleep(1.0)
        assert triggers(sink, inc) == {f"{inc}/sink/trigger": 1}
    finally:
        baton.stop(grace=5.0)
