"""Signed ingest: ``hmac`` (Grafana, Sentry, GitHub-style senders) and Standard Webhooks.

Each scheme with a good signature, a tampered body, a stale timestamp, a rotated secret
and no signature; a Standard Webhooks message delivered twice is processed once. Refused
requests are 401 problem+json and store nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import PROBLEM, ClientFactory, Gateway, alert, config_dict, start_gateway, table_counts

from baton import signing
from baton.clock import FakeClock

KEY = "s3cr3t-hmac-key-do-not-leak"
OLD_KEY = "s3cr3t-hmac-old-key-do-not-leak"
# The Standard Webhooks specification's published example.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID, SPEC_TS = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
ENV = {"HMAC_KEY": KEY, "HMAC_OLD": OLD_KEY, "SW_SECRET": SPEC_SECRET,
       "SW_OLD": "whsec_" + base64.b64encode(b"an older key, 24 bytes or more").decode()}


async def gateway(aiohttp_client: ClientFactory, tmp_path: Path, auth: dict[str, Any],
                  clock: FakeClock | None = None) -> Gateway:
    data = config_dict(tmp_path)
    data["sources"]["app"]["auth"] = auth
    return await start_gateway(aiohttp_client, data, tmp_path, clock=clock or FakeClock(),
                               environ=ENV)


async def post(gw: Gateway, body: bytes, headers: dict[str, str], status: int) -> Any:
    resp = await gw.client.post("/v1/ingest/app", data=body,
                                headers={"Content-Type": "application/json", **headers})
    text = await resp.text()
    assert resp.status == status, text
    for secret in ENV.values():
        assert secret not in text
    if status >= 400:
        assert resp.content_type == PROBLEM
    return json.loads(text)


def digest(key: str, message: bytes) -> bytes:
    return hmac.new(key.encode(), message, hashlib.sha256).digest()


BODY = json.dumps(alert("disk")).encode()


# --- hmac ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("auth", "header"), [
    ({"header": "Sentry-Hook-Signature"},
     lambda body, now: {"Sentry-Hook-Signature": digest(KEY, body).hex()}),
    ({"header": "X-Hub-Signature-256", "prefix": "sha256="},
     lambda body, now: {"X-Hub-Signature-256": "sha256=" + digest(KEY, body).hex().upper()}),
    ({"header": "X-Signature", "encoding": "base64"},
     lambda body, now: {"X-Signature": base64.b64encode(digest(KEY, body)).decode()}),
    ({"header": "X-Grafana-Alerting-Signature",
      "timestamp_header": "X-Grafana-Alerting-Signature-Timestamp"},
     lambda body, now: {"X-Grafana-Alerting-Signature-Timestamp": str(int(now)),
                        "X-Grafana-Alerting-Signature":
                            digest(KEY, str(int(now)).encode() + b":" + body).hex()}),
])
async def test_hmac_accepts_a_good_signature_and_refuses_a_tampered_body(
        aiohttp_client: ClientFactory, tmp_path: Path, auth: dict[str, Any],
        header: Any) -> None:
    gw = await gateway(aiohttp_client, tmp_path,
                       {"type": "hmac", "secret": {"env": "HMAC_KEY"}, **auth})
    now = gw.clock.now()
    await post(gw, BODY, {}, 401)
    tampered = BODY.replace(b"disk", b"dusk")
    await post(gw, tampered, header(BODY, now), 401)
    assert table_counts(tmp_path)["events"] == 0
    assert (await post(gw, BODY, header(BODY, now), 202))["accepted"] == 1


async def test_hmac_refuses_a_stale_or_future_timestamp(aiohttp_client: ClientFactory,
                                                        tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, tmp_path, {
        "type": "hmac", "secret": {"env": "HMAC_KEY"}, "header": "X-Sig",
        "timestamp_header": "X-Ts", "tolerance": "5m"})
    now = int(gw.clock.now())
    for stamp in (now - 301, now + 301, "soon", ""):
        sig = digest(KEY, f"{stamp}:".encode() + BODY).hex()
        await post(gw, BODY, {"X-Ts": str(stamp), "X-Sig": sig}, 401)
    sig = digest(KEY, f"{now - 299}:".encode() + BODY).hex()
    await post(gw, BODY, {"X-Ts": str(now - 299), "X-Sig": sig}, 202)


async def test_hmac_takes_any_of_the_rotated_secrets(aiohttp_client: ClientFactory,
                                                     tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, tmp_path, {
        "type": "hmac", "secrets": [{"env": "HMAC_KEY"}, {"env": "HMAC_OLD"}],
        "header": "X-Sig"})
    for key in (KEY, OLD_KEY):
        await post(gw, BODY, {"X-Sig": digest(key, BODY).hex()}, 202)
    await post(gw, BODY, {"X-Sig": digest("retired", BODY).hex()}, 401)


async def test_hmac_replay_inside_the_window_changes_nothing(aiohttp_client: ClientFactory,
                                                            tmp_path: Path) -> None:
    """The same signed request again (same timestamp, same body), even with the signature
    spelled in upper case, is answered ``replayed`` and stores nothing (issue 10, finding
    9); the same body signed at another second is a new request."""
    gw = await gateway(aiohttp_client, tmp_path, {
        "type": "hmac", "secret": {"env": "HMAC_KEY"}, "header": "X-Sig",
        "timestamp_header": "X-Ts", "tolerance": "5m"})
    now = int(gw.clock.now())
    sig = digest(KEY, f"{now}:".encode() + BODY).hex()
    first = await post(gw, BODY, {"X-Ts": str(now), "X-Sig": sig}, 202)
    assert first["accepted"] == 1
    for spelled in (sig, sig.upper()):
        again = await post(gw, BODY, {"X-Ts": str(now), "X-Sig": spelled}, 202)
        assert again == {"accepted": 0, "incidents": [], "replayed": True}
    assert table_counts(tmp_path)["events"] == 1
    gw.clock.advance(1)
    later = int(gw.clock.now())
    sig = digest(KEY, f"{later}:".encode() + BODY).hex()
    assert (await post(gw, BODY, {"X-Ts": str(later), "X-Sig": sig}, 202))["accepted"] == 1
    assert table_counts(tmp_path)["events"] == 2


# --- standard webhooks --------------------------------------------------------------------

def sw_headers(secret: str, msg_id: str, stamp: int, body: bytes) -> dict[str, str]:
    return signing.headers(signing.decode_secret(secret), msg_id, stamp, body)


async def test_standard_webhooks_published_example_verifies(aiohttp_client: ClientFactory,
                                                            tmp_path: Path) -> None:
    """The spec's example passes the signature check (and is then not an alert: 400)."""
    gw = await gateway(aiohttp_client, tmp_path,
                       {"type": "standard-webhooks", "secret": {"env": "SW_SECRET"}},
                       FakeClock(SPEC_TS + 10))
    headers = {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TS),
               "webhook-signature": SPEC_SIGNATURE}
    assert (await post(gw, SPEC_BODY, headers, 400))["status"] == 400
    bad = dict(headers, **{"webhook-signature": SPEC_SIGNATURE.replace("g0h", "g0H")})
    await post(gw, SPEC_BODY, bad, 401)
    gw.clock.advance(600)  # the same request, now outside the 5-minute window
    await post(gw, SPEC_BODY, headers, 401)


async def test_standard_webhooks_rotation_staleness_and_replay(
        aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, tmp_path, {
        "type": "standard-webhooks", "secrets": [{"env": "SW_SECRET"}, {"env": "SW_OLD"}]})
    now = int(gw.clock.now())
    first = await post(gw, BODY, sw_headers(ENV["SW_OLD"], "msg_1", now, BODY), 202)
    assert first["accepted"] == 1
    # Redelivered (same id): answered 2xx so the sender stops, and nothing happens again.
    again = await post(gw, BODY, sw_headers(SPEC_SECRET, "msg_1", now, BODY), 202)
    assert again == {"accepted": 0, "incidents": [], "replayed": True}
    doc = await gw.incident(first["incidents"][0])
    assert doc["event_count"] == 1
    assert table_counts(tmp_path)["events"] == 1
    # Several signatures in one header, the first from a key we do not hold.
    both = sw_headers(SPEC_SECRET, "msg_2", now, BODY)
    stranger = sw_headers("whsec_" + base64.b64encode(b"x" * 24).decode(), "msg_2", now, BODY)
    both["webhook-signature"] = stranger["webhook-signature"] + " " + both["webhook-signature"]
    assert (await post(gw, BODY, both, 202))["accepted"] == 1
    for stamp in (now - 301, now + 400):
        await post(gw, BODY, sw_headers(SPEC_SECRET, f"msg_{stamp}", stamp, BODY), 401)
    missing = sw_headers(SPEC_SECRET, "msg_3", now, BODY)
    del missing["webhook-id"]
    await post(gw, BODY, missing, 401)
    assert table_counts(tmp_path)["events"] == 2


async def test_hmac_matches_githubs_published_example(aiohttp_client: ClientFactory,
                                                      tmp_path: Path) -> None:
    """GitHub's webhook docs: secret "It's a Secret to Everybody", body "Hello, World!".
    The signature verifies (the body then is no alert: 400, not 401)."""
    data = config_dict(tmp_path)
    data["sources"]["app"]["auth"] = {"type": "hmac", "secret": {"env": "GH_SECRET"},
                                      "header": "X-Hub-Signature-256", "prefix": "sha256="}
    gw = await start_gateway(aiohttp_client, data, tmp_path,
                             environ={"GH_SECRET": "It's a Secret to Everybody"})
    expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    resp = await gw.client.post("/v1/ingest/app", data=b"Hello, World!", headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={expected}"})
    assert resp.status == 400, await resp.text()
    resp = await gw.client.post("/v1/ingest/app", data=b"Hello, World?", headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={expected}"})
    assert resp.status == 401
