"""Probes of unknown sources are logged, at most one line per name a minute (issue 10,
finding 9: they were only counted, so a scan left no trace of who or what)."""

from __future__ import annotations

from pathlib import Path

import structlog.testing
from helpers import ClientFactory, config_dict, start_gateway

from baton.clock import FakeClock


async def test_unknown_sources_are_logged_rate_limited(aiohttp_client: ClientFactory,
                                                       tmp_path: Path) -> None:
    clock = FakeClock()
    gw = await start_gateway(aiohttp_client, config_dict(tmp_path), tmp_path, clock=clock)

    async def probe(name: str) -> None:
        resp = await gw.client.post(f"/v1/ingest/{name}", json={})
        assert resp.status == 404

    with structlog.testing.capture_logs() as logs:
        for _ in range(5):
            await probe("nope")
        await probe("other")
        clock.advance(61)
        await probe("nope")
    lines = [e for e in logs if e["event"] == "unknown source"]
    assert [(e["source"], e["suppressed"]) for e in lines] == [
        ("nope", 0), ("other", 0), ("nope", 4)]
    assert all(e["log_level"] == "warning" and "remote" in e for e in lines)


async def test_a_scan_of_many_names_stays_bounded(aiohttp_client: ClientFactory,
                                                  tmp_path: Path) -> None:
    clock = FakeClock()
    gw = await start_gateway(aiohttp_client, config_dict(tmp_path), tmp_path, clock=clock)
    with structlog.testing.capture_logs() as logs:
        for n in range(1100):
            resp = await gw.client.post(f"/v1/ingest/scan{n}", json={})
            assert resp.status == 404
    lines = [e for e in logs if e["event"] == "unknown source"]
    assert 0 < len(lines) <= 1024  # the names remembered are bounded; the rest counted
