"""An alert's name reaches the incident title, through the real gateway, for the sources
whose names come from a monitor, trigger, rule, search, problem or check: Datadog, Zabbix,
Kibana, Splunk, Dynatrace, Uptime Kuma, Pingdom.

One firing fixture per source (the published template variants where a source has them),
posted to ``/v1/ingest/{source}``; the stored incident's title holds the alert's name and
its summary, as people scan incident lists by the name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import ClientFactory, config_dict, start_gateway

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sources"

NAMED = [
    ("datadog", "keep-template-triggered"),
    ("datadog", "default-template"),
    ("zabbix", "pagerduty-params-problem"),
    ("zabbix", "ilert-media-type-problem"),
    ("kibana", "keep-template-active"),
    ("kibana", "security-detection-flat"),
    ("splunk", "firing-by-host"),
    ("dynatrace", "open-error"),
    ("uptime-kuma", "http-down"),
    ("pingdom", "http-down"),
]


def fixture(type_: str, case: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / type_ / f"{case}.json").read_text("utf-8"))
    return doc


@pytest.mark.parametrize(("type_", "case"), NAMED, ids=[f"{t}/{c}" for t, c in NAMED])
async def test_the_incident_title_holds_the_alert_name_and_summary(
        aiohttp_client: ClientFactory, tmp_path: Path, type_: str, case: str) -> None:
    doc = fixture(type_, case)
    [expected] = doc["expected"]
    name, summary = expected["name"], expected["summary"]
    assert name and expected["status"] == "firing", "a named firing fixture"
    data = config_dict(tmp_path)
    data["sources"] = {"src": {**doc.get("config", {}), "type": type_,
                               "auth": {"type": "none"}}}
    gw = await start_gateway(aiohttp_client, data, tmp_path, environ=doc.get("env", {}))
    resp = await gw.client.post("/v1/ingest/src", data=json.dumps(doc["payload"]),
                                headers={"Content-Type": "application/json",
                                         **doc.get("headers", {})})
    assert resp.status == 202, await resp.text()
    [incident_id] = (await resp.json())["incidents"]
    incident = await gw.incident(incident_id)
    title = incident["title"]
    assert name in title and summary.strip() in title, (title, name, summary)
    # The name leads: it is what the list is scanned by.
    assert title.startswith(name) or title == summary.strip()
    [alert] = incident["alerts"]
    assert (alert["name"], alert["summary"]) == (name, summary)


async def test_a_summary_without_the_name_is_prefixed_by_it(
        aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """Kibana's reason text does not repeat the rule's name: the title is both."""
    doc = fixture("kibana", "keep-template-active")
    data = config_dict(tmp_path)
    data["sources"] = {"src": {"type": "kibana", "auth": {"type": "none"}}}
    gw = await start_gateway(aiohttp_client, data, tmp_path)
    resp = await gw.client.post("/v1/ingest/src", data=json.dumps(doc["payload"]),
                                headers={"Content-Type": "application/json"})
    [incident_id] = (await resp.json())["incidents"]
    incident = await gw.incident(incident_id)
    [expected] = doc["expected"]
    assert incident["title"] == f"{expected['name']}: {expected['summary']}"
