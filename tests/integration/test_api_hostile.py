"""Hostile and broken ingest requests: each gets a problem+json answer with the right
status, nothing of it is stored, the refusal is counted, and the gateway stays healthy."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    PROBLEM,
    ClientFactory,
    Gateway,
    alert,
    config_dict,
    start_gateway,
    table_counts,
)

SECRET = "s3cr3t-app-token-do-not-leak"
AUTH = {"Authorization": f"Bearer {SECRET}"}
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Case:
    status: int
    reason: str  # the baton_ingest_rejected_total label
    data: bytes | Callable[[], AsyncIterator[bytes]]
    headers: dict[str, str]
    source: str = "app"
    skip_content_type: bool = False


def js(value: Any) -> bytes:
    return json.dumps(value).encode()


async def chunks() -> AsyncIterator[bytes]:
    """A valid alert sent in pieces (chunked, no Content-Length), 1 kB of it a label."""
    body = js(alert("big", labels={"pad": "x" * 1000}))
    for i in range(0, len(body), 100):
        yield body[i:i + 100]


CASES = {
    "malformed JSON": Case(400, "payload", b'{"dedup_key": "x",, "summary": "s"}', AUTH | JSON),
    "truncated JSON": Case(400, "payload", js(alert("x"))[:-7], AUTH | JSON),
    "empty body": Case(400, "payload", b"", AUTH | JSON),
    "text/plain": Case(415, "body", js(alert("x")), AUTH | {"Content-Type": "text/plain"}),
    "form": Case(415, "body", b"dedup_key=x&summary=s",
                 AUTH | {"Content-Type": "application/x-www-form-urlencoded"}),
    "no content type": Case(415, "body", js(alert("x")), AUTH, skip_content_type=True),
    "octet-stream": Case(415, "body", js(alert("x")),
                         AUTH | {"Content-Type": "application/octet-stream"}),
    "too large (Content-Length)": Case(413, "body", js(alert("big", labels={"p": "x" * 1000})),
                                       JSON, source="small"),
    "too large (chunked)": Case(413, "body", chunks, JSON, source="small"),
    "deeply nested": Case(400, "payload", b"[" * 100_000, AUTH | JSON),
    "not UTF-8": Case(400, "payload", b'{"dedup_key": "x", "summary": "caf\xe9"}', AUTH | JSON),
    "UTF-16": Case(400, "payload", json.dumps(alert("x")).encode("utf-16"), AUTH | JSON),
    "unpaired surrogate": Case(400, "payload", b'{"dedup_key": "x", "summary": "\\ud800"}',
                               AUTH | JSON),
    "integer too long": Case(400, "payload",
                             b'{"dedup_key": "x", "summary": "s", "impact": ' + b"9" * 5000
                             + b"}", AUTH | JSON),
    "too many alerts": Case(400, "payload", js([alert(f"a{n}") for n in range(1001)]),
                            AUTH | JSON),
    "no alerts": Case(400, "payload", b"[]", AUTH | JSON),
    "null": Case(400, "payload", b"null", AUTH | JSON),
    "a number": Case(400, "payload", b"42", AUTH | JSON),
    "unknown field": Case(400, "payload", js(alert("x") | {"sumary": "typo"}), AUTH | JSON),
    "label not a string": Case(400, "payload", js(alert("x", labels={"n": 1})), AUTH | JSON),
    "summary too long": Case(400, "payload", js(alert("x", "s" * 1025)), AUTH | JSON),
    "bad time": Case(400, "payload", js(alert("x", started_at="yesterday")), AUTH | JSON),
    "wrong token": Case(401, "auth", js(alert("x")), JSON | {"Authorization": "Bearer nope"}),
    "token prefix": Case(401, "auth", js(alert("x")),
                         JSON | {"Authorization": f"Bearer {SECRET[:-1]}"}),
    "no token": Case(401, "auth", js(alert("x")), JSON),
}


@pytest.fixture
async def gw(aiohttp_client: ClientFactory, tmp_path: Path) -> Gateway:
    data = config_dict(tmp_path)
    data["sources"] = {
        "app": {"type": "generic", "auth": {"type": "bearer", "token": {"env": "APP_TOKEN"}}},
        "small": {"type": "generic", "auth": {"type": "none"}, "max_body_bytes": 256},
    }
    return await start_gateway(aiohttp_client, data, tmp_path,
                               environ={"APP_TOKEN": SECRET})


def rejected(metrics: str) -> dict[tuple[str, str], float]:
    found = re.findall(r'^baton_ingest_rejected_total\{reason="(\w*)",source="(\w*)"\} (\S+)$',
                       metrics, re.MULTILINE)
    return {(source, reason): float(n) for reason, source, n in found}


async def send(gw: Gateway, case: Case) -> tuple[int, str, str, str]:
    data = case.data() if callable(case.data) else case.data
    resp = await gw.client.post(f"/v1/ingest/{case.source}", data=data, headers=case.headers,
                                skip_auto_headers=["Content-Type"] if case.skip_content_type
                                else None)
    return resp.status, resp.content_type, await resp.text(), resp.headers.get(
        "WWW-Authenticate", "")


@pytest.mark.parametrize("name", list(CASES))
async def test_refused_and_nothing_stored(gw: Gateway, tmp_path: Path, name: str) -> None:
    case = CASES[name]
    status, ctype, text, challenge = await send(gw, case)
    assert (status, ctype) == (case.status, PROBLEM), text
    body = json.loads(text)
    assert body["status"] == case.status and body["title"]
    assert body["type"] == "about:blank"
    assert SECRET not in text
    assert (challenge != "") == (case.status == 401)
    assert len(text) < 20_000  # never the body (or a schema dump of it) echoed back

    assert set(table_counts(tmp_path).values()) == {0}
    assert (await gw.get("/v1/incidents"))["incidents"] == []
    assert (await gw.get("/v1/deliveries"))["deliveries"] == []
    metrics = await (await gw.client.get("/metrics")).text()
    assert rejected(metrics) == {(case.source, case.reason): 1.0}
    assert "baton_alerts_ingested_total{" not in metrics
    assert (await gw.get("/healthz")) == {"status": "ok"}
    # And it still takes a good request afterwards.
    good = await gw.client.post("/v1/ingest/app", json=alert("fine"), headers=AUTH)
    assert good.status == 202


async def test_every_refusal_is_counted_and_the_gateway_stays_up(gw: Gateway,
                                                                 tmp_path: Path) -> None:
    for case in CASES.values():
        assert (await send(gw, case))[0] == case.status
    resp = await gw.client.post("/v1/ingest/nope", json=alert("x"))
    assert resp.status == 404
    expected: dict[tuple[str, str], float] = {("", "unknown_source"): 1.0}
    for case in CASES.values():
        key = (case.source, case.reason)
        expected[key] = expected.get(key, 0.0) + 1
    assert rejected(await (await gw.client.get("/metrics")).text()) == expected
    assert set(table_counts(tmp_path).values()) == {0}
    assert (await gw.get("/healthz")) == {"status": "ok"}
    assert (await gw.get("/readyz")) == {"status": "ready"}


async def test_a_secret_never_appears_in_any_answer(gw: Gateway) -> None:
    texts = [(await send(gw, case))[2] for case in CASES.values()]
    await gw.ingest(alert("ok"), headers=AUTH)
    for path in ("/v1/incidents", "/v1/deliveries", "/metrics", "/healthz", "/readyz",
                 "/v1/ingest/app"):
        texts.append(await (await gw.client.get(path)).text())
    texts.append(await (await gw.client.get("/openapi.json")).text())
    assert all(SECRET not in t for t in texts)
