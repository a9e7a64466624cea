"""Headers no sender should send, straight off a socket: invalid UTF-8 bytes in the
credentials and signatures, and timestamps too large for any clock. Each is a 4xx
problem+json, never a 500, and changes nothing."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import pytest
from helpers import ClientFactory, Gateway, config_dict, start_gateway, table_counts

ENV = {"TOKEN": "s3cr3t-token", "HMAC": "s3cr3t-hmac", "PD_KEY": "R" * 32,
       "SW": "whsec_" + base64.b64encode(b"sw-key" * 4).decode(), "SLACK": "s3cr3t-slack",
       "PD": "s3cr3t-pd", "API": "s3cr3t-api",
       "HOOK": "https://hooks.slack.com/services/T000/B000/XXXXXXXX"}
HUGE = b"9" * 400


async def gateway(aiohttp_client: ClientFactory, tmp_path: Path) -> Gateway:
    data = config_dict(tmp_path)
    data["sources"] = {
        "bearer": {"type": "generic", "auth": {"type": "bearer", "token": {"env": "TOKEN"}}},
        "hmac": {"type": "generic", "auth": {"type": "hmac", "secret": {"env": "HMAC"},
                                             "header": "X-Sig", "timestamp_header": "X-Ts"}},
        "sw": {"type": "generic", "auth": {"type": "standard-webhooks",
                                           "secret": {"env": "SW"}}}}
    data["connectors"]["chat"] = {"type": "slack", "webhook_url": {"env": "HOOK"},
                                  "signing_secret": {"env": "SLACK"}}
    data["connectors"]["pager"] = {"type": "pagerduty", "routing_key": {"env": "PD_KEY"},
                                   "webhook_secrets": [{"env": "PD"}]}
    data["api"] = {"tokens": [{"name": "ops", "token": {"env": "API"}}]}
    return await start_gateway(aiohttp_client, data, tmp_path, environ=ENV)


async def raw(gw: Gateway, path: str, headers: list[tuple[bytes, bytes]],
              body: bytes = b"{}") -> tuple[int, bytes]:
    """One HTTP/1.1 request written byte for byte (clients refuse such headers)."""
    server = gw.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    head = [b"POST " + path.encode() + b" HTTP/1.1", b"Host: 127.0.0.1",
            b"Content-Type: application/json", b"Content-Length: %d" % len(body),
            b"Connection: close"]
    head += [k + b": " + v for k, v in headers]
    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
    await writer.drain()
    data = await reader.read()
    writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data


CASES: list[Any] = [
    ("/v1/ingest/bearer", [(b"Authorization", b"Bearer \xff\xfe")]),
    ("/v1/ingest/hmac", [(b"X-Ts", b"1767225600"), (b"X-Sig", b"ab\xff")]),
    ("/v1/ingest/hmac", [(b"X-Ts", HUGE), (b"X-Sig", b"00")]),
    ("/v1/ingest/sw", [(b"webhook-id", b"m\xff"), (b"webhook-timestamp", b"1767225600"),
                       (b"webhook-signature", b"v1,AAAA")]),
    ("/v1/ingest/sw", [(b"webhook-id", b"m1"), (b"webhook-timestamp", HUGE),
                       (b"webhook-signature", b"v1,AAAA")]),
    ("/v1/ingest/sw", [(b"webhook-id", b"m1"), (b"webhook-timestamp", b"1767225600"),
                       (b"webhook-signature", b"v1,\xff")]),
    ("/v1/callbacks/chat", [(b"X-Slack-Request-Timestamp", HUGE),
                            (b"X-Slack-Signature", b"v0=00")]),
    ("/v1/callbacks/chat", [(b"X-Slack-Request-Timestamp", b"1767225600"),
                            (b"X-Slack-Signature", b"v0=\xff")]),
    ("/v1/callbacks/pager", [(b"X-PagerDuty-Signature", b"v1=\xff")]),
    ("/v1/incidents/01AAAAAAAAAAAAAAAAAAAAAAAA/acknowledge",
     [(b"Authorization", b"Bearer \xff")]),
]


@pytest.mark.parametrize(("path", "headers"), CASES)
async def test_hostile_headers_are_4xx_and_change_nothing(
        aiohttp_client: ClientFactory, tmp_path: Path, path: str,
        headers: list[tuple[bytes, bytes]]) -> None:
    gw = await gateway(aiohttp_client, tmp_path)
    status, data = await raw(gw, path, headers)
    assert 400 <= status < 500, data[:300]
    assert b"application/problem+json" in data
    assert table_counts(tmp_path)["events"] == 0
    assert (await gw.client.get("/healthz")).status == 200


async def test_authentication_comes_before_checks_of_unused_headers(
        aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """Without a token, a header the source never reads is not even looked at: the
    answer is 401 (not 400 for the header), so no work is spent on a stranger's headers."""
    gw = await gateway(aiohttp_client, tmp_path)
    status, data = await raw(gw, "/v1/ingest/bearer", [(b"X-Filler", b"x\xff")])
    assert status == 401, data[:300]
    status, data = await raw(gw, "/v1/ingest/bearer", [(b"Authorization", b"Bearer s3cr3t-token"),
                                                       (b"X-Filler", b"x\xff")])
    assert status == 400 and b"X-Filler" in data, data[:300]
    assert table_counts(tmp_path)["events"] == 0
