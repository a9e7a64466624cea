"""Shared helpers for the in-process gateway tests: a config builder, a scripted webhook
receiver that records what it got against the fake clock, and a harness around the app.

Test modules under ``tests/unit`` and ``tests/integration`` put ``tests/`` on ``sys.path``
to import this module (pytest's rootdir-less "prepend" import puts only the test file's
own directory there).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from baton import schema
from baton.api import state
from baton.app import create_app
from baton.clock import FakeClock
from baton.config import Config, config_from_dict
from baton.dispatch import Dispatcher
from baton.store import Store

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
PROBLEM = "application/problem+json"
INCIDENT = "incident.schema.json"


def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/b.db"


def config_dict(tmp_path: Path, hook_url: str = "http://127.0.0.1:9/hook") -> dict[str, Any]:
    """One open generic source ``app``, one webhook connector ``hook`` (1 s backoff),
    one catch-all route ``all`` to policy ``notify`` (level 1: hook). Tests edit the dict."""
    return {
        "server": {"shutdown_grace": "1s"},
        "storage": {"url": db_url(tmp_path)},
        "sources": {"app": {"type": "generic", "auth": {"type": "none"}}},
        "connectors": {"hook": {"type": "webhook", "url": hook_url,
                                "backoff": {"initial": "1s", "max": "1s"}}},
        "routes": [{"name": "all", "policy": "notify"}],
        "policies": {"notify": {"levels": [{"notify": ["hook"]}]}},
    }


def minimal(**extra: Any) -> dict[str, Any]:
    """The smallest valid config as a dict (one open source, one webhook, one policy),
    with ``extra`` top-level sections added or replaced."""
    data: dict[str, Any] = {
        "sources": {"am": {"type": "alertmanager", "auth": {"type": "none"}}},
        "connectors": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/x"}},
        "routes": [{"policy": "p"}],
        "policies": {"p": {"levels": [{"notify": ["hook"]}]}},
    }
    data.update(extra)
    return data


def build(data: Mapping[str, Any], tmp_path: Path,
          environ: Mapping[str, str] | None = None) -> Config:
    return config_from_dict(data, base_dir=tmp_path, environ=environ or {})


def alert(key: str, summary: str | None = None, **fields: Any) -> dict[str, Any]:
    """A generic-source alert body."""
    return {"dedup_key": key, "summary": summary or f"problem {key}", **fields}


def schema_problems(doc: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in schema.validator(INCIDENT).iter_errors(doc)]


def db_rows(tmp_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Read the gateway's SQLite file directly (WAL lets us beside the writer)."""
    conn = sqlite3.connect(f"{tmp_path}/b.db")
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


def table_counts(tmp_path: Path) -> dict[str, int]:
    return {t: db_rows(tmp_path, f"SELECT COUNT(*) AS n FROM {t}")[0]["n"]
            for t in ("events", "incidents", "alerts", "timeline", "deliveries")}


# --- the receiving end of the webhook connector -----------------------------------------

@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    hold: bool = False  # do not answer until ``Sink.gate`` is set


@dataclass(frozen=True)
class Received:
    at: float  # the fake clock's time when the request arrived
    connector: str
    action: str
    incident_id: str
    idempotency_key: str  # the header
    attempt: int
    doc: dict[str, Any]


class Sink:
    """A webhook receiver answering from a script (then ``default``), recording each
    request with the fake clock's time so tests can say *when* an attempt happened."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.received: list[Received] = []
        self.invalid: list[str] = []  # schema problems of any body received
        self.default = Reply(200)
        self.gate = asyncio.Event()
        self.inflight = 0
        self.max_inflight = 0
        self.url = ""
        self._script: deque[Reply] = deque()

    def script(self, *replies: Reply) -> None:
        self._script.extend(replies)

    @property
    def actions(self) -> list[tuple[str, str, str]]:
        """(incident id, connector, action) of every request, in arrival order."""
        return [(r.incident_id, r.connector, r.action) for r in self.received]

    async def handle(self, request: web.Request) -> web.Response:
        doc = json.loads(await request.read())
        note = doc["notification"]
        self.invalid += schema_problems(doc)
        self.received.append(Received(self.clock.now(), note["connector"], note["action"],
                                      doc["id"], request.headers["Idempotency-Key"],
                                      note["attempt"], doc))
        reply = self._script.popleft() if self._script else self.default
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            if reply.hold:
                await self.gate.wait()
        finally:
            self.inflight -= 1
        return web.json_response({"status": reply.status}, status=reply.status,
                                 headers=dict(reply.headers))


async def start_sink(aiohttp_server: ServerFactory, clock: FakeClock) -> Sink:
    sink = Sink(clock)
    app = web.Application()
    app.router.add_post("/hook", sink.handle)
    server = await aiohttp_server(app)
    sink.url = str(server.make_url("/hook"))
    return sink


# --- the gateway under test -------------------------------------------------------------

@dataclass
class Gateway:
    client: TestClient[Any, Any]
    clock: FakeClock
    tmp_path: Path
    headers: dict[str, str] = field(default_factory=dict)  # sent on management calls

    @property
    def app(self) -> web.Application:
        return self.client.app  # type: ignore[return-value]

    @property
    def dispatcher(self) -> Dispatcher:
        return self.app[state.DISPATCHER]

    @property
    def store(self) -> Store:
        return self.app[state.STORE]

    async def pump(self) -> int:
        """One dispatcher cycle: claim what is due now and wait for the attempts."""
        started = await self.dispatcher.run_once()
        await self.dispatcher.idle()
        return started

    async def ingest(self, body: Any, source: str = "app",
                     headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        resp = await self.client.post(f"/v1/ingest/{source}", json=body, headers=headers)
        text = await resp.text()
        assert resp.status == 202, text
        return json.loads(text)  # type: ignore[no-any-return]

    async def get(self, path: str, status: int = 200) -> Any:
        resp = await self.client.get(path, headers=self.headers)
        text = await resp.text()
        assert resp.status == status, text
        return json.loads(text)

    async def post(self, path: str, body: Any, status: int) -> Any:
        resp = await self.client.post(path, json=body, headers=self.headers)
        text = await resp.text()
        assert resp.status == status, text
        return json.loads(text)

    async def incident(self, incident_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = await self.get(f"/v1/incidents/{incident_id}")
        assert schema_problems(doc) == []
        return doc

    async def timeline(self, incident_id: str) -> list[tuple[str, str]]:
        return [(e["type"], e["actor"]) for e in (await self.incident(incident_id))["timeline"]]

    def deliveries(self, incident_id: str | None = None) -> list[dict[str, Any]]:
        """Raw delivery rows (float times), oldest first."""
        where = "WHERE incident_id = ?" if incident_id else ""
        return db_rows(self.tmp_path, f"SELECT * FROM deliveries {where} ORDER BY id",
                       (incident_id,) if incident_id else ())


async def start_gateway(aiohttp_client: ClientFactory, data: Mapping[str, Any],
                        tmp_path: Path, *, clock: FakeClock | None = None,
                        environ: Mapping[str, str] | None = None,
                        breaker_threshold: int | None = 1000) -> Gateway:
    """The app in process, dispatcher not running. The circuit breaker is effectively off
    unless ``breaker_threshold`` says otherwise (None: the default of the lane)."""
    clock = clock or FakeClock()
    app = create_app(build(data, tmp_path, environ), clock=clock, run_dispatcher=False)
    if breaker_threshold is not None:
        for lane in app[state.DISPATCHER].lanes.values():
            lane.breaker_threshold = breaker_threshold
    client = await aiohttp_client(app)
    return Gateway(client, clock, tmp_path)


class Hold:
    """A storage operation that keeps its writer (SQLite's one writer thread, or a
    PostgreSQL worker with its transaction) busy until ``release`` is set."""

    def __init__(self) -> None:
        self.inside = threading.Event()
        self.release = threading.Event()

    def __call__(self, tx: Any) -> None:
        self.inside.set()
        self.release.wait(10)
