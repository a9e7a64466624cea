"""PagerDuty's own Events API v2 clients as senders: ``pagerduty`` (the official library)
and ``pdpyras`` (its predecessor, still widely used), against a real gateway on loopback.

Both post to ``<base>/v2/enqueue``; ``pagerduty`` accepts only an https base, so the
gateway under test listens with TLS (a throwaway certificate for 127.0.0.1 that the
clients are told to trust). The clients are synchronous: they run in a thread while the
gateway serves on the test's event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pagerduty
import pdpyras
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from helpers import (
    PROBLEM,
    ClientFactory,
    Hold,
    ServerFactory,
    alert,
    build,
    config_dict,
    start_gateway,
)

from baton.app import create_app
from baton.clock import FakeClock
from baton.errors import ConfigError

pytestmark = pytest.mark.integration

KEY_A = "R0UTINGKEYA0000000000000000000AA"
KEY_B = "R0UTINGKEYB0000000000000000000BB"
ENV = {"PD_KEY_A": KEY_A, "PD_KEY_B": KEY_B, "PD_TOKEN": "s3cr3t-bearer-token"}


def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "baton test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Gateway:
    """Baton over TLS on 127.0.0.1, and a management-API reader trusting its certificate."""

    def __init__(self, base: str, ca: Path) -> None:
        self.base = base
        self.ca = ca
        self.ssl = ssl.create_default_context(cafile=str(ca))

    async def get(self, path: str) -> Any:
        async with aiohttp.ClientSession() as http:
            async with http.get(self.base + path, ssl=self.ssl) as resp:
                assert resp.status == 200, await resp.text()
                return await resp.json()

    async def post(self, path: str, body: Any, **headers: str) -> tuple[int, str, Any]:
        async with aiohttp.ClientSession() as http:
            async with http.post(self.base + path, json=body, ssl=self.ssl,
                                 headers=headers) as resp:
                return resp.status, resp.content_type, await resp.json(content_type=None)

    async def incident_by_key(self, dedup_key: str) -> dict[str, Any]:
        for item in (await self.get("/v1/incidents?limit=100"))["incidents"]:
            doc: dict[str, Any] = await self.get(f"/v1/incidents/{item['id']}")
            if any(a["dedup_key"] == dedup_key for a in doc["alerts"]):
                return doc
        raise AssertionError(f"no incident has an alert {dedup_key!r}")


@pytest.fixture
async def gateway(aiohttp_server: ServerFactory, tmp_path: Path) -> Gateway:
    data = config_dict(tmp_path)
    data["sources"] = {
        "pd-a": {"type": "pagerduty-events", "routing_key": {"env": "PD_KEY_A"},
                 "auth": {"type": "none"}},
        "pd-b": {"type": "pagerduty-events", "routing_key": {"env": "PD_KEY_B"},
                 "auth": {"type": "none"}},
        "pd-open": {"type": "pagerduty-events", "auth": {"type": "none"}},
        "pd-guarded": {"type": "pagerduty-events",
                       "auth": {"type": "bearer", "token": {"env": "PD_TOKEN"}}},
        "am": {"type": "alertmanager", "auth": {"type": "none"}},
    }
    app = create_app(build(data, tmp_path, ENV), clock=FakeClock(), run_dispatcher=False)
    cert, key = tls_files(tmp_path)
    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ssl.load_cert_chain(cert, key)
    server = await aiohttp_server(app, ssl=server_ssl)
    assert server.host == "127.0.0.1"
    return Gateway(str(server.make_url("")).rstrip("/"), cert)


# --- the two clients, behind one small interface ----------------------------------------

Client = Any
MakeClient = Callable[[Gateway, str, str], Client]


def official(gw: Gateway, base: str, routing_key: str) -> Client:
    client = pagerduty.EventsApiV2Client(routing_key, base_url=gw.base + base,
                                         verify=gw.ssl, trust_env=False)
    client.max_http_attempts = client.max_network_attempts = 1
    return client


def legacy(gw: Gateway, base: str, routing_key: str) -> Client:
    session = pdpyras.EventsAPISession(routing_key)
    session.url = gw.base + base
    session.verify = str(gw.ca)
    session.trust_env = False  # no proxy from the environment for a loopback gateway
    session.max_http_attempts = session.max_network_attempts = 1
    return session


CLIENTS = [pytest.param(official, pagerduty.HttpError, id="pagerduty"),
           pytest.param(legacy, pdpyras.PDHTTPError, id="pdpyras")]


def status_of(error: Exception) -> tuple[int, Any]:
    response = error.response  # type: ignore[attr-defined]
    return response.status_code, response.json()


async def lifecycle(gw: Gateway, client: Client, source: str) -> None:
    """trigger, acknowledge, resolve through ``client``; the incident follows."""
    key = await asyncio.to_thread(
        client.trigger, "Disk full on db-1", "db-1.example.net", severity="error",
        custom_details={"used": "97%"})
    assert isinstance(key, str) and key
    doc = await gw.incident_by_key(key)
    assert doc["status"] == "triggered"
    assert doc["severity"] == "error"
    assert doc["alerts"][0]["source"] == {"type": "pagerduty-events", "name": source}
    assert doc["alerts"][0]["summary"] == "Disk full on db-1"
    assert await asyncio.to_thread(client.acknowledge, key) == key
    assert (await gw.incident_by_key(key))["status"] == "acknowledged"
    # pagerduty's resolve returns the key, pdpyras's too.
    assert await asyncio.to_thread(client.resolve, key) == key
    assert (await gw.incident_by_key(key))["status"] == "resolved"


@pytest.mark.parametrize(("make", "error"), CLIENTS)
async def test_source_named_in_the_base_url(gateway: Gateway, make: MakeClient,
                                            error: type[Exception]) -> None:
    """Base ``<baton>/v1/ingest/{source}``: the client adds ``/v2/enqueue``."""
    await lifecycle(gateway, make(gateway, "/v1/ingest/pd-a", KEY_A), "pd-a")
    # A source without a routing_key takes any key there.
    await lifecycle(gateway, make(gateway, "/v1/ingest/pd-open", "any-key"), "pd-open")
    # With one, the key is the credential: the wrong one is refused, as at PagerDuty.
    with pytest.raises(error) as info:
        await asyncio.to_thread(make(gateway, "/v1/ingest/pd-a", KEY_B).trigger, "x", "h")
    status, body = status_of(info.value)
    assert status == 401
    assert body["status"] == "unauthorized" and KEY_A not in str(body)


@pytest.mark.parametrize(("make", "error"), CLIENTS)
async def test_host_only_base_selects_the_source_by_routing_key(
        gateway: Gateway, make: MakeClient, error: type[Exception]) -> None:
    """Base = the host alone (``POST /v2/enqueue``): the routing key picks the source."""
    await lifecycle(gateway, make(gateway, "", KEY_B), "pd-b")
    await lifecycle(gateway, make(gateway, "", KEY_A), "pd-a")
    with pytest.raises(error) as info:
        await asyncio.to_thread(make(gateway, "", "no-such-key").trigger, "x", "h")
    assert status_of(info.value) == (400, {"status": "invalid event",
                                           "message": "Event object is invalid",
                                           "errors": ["Invalid routing key"]})


@pytest.mark.parametrize(("make", "error"), CLIENTS)
@pytest.mark.parametrize("base", ["/v1/ingest/pd-a", ""], ids=["named", "by-key"])
async def test_bad_event_is_pagerdutys_400_and_the_clients_error(
        gateway: Gateway, make: MakeClient, error: type[Exception], base: str) -> None:
    client = make(gateway, base, KEY_A)
    with pytest.raises(error) as info:
        await asyncio.to_thread(client.trigger, "x", "h", severity="catastrophic")
    status, body = status_of(info.value)
    assert status == 400
    assert body["status"] == "invalid event"
    assert body["message"] == "Event object is invalid"
    assert any("severity" in e for e in body["errors"])
    # An acknowledge for a key never triggered is fine at PagerDuty too: nothing to do.
    assert await asyncio.to_thread(client.acknowledge, "never-triggered") == \
        "never-triggered"


async def test_source_auth_still_applies(gateway: Gateway) -> None:
    """A pagerduty-events source behind a bearer token: pdpyras can add the header."""
    session = legacy(gateway, "/v1/ingest/pd-guarded", "any-key")
    with pytest.raises(pdpyras.PDHTTPError) as info:
        await asyncio.to_thread(session.trigger, "x", "h")
    assert status_of(info.value)[0] == 401
    assert info.value.response.headers["WWW-Authenticate"].startswith("Bearer")
    session.headers["Authorization"] = f"Bearer {ENV['PD_TOKEN']}"
    await lifecycle(gateway, session, "pd-guarded")


async def test_pagerduty_shaped_errors_and_other_types(gateway: Gateway) -> None:
    event = {"routing_key": KEY_A, "event_action": "trigger",
             "payload": {"summary": "s", "source": "h", "severity": "info"}}
    # Not JSON: PagerDuty's own "Unrecognized object" answer.
    async with aiohttp.ClientSession() as http:
        async with http.post(gateway.base + "/v2/enqueue", data=b"{not json",
                             ssl=gateway.ssl,
                             headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 400
            body = await resp.json()
    assert body["status"] == "Unrecognized object"
    assert body["errors"][0] == "JSON parse error"
    status, ctype, body = await gateway.post("/v2/enqueue", {"event_action": "trigger"})
    assert (status, ctype, body["status"]) == (400, "application/json", "invalid event")
    # The Events path exists only for pagerduty-events sources: others are a 404 problem.
    for name in ("am", "nope"):
        status, ctype, body = await gateway.post(f"/v1/ingest/{name}/v2/enqueue", event)
        assert (status, ctype) == (404, PROBLEM)
    # The 202 carries PagerDuty's keys and Baton's.
    status, _, body = await gateway.post("/v1/ingest/pd-a/v2/enqueue", event)
    assert status == 202
    assert body["status"] == "success" and body["message"] == "Event processed"
    assert body["dedup_key"] and body["accepted"] == 1 and len(body["incidents"]) == 1


def test_two_sources_cannot_share_a_routing_key(tmp_path: Path) -> None:
    data = config_dict(tmp_path)
    data["sources"] = {name: {"type": "pagerduty-events", "routing_key": {"env": "SAME"},
                              "auth": {"type": "none"}} for name in ("one", "two")}
    with pytest.raises(ConfigError) as info:
        build(data, tmp_path, {"SAME": KEY_A})
    assert info.value.problems == [
        "sources.two.routing_key: the same routing key as sources.one: an event sent to "
        "/v2/enqueue could be for either"]


async def test_overload_is_pagerdutys_503_with_retry_after(aiohttp_client: ClientFactory,
                                                         tmp_path: Path) -> None:
    """The store's overload guard holds on both Events paths (the clients retry a 503)."""
    data = config_dict(tmp_path)
    data["storage"]["max_pending_writes"] = 1
    data["sources"]["pd"] = {"type": "pagerduty-events", "routing_key": {"env": "PD_KEY_A"},
                             "auth": {"type": "none"}}
    gw = await start_gateway(aiohttp_client, data, tmp_path, environ=ENV)
    hold = Hold()
    held = asyncio.create_task(gw.store.engine.write(hold))
    await asyncio.to_thread(hold.inside.wait, 5)
    queued = asyncio.create_task(gw.client.post("/v1/ingest/app", json=alert("queued")))
    try:
        for _ in range(500):  # until that write waits in the (now full) queue
            if len(getattr(gw.store.engine, "backlog", ())):
                break
            await asyncio.sleep(0.01)
        event = {"routing_key": KEY_A, "event_action": "trigger",
                 "payload": {"summary": "s", "source": "h", "severity": "info"}}
        for path in ("/v2/enqueue", "/v1/ingest/pd/v2/enqueue"):
            resp = await gw.client.post(path, json=event)
            body = await resp.json()
            assert resp.status == 503, body
            assert int(resp.headers["Retry-After"]) >= 1
            assert body["status"] == "unavailable" and body["errors"]
    finally:
        hold.release.set()
        await held
        assert (await queued).status == 202
    resp = await gw.client.post("/v2/enqueue", json=event)
    assert resp.status == 202


async def test_host_only_path_keeps_the_sources_own_body_limit(
        aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """A source's max_body_bytes is its limit on both Events paths, above the server's
    default as below it: /v2/enqueue must not refuse what /v1/ingest/{source} takes."""
    data = config_dict(tmp_path)
    data["server"]["max_body_bytes"] = 4000
    data["sources"]["pd-big"] = {"type": "pagerduty-events", "max_body_bytes": 50_000,
                                 "routing_key": {"env": "PD_KEY_A"}, "auth": {"type": "none"}}
    data["sources"]["pd-small"] = {"type": "pagerduty-events", "max_body_bytes": 300,
                                   "routing_key": {"env": "PD_KEY_B"},
                                   "auth": {"type": "none"}}
    gw = await start_gateway(aiohttp_client, data, tmp_path, environ=ENV)

    def event(key: str, size: int) -> dict[str, Any]:
        return {"routing_key": key, "event_action": "trigger",
                "payload": {"summary": "s", "source": "h", "severity": "info",
                            "custom_details": {f"log{i}": "x" * (size // 5)
                                               for i in range(5)}}}

    for path in ("/v1/ingest/pd-big/v2/enqueue", "/v2/enqueue"):
        resp = await gw.client.post(path, json=event(KEY_A, 10_000))
        assert resp.status == 202, (path, await resp.text())
    for path in ("/v1/ingest/pd-small/v2/enqueue", "/v2/enqueue"):
        resp = await gw.client.post(path, json=event(KEY_B, 1000))
        assert resp.status == 413, (path, await resp.text())
    # A key no source has: still read only up to the largest limit a source could take.
    resp = await gw.client.post("/v2/enqueue", json=event("N0SUCHKEY", 60_000))
    assert resp.status == 413
