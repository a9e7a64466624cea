"""Sentry's signed webhooks through the real gateway, with the documented auth config.

Sentry signs the exact body it sends: ``AppPlatformEvent.body`` is serialised once and
``Sentry-Hook-Signature`` is ``hmac_sha256(client_secret, body).hexdigest()`` of that same
string (getsentry/sentry ``src/sentry/sentry_apps/api/serializers/app_platform_event.py``
and ``SentryApp.build_signature``); ``Sentry-Hook-Timestamp`` is not part of the signed
text. So the core's ``hmac`` auth over the raw body is the whole check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from helpers import PROBLEM, ClientFactory, Gateway, config_dict, start_gateway, table_counts

from baton.clock import FakeClock

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sources" / "sentry"
SECRET = "b3f1c6a2e9d84c57a0e1f2d3c4b5a697"  # a Client Secret's shape: 32 hex digits
OLD_SECRET = "0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a"
ENV = {"SENTRY_CLIENT_SECRET": SECRET, "SENTRY_OLD_CLIENT_SECRET": OLD_SECRET}
# HMAC-SHA256 of CRITICAL_BODY with SECRET, computed outside Python:
#   printf '%s' "$BODY" | openssl dgst -sha256 -hmac b3f1c6a2e9d84c57a0e1f2d3c4b5a697
KNOWN_SIGNATURE = "c7c2bcde42fdcc996c7e79d938565c1ff500d2828aa2d3acd1fb7c001de9fb2e"


def payload(case: str) -> Any:
    return json.loads((FIXTURES / f"{case}.json").read_text("utf-8"))["payload"]


# Serialised as Sentry's json.dumps does by default (", " and ": " separators).
CRITICAL_BODY = json.dumps(payload("metric-alert-critical")).encode()
RESOLVED_BODY = json.dumps(payload("metric-alert-resolved")).encode()


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers(signature: str | None, resource: str = "metric_alert") -> dict[str, str]:
    out = {"Content-Type": "application/json", "Sentry-Hook-Resource": resource,
           "Sentry-Hook-Timestamp": "1600000000",
           "Request-ID": "0c5e8e4a2f1b4c3d9e8f7a6b5c4d3e2f"}
    if signature is not None:
        out["Sentry-Hook-Signature"] = signature
    return out


async def gateway(aiohttp_client: ClientFactory, tmp_path: Path,
                  auth: dict[str, Any]) -> Gateway:
    data = config_dict(tmp_path)
    data["sources"] = {"sentry": {"type": "sentry", "auth": auth}}
    return await start_gateway(aiohttp_client, data, tmp_path, clock=FakeClock(),
                               environ=ENV)


async def post(gw: Gateway, body: bytes, hdrs: dict[str, str], status: int) -> Any:
    resp = await gw.client.post("/v1/ingest/sentry", data=body, headers=hdrs)
    text = await resp.text()
    assert resp.status == status, text
    for secret in ENV.values():
        assert secret not in text
    if status >= 400:
        assert resp.content_type == PROBLEM
    return json.loads(text)


def test_known_answer() -> None:
    assert sign(SECRET, CRITICAL_BODY) == KNOWN_SIGNATURE


async def test_documented_config_takes_sentrys_signature_only(
        aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, tmp_path, {
        "type": "hmac", "secret": {"env": "SENTRY_CLIENT_SECRET"},
        "header": "Sentry-Hook-Signature"})
    await post(gw, CRITICAL_BODY, headers(None), 401)
    tampered = CRITICAL_BODY.replace(b'"action": "critical"', b'"action": "warning"')
    assert tampered != CRITICAL_BODY
    await post(gw, tampered, headers(KNOWN_SIGNATURE), 401)
    # The same JSON value in other bytes is not what Sentry signed.
    compact = json.dumps(json.loads(CRITICAL_BODY), separators=(",", ":")).encode()
    await post(gw, compact, headers(KNOWN_SIGNATURE), 401)
    await post(gw, CRITICAL_BODY, headers(sign(OLD_SECRET, CRITICAL_BODY)), 401)
    assert table_counts(tmp_path)["events"] == 0

    answer = await post(gw, CRITICAL_BODY, headers(KNOWN_SIGNATURE), 202)
    assert answer["accepted"] == 1
    doc = await gw.incident(answer["incidents"][0])
    assert (doc["status"], doc["severity"]) == ("triggered", "critical")
    assert doc["alerts"][0]["dedup_key"] == "sentry:metric_alert:4"

    # Sentry's documented resolved of the same metric alert closes it.
    done = await post(gw, RESOLVED_BODY, headers(sign(SECRET, RESOLVED_BODY)), 202)
    assert done["incidents"] == answer["incidents"]
    assert (await gw.incident(answer["incidents"][0]))["status"] == "resolved"


async def test_rotated_client_secret(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, tmp_path, {
        "type": "hmac", "header": "Sentry-Hook-Signature",
        "secrets": [{"env": "SENTRY_CLIENT_SECRET"}, {"env": "SENTRY_OLD_CLIENT_SECRET"}]})
    # Deliveries signed before the rotation (old secret) and after (new) both pass.
    opened = await post(gw, CRITICAL_BODY, headers(sign(OLD_SECRET, CRITICAL_BODY)), 202)
    await post(gw, CRITICAL_BODY, headers(KNOWN_SIGNATURE), 202)
    retired = sign("ffffffffffffffffffffffffffffffff", RESOLVED_BODY)
    await post(gw, RESOLVED_BODY, headers(retired), 401)
    closed = await post(gw, RESOLVED_BODY, headers(sign(SECRET, RESOLVED_BODY)), 202)
    assert closed["incidents"] == opened["incidents"]
    doc = await gw.incident(opened["incidents"][0])
    assert doc["status"] == "resolved"
    assert doc["event_count"] >= 2


async def test_issue_alert_then_issue_resolved(aiohttp_client: ClientFactory,
                                               tmp_path: Path) -> None:
    gw = await gateway(aiohttp_client, tmp_path, {
        "type": "hmac", "secret": {"env": "SENTRY_CLIENT_SECRET"},
        "header": "Sentry-Hook-Signature"})
    fired = json.dumps(payload("event-alert-triggered")).encode()
    resolved = json.dumps(payload("issue-resolved")).encode()
    opened = await post(gw, fired, headers(sign(SECRET, fired), "event_alert"), 202)
    closed = await post(gw, resolved, headers(sign(SECRET, resolved), "issue"), 202)
    assert closed["incidents"] == opened["incidents"]
    assert (await gw.incident(opened["incidents"][0]))["status"] == "resolved"
