"""Hot reload in process: ``POST /-/reload`` re-reads the file the app was built from.

A good config changes routing, policies and connectors for what comes next; a bad one
changes nothing and says why; escalations keep the policy frozen when they opened;
deliveries are neither lost nor sent twice across the swap, and a removed connector's
waiting deliveries are dead-lettered with the reason (and replayable when it is back).
"""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import PROBLEM, ClientFactory, Gateway, Reply, Sink, alert, config_dict, db_rows

from baton.api import state
from baton.app import create_app
from baton.clock import FakeClock
from baton.config import load_config
from baton.errors import NotFound
from baton.reload import removed_reason

M = 60.0


def two_hooks(tmp_path: Path, url: str) -> dict[str, Any]:
    """``hook`` and ``other``, both to the test's receiver; the route's policy notifies
    ``hook``."""
    data = config_dict(tmp_path, url)
    data["connectors"]["other"] = copy.deepcopy(data["connectors"]["hook"])
    return data


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data), "utf-8")
    return path


async def gateway_from_file(aiohttp_client: ClientFactory, data: dict[str, Any],
                            tmp_path: Path) -> tuple[Gateway, Path]:
    path = write(tmp_path / "baton.yaml", data)
    clock = FakeClock()
    app = create_app(load_config(path), clock=clock, run_dispatcher=False)
    return Gateway(await aiohttp_client(app), clock, tmp_path), path


async def reload(gw: Gateway, status: int = 200) -> dict[str, Any]:
    resp = await gw.client.post("/-/reload", headers=gw.headers)
    body: dict[str, Any] = await resp.json(content_type=None)
    assert resp.status == status, body
    if status >= 400:
        assert resp.content_type == PROBLEM
    return body


def gauge(gw: Gateway, name: str) -> float | None:
    return gw.app[state.METRICS].registry.get_sample_value(name)


async def test_a_good_reload_routes_the_next_alert_by_the_new_config(
        aiohttp_client: ClientFactory, receiver: Sink, tmp_path: Path) -> None:
    data = two_hooks(tmp_path, receiver.url)
    gw, path = await gateway_from_file(aiohttp_client, data, tmp_path)
    await gw.ingest(alert("before"))
    await gw.pump()
    data["policies"]["notify"]["levels"][0]["notify"] = ["other"]
    write(path, data)
    gw.clock.advance(5)
    body = await reload(gw)
    assert body["status"] == "reloaded"
    await gw.ingest(alert("after"))
    await gw.pump()
    assert [r.connector for r in receiver.received] == ["hook", "other"]
    assert gauge(gw, "baton_config_last_reload_successful") == 1
    assert gauge(gw, "baton_config_last_reload_success_timestamp_seconds") == gw.clock.now()
    assert gw.app[state.CONFIG].policies["notify"].levels[0].notify[0].connector == "other"


async def test_unchanged_connectors_keep_their_instance_and_sources_come_and_go(
        aiohttp_client: ClientFactory, receiver: Sink, tmp_path: Path) -> None:
    data = two_hooks(tmp_path, receiver.url)
    gw, path = await gateway_from_file(aiohttp_client, data, tmp_path)
    hook, other = gw.dispatcher.lanes["hook"], gw.dispatcher.lanes["other"]
    pipeline = gw.app[state.PIPELINE]
    data["connectors"]["other"]["max_attempts"] = 3
    data["sources"]["new"] = {"type": "generic", "auth": {"type": "none"}}
    old_app = data["sources"].pop("app")
    write(path, data)
    body = await reload(gw)
    assert body["connectors_changed"] == ["other"] and body["connectors_added"] == []
    assert (body["sources_added"], body["sources_removed"]) == (["new"], ["app"])
    assert gw.dispatcher.lanes["hook"] is hook
    assert gw.dispatcher.lanes["other"] is not other
    await gw.ingest(alert("n"), source="new")
    resp = await gw.client.post("/v1/ingest/app", json=alert("gone"))
    assert resp.status == 404
    # A request for a source removed while its body was being read: 404, not a crash.
    with pytest.raises(NotFound):
        await pipeline.ingest("app", "{}", [])
    data["sources"]["app"] = old_app
    write(path, data)
    await reload(gw)
    await gw.ingest(alert("back"))


@pytest.mark.parametrize("breakage", ["yaml", "connector_option", "unknown_policy",
                                      "storage_url"])
async def test_a_bad_reload_changes_nothing_and_says_why(
        aiohttp_client: ClientFactory, receiver: Sink, tmp_path: Path,
        breakage: str) -> None:
    data = two_hooks(tmp_path, receiver.url)
    gw, path = await gateway_from_file(aiohttp_client, data, tmp_path)
    loaded_at = gauge(gw, "baton_config_last_reload_success_timestamp_seconds")
    running = gw.app[state.CONFIG]
    bad = copy.deepcopy(data)
    bad["policies"]["notify"]["levels"][0]["notify"] = ["other"]  # would reroute
    expect = {"connector_option": "connectors.other",
              "unknown_policy": "routes", "storage_url": "storage.url"}.get(breakage, "")
    if breakage == "connector_option":
        bad["connectors"]["other"]["url"] = "not a url"
    elif breakage == "unknown_policy":
        bad["routes"][0]["policy"] = "nope"
    elif breakage == "storage_url":
        bad["storage"]["url"] = f"sqlite:///{tmp_path}/elsewhere.db"
    write(path, bad)
    if breakage == "yaml":
        path.write_text("routes: [\n", "utf-8")
    gw.clock.advance(5)
    body = await reload(gw, 422)
    assert body["problems"] and all(isinstance(p, str) for p in body["problems"])
    assert any(expect in p for p in body["problems"]), body["problems"]
    if breakage == "storage_url":
        assert "restart" in body["problems"][0] and tmp_path.name not in str(body)
    assert gauge(gw, "baton_config_last_reload_successful") == 0
    assert gauge(gw, "baton_config_last_reload_success_timestamp_seconds") == loaded_at
    assert gw.app[state.CONFIG] is running
    await gw.ingest(alert("still-old"))
    await gw.pump()
    assert [r.connector for r in receiver.received] == ["hook"]
    # Fixed: the next reload succeeds and the gauge goes back to 1.
    write(path, data)
    await reload(gw)
    assert gauge(gw, "baton_config_last_reload_successful") == 1


async def test_an_open_escalation_keeps_the_policy_it_was_opened_with(
        aiohttp_client: ClientFactory, receiver: Sink, tmp_path: Path) -> None:
    data = two_hooks(tmp_path, receiver.url)
    data["policies"]["notify"]["levels"] = [
        {"notify": ["hook"], "escalate_after": "5m"}, {"notify": ["other"]}]
    gw, path = await gateway_from_file(aiohttp_client, data, tmp_path)
    first = (await gw.ingest(alert("early")))["incidents"][0]
    await gw.pump()
    data["policies"]["notify"]["levels"] = [{"notify": ["hook"]}]  # one level now
    write(path, data)
    await reload(gw)
    second = (await gw.ingest(alert("late")))["incidents"][0]
    await gw.pump()
    gw.clock.advance(6 * M)
    await gw.pump()
    await gw.pump()
    assert ("other" in [c for i, c, _ in receiver.actions if i == first])
    assert [c for i, c, _ in receiver.actions if i == second] == ["hook"]
    snaps = {r["id"]: json.loads(r["policy_snapshot"]) for r in db_rows(
        tmp_path, "SELECT id, policy_snapshot FROM incidents")}
    assert [lv["notify"][0]["connector"] for lv in snaps[first]["levels"]] == [
        "hook", "other"]
    assert len(snaps[second]["levels"]) == 1


async def test_a_removed_connector_dead_letters_its_waiting_deliveries(
        aiohttp_client: ClientFactory, receiver: Sink, tmp_path: Path) -> None:
    data = two_hooks(tmp_path, receiver.url)
    data["policies"]["notify"]["levels"][0]["notify"] = ["hook", "other"]
    gw, path = await gateway_from_file(aiohttp_client, data, tmp_path)
    incident = (await gw.ingest(alert("x")))["incidents"][0]
    removed = copy.deepcopy(data)
    del removed["connectors"]["other"]
    removed["policies"]["notify"]["levels"][0]["notify"] = ["hook"]
    write(path, removed)
    body = await reload(gw)
    assert body["connectors_removed"] == ["other"]
    await gw.pump()
    rows = {r["connector"]: r for r in gw.deliveries(incident)}
    assert rows["hook"]["state"] == "delivered"
    assert rows["other"]["state"] == "dead"
    assert rows["other"]["last_error"] == removed_reason("other")
    assert ("delivery_dead", "baton:reload") in await gw.timeline(incident)
    assert [r.connector for r in receiver.received] == ["hook"]
    # Back in config: the dead letter is replayed and sent by the new instance.
    write(path, data)
    await reload(gw)
    await gw.post(f"/v1/deliveries/{rows['other']['id']}/retry", {}, 202)
    await gw.pump()
    assert [r.connector for r in receiver.received] == ["hook", "other"]


async def test_a_frozen_policy_naming_a_removed_connector_dead_letters_its_next_level(
        aiohttp_client: ClientFactory, receiver: Sink, tmp_path: Path) -> None:
    """Rows created after the reload (the next level of an escalation opened before it)
    are dead-lettered by the dispatcher's sweep, not left pending for ever."""
    data = two_hooks(tmp_path, receiver.url)
    data["policies"]["notify"]["levels"] = [
        {"notify": ["hook"], "escalate_after": "5m"}, {"notify": ["other"]}]
    gw, path = await gateway_from_file(aiohttp_client, data, tmp_path)
    incident = (await gw.ingest(alert("x")))["incidents"][0]
    await gw.pump()
    removed = copy.deepcopy(data)
    del removed["connectors"]["other"]
    removed["policies"]["notify"]["levels"] = [{"notify": ["hook"]}]
    write(path, removed)
    await reload(gw)
    gw.clock.advance(6 * M)
    await gw.pump()
    rows = [r for r in gw.deliveries(incident) if r["connector"] == "other"]
    assert [(r["state"], r["last_error"]) for r in rows] == [
        ("dead", removed_reason("other"))]
    assert "other" not in {r.connector for r in receiver.received}
    assert gw.app[state.METRICS].registry.get_sample_value(
        "baton_deliveries_total", {"connector": "other", "outcome": "dead"}) == 1


async def test_a_delivery_in_flight_across_the_reload_is_sent_once(
        aiohttp_client: ClientFactory, receiver: Sink, tmp_path: Path) -> None:
    """The attempt under way finishes on the old instance; the next goes to the new one;
    the receiver sees each idempotency key once. A removed connector's attempt that fails
    after the reload is dead-lettered rather than retried forever."""
    data = two_hooks(tmp_path, receiver.url)
    data["policies"]["notify"]["levels"][0]["notify"] = ["hook", "other"]
    gw, path = await gateway_from_file(aiohttp_client, data, tmp_path)
    d = gw.dispatcher
    old_hook = d.lanes["hook"]
    receiver.script(Reply(200, hold=True), Reply(500, hold=True))
    await gw.ingest(alert("a"))
    assert await d.run_once() == 2
    for _ in range(200):  # bounded: both requests reach the receiver
        if receiver.inflight == 2:
            break
        await asyncio.sleep(0.01)
    assert receiver.inflight == 2
    changed = copy.deepcopy(data)
    changed["connectors"]["hook"]["timeout"] = "7s"
    del changed["connectors"]["other"]
    changed["policies"]["notify"]["levels"][0]["notify"] = ["hook"]
    write(path, changed)
    await reload(gw)
    assert d.lanes["hook"] is not old_hook and d.lanes["hook"].timeout == 7
    assert d.lanes["hook"].inflight is old_hook.inflight and len(old_hook.inflight) == 1
    assert await d.run_once() == 0  # nothing claimed twice while the attempts run
    receiver.gate.set()
    await d.idle()
    await gw.ingest(alert("b"))
    await gw.pump()
    keys = [r.idempotency_key for r in receiver.received]
    assert len(keys) == len(set(keys)) == 3
    rows = {(r["connector"], r["state"]) for r in gw.deliveries()}
    assert rows == {("hook", "delivered"), ("other", "dead")}
    dead = next(r for r in gw.deliveries() if r["connector"] == "other")
    assert removed_reason("other") in dead["last_error"]


async def test_reload_needs_the_management_token(
        aiohttp_client: ClientFactory, receiver: Sink, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELOAD_TEST_TOKEN", "t0k3n-for-reload-0123456789")
    data = two_hooks(tmp_path, receiver.url)
    data["api"] = {"tokens": [{"name": "ops", "token": {"env": "RELOAD_TEST_TOKEN"}}]}
    gw, path = await gateway_from_file(aiohttp_client, data, tmp_path)
    await reload(gw, 401)
    gw.headers = {"Authorization": "Bearer wrong"}
    await reload(gw, 401)
    gw.headers = {"Authorization": "Bearer t0k3n-for-reload-0123456789"}
    await reload(gw)
    # A reload that would leave the API open off loopback is refused.
    gw.app[state.RELOADER].listen = "0.0.0.0:8080"
    del data["api"]
    write(path, data)
    body = await reload(gw, 422)
    assert any(p.startswith("api:") for p in body["problems"])
    assert gw.app[state.CONFIG].api_tokens
