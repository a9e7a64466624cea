"""Incident lists stay small whatever the labels (issue 10, finding 9: listing incidents
with megabyte labels encoded 52 MB on the event loop). List entries cut long label names,
values and titles, and a page ends early once it passes a byte budget; the full document
stays at ``GET /v1/incidents/{id}``."""

from __future__ import annotations

from pathlib import Path

from helpers import ClientFactory, config_dict, start_gateway

from baton.clock import FakeClock
from baton.model import Alert
from baton.store import RoutedAlert, TargetSpec
from baton.store.views import LIST_PAGE_BYTES, LIST_TEXT_CHARS

BIG = 1_000_000


def routed(key: str) -> RoutedAlert:
    a = Alert(dedup_key=key, status="firing", severity="warning", summary="s" * 20_000,
              source_type="generic", source_name="app",
              labels={"alertname": key, "blob": "x" * BIG, "n" * 5000: "v"})
    return RoutedAlert(alert=a, key=f"r|{key}", route="r", policy="p",
                       policy_snapshot={"name": "p", "repeat": 0,
                                        "levels": [{"notify": [TargetSpec("hook").to_dict()]}]})


async def test_lists_of_incidents_with_megabyte_labels_stay_small(
        aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    clock = FakeClock()
    gw = await start_gateway(aiohttp_client, config_dict(tmp_path), tmp_path, clock=clock)
    for n in range(12):
        await gw.store.ingest("app", "{}", [routed(f"k{n}")], clock.now())
    seen: list[str] = []
    cursor = None
    for _ in range(20):  # bounded: 12 incidents, at least one per page
        resp = await gw.client.get("/v1/incidents", params={"limit": "500", **(
            {"cursor": cursor} if cursor else {})})
        body = await resp.read()
        assert resp.status == 200
        assert len(body) <= LIST_PAGE_BYTES + 64 * 1024, len(body)
        page = await resp.json()
        for doc in page["incidents"]:
            assert all(len(k) <= LIST_TEXT_CHARS and len(v) <= LIST_TEXT_CHARS
                       for k, v in doc["labels"].items())
            assert len(doc["title"]) <= LIST_TEXT_CHARS
            seen.append(doc["id"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 12  # every incident, once, across the pages
    full = await gw.incident(seen[0])
    assert len(full["alerts"][0]["labels"]["blob"]) == BIG  # the document keeps them

