"""Bounds on API/CLI silences: matchers per silence, bytes per matcher, and how many may be
active or pending at once (each is matched against every alert on the writer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import ClientFactory, Gateway, config_dict, start_gateway
from pg import pg_schema, pg_url  # noqa: F401

from baton import cli, limits
from baton.errors import Conflict
from baton.store import open_store

HOUR = 3600.0


@pytest.fixture
async def gw(aiohttp_client: ClientFactory, tmp_path: Path) -> Gateway:
    return await start_gateway(aiohttp_client, config_dict(tmp_path), tmp_path)


def silence(matchers: list[str], **extra: Any) -> dict[str, Any]:
    return {"matchers": matchers, "duration": "1h", "created_by": "alice", **extra}


async def refused(gw: Gateway, body: dict[str, Any], status: int = 400) -> Any:
    resp = await gw.client.post("/v1/silences", json=body)
    doc = await resp.json(content_type=None)
    assert resp.status == status, doc
    return doc


async def test_matchers_per_silence(gw: Gateway) -> None:
    many = [f'l{i}="v"' for i in range(limits.MAX_SILENCE_MATCHERS + 1)]
    doc = await refused(gw, silence(many))
    assert f"matchers: {limits.MAX_SILENCE_MATCHERS + 1} matchers, at most " \
           f"{limits.MAX_SILENCE_MATCHERS}" in doc["errors"], doc
    assert (await gw.get("/v1/silences"))["silences"] == []
    await gw.post("/v1/silences", silence(many[:-1]), 201)  # exactly at the bound


async def test_bytes_per_matcher(gw: Gateway) -> None:
    head = 'x=~"'  # + value + '"'
    value = "a" * (limits.MAX_MATCHER_BYTES - len(head) - 1)
    doc = await refused(gw, silence(['y="1"', f'{head}{value}b"']))
    assert f"matchers[1]: {limits.MAX_MATCHER_BYTES + 1} bytes, at most " \
           f"{limits.MAX_MATCHER_BYTES}" in doc["errors"], doc
    created = await gw.post("/v1/silences", silence([f'{head}{value}"']), 201)
    assert created["matchers"] == [f'{head}{value}"']


async def test_active_and_pending_silences_are_capped(
        gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_SILENCES", 3)  # the bound is 1,000; the rule is the same
    now = gw.clock.now()
    first = await gw.post("/v1/silences", silence(['a="1"']), 201)
    await gw.post("/v1/silences", silence(['a="2"']), 201)
    later = {"starts_at": _iso(now + HOUR), "ends_at": _iso(now + 2 * HOUR)}
    await gw.post("/v1/silences", silence(['a="3"'], duration=None, **later), 201)  # pending
    doc = await refused(gw, silence(['a="4"']), 409)
    assert "3 silences are active or pending, at most 3" in doc["detail"], doc
    assert len((await gw.get("/v1/silences"))["silences"]) == 3
    # An expired silence no longer counts.
    resp = await gw.client.delete(f"/v1/silences/{first['id']}")
    assert resp.status == 200
    await gw.post("/v1/silences", silence(['a="4"']), 201)


def _iso(at: float) -> str:
    from baton.store.views import ts
    text = ts(at)
    assert text is not None
    return text


def test_the_cli_is_capped_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    import yaml
    config = tmp_path / "baton.yaml"
    config.write_text(yaml.safe_dump(config_dict(tmp_path)))
    store = open_store(f"sqlite:///{tmp_path}/b.db")
    store.open(owner=True)
    store.close()
    monkeypatch.setattr(limits, "MAX_SILENCES", 1)
    add = ["silence", "--config", str(config), "add", "--duration", "1h", "--by", "bob"]
    assert cli.main([*add, 'a="1"']) == 0
    assert cli.main([*add, 'a="2"']) == 1
    assert "at most 1" in capsys.readouterr().err
    many = [f'l{i}="v"' for i in range(limits.MAX_SILENCE_MATCHERS + 1)]
    assert cli.main([*add, *many]) == 1
    assert "matchers: 33 matchers, at most 32" in capsys.readouterr().err


async def test_the_cap_holds_on_postgresql(pg_url: str,  # noqa: F811
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_SILENCES", 1)
    store = open_store(pg_url)
    store.open()
    try:
        first = await store.create_silence(['a="1"'], 0.0, 2 * HOUR, "bob", "", HOUR)
        with pytest.raises(Conflict, match="1 silences are active or pending, at most 1"):
            await store.create_silence(['a="2"'], 0.0, 2 * HOUR, "bob", "", HOUR)
        await store.expire_silence(first["id"], "bob", HOUR)
        await store.create_silence(['a="2"'], 0.0, 2 * HOUR, "bob", "", HOUR + 1)
    finally:
        store.close()


async def test_a_stored_silence_is_compiled_once_not_per_alert(gw: Gateway) -> None:
    from baton import suppression
    await gw.post("/v1/silences", silence(['service=~"db-[0-9]+"', 'environment="prod"']), 201)
    before = suppression._parsed.cache_info().misses
    for i in range(20):
        await gw.ingest({"dedup_key": f"k{i}", "summary": "s", "service": f"db-{i}",
                         "environment": "prod"})
    assert suppression._parsed.cache_info().misses - before <= 1
