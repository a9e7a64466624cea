"""One owner per SQLite database: a second ``baton serve`` on the same file refuses and
touches nothing, in particular not the first one's deliveries in flight.

Before the lock, the second process took every in-flight claim back at start-up (it
assumed their owner had died) and only then failed to bind the port the first one
holds; the first process claimed them again and the receiver got each one twice.
"""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
from typing import Any

import pytest
from procs import HOST, Baton, WebhookSink, http, query, wait_until

pytestmark = pytest.mark.integration


def test_second_serve_on_the_same_database_refuses_and_touches_nothing(
        make_baton: Any, sink: WebhookSink, token: str) -> None:
    sink.delay = 60.0  # every delivery is held in flight until let_go()
    first: Baton = make_baton(connector={"timeout": "50s"})
    for i in range(3):
        answer = http("POST", first.url("/v1/ingest/gen"), token=token,
                      body={"dedup_key": f"lock-{i}", "summary": "held", "service": "s"})
        assert answer.status == 202, answer
    wait_until(lambda: len(sink.received) >= 3, 20.0, "three deliveries at the sink",
               detail=first.log_tail)
    in_flight = query(first.db_path, "SELECT COUNT(*) FROM deliveries "
                                     "WHERE state = 'in_flight'")[0][0]
    assert in_flight == 3

    # The same config and the same port: before the lock it released the claims and
    # then failed to bind; a second port would let it run beside the first.
    second = subprocess.run(
        [sys.executable, "-m", "baton", "serve", "--config", str(first.config_path),
         "--listen", f"{HOST}:{first.port}"],
        capture_output=True, text=True, timeout=60, cwd=first.workdir, env=first.env)
    assert second.returncode == 1, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert str(first.db_path) in lines[0] and f"pid {first.pid}" in lines[0], lines[0]
    assert second.stdout == ""
    assert first.alive(), first.log_tail()
    rows = query(first.db_path, "SELECT state, claimed_by FROM deliveries")
    assert {r[0] for r in rows} == {"in_flight"}, rows
    assert all(r[1] for r in rows), "a claim was taken back"

    sink.let_go()
    wait_until(lambda: query(first.db_path, "SELECT COUNT(*) FROM deliveries "
                                            "WHERE state != 'delivered'")[0][0] == 0,
               30.0, "every delivery delivered", detail=first.log_tail)
    keys = collections.Counter(r.note.get("idempotency_key") for r in sink.received)
    assert len(keys) == 3 and set(keys.values()) == {1}, keys


def test_the_lock_of_a_killed_owner_is_free_and_its_claims_come_back_at_once(
        make_baton: Any, sink: WebhookSink, token: str) -> None:
    sink.delay = 60.0
    # The lease is 105 s (twice the timeout plus 5): only the lock can explain a prompt
    # take-back.
    first: Baton = make_baton(connector={"timeout": "50s"})
    answer = http("POST", first.url("/v1/ingest/gen"), token=token,
                  body={"dedup_key": "orphan", "summary": "held", "service": "s"})
    assert answer.status == 202, answer
    wait_until(lambda: len(sink.received) >= 1, 20.0, "the delivery at the sink",
               detail=first.log_tail)
    assert first.kill() == -signal.SIGKILL
    assert first.db_path.with_name(first.db_path.name + ".lock").exists()  # left behind

    sink.let_go()
    first.start()  # same config and database: the lock is free, its claim is an orphan
    wait_until(lambda: query(first.db_path, "SELECT COUNT(*) FROM deliveries "
                                            "WHERE state = 'delivered'")[0][0] == 1,
               20.0, "the orphaned delivery sent again", detail=first.log_tail)
    assert "took back deliveries claimed before a restart" in first.log_tail()
    keys = [r.note.get("idempotency_key") for r in sink.received]
    assert len(keys) == 2 and len(set(keys)) == 1  # at least once, with the same key
