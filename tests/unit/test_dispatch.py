"""The dispatcher with scripted connectors on a real store and a fake clock: a connector
that raises does not take the worker down, and the per-connector circuit breaker opens,
probes and closes."""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
import structlog.testing

from baton.backoff import RetryPolicy
from baton.clock import FakeClock
from baton.dispatch import Dispatcher, Lane
from baton.errors import StorageUnavailable
from baton.metrics import Metrics
from baton.model import Alert, Notification, Outcome
from baton.plugin import Connector
from baton.store import RoutedAlert, Store, TargetSpec

HOLD = object()  # script item: wait for ``Scripted.gate``, then take the next item


class Scripted(Connector):
    """Answers from a script (then ``default``); an exception in it is raised."""

    type = "scripted"

    def __init__(self, name: str, *script: Any, default: Any = None) -> None:
        super().__init__(name, {})
        self.script = deque(script)
        self.default = default if default is not None else Outcome.ok("fine")
        self.calls: list[Notification] = []
        self.gate = asyncio.Event()

    async def send(self, notification: Notification, http: aiohttp.ClientSession) -> Outcome:
        self.calls.append(notification)
        item = self.script.popleft() if self.script else self.default
        if item is HOLD:
            await self.gate.wait()
            item = self.script.popleft() if self.script else self.default
        if isinstance(item, BaseException):
            raise item
        return cast(Outcome, item)


DOWN = Outcome.retryable("HTTP 503", 503, retry_after=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def lane(connector: Connector, concurrency: int = 3) -> Lane:
    return Lane(connector=connector, timeout=5, concurrency=concurrency,
                retry=RetryPolicy(max_attempts=100, backoff_initial=1, backoff_max=1))


def dispatcher(store: Store, clock: FakeClock, **lanes: Lane) -> Dispatcher:
    d = Dispatcher(store, lanes, clock, Metrics(), lease=60)
    d.http = cast(aiohttp.ClientSession, object())  # scripted connectors make no requests
    return d


async def incident(store: Store, clock: FakeClock, key: str, *connectors: str) -> str:
    a = Alert(dedup_key=key, status="firing", severity="error", summary=f"problem {key}",
              source_type="generic", source_name="app")
    ra = RoutedAlert(alert=a, key=f"r|{key}", route="r", policy="p",
                     policy_snapshot={"name": "p", "repeat": 0, "levels": [
                         {"notify": [TargetSpec(c).to_dict() for c in connectors]}]})
    return (await store.ingest("app", "{}", [ra], clock.now())).incident_ids[0]


async def pump(d: Dispatcher) -> int:
    started = await d.run_once()
    await d.idle()
    return started


def gauge(d: Dispatcher, connector: str) -> float | None:
    return d.metrics.registry.get_sample_value("baton_connector_circuit_open",
                                               {"connector": connector})


async def test_a_connector_that_raises_is_a_retryable_failure(store: Store,
                                                              clock: FakeClock) -> None:
    connector = Scripted("x", RuntimeError("kaboom s3cr3t"))
    d = dispatcher(store, clock, x=lane(connector))
    inc = await incident(store, clock, "k", "x")
    with structlog.testing.capture_logs() as logs:
        assert await pump(d) == 1
    (delivery,) = (await store.get_incident(inc))["deliveries"]
    assert (delivery["state"], delivery["attempts"], delivery["last_error"]) == (
        "pending", 1, "connector error: RuntimeError")
    raised = [e for e in logs if e["event"] == "connector raised"]
    # The message (scrubbed of the connector's secrets) and where it was raised; no
    # traceback text, which nothing scrubs.
    assert [(e["log_level"], e["error_type"], e["error"]) for e in raised] == [
        ("error", "RuntimeError", "kaboom s3cr3t")]
    assert "exc_info" not in raised[0] and raised[0]["at"].endswith(".py:" + raised[0][
        "at"].rsplit(":", 1)[1])
    assert [e["outcome"] for e in logs if e["event"] == "delivery attempt"] == ["retryable"]
    assert d.lanes["x"].inflight == set()

    clock.advance(1)
    assert await pump(d) == 1  # the worker carries on: the retry goes out and succeeds
    (delivery,) = (await store.get_incident(inc))["deliveries"]
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 2)
    assert [n.attempt for n in connector.calls] == [1, 2]
    assert len({n.idempotency_key for n in connector.calls}) == 1


async def test_the_run_loop_survives_a_storage_failure(store: Store, clock: FakeClock,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    connector = Scripted("x")
    d = dispatcher(store, clock, x=lane(connector))
    d.poll_interval = 0.01
    real_claim = store.claim
    failures = [StorageUnavailable("disk on fire")]

    async def flaky_claim(*args: Any) -> Any:
        if failures:
            raise failures.pop()
        return await real_claim(*args)

    monkeypatch.setattr(store, "claim", flaky_claim)
    await incident(store, clock, "k", "x")
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(d.run())
        for _ in range(500):
            if connector.calls:
                break
            await asyncio.sleep(0.01)
        await d.stop(1)
        await asyncio.wait_for(task, 5)
    assert len(connector.calls) == 1
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["dispatch cycle failed"]


async def test_circuit_breaker_opens_probes_and_closes(store: Store, clock: FakeClock) -> None:
    connector = Scripted("x", default=DOWN)
    d = dispatcher(store, clock, x=lane(connector, concurrency=3))
    x = d.lanes["x"]
    await incident(store, clock, "first", "x")
    for n in range(1, 5):  # four consecutive failures: still closed
        assert await pump(d) == 1
        assert (x.failures, x.open_until, gauge(d, "x")) == (n, 0.0, None)
        clock.advance(1)
    assert await pump(d) == 1  # the fifth opens it for 30 s
    opened = clock.now()
    assert (x.failures, x.open_until, gauge(d, "x")) == (5, opened + 30, 1.0)

    await incident(store, clock, "second", "x")
    await incident(store, clock, "third", "x")
    clock.advance(29.999)  # three deliveries due, none sent while open
    assert await pump(d) == 0
    assert len(connector.calls) == 5

    # Half-open: one probe, and only one while it is in flight, whatever the concurrency.
    clock.advance(0.001)
    connector.script.extend([HOLD, DOWN])
    assert await d.run_once() == 1
    assert await d.run_once() == 0
    connector.gate.set()
    await d.idle()
    assert (x.failures, x.open_until) == (6, clock.now() + 30)  # the probe failed: open again
    assert await pump(d) == 0

    clock.advance(30)
    connector.default = Outcome.ok("back")
    assert await pump(d) == 1  # a probe that succeeds closes the circuit...
    assert (x.failures, gauge(d, "x")) == (0, 0.0)
    assert await pump(d) == 2  # ...and the full concurrency is back
    assert len(connector.calls) == 9
    assert (await store.depth())["delivered"] == 3


async def test_one_failure_after_closing_does_not_reopen(store: Store,
                                                         clock: FakeClock) -> None:
    connector = Scripted("x", DOWN, DOWN, DOWN, DOWN, DOWN, Outcome.ok(), DOWN)
    d = dispatcher(store, clock, x=lane(connector))
    x = d.lanes["x"]
    await incident(store, clock, "a", "x")
    for _ in range(5):
        await pump(d)
        clock.advance(1)
    clock.advance(30)
    assert await pump(d) == 1 and x.failures == 0
    await incident(store, clock, "b", "x")
    assert await pump(d) == 1
    assert (x.failures, x.open_until <= clock.now()) == (1, True)
    clock.advance(1)
    assert await pump(d) == 1


async def test_a_permanent_answer_resets_the_failure_count(store: Store,
                                                           clock: FakeClock) -> None:
    connector = Scripted("x", DOWN, DOWN, DOWN, DOWN, Outcome.permanent("HTTP 400", 400),
                         DOWN)
    d = dispatcher(store, clock, x=lane(connector, concurrency=1))
    for key in ("a", "b"):
        await incident(store, clock, key, "x")
    for _ in range(6):
        assert await pump(d) == 1
        clock.advance(1)
    assert d.lanes["x"].failures == 1  # the vendor answered in between: it is up


async def test_the_breaker_is_per_connector(store: Store, clock: FakeClock) -> None:
    bad, good = Scripted("bad", default=DOWN), Scripted("good")
    d = dispatcher(store, clock, bad=lane(bad, concurrency=10), good=lane(good))
    for n in range(5):
        await incident(store, clock, f"i{n}", "bad")
    assert await pump(d) == 5
    assert d.lanes["bad"].open_until == clock.now() + 30
    clock.advance(1)
    await incident(store, clock, "other", "good")
    assert await pump(d) == 1
    assert (len(bad.calls), len(good.calls)) == (5, 1)
    assert (gauge(d, "bad"), gauge(d, "good")) == (1.0, None)


async def test_batch_size_caps_each_claim_and_the_rest_follows_at_once(
        store: Store, clock: FakeClock) -> None:
    connector = Scripted("x")
    d = dispatcher(store, clock, x=lane(connector, concurrency=16))
    d.batch_size = 2
    for i in range(5):
        await incident(store, clock, f"k{i}", "x")
    for expected, full in ((2, True), (2, True), (1, False)):
        d._wake.clear()
        assert await d.run_once() == expected
        # Looked at before the attempts finish (a finished attempt wakes it too).
        assert d._wake.is_set() is full, "a full batch starts the next cycle at once"
        await d.idle()
    assert len(connector.calls) == 5


def test_dispatch_batch_size_reaches_the_dispatcher(tmp_path: Path) -> None:
    from helpers import build, minimal

    from baton.api import state
    from baton.app import create_app

    config = build(minimal(dispatch={"batch_size": 7}), tmp_path)
    assert create_app(config)[state.DISPATCHER].batch_size == 7
