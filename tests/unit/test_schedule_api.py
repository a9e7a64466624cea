"""``GET /v1/schedules/{name}/oncall`` against a real app (no dispatcher)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from baton.app import create_app
from baton.clock import FakeClock
from baton.config import config_from_dict

Client = TestClient[Any, Any]
TOKEN = "s3cr3t-schedule-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROBLEM = "application/problem+json"


def config(tmp_path: Path) -> Any:
    return config_from_dict({
        "storage": {"url": f"sqlite:///{tmp_path}/b.db"},
        "api": {"tokens": [{"name": "ops", "token": {"env": "OPS_TOKEN"}}]},
        "people": {
            "alice": {"name": "Alice Doe", "email": "alice@example.com"},
            "bob": {}, "carol": {"phone": "+15550102"},
            "dave": {"name": "Dave", "slack": "U0DAVE"},
        },
        "schedules": {"primary": {
            "timezone": "Europe/Berlin",
            "layers": [{"name": "weekly", "rotation": "weekly", "handoff": "mon 09:00",
                        "start": "2026-01-05", "members": ["alice", "bob", "carol"],
                        "restrictions": [{"days": ["mon", "tue", "wed", "thu", "fri"],
                                          "start": "09:00", "end": "17:00"}]}],
            "overrides": [{"person": "dave", "start": "2026-03-28T18:00:00+01:00",
                           "end": "2026-03-30T09:00:00+02:00"}],
        }},
    }, tmp_path, {"OPS_TOKEN": TOKEN})


@pytest.fixture
async def client(aiohttp_client: Callable[[web.Application], Awaitable[Client]],
                 tmp_path: Path) -> Client:
    # The fake clock: 2026-03-24T10:00:00Z, a Tuesday, 11:00 CET.
    app = create_app(config(tmp_path), clock=FakeClock(1_774_346_400.0), run_dispatcher=False)
    return await aiohttp_client(app)


async def get(client: Client, query: str, status: int = 200,
              headers: dict[str, str] | None = None) -> Any:
    resp = await client.get(f"/v1/schedules/{query}", headers=AUTH if headers is None
                            else headers)
    assert resp.status == status, await resp.text()
    if status != 200:
        assert resp.content_type == PROBLEM
    return await resp.json()


async def test_who_is_on_call_at_a_given_time(client: Client) -> None:
    # Sunday 2026-03-29 14:00 CEST = 12:00Z: dave's override, 03-28 17:00Z to 03-30 07:00Z.
    doc = await get(client, "primary/oncall?at=2026-03-29T14:00:00%2B02:00")
    assert doc == {
        "schedule": "primary", "at": "2026-03-29T12:00:00.000Z", "person": "dave",
        "name": "Dave", "contacts": {"slack": "U0DAVE"}, "source": "override",
        "shift": {"start": "2026-03-28T17:00:00.000Z", "end": "2026-03-30T07:00:00.000Z"},
    }
    # The same with the "+" left unescaped (it arrives as a space), and in UTC.
    assert await get(client, "primary/oncall?at=2026-03-29T14:00:00+02:00") == doc
    assert await get(client, "primary/oncall?at=2026-03-29T12:00:00Z") == doc


async def test_without_at_the_clock_decides(client: Client) -> None:
    # 2026-03-24 is in the week of Monday 03-23 (k = 11, carol); 11:00 CET is inside the
    # 09:00-17:00 window, which runs 08:00Z-16:00Z that day.
    doc = await get(client, "primary/oncall")
    assert (doc["at"], doc["person"], doc["contacts"], doc["source"], doc["shift"]) == (
        "2026-03-24T10:00:00.000Z", "carol", {"phone": "+15550102"}, "layer:weekly",
        {"start": "2026-03-24T08:00:00.000Z", "end": "2026-03-24T16:00:00.000Z"})


async def test_nobody_on_call(client: Client) -> None:
    # Tuesday 2026-03-24 20:00 CET = 19:00Z: the window closed at 16:00Z, reopens 03-25 08:00Z.
    doc = await get(client, "primary/oncall?at=2026-03-24T19:00:00Z")
    assert doc == {
        "schedule": "primary", "at": "2026-03-24T19:00:00.000Z", "person": None,
        "name": None, "contacts": {}, "source": None,
        "shift": {"start": "2026-03-24T16:00:00.000Z", "end": "2026-03-25T08:00:00.000Z"},
    }


async def test_errors(client: Client) -> None:
    assert (await get(client, "nope/oncall", 404))["detail"] == 'unknown schedule "nope"'
    bad = await get(client, "primary/oncall?at=yesterday", 400)
    assert bad["errors"] == ["at"]
    assert "expected RFC 3339" in bad["detail"]
    naive = await get(client, "primary/oncall?at=2026-03-29T14:00:00", 400)
    assert "needs a UTC offset" in naive["detail"]
    # Credentials first: no token, a wrong one, even for a schedule that does not exist.
    await get(client, "primary/oncall", 401, headers={})
    await get(client, "nope/oncall", 401, headers={"Authorization": "Bearer wrong"})
