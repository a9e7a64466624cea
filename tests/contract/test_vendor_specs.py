"""Every connector's requests, for every action and for awkward incidents, checked against
the vendor's own published API description (``specs/<type>.py``) beside its strict fake.

The awkward incidents are the ones real outages produce: a title longer than any vendor
field, non-ASCII and emoji (Jira and Twilio count UTF-16 units), several lines, text that
is markup in the target (HTML, Markdown, Slack's mrkdwn), the label cap, many alerts.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fakes import FakeState, FakeVendor, sample_incident, sample_notification, start

from baton import plugin
from baton.model import Alert, parse_iso

NAMES = sorted(plugin.discover(plugin.CONNECTOR_GROUP))
SPECS = Path(__file__).parent / "specs"
ACTIONS = ("trigger", "update", "acknowledge", "note", "resolve")

_MARKUP = ('<b>bold</b> <script>alert(1)</script> [click](http://127.0.0.1/x) '
           '<!channel> <@U024BE7LH> *stars* _under_ `tick` &amp; {{x}} # not a heading')


def _alert(i: int, title: str, labels: dict[str, str]) -> dict[str, Any]:
    return Alert(
        dedup_key=f"edge/{i}", status="firing", severity="critical", summary=title,
        source_type="alertmanager", source_name="prometheus",
        description=f"{title}\n\nsecond paragraph\n- a list item",
        service="checkout", environment="production", labels=labels,
        started_at=parse_iso("2024-11-20T08:05:00Z"),
    ).to_dict()


def edge_incidents() -> dict[str, dict[str, Any]]:
    """Incident documents that stress every field a connector maps."""
    titles = {
        "long": "Disk full on " + "db-primary-" * 120,
        # Astral-plane emoji are two UTF-16 units: a cut by code points overruns Jira/Twilio.
        "emoji": "🔥💥 checkout down " + "🚨" * 300 + " ünïcödé ✓ 日本語",
        "multiline": "Line one of the title\nline two\r\n\tline three   with  spaces",
        "markup": _MARKUP,
    }
    out = {}
    for name, title in titles.items():
        doc = sample_incident()
        doc["title"] = title
        doc["alerts"] = [_alert(0, title, {"alertname": title[:200], "severity": "critical"})]
        out[name] = doc
    many_labels = {f"label_{i:03d}": f"value {i} " + "x" * 40 for i in range(128)}
    doc = sample_incident()
    doc["labels"] = many_labels
    doc["alerts"] = [_alert(0, doc["title"], many_labels)]
    out["many-labels"] = doc
    doc = sample_incident()
    doc["alerts"] = [_alert(i, f"Alert number {i} on checkout", {"alertname": f"A{i}"})
                     for i in range(60)]
    doc["event_count"] = 60
    out["many-alerts"] = doc
    return out


EDGES = edge_incidents()


def load(package: str, name: str, what: str) -> Any:
    module = name.replace("-", "_")
    if not (Path(__file__).parent / package / f"{module}.py").is_file():
        pytest.fail(f"connector {name!r} has no {what}: add tests/contract/{package}/"
                    f"{module}.py; every registered connector must pass this suite",
                    pytrace=False)
    return importlib.import_module(f"{package}.{module}")


def with_state(doc: dict[str, Any], action: str) -> dict[str, Any]:
    doc = dict(doc)
    later = "2024-11-20T08:40:00.000Z"
    if action == "acknowledge":
        doc.update(status="acknowledged", acknowledged_at=later, acknowledged_by="alice")
    elif action == "resolve":
        doc.update(status="resolved", resolved_at=later, resolved_by="alice",
                   updated_at=later)
        doc["escalation"] = {**doc["escalation"], "next_at": None}
    elif action == "note":
        doc["timeline"] = [*doc["timeline"], {
            "at": later, "type": "note", "actor": "alice",
            "detail": {"text": doc["title"] + "\nsee the runbook"}}]
    return doc


@pytest.fixture(params=NAMES)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def vendor(name: str, aiohttp_server: Any) -> AsyncIterator[tuple[FakeVendor,
                                                                        FakeState, str]]:
    fake: FakeVendor = load("fakes", name, "fake vendor")
    state = FakeState()
    base_url, stop = await start(fake, state, aiohttp_server)
    yield fake, state, base_url
    state.release.set()
    if stop is not None:
        await stop()


def test_every_connector_has_a_spec_check(name: str) -> None:
    assert callable(load("specs", name, "vendor-spec check").check)


@pytest.mark.parametrize("edge", sorted(EDGES))
async def test_requests_match_the_vendor_description(
        name: str, edge: str, vendor: tuple[FakeVendor, FakeState, str]) -> None:
    fake, state, base_url = vendor
    spec = load("specs", name, "vendor-spec check")
    cls = plugin.load(plugin.CONNECTOR_GROUP, name)
    connector = cls(f"spec-{name}", fake.config(base_url))
    refs: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http:
        for action in ACTIONS:
            doc = with_state(EDGES[edge], action)
            doc["external_refs"] = refs
            outcome = await connector.send(
                sample_notification(f"spec-{name}", action, incident=doc), http)
            assert outcome.kind == "ok", (action, outcome, state.rejected)
            if outcome.external_ref is not None and not refs:
                refs = [outcome.external_ref.to_dict()]
    assert state.requests, "the connector sent nothing"
    assert not state.rejected, state.rejected
    problems = [f"{seen.method} {seen.path}: {p}"
                for seen in state.requests for p in spec.check(seen)]
    assert not problems, "\n".join(problems)
