"""What the webhook connector promises beyond the generic contract: the document it sends,
the Standard Webhooks headers, redaction of URL credentials, and a fake strict enough to
trust (a fake that accepts anything would let the contract suite pass vacuously)."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from baton_connectors.webhook import WebhookConnector
from fakes import FakeState, Reply, closed_port, sample_notification
from fakes import webhook as fake
from standardwebhooks import Webhook, WebhookVerificationError

from baton import __version__, schema, signing
from baton.errors import ConfigError
from baton.model import Outcome
from baton.secret import Secret

Server = Callable[[web.Application], Awaitable[TestServer]]


async def start_fake(aiohttp_server: Server) -> tuple[FakeState, str]:
    state = FakeState()
    server = await aiohttp_server(fake.make_app(state))
    return state, str(server.make_url("")).rstrip("/")


async def send(config: dict[str, Any], action: str = "trigger") -> Outcome:
    async with aiohttp.ClientSession() as http:
        notification = sample_notification("hook", action)
        return await WebhookConnector("hook", config).send(notification, http)


async def test_body_is_an_incident_document(aiohttp_server: Server) -> None:
    state, base = await start_fake(aiohttp_server)
    for action in ("trigger", "resolve"):
        assert (await send(fake.config(base), action)).kind == "ok"
    for accepted in state.accepted:
        doc = json.loads(accepted.seen.body)
        assert schema.problems("incident.schema.json", doc) == []
        assert doc["notification"] == {
            "action": accepted.action, "idempotency_key": f"{doc['id']}/hook/{accepted.action}",
            "delivery_id": doc["notification"]["delivery_id"], "connector": "hook", "attempt": 1}
    assert json.loads(state.accepted[1].seen.body)["status"] == "resolved"


async def test_headers(aiohttp_server: Server) -> None:
    state, base = await start_fake(aiohttp_server)
    assert (await send(fake.config(base))).kind == "ok"
    seen = state.accepted[0].seen
    h = seen.headers
    key = sample_notification("hook").idempotency_key
    assert h["Idempotency-Key"] == h["webhook-id"] == key
    assert h["User-Agent"] == f"baton/{__version__}"
    assert h["Content-Type"] == "application/json"
    assert h["X-Team"] == "ops" and h["Authorization"] == fake.AUTHORIZATION
    assert abs(int(h["webhook-timestamp"]) - time.time()) < 5
    assert h["webhook-signature"] == signing.sign(
        fake.SIGNING_KEY, key, int(h["webhook-timestamp"]), seen.body)


async def test_protocol_headers_win_over_configured_ones(aiohttp_server: Server) -> None:
    state, base = await start_fake(aiohttp_server)
    config = fake.config(base)
    config["headers"] = {**config["headers"], "content-type": "text/plain", "Webhook-Id": "x"}
    assert (await send(config)).kind == "ok", state.rejected


async def test_redirects_are_not_followed(aiohttp_server: Server) -> None:
    state, base = await start_fake(aiohttp_server)
    state.script(Reply(302, {"Location": f"{base}/elsewhere"}))
    outcome = await send(fake.config(base))
    assert (outcome.kind, outcome.status, len(state.requests)) == ("permanent", 302, 1)


async def echo_server(aiohttp_server: Server, status: int) -> tuple[list[web.Request], str]:
    """A lax receiver that answers ``status`` and echoes the request headers, as some
    badly behaved receivers do in their error pages."""
    seen: list[web.Request] = []

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        seen.append(request)
        return web.Response(status=status, text=" ".join(f"{k}={v}" for k, v in
                                                          request.headers.items()) * 5)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    server = await aiohttp_server(app)
    return seen, str(server.make_url("")).rstrip("/")


async def test_error_body_is_short_and_scrubbed(aiohttp_server: Server) -> None:
    _, base = await echo_server(aiohttp_server, 400)
    outcome = await send(fake.config(base))
    assert outcome.kind == "permanent" and outcome.detail.startswith("HTTP 400: ")
    assert len(outcome.detail) <= len("HTTP 400: ") + 200
    assert fake.AUTHORIZATION not in outcome.detail and "***" in outcome.detail


async def test_unsigned_without_secret(aiohttp_server: Server) -> None:
    seen, base = await echo_server(aiohttp_server, 204)
    assert (await send({"url": f"{base}/x"})).kind == "ok"
    assert "webhook-signature" not in seen[0].headers
    assert seen[0].headers["Idempotency-Key"]


async def test_unprefixed_secret_is_its_utf8_bytes(aiohttp_server: Server) -> None:
    seen, base = await echo_server(aiohttp_server, 200)
    assert (await send({"url": f"{base}/x", "secret": Secret("plain-Käse-key")})).kind == "ok"
    h, body = seen[0].headers, await seen[0].read()
    assert signing.verify("plain-Käse-key".encode(), h["webhook-id"], h["webhook-timestamp"],
                          body, h["webhook-signature"], now=time.time())


@pytest.mark.parametrize("url", [
    "http://ops:pw-s3cr3t-XYZ@127.0.0.1:{port}/hook?token=tok-s3cr3t-XYZ",
    Secret("http://127.0.0.1:{port}/T0/B1/path-s3cr3t-XYZ"),
])
async def test_connection_errors_hide_url_credentials(url: str | Secret) -> None:
    port = closed_port()
    if isinstance(url, Secret):
        config_url: str | Secret = Secret(url.reveal().format(port=port))
    else:
        config_url = url.format(port=port)
    outcome = await send({"url": config_url, "secret": Secret(fake.SIGNING_SECRET)})
    assert outcome.kind == "retryable" and f"127.0.0.1:{port}" in outcome.detail
    assert "s3cr3t" not in outcome.detail, outcome.detail


@pytest.mark.parametrize(("config", "key"), [
    ({"url": "http://h/x", "secret": Secret("whsec_s3cr3t!!not-base64")}, "secret"),
    ({"url": "http://h/x", "secret": Secret("")}, "secret"),
    ({"url": "ftp://s3cr3t@h/x"}, "url"),
])
def test_bad_config_is_a_config_error_without_the_value(config: dict[str, Any],
                                                        key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        WebhookConnector("hook", config)
    assert caught.value.problems[0].startswith(f"connectors.hook.{key}: ")
    assert "s3cr3t" not in str(caught.value)


async def test_fake_is_strict(aiohttp_server: Server) -> None:
    state, base = await start_fake(aiohttp_server)
    url = f"{base}{fake.PATH}?token={fake.URL_TOKEN}"
    body = json.dumps({"id": "x", "status": "triggered", "notification": {
        "action": "trigger", "idempotency_key": "k"}}).encode()
    signed = signing.headers(fake.SIGNING_KEY, "k", int(time.time()), body)
    good = {"Authorization": fake.AUTHORIZATION, "Content-Type": "application/json",
            "Idempotency-Key": "k", **signed}
    stale = signing.headers(fake.SIGNING_KEY, "k", int(time.time()) - 600, body)
    cases = [
        (url, good, 200),
        (f"{base}{fake.PATH}", good, 401),
        (url, {**good, "Authorization": "Bearer wrong"}, 401),
        (url, {**good, "webhook-signature": "v1,AAAA"}, 401),
        (url, {**good, **stale}, 401),
        (url, {**good, "Content-Type": "text/plain"}, 415),
        (url, {**good, "Idempotency-Key": "other"}, 400),
    ]
    async with aiohttp.ClientSession() as http:
        for target, headers, expected in cases:
            async with http.post(target, data=body, headers=headers) as resp:
                assert resp.status == expected, (headers, await resp.text())
    assert len(state.accepted) == 1 and len(state.rejected) == len(cases) - 1


async def test_awkward_keys_get_a_safe_stable_webhook_id(aiohttp_server: Server) -> None:
    """Recipients are free-form (``to: person:a.smith``), so keys can hold what a webhook-id
    may not; both headers then carry the reversible percent-encoded form."""
    state, base = await start_fake(aiohttp_server)
    note = dataclasses.replace(sample_notification("hook"),
                               idempotency_key="01JD/hook/trigger/person:a.smith jr/Jürgen%")
    async with aiohttp.ClientSession() as http:
        connector = WebhookConnector("hook", fake.config(base))
        for attempt in (1, 2):
            outcome = await connector.send(dataclasses.replace(note, attempt=attempt), http)
            assert outcome.kind == "ok", state.rejected
    first, second = (a.keys for a in state.accepted)
    assert first == second == ("01JD/hook/trigger/person:a%2Esmith%20jr/J%C3%BCrgen%25",) * 2


_KEY = b"receiver-side key, 32 bytes long"
_WHSEC = "whsec_" + base64.b64encode(_KEY).decode()


@pytest.mark.parametrize("secret", [_WHSEC, _WHSEC.rstrip("=")], ids=["padded", "unpadded"])
async def test_the_reference_library_verifies_with_the_configured_whsec_secret(
        aiohttp_server: Server, secret: str) -> None:
    # The receiver is standardwebhooks.Webhook given exactly the secret Baton was given;
    # the library adds the padding a secret may lack, so Baton must read it the same way.
    seen, base = await echo_server(aiohttp_server, 200)
    assert (await send({"url": f"{base}/x", "secret": Secret(secret)})).kind == "ok"
    body = await seen[0].read()
    assert Webhook(secret).verify(body, dict(seen[0].headers))["id"]


async def test_a_bare_secret_verifies_as_the_library_reads_its_whsec_form(
        aiohttp_server: Server) -> None:
    # A bare secret is its UTF-8 bytes (documented; receivers verify with the string as
    # is), so a library receiver is given "whsec_" + base64 of those bytes, as the schema
    # says; the bare string alone is read by the library as base64 and cannot match.
    seen, base = await echo_server(aiohttp_server, 200)
    bare = "a-plain-shared-secret"
    assert (await send({"url": f"{base}/x", "secret": Secret(bare)})).kind == "ok"
    body, headers = await seen[0].read(), dict(seen[0].headers)
    Webhook("whsec_" + base64.b64encode(bare.encode()).decode()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(bare).verify(body, headers)
