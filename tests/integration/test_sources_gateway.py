"""Every source's fixtures through the real gateway, not just the adapter: each parsing
fixture is taken (202, as many alerts as it expects), and each resolve fixture closes the
incident its firing fixture opened. Sources that verify a signature before parsing
(``prepare``: cloudwatch's SNS certificates) cannot take the vendors' captured bodies
unsigned; their own gateway tests sign what they send."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from helpers import ClientFactory, Gateway, config_dict, start_gateway

from baton.plugin import SOURCE_GROUP, Source, discover, load

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sources"


def unsigned(type_: str) -> bool:
    cls = load(SOURCE_GROUP, type_)
    return cls.prepare is Source.prepare  # type: ignore[no-any-return]


TYPES = sorted(t for t in discover(SOURCE_GROUP) if unsigned(t))


@cache
def fixtures(type_: str) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text("utf-8"))
            for p in sorted((FIXTURES / type_).glob("*.json"))}


def good(type_: str) -> list[str]:
    return [case for case, f in fixtures(type_).items() if "expected" in f]


def resolve_pairs() -> list[Any]:
    pairs = []
    for type_ in TYPES:
        for case, f in fixtures(type_).items():
            expected = f.get("expected") or []
            if "same_problem_as" in f and expected and all(
                    a["status"] == "resolved" for a in expected):
                pairs.append(pytest.param(type_, f["same_problem_as"], case,
                                          id=f"{type_}/{case}"))
    return pairs


async def gateway(aiohttp_client: ClientFactory, tmp_path: Path,
                  fixture: dict[str, Any]) -> tuple[Gateway, str]:
    name = fixture.get("name", "src")
    data = config_dict(tmp_path)
    data["sources"] = {name: {**_config_text(fixture.get("config", {})),
                              "type": fixture["_type"], "auth": {"type": "none"}}}
    gw = await start_gateway(aiohttp_client, data, tmp_path,
                             environ=dict(fixture.get("env", {})))
    return gw, name


def _config_text(config: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(config))


async def post(gw: Gateway, name: str, fixture: dict[str, Any]) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", **fixture.get("headers", {})}
    resp = await gw.client.post(f"/v1/ingest/{name}", data=json.dumps(fixture["payload"]),
                                headers=headers)
    text = await resp.text()
    assert resp.status == 202, text
    return json.loads(text)  # type: ignore[no-any-return]


@pytest.mark.parametrize("type_", TYPES)
async def test_every_parsing_fixture_is_taken(aiohttp_client: ClientFactory, tmp_path: Path,
                                              type_: str) -> None:
    for i, case in enumerate(good(type_)):
        fixture = dict(fixtures(type_)[case], _type=type_)
        gw, name = await gateway(aiohttp_client, tmp_path / str(i), fixture)
        answer = await post(gw, name, fixture)
        assert answer["accepted"] == len(fixture["expected"]), case
        for incident_id in answer["incidents"]:
            await gw.incident(incident_id)  # valid against incident.schema.json


@pytest.mark.parametrize(("type_", "firing", "resolved"), resolve_pairs())
async def test_the_resolve_closes_the_incident_the_firing_opened(
        aiohttp_client: ClientFactory, tmp_path: Path, type_: str, firing: str,
        resolved: str) -> None:
    first = dict(fixtures(type_)[firing], _type=type_)
    second = dict(fixtures(type_)[resolved], _type=type_)
    gw, name = await gateway(aiohttp_client, tmp_path, first)
    opened = set((await post(gw, name, first))["incidents"])
    closed = set((await post(gw, name, second))["incidents"])
    assert closed and closed <= opened, (opened, closed)
    for incident_id in closed:
        doc = await gw.incident(incident_id)
        keys = {a["dedup_key"] for a in second["expected"]}
        mine = [a for a in doc["alerts"] if a["dedup_key"] in keys]
        assert mine and all(a["status"] == "resolved" for a in mine), doc["alerts"]
        if all(a["status"] == "resolved" for a in doc["alerts"]):
            assert doc["status"] == "resolved"


def test_the_suite_covers_the_sources() -> None:
    assert len(TYPES) >= 15 and "cloudwatch" not in TYPES
    assert len(resolve_pairs()) >= 15
