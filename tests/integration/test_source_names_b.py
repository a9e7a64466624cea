"""An alert's name reaches the incident title through the real gateway, for the sources that
name their alerts by rule, condition, policy, alarm or check (New Relic in both formats,
Graylog in both, Grafana unified and legacy, Sentry, Azure Monitor, Cloud Monitoring,
CloudWatch, the generic formats; PagerDuty events name none).

Each case posts one named firing fixture (``tests/fixtures/sources/<type>/``) and reads
the stored incident: its title is the name followed by the summary, or the summary alone
where the summary already says the name. CloudWatch goes through SNS signing as in
test_cloudwatch_sns.py, with the fixture's alarm re-signed by the fake SNS there.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import ClientFactory, Gateway, config_dict, start_gateway
from test_cloudwatch_sns import FakeSns, keypair, sns, stamp  # noqa: F401 (fixtures)
from test_cloudwatch_sns import gateway as cloudwatch_gateway
from test_cloudwatch_sns import post as post_sns

from baton.clock import FakeClock

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sources"

# (type, fixture): firing, not a test or no-data notification, with a name.
NAMED = [
    ("newrelic", "activated"), ("newrelic", "legacy-opened"),
    ("graylog", "grouped-by-source"), ("graylog", "legacy-titled-condition"),
    ("grafana", "firing-docs-example"), ("grafana", "legacy-capture-alerting"),
    ("sentry", "event-alert-triggered"), ("sentry", "metric-alert-critical"),
    ("azure-monitor", "log-alert-v2"), ("gcp-monitoring", "cpu-open"),
    ("generic", "named"), ("generic-mapped", "uptime-kuma-down"),
]


def fixture(type_: str, case: str) -> dict[str, Any]:
    return json.loads((FIXTURES / type_ / f"{case}.json").read_text("utf-8"))  # type: ignore[no-any-return]


async def post_fixture(aiohttp_client: ClientFactory, tmp_path: Path, type_: str,
                       fx: dict[str, Any]) -> tuple[Gateway, list[str]]:
    data = config_dict(tmp_path)
    name = fx.get("name", "src")
    data["sources"] = {name: {**fx.get("config", {}), "type": type_, "auth": {"type": "none"}}}
    gw = await start_gateway(aiohttp_client, data, tmp_path, environ=dict(fx.get("env", {})))
    resp = await gw.client.post(f"/v1/ingest/{name}", data=json.dumps(fx["payload"]),
                                headers={"Content-Type": "application/json",
                                         **fx.get("headers", {})})
    text = await resp.text()
    assert resp.status == 202, text
    return gw, json.loads(text)["incidents"]


async def titles_and_alerts(gw: Gateway, incidents: list[str]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for incident_id in incidents:
        doc = await gw.incident(incident_id)
        out.append((doc["title"], doc["alerts"][0]))
    return out


def assert_named(title: str, name: str, summary: str) -> None:
    assert name and name in title, (name, title)
    assert summary in title, (summary, title)
    if name.casefold() not in summary.casefold():
        assert title == f"{name}: {summary}"


@pytest.mark.parametrize(("type_", "case"), NAMED, ids=[f"{t}/{c}" for t, c in NAMED])
async def test_the_alert_name_leads_the_incident_title(
        aiohttp_client: ClientFactory, tmp_path: Path, type_: str, case: str) -> None:
    fx = fixture(type_, case)
    expected = fx["expected"]
    assert all(a["name"] and a["status"] == "firing" for a in expected), "a named firing"
    gw, incidents = await post_fixture(aiohttp_client, tmp_path, type_, fx)
    stored = await titles_and_alerts(gw, incidents)
    assert stored
    for title, alert in stored:
        assert_named(title, alert["name"], alert["summary"])
    # Each alert the fixture expects is the first of some incident, with its own name.
    assert {a["name"] for _, a in stored} == {a["name"] for a in expected}


async def test_pagerduty_events_have_no_name_and_the_summary_is_the_title(
        aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    fx = fixture("pagerduty-events", "trigger")
    gw, incidents = await post_fixture(aiohttp_client, tmp_path, "pagerduty-events", fx)
    ((title, alert),) = await titles_and_alerts(gw, incidents)
    assert alert["name"] is None
    assert title == fx["payload"]["payload"]["summary"]


async def test_cloudwatch_alarm_name_leads_the_title_of_a_signed_alarm(
        aiohttp_client: ClientFactory, tmp_path: Path, clock: FakeClock,
        sns: FakeSns) -> None:  # noqa: F811 (the fixture imported above)
    fx = fixture("cloudwatch", "severity-in-description")
    envelope = copy.deepcopy(fx["payload"])
    for key in ("Signature", "SigningCertURL", "SignatureVersion", "UnsubscribeURL"):
        envelope.pop(key, None)
    envelope["Timestamp"] = stamp(clock)
    gw = await cloudwatch_gateway(aiohttp_client, clock, tmp_path,
                                  topic_arns=[envelope["TopicArn"]])
    answer = await post_sns(gw, sns.sign(envelope, "2"), 202)
    ((title, alert),) = await titles_and_alerts(gw, answer["incidents"])
    (want,) = fx["expected"]
    assert (alert["name"], alert["summary"]) == (want["name"], want["summary"])
    assert_named(title, "Production-EC2-HighCPU", want["summary"])
