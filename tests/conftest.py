"""Fixtures shared by the in-process tests (helpers live in tests/helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from helpers import ServerFactory, Sink, start_sink

from baton.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """Time that moves only when a test says so."""
    return FakeClock()


@pytest.fixture
async def receiver(aiohttp_server: ServerFactory, clock: FakeClock) -> AsyncIterator[Sink]:
    """A scripted webhook target; every body it receives must be a valid incident."""
    s = await start_sink(aiohttp_server, clock)
    yield s
    s.gate.set()
    assert s.invalid == [], "a webhook body does not validate against incident.schema.json"
