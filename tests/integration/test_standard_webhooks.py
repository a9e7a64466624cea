"""Standard Webhooks with the reference library as the sender: ``standardwebhooks.Webhook``
signs, a real gateway on loopback verifies.

The library reads a secret as base64 with or without ``whsec_``; so must Baton, or every
request of a sender configured with the bare form fails with 401. A secret no sender can
sign with is refused when the config loads, naming its path and never its value.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import PROBLEM, ClientFactory, Gateway, alert, build, config_dict, start_gateway
from standardwebhooks import Webhook

from baton.clock import FakeClock
from baton.errors import ConfigError

pytestmark = pytest.mark.integration

NEW = "whsec_" + base64.b64encode(b"the current signing key, 32 bytes").decode()
OLD = base64.b64encode(b"the key before the last rotation!").decode()  # bare form
BODY = json.dumps(alert("disk-full", "disk / at 97%")).encode()


async def gateway(aiohttp_client: ClientFactory, tmp_path: Path, auth: dict[str, Any],
                  environ: dict[str, str] | None = None) -> Gateway:
    data = config_dict(tmp_path)
    data["sources"]["app"]["auth"] = {"type": "standard-webhooks", **auth}
    # The gateway's clock at real time: the library's own receiver below reads the real one.
    return await start_gateway(aiohttp_client, data, tmp_path, clock=FakeClock(time.time()),
                               environ=environ or {"SW_NEW": NEW, "SW_OLD": OLD})


def signed(gw: Gateway, msg_id: str, body: bytes, *secrets: str) -> dict[str, str]:
    """The headers a library sender puts on ``body``, one signature per secret (a sender
    mid-rotation signs with both), timed by the gateway's clock."""
    when = datetime.fromtimestamp(gw.clock.now(), UTC)
    signature = " ".join(Webhook(s).sign(msg_id, when, body) for s in secrets)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signature, "Content-Type": "application/json"}


async def send(gw: Gateway, body: bytes, headers: dict[str, str], status: int) -> Any:
    resp = await gw.client.post("/v1/ingest/app", data=body, headers=headers)
    text = await resp.text()
    assert resp.status == status, text
    assert NEW not in text and OLD not in text
    if status >= 400:
        assert resp.content_type == PROBLEM
    return json.loads(text)


@pytest.mark.parametrize("secret", [NEW, NEW.removeprefix("whsec_"), OLD, "whsec_" + OLD],
                         ids=["whsec", "whsec-stripped", "bare", "bare-prefixed"])
async def test_library_signed_request_is_taken(aiohttp_client: ClientFactory,
                                               tmp_path: Path, secret: str) -> None:
    """Either spelling on either side: the library decodes both to the same key, so the
    gateway is configured with the other spelling than the sender's."""
    configured = (secret.removeprefix("whsec_") if secret.startswith("whsec_")
                  else "whsec_" + secret)
    gw = await gateway(aiohttp_client, tmp_path, {"secret": {"env": "CONFIGURED"}},
                       {"CONFIGURED": configured})
    reply = await send(gw, BODY, signed(gw, "msg_1", BODY, secret), 202)
    assert reply["accepted"] == 1
    doc = await gw.incident(reply["incidents"][0])
    assert doc["alerts"][0]["summary"] == "disk / at 97%"
    # The library's own receiver agrees with Baton on what was sent.
    assert Webhook(configured).verify(BODY, signed(gw, "msg_1", BODY, secret)) == \
        json.loads(BODY)


async def test_rotation_tamper_and_redelivery(aiohttp_client: ClientFactory,
                                              tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, tmp_path,
                       {"secrets": [{"env": "SW_NEW"}, {"env": "SW_OLD"}]})
    # Senders still on the old key, already on the new one, or signing with both.
    for n, keys in enumerate([(OLD,), (NEW,), (OLD, NEW)]):
        body = json.dumps(alert(f"k{n}")).encode()
        assert (await send(gw, body, signed(gw, f"msg_{n}", body, *keys), 202))[
            "accepted"] == 1
    stranger = "whsec_" + base64.b64encode(b"a key this gateway never had!!").decode()
    await send(gw, BODY, signed(gw, "msg_x", BODY, stranger), 401)
    # Tampered: signed for one body, another one sent.
    headers = signed(gw, "msg_t", BODY, NEW)
    tampered = BODY.replace(b"97%", b"12%")
    problem = await send(gw, tampered, headers, 401)
    assert problem["detail"] == "webhook-signature does not match"
    # The untampered one with the same headers is taken, and a redelivery is not taken twice.
    assert (await send(gw, BODY, headers, 202))["accepted"] == 1
    assert (await send(gw, BODY, headers, 202)) == {"accepted": 0, "incidents": [],
                                                    "replayed": True}
    # Too old by the gateway's clock: refused even though the signature is right.
    stale = signed(gw, "msg_s", BODY, NEW)
    gw.clock.advance(301)
    await send(gw, BODY, stale, 401)


BAD = {
    "password": "s3cr3t-Passw0rd!",
    "url-safe": "whsec_" + base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(),
    "short": "whsec_" + base64.b64encode(b"s3cr3t").decode(),
    "empty": "whsec_",
}


def test_a_secret_no_sender_signs_with_is_a_config_error(tmp_path: Path) -> None:
    data = config_dict(tmp_path)
    data["sources"]["signed"] = {"type": "generic", "auth": {
        "type": "standard-webhooks",
        "secrets": [{"env": "GOOD"}, *({"env": k.upper().replace("-", "_")} for k in BAD)]}}
    environ = {"GOOD": NEW, **{k.upper().replace("-", "_"): v for k, v in BAD.items()}}
    with pytest.raises(ConfigError) as info:
        build(data, tmp_path, environ)
    problems = info.value.problems
    assert [p.split(":")[0] for p in problems] == [
        f"sources.signed.auth.secrets[{i}]" for i in range(1, 5)]
    assert all("not a Standard Webhooks secret" in p for p in problems)
    assert "s3cr3t" not in "\n".join(problems)
    assert BAD["url-safe"].removeprefix("whsec_") not in "\n".join(problems)

    # And from the command line, as an operator meets it: exit 1, the path, no value.
    path = tmp_path / "baton.yaml"
    path.write_text(yaml.safe_dump(data))
    done = subprocess.run([sys.executable, "-m", "baton", "check-config", str(path)],
                          env={**os.environ, **environ}, capture_output=True, text=True,
                          timeout=60, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "sources.signed.auth.secrets[1]: not a Standard Webhooks secret" in output
    assert "s3cr3t" not in output and BAD["url-safe"] not in output
