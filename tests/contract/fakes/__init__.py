"""Fake vendors for the connector contract suite, and the kit they share.

Every connector registered under the ``baton.connectors`` entry-point group must have a
module ``fakes/<type>.py`` (``-`` in the type becomes ``_``). Without one the contract
suite fails for that connector; there is no skip. The module provides:

``make_app(state: FakeState) -> aiohttp.web.Application``
    A strict fake of the vendor's API, storing ``state`` under ``app[STATE]``. Each
    handler starts with ``seen = await state.record(request)``. It rejects what the real
    API rejects, with the vendor's status (wrong content type, missing or wrong
    credentials, bad signature, missing required fields) via ``return state.reject(status,
    reason)``. The vendor's own access log stays off (the suite starts the server with
    ``access_log=None``). For a valid request it calls
    ``await state.next_reply()``: ``None`` means behave normally; a ``Reply`` with a 2xx
    status means behave normally but answer with that status (no body for 204); any
    other ``Reply`` means answer with that status and headers and a vendor-shaped error
    body. When it performs an action it calls ``state.accept(action, keys, seen)`` with
    the Baton action it understood (``trigger``, ``resolve``, ...) in the vendor's terms
    (PagerDuty ``event_action``, a Jira transition to Done, ...) and the idempotency
    identifiers it saw (header values, dedup keys) so the suite can compare retries.

``config(base_url: str) -> dict[str, Any]``
    The connector's type-specific options pointing at ``base_url`` (``http://host:port``,
    no trailing slash), secrets as ``baton.secret.Secret`` with distinctive values
    (``s3cr3t-...-do-not-leak``): the suite checks none of them ever surfaces.

``SENSITIVE: tuple[str, ...]`` (optional)
    Further strings that must never surface although they are not ``Secret`` values,
    e.g. a token in the URL's query or a decoded signing key.

A vendor that does not speak HTTP (SMTP, ...) provides instead of ``make_app``:

``async def serve(state: FakeState) -> tuple[str, Callable[[], Awaitable[None]]]``
    Starts its own server on 127.0.0.1 in the running loop and returns its base address
    (``<scheme>://127.0.0.1:<port>``, handed to ``config``) and a coroutine function that
    stops it (the suite calls it after setting ``state.release``). It honours the same
    rules: it records each request as a ``Seen`` in ``state.requests`` and sets
    ``state.arrived``, appends refusals to ``state.rejected``, answers scripted replies and
    calls ``state.accept``. ``config(base_url)`` must also accept
    ``http://127.0.0.1:<port>`` (the connection-refused test) and keep only host and port.

``status_for(http_status: int) -> int`` (optional, with ``serve``)
    The protocol's code the fake answers for a scripted ``Reply(status)``: the suite's
    status table is written in HTTP terms (2xx ok, 408/429/5xx retryable, other 4xx
    permanent) and expects ``Outcome.status`` to be this code (SMTP: 250, 451/421, 550/554).

``RETRY_AFTER = False`` (optional)
    The protocol has no Retry-After: the fake ignores the scripted header and the suite
    checks that the connector reports ``retry_after`` as None rather than inventing one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from baton.model import Alert, Notification, parse_iso


@dataclass(frozen=True)
class Reply:
    """A scripted answer to the next valid request. ``delay`` simulates a hanging vendor."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    # The vendor's error text in a non-2xx answer, where its error body has one (the
    # suite puts secrets in it: a vendor may echo what it was sent).
    message: str = "scripted failure"


@dataclass(frozen=True)
class Seen:
    """One request as it reached the fake, before any checks."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Accepted:
    """One action the fake vendor performed: what it understood and under which keys."""

    action: str
    keys: tuple[str, ...]
    seen: Seen


class FakeState:
    """What a fake vendor saw, did and refused, and the replies scripted for it."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.accepted: list[Accepted] = []
        self.rejected: list[tuple[int, str]] = []
        self.arrived = asyncio.Event()  # set by the first request: "the call is in flight"
        self.release = asyncio.Event()  # set at teardown: ends scripted delays early
        self._script: deque[Reply] = deque()

    def script(self, *replies: Reply) -> None:
        self._script.extend(replies)

    async def record(self, request: web.Request) -> Seen:
        seen = Seen(request.method, request.path, dict(request.query),
                    dict(request.headers), await request.read())
        self.requests.append(seen)
        self.arrived.set()
        return seen

    def reject(self, status: int, reason: str) -> web.Response:
        self.rejected.append((status, reason))
        return web.json_response({"error": reason}, status=status)

    def accept(self, action: str, keys: tuple[str, ...], seen: Seen) -> None:
        self.accepted.append(Accepted(action, keys, seen))

    async def next_reply(self) -> Reply | None:
        if not self._script:
            return None
        reply = self._script.popleft()
        if reply.delay:
            # Waits on an event rather than sleeping, so server shutdown is not held up
            # by a handler aiohttp does not cancel when the client goes away.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), reply.delay)
        return reply


class FakeVendor(Protocol):
    """The interface of a ``fakes/<type>.py`` module (see the module docstring; a
    non-HTTP fake has ``serve`` instead of ``make_app``)."""

    def make_app(self, state: FakeState) -> web.Application: ...

    def config(self, base_url: str) -> dict[str, Any]: ...


STATE = web.AppKey("state", FakeState)
CHUNK = 8192  # what a real vendor's TLS stream hands the client at a time


async def chunked_json(request: web.Request, doc: Any, status: int = 200,
                       headers: Mapping[str, str] | None = None) -> web.StreamResponse:
    """``doc`` as JSON sent in CHUNK-byte pieces with a pause between them, as a large
    answer arrives from a real vendor: a client that reads once gets only the first."""
    data = json.dumps(doc).encode()
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_type = "application/json"
    await resp.prepare(request)
    for start in range(0, len(data), CHUNK):
        if start:
            await asyncio.sleep(0.002)
        await resp.write(data[start:start + CHUNK])
    await resp.write_eof()
    return resp


async def start(fake: FakeVendor, state: FakeState, aiohttp_server: Any
                ) -> tuple[str, Callable[[], Awaitable[None]] | None]:
    """The fake vendor running on 127.0.0.1: its base URL, and how to stop it when it
    runs its own server (``serve``); an HTTP fake stops with ``aiohttp_server``."""
    if hasattr(fake, "serve"):
        base_url, stop = await fake.serve(state)  # type: ignore[attr-defined]
        return str(base_url), stop
    # No access log: the fake vendor's own log would show the URL token it was sent,
    # and what the vendor logs is not Baton's leak.
    server = await aiohttp_server(fake.make_app(state), access_log=None)
    return str(server.make_url("")).rstrip("/"), None


def closed_port() -> int:
    """A loopback port nobody listens on: bound by us, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port

INCIDENT_ID = "01JD5Z8K3QF0Y6N8W2M4R7T9VB"
CREATED = "2024-11-20T08:15:30.000Z"
# One delivery per action; a retry is the same delivery with a higher attempt.
_DELIVERY_IDS = {action: f"01JD5Z9A{n:018d}" for n, action in enumerate(
    ("trigger", "update", "acknowledge", "resolve", "note"), start=1)}


def sample_incident(status: str = "triggered") -> dict[str, Any]:
    """An incident document exactly as NOTES-interfaces.md describes it."""
    alert = Alert(
        dedup_key="prometheus/HighErrorRate/checkout", status="firing", severity="critical",
        summary="High error rate on checkout", source_type="alertmanager",
        source_name="prometheus", description="5xx ratio above 5% for 10m",
        service="checkout", environment="production",
        labels={"alertname": "HighErrorRate", "severity": "critical"},
        started_at=parse_iso("2024-11-20T08:05:00Z"),
    )
    resolved = status == "resolved"
    later = "2024-11-20T08:40:00.000Z"
    return {
        "schema_version": "1.0",
        "id": INCIDENT_ID,
        "key": "checkout/HighErrorRate",
        "status": status,
        "severity": "critical",
        "title": "High error rate on checkout",
        "service": "checkout",
        "labels": {"alertname": "HighErrorRate", "service": "checkout"},
        "route": "critical",
        "created_at": CREATED,
        "updated_at": later if resolved else CREATED,
        "last_seen_at": CREATED,
        "acknowledged_at": None,
        "acknowledged_by": None,
        "resolved_at": later if resolved else None,
        "resolved_by": "alice" if resolved else None,
        "escalation": {"policy": "page-then-ticket", "level": 1,
                       "next_at": None if resolved else "2024-11-20T08:25:30.000Z", "loops": 0},
        "external_refs": [],
        "event_count": 1,
        "recurrence_of": None,
        "alerts": [alert.to_dict()],
        "timeline": [{"at": CREATED, "type": "received", "actor": "prometheus",
                      "detail": {"alerts": 1}}],
    }


def sample_notification(connector: str, action: str = "trigger", attempt: int = 1,
                        incident: Mapping[str, Any] | None = None) -> Notification:
    """A valid notification; the key is stable per (incident, connector, action)."""
    doc = incident if incident is not None else sample_incident(
        "resolved" if action == "resolve" else "triggered")
    return Notification(
        delivery_id=_DELIVERY_IDS[action],
        connector=connector,
        action=action,  # type: ignore[arg-type]
        idempotency_key=f"{doc['id']}/{connector}/{action}",  # as the store builds it
        attempt=attempt,
        incident=doc,
    )
