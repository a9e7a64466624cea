"""Fixtures shared by the in-process tests (helpers live in tests/helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from helpers import ServerFactory, Sink, start_sink

from baton.clock import FakeClock
from baton.store import Store, open_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """An open SQLite store of the test's own (PostgreSQL modules override it)."""
    s = open_store(f"sqlite:///{tmp_path}/b.db")
    s.open()
    yield s
    s.close()


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
