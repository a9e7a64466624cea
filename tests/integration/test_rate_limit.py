"""A connector's rate limit is kept by the dispatcher: deliveries over it wait in storage,
in order, without counting as failures, and go out as the window frees up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import ClientFactory, Sink, alert, config_dict, start_gateway

from baton.clock import FakeClock
from baton.config import config_from_dict
from baton.errors import ConfigError


async def test_at_most_count_attempts_per_window(aiohttp_client: ClientFactory,
                                                 receiver: Sink, tmp_path: Path,
                                                 clock: FakeClock) -> None:
    data = config_dict(tmp_path, receiver.url)
    data["connectors"]["hook"]["rate_limit"] = {"count": 2, "per": "1m"}
    gw = await start_gateway(aiohttp_client, data, tmp_path, clock=clock)
    ids = [(await gw.ingest(alert(f"k{i}")))["incidents"][0] for i in range(5)]
    sent: list[int] = []
    for step in (0, 0, 59, 1, 30, 30, 60):
        clock.advance(step)
        sent.append(await gw.pump())
    assert sent == [2, 0, 0, 2, 0, 1, 0]
    assert [r.incident_id for r in receiver.received] == ids  # in order
    assert all(r.attempt == 1 for r in receiver.received)  # waiting is not failing
    assert gw.dispatcher.lanes["hook"].failures == 0


async def test_the_window_slides(aiohttp_client: ClientFactory, receiver: Sink,
                                 tmp_path: Path, clock: FakeClock) -> None:
    """Two sent at t=0 and one at t=40: at t=60 one slot is free again, not three."""
    data = config_dict(tmp_path, receiver.url)
    data["connectors"]["hook"]["rate_limit"] = {"count": 3, "per": "60s"}
    gw = await start_gateway(aiohttp_client, data, tmp_path, clock=clock)
    for i in range(2):
        await gw.ingest(alert(f"a{i}"))
    assert await gw.pump() == 2
    clock.advance(40)
    for i in range(4):
        await gw.ingest(alert(f"b{i}"))
    assert await gw.pump() == 1
    clock.advance(20)
    assert await gw.pump() == 2
    clock.advance(39)
    assert await gw.pump() == 0
    clock.advance(1)
    assert await gw.pump() == 1


def test_without_a_limit_nothing_is_held_back(tmp_path: Path) -> None:
    from baton.app import build_lanes
    config = config_from_dict(config_dict(tmp_path), tmp_path, {})
    lane = build_lanes(config)["hook"]
    assert lane.rate_limit is None and lane.allowance(0.0)[0] > 10**6


@pytest.mark.parametrize(("limit", "where"), [
    ({"count": 0}, "connectors.hook.rate_limit.count"),
    ({"per": "1m"}, "connectors.hook.rate_limit"),
    ({"count": 5, "per": "soon"}, "connectors.hook.rate_limit.per"),
    ({"count": 5, "per": "0s"}, "connectors.hook.rate_limit.per"),
    ({"count": 5, "burst": 2}, "connectors.hook.rate_limit"),
])
def test_a_bad_limit_is_a_config_error_naming_its_path(tmp_path: Path, limit: Any,
                                                       where: str) -> None:
    data = config_dict(tmp_path)
    data["connectors"]["hook"]["rate_limit"] = limit
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, tmp_path, {})
    assert any(p.startswith(where) for p in info.value.problems), info.value.problems
