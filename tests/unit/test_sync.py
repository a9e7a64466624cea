"""The sync loop for vendors without webhooks: it asks only about the tickets of open
incidents, in bounded pages, and a ticket closed at the vendor resolves its incident once
(never told back to that vendor)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
import pytest

from baton.backoff import RetryPolicy
from baton.clock import FakeClock
from baton.dispatch import Lane
from baton.metrics import Metrics
from baton.model import Alert, ExternalRef, Notification, Outcome
from baton.plugin import CallbackEvent, Connector
from baton.store import DeliveryOutcome, RoutedAlert, Store, TargetSpec
from baton.sync import PAGE, Syncer


class TicketDesk(Connector):
    """A vendor with tickets and no webhooks: closed tickets are reported when polled."""

    type = "ticket-desk"
    polls = True

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self.closed: set[str] = set()
        self.asked: list[list[str]] = []
        self.fail = False

    async def send(self, notification: Notification, http: aiohttp.ClientSession) -> Outcome:
        raise AssertionError("not sent in these tests")

    async def sync(self, refs: Sequence[ExternalRef],
                   http: aiohttp.ClientSession) -> list[CallbackEvent]:
        if self.fail:
            raise aiohttp.ClientConnectionError("desk unreachable")
        self.asked.append([r.id for r in refs])
        return [CallbackEvent("resolve", f"closed-{r.id}", "bob (desk)", external_id=r.id)
                for r in refs if r.id in self.closed]


def routed(key: str) -> RoutedAlert:
    a = Alert(dedup_key=key, status="firing", severity="warning", summary=f"problem {key}",
              source_type="generic", source_name="app")
    return RoutedAlert(alert=a, key=f"r|{key}", route="r", policy="p", policy_snapshot={
        "name": "p", "repeat": 0, "levels": [{"notify": [TargetSpec("desk").to_dict()]}]})


async def tickets(store: Store, n: int, clock: FakeClock) -> list[str]:
    """``n`` incidents whose trigger to ``desk`` was delivered as ticket T-<i>."""
    result = await store.ingest("app", "{}", [routed(f"k{i}") for i in range(n)],
                                clock.now())
    claimed = await store.claim("desk", n, clock.now(), 60, "w")
    by_incident = {c.incident_id: c for c in claimed}
    for i, incident_id in enumerate(result.incident_ids):
        await store.finish(DeliveryOutcome(by_incident[incident_id].id, "delivered",
                                           clock.now(), status=201,
                                           external_ref={"id": f"T-{i}", "url": None}), "w")
    return list(result.incident_ids)


def syncer(store: Store, desk: TicketDesk, clock: FakeClock,
           http: aiohttp.ClientSession) -> Syncer:
    lane = Lane(connector=desk, timeout=5, concurrency=1,
                retry=RetryPolicy(3, 60, 1, 1, 1))
    s = Syncer(store, {"desk": lane}, {"desk": 60.0}, clock, Metrics())
    s.http = http
    return s


async def test_a_closed_ticket_resolves_its_incident_once(store: Store) -> None:
    clock = FakeClock()
    ids = await tickets(store, 3, clock)
    desk = TicketDesk("desk", {})
    async with aiohttp.ClientSession() as http:
        s = syncer(store, desk, clock, http)
        assert await s.run_once() == {"desk": 0}
        desk.closed.add("T-1")
        assert await s.run_once() == {}  # not due yet: once per sync_interval
        clock.advance(60)
        assert await s.run_once() == {"desk": 1}
        clock.advance(60)
        assert await s.run_once() == {"desk": 0}
    doc = await store.get_incident(ids[1])
    assert (doc["status"], doc["resolved_by"]) == ("resolved", "bob (desk)")
    assert [e["detail"] for e in doc["timeline"] if e["type"] == "resolved"] == [
        {"via": "callback:desk", "event_id": "closed-T-1"}]
    # Only open incidents' tickets are asked about; the resolved one drops out.
    assert desk.asked == [["T-0", "T-1", "T-2"]] * 2 + [["T-0", "T-2"]]
    # The desk is not told about a resolve that came from it.
    assert [d["action"] for d in (await store.list_deliveries())[0]] == ["trigger"] * 3


async def test_a_large_backlog_is_walked_in_bounded_pages(store: Store,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    import baton.sync
    monkeypatch.setattr(baton.sync, "MAX_PAGES", 2)
    clock = FakeClock()
    await tickets(store, PAGE * 2 + 5, clock)
    desk = TicketDesk("desk", {})
    async with aiohttp.ClientSession() as http:
        s = syncer(store, desk, clock, http)
        await s.run_once()
        assert [len(a) for a in desk.asked] == [PAGE, PAGE]
        await s.run_once(force=True)  # resumes where the last round stopped
        assert [len(a) for a in desk.asked] == [PAGE, PAGE, 5]
        await s.run_once(force=True)
    seen = [t for batch in desk.asked[:3] for t in batch]
    assert len(seen) == len(set(seen)) == PAGE * 2 + 5


async def test_a_failing_vendor_is_logged_and_tried_next_round(store: Store) -> None:
    clock = FakeClock()
    ids = await tickets(store, 1, clock)
    desk = TicketDesk("desk", {})
    desk.fail = True
    async with aiohttp.ClientSession() as http:
        s = syncer(store, desk, clock, http)
        assert await s.run_once() == {}
        desk.fail, desk.closed = False, {"T-0"}
        clock.advance(60)
        assert await s.run_once() == {"desk": 1}
    assert (await store.get_incident(ids[0]))["status"] == "resolved"
