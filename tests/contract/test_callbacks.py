"""The callback contract: every connector that takes callbacks, through the real gateway.

For each, the fake vendor module provides ``callback_request(action, incident_id,
external_id, event_id, now, forged=False) -> (body, headers) | None``: the request the
vendor sends when a person does ``action`` there (None when the vendor cannot express it),
signed at ``now``, or with a wrong key when ``forged``. ``STALE`` (seconds), when the
vendor signs a time, is how old a request may be before it must be refused.

For each action: a forged request is 401 and changes nothing; a stale one too; the
genuine one changes the incident once, as the vendor's user; its replay changes nothing;
and the connector the change came from is not told about it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeState
from helpers import PROBLEM, ClientFactory, Gateway, ServerFactory, alert, start_gateway
from test_connectors import load_fake

from baton import plugin
from baton.clock import FakeClock
from baton.secret import Secret

NAME = "vendor"


def takes_callbacks(name: str) -> bool:
    cls = plugin.load(plugin.CONNECTOR_GROUP, name)
    return bool(cls("probe", load_fake(name).config("http://127.0.0.1:9")).accepts_callbacks)


NAMES = [n for n in sorted(plugin.discover(plugin.CONNECTOR_GROUP)) if takes_callbacks(n)]


def as_config(value: Any, environ: dict[str, str]) -> Any:
    """The fake's config as a user writes it: each Secret from its own variable."""
    if isinstance(value, Secret):
        var = value.origin.removeprefix("env:") if value.origin.startswith("env:") \
            else f"SECRET_{len(environ)}"
        environ[var] = value.reveal()
        return {"env": var}
    if isinstance(value, dict):
        return {k: as_config(v, environ) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_config(v, environ) for v in value]
    return value


def test_the_suite_covers_the_vendors_with_callbacks() -> None:
    assert {"jira", "opsgenie", "pagerduty", "servicenow", "slack", "zendesk"} <= set(NAMES)


@pytest.fixture(params=NAMES)
async def gw(request: pytest.FixtureRequest, aiohttp_client: ClientFactory,
             aiohttp_server: ServerFactory, tmp_path: Path) -> tuple[Gateway, Any, str]:
    name = str(request.param)
    fake = load_fake(name)
    assert callable(getattr(fake, "callback_request", None)), (
        f"tests/contract/fakes/{name}.py must provide callback_request(): the connector "
        "takes callbacks")
    server = await aiohttp_server(fake.make_app(FakeState()), access_log=None)
    environ: dict[str, str] = {}
    block = as_config(fake.config(str(server.make_url("")).rstrip("/")), environ)
    data = {
        "server": {"shutdown_grace": "1s"},
        "storage": {"url": f"sqlite:///{tmp_path}/b.db"},
        "sources": {"app": {"type": "generic", "auth": {"type": "none"}}},
        "connectors": {NAME: {"type": name, **block}},
        "routes": [{"name": "all", "policy": "p"}],
        "policies": {"p": {"levels": [{"notify": [NAME]}]}},
    }
    gateway = await start_gateway(aiohttp_client, data, tmp_path, clock=FakeClock(),
                                  environ=environ)
    incident_id = (await gateway.ingest(alert("disk")))["incidents"][0]
    await gateway.pump()
    delivered = [d["state"] for d in gateway.deliveries(incident_id)]
    assert delivered == ["delivered"], delivered
    return gateway, fake, incident_id


async def post(gw: Gateway, req: tuple[bytes, dict[str, str]], status: int) -> dict[str, Any]:
    body, headers = req
    resp = await gw.client.post(f"/v1/callbacks/{NAME}", data=body, headers=headers)
    text = await resp.text()
    assert resp.status == status, text
    if status != 200:
        assert resp.content_type == PROBLEM
    return json.loads(text)  # type: ignore[no-any-return]


def external_id(doc: dict[str, Any]) -> str | None:
    refs = [r["id"] for r in doc["external_refs"] if r["connector"] == NAME]
    return refs[0] if refs else None


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
async def test_a_person_acting_at_the_vendor_changes_the_incident_once(
        gw: tuple[Gateway, Any, str], action: str) -> None:
    g, fake, incident_id = gw
    doc = await g.incident(incident_id)
    ref = external_id(doc)
    now = g.clock.now()
    genuine = fake.callback_request(action, incident_id, ref, f"evt-{action}-1", now)
    if genuine is None:
        pytest.skip(f"the vendor has no way to say {action}")  # e.g. ServiceNow: no ack
    refused = [fake.callback_request(action, incident_id, ref, f"evt-{action}-1", now,
                                     forged=True)]
    if getattr(fake, "STALE", None):
        refused.append(fake.callback_request(action, incident_id, ref, f"evt-{action}-1",
                                             now - fake.STALE - 60))
    for bad in refused:
        assert (await post(g, bad, 401))["status"] == 401
        assert (await g.incident(incident_id))["timeline"] == doc["timeline"]

    result = await post(g, genuine, 200)
    assert (result["applied"], result["incidents"]) == (1, [incident_id])
    after = await g.incident(incident_id)
    expected = {"acknowledge": "acknowledged", "resolve": "resolved"}[action]
    assert after["status"] == expected
    entry = after["timeline"][-1]
    assert entry["type"] == expected and entry["detail"]["via"] == f"callback:{NAME}"
    assert entry["actor"] and "baton" not in entry["actor"].lower()

    assert (await post(g, genuine, 200))["replayed"] == 1
    assert (await g.incident(incident_id))["timeline"] == after["timeline"]
    # The vendor already knows: nothing is sent back to it.
    await g.pump()
    assert [d["action"] for d in g.deliveries(incident_id)] == ["trigger"]


async def test_a_report_of_what_baton_already_did_changes_nothing(
        gw: tuple[Gateway, Any, str]) -> None:
    """Resolved in Baton and told to the vendor; the vendor's report of it comes back."""
    g, fake, incident_id = gw
    await g.post(f"/v1/incidents/{incident_id}/resolve", {"by": "alice"}, 200)
    await g.pump()
    doc = await g.incident(incident_id)
    echo = fake.callback_request("resolve", incident_id, external_id(doc), "evt-echo",
                                 g.clock.now())
    result = await post(g, echo, 200)
    assert result["applied"] == 0
    after = await g.incident(incident_id)
    assert after["timeline"] == doc["timeline"] and after["resolved_by"] == "alice"
