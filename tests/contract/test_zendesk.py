"""What the zendesk connector promises beyond the generic contract: one ticket per Baton
incident found again by its external_id (no duplicate after a lost response), later
actions on the recorded ticket, a recurrence reopening the earlier ticket (or following up
a closed one), the bodies the Tickets API documents, and a fake strict enough to trust."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from baton_connectors.zendesk import ZendeskConnector
from fakes import CHUNK, INCIDENT_ID, FakeState, Reply, sample_incident, sample_notification
from fakes import zendesk as fake

from baton.errors import AuthError, ConfigError, PayloadError
from baton.model import Notification, Outcome
from baton.plugin import CallbackEvent
from baton.secret import Secret

Server = Callable[[web.Application], Awaitable[TestServer]]
EXTERNAL_ID = f"baton-{INCIDENT_ID}"
PREVIOUS = "01JD5Z0000PREVIOUS000000000"


async def start_fake(aiohttp_server: Server, lose_first_write: bool = False
                     ) -> tuple[FakeState, fake.Tickets, str]:
    state = FakeState()
    app = fake.make_app(state)
    if lose_first_write:
        lost: list[bool] = []

        @web.middleware
        async def drop(request: web.Request, handler: Any) -> web.StreamResponse:
            response: web.StreamResponse = await handler(request)
            if request.method in ("POST", "PUT") and not lost:
                # The write happened; a proxy in between gave up on the answer. (Closing
                # the connection instead would not do: aiohttp resends an idempotent PUT
                # on a reused connection by itself.)
                lost.append(True)
                return web.json_response({"error": "upstream timed out"}, status=504)
            return response

        app.middlewares.append(drop)
    server = await aiohttp_server(app)
    return state, app[fake.TICKETS], str(server.make_url("")).rstrip("/")


def connector(base: str = "http://127.0.0.1:9", **extra: Any) -> ZendeskConnector:
    return ZendeskConnector("zd", fake.config(base) | extra)


async def send(conn: ZendeskConnector, *notifications: Notification) -> list[Outcome]:
    async with aiohttp.ClientSession() as http:
        return [await conn.send(n, http) for n in notifications]


def with_ref(incident: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    assert outcome.external_ref is not None
    return incident | {"external_refs": [outcome.external_ref.to_dict()]}


def recurrence() -> dict[str, Any]:
    return sample_incident() | {"recurrence_of": PREVIOUS}


async def test_lifecycle_on_one_ticket(aiohttp_server: Server) -> None:
    state, tickets, base = await start_fake(aiohttp_server)
    conn = connector(base)
    [created] = await send(conn, sample_notification("zd"))
    assert created.kind == "ok" and created.status == 201, created
    assert created.external_ref is not None
    ticket_id = created.external_ref.id
    assert created.external_ref.url == f"{base}/agent/tickets/{ticket_id}"
    noted = sample_incident()
    noted["timeline"].append({"at": "2024-11-20T08:20:00.000Z", "type": "note",
                              "actor": "bob", "detail": {"text": "rolling back"}})
    acked = sample_incident("acknowledged") | {"acknowledged_by": "carol"}
    outcomes = await send(
        conn,
        sample_notification("zd", "update", incident=with_ref(sample_incident(), created)),
        sample_notification("zd", "acknowledge", incident=with_ref(acked, created)),
        sample_notification("zd", "note", incident=with_ref(noted, created)),
        sample_notification("zd", "resolve",
                            incident=with_ref(sample_incident("resolved"), created)))
    assert all(o.kind == "ok" and o.external_ref == created.external_ref for o in outcomes)
    assert [(a.action, a.keys) for a in state.accepted] == [
        ("trigger", (EXTERNAL_ID,)), ("note", (ticket_id,)), ("acknowledge", (ticket_id,)),
        ("note", (ticket_id,)), ("resolve", (ticket_id,))]
    assert [(r.method, r.path) for r in state.requests] == [
        ("GET", "/api/v2/tickets.json"), ("POST", "/api/v2/tickets.json"),
        *[("PUT", f"/api/v2/tickets/{ticket_id}.json")] * 3,
        # resolve first checks the ticket is still this incident's (not a recurrence's)
        ("GET", f"/api/v2/tickets/{ticket_id}.json"),
        ("PUT", f"/api/v2/tickets/{ticket_id}.json")]
    ticket = tickets.by_id[int(ticket_id)]
    assert ticket["status"] == "solved"
    comments = tickets.comments[int(ticket_id)]
    assert all(c["public"] is False for c in comments)
    assert [c["body"] for c in comments[1:]] == [
        "[Baton] Incident updated in Baton: status triggered, escalation level 1, "
        "1 alert event(s).",
        "[Baton] Acknowledged in Baton by carol.",
        "[Baton] Note from bob: rolling back",
        "[Baton] Resolved in Baton by alice."]
    assert state.rejected == []


async def test_create_body_follows_the_tickets_api(aiohttp_server: Server) -> None:
    state, _, base = await start_fake(aiohttp_server)
    [outcome] = await send(connector(base), sample_notification("zd"))
    assert outcome.kind == "ok", outcome
    post = state.accepted[0].seen
    token = base64.b64encode(f"{fake.EMAIL}/token:{fake.API_TOKEN}".encode()).decode()
    assert post.headers["Authorization"] == f"Basic {token}"
    assert post.headers["Content-Type"] == "application/json"
    assert json.loads(post.body) == {"ticket": {
        "subject": "High error rate on checkout",
        "comment": {"body": f"[Baton] Incident {INCIDENT_ID} (triggered, critical)\n"
                            "Service: checkout\n"
                            "- High error rate on checkout: 5xx ratio above 5% for 10m",
                    "public": False},
        "priority": "urgent", "type": "incident", "external_id": EXTERNAL_ID,
        "tags": ["production", "baton"], "group_id": 360001234567}}


async def test_subject_is_one_line_and_markup_stays_text(aiohttp_server: Server) -> None:
    state, _, base = await start_fake(aiohttp_server)
    incident = sample_incident()
    incident["title"] = "Disk <b>full</b>\non db-1\r\n\tand   [db-2](http://x)"
    incident["alerts"][0]["summary"] = "<script>alert(1)</script>"
    [outcome] = await send(connector(base), sample_notification("zd", incident=incident))
    assert outcome.kind == "ok", state.rejected
    ticket = json.loads(state.accepted[0].seen.body)["ticket"]
    assert ticket["subject"] == "Disk <b>full</b> on db-1 and [db-2](http://x)"
    # Plain-text ``body`` (Zendesk escapes it into the HTML it shows), never
    # ``html_body``: the markup is shown as the characters it is.
    assert set(ticket["comment"]) == {"body", "public"}
    assert "- <script>alert(1)</script>" in ticket["comment"]["body"]


async def test_long_subject_is_cut_with_an_ellipsis(aiohttp_server: Server) -> None:
    state, _, base = await start_fake(aiohttp_server)
    incident = sample_incident() | {"title": "🔥 " * 200}
    [outcome] = await send(connector(base), sample_notification("zd", incident=incident))
    assert outcome.kind == "ok", state.rejected
    subject = json.loads(state.accepted[0].seen.body)["ticket"]["subject"]
    assert len(subject) == 150 and subject.endswith("…") and "\n" not in subject


@pytest.mark.parametrize(("severity", "priority"), [
    ("critical", "urgent"), ("error", "high"), ("warning", "normal"), ("info", "low")])
def test_priority_follows_severity(severity: str, priority: str) -> None:
    conn = ZendeskConnector("zd", {k: v for k, v in fake.config("http://x").items()
                                   if k != "priority_map"})
    incident = sample_incident() | {"severity": severity}
    assert conn.create_body(sample_notification("zd", incident=incident))["ticket"][
        "priority"] == priority
    overridden = connector().create_body(sample_notification("zd", incident=incident))
    assert overridden["ticket"]["priority"] == ("low" if severity == "warning" else priority)


async def test_no_second_ticket_after_a_lost_response(aiohttp_server: Server) -> None:
    state, tickets, base = await start_fake(aiohttp_server, lose_first_write=True)
    first = sample_notification("zd")
    lost, retried = await send(connector(base), first, dataclasses.replace(first, attempt=2))
    assert lost.kind == "retryable" and lost.external_ref is None, lost
    assert retried.kind == "ok" and retried.external_ref is not None, retried
    [(ticket_id, ticket)] = tickets.by_id.items()
    assert retried.external_ref.id == str(ticket_id)
    assert ticket["external_id"] == EXTERNAL_ID
    assert [a.action for a in state.accepted] == ["trigger"]
    assert state.requests[-1].query == {"external_id": EXTERNAL_ID}


async def test_recurrence_reopens_the_previous_ticket_once(aiohttp_server: Server) -> None:
    state, tickets, base = await start_fake(aiohttp_server, lose_first_write=True)
    old = tickets.add(status="solved", external_id=f"baton-{PREVIOUS}", subject="before")
    first = sample_notification("zd", incident=recurrence())
    lost, retried = await send(connector(base), first, dataclasses.replace(first, attempt=2))
    assert lost.kind == "retryable" and retried.kind == "ok", (lost, retried)
    assert retried.external_ref is not None and retried.external_ref.id == str(old["id"])
    assert list(tickets.by_id) == [old["id"]]  # reopened, not duplicated
    assert (old["status"], old["external_id"]) == ("open", EXTERNAL_ID)
    assert [(a.action, a.keys) for a in state.accepted] == [("trigger", (EXTERNAL_ID,))]
    [comment] = tickets.comments[old["id"]]
    assert comment["public"] is False and PREVIOUS in comment["body"]


async def test_recurrence_of_a_closed_ticket_creates_a_follow_up(
        aiohttp_server: Server) -> None:
    _, tickets, base = await start_fake(aiohttp_server)
    old = tickets.add(status="closed", external_id=f"baton-{PREVIOUS}")
    [outcome] = await send(connector(base), sample_notification("zd", incident=recurrence()))
    assert outcome.kind == "ok" and outcome.external_ref is not None, outcome
    new = tickets.by_id[int(outcome.external_ref.id)]
    assert new["id"] != old["id"] and new["followup_source_id"] == old["id"]
    assert new["external_id"] == EXTERNAL_ID and old["status"] == "closed"
    assert f"Recurrence of Baton incident {PREVIOUS}." in tickets.comments[new["id"]][0][
        "body"]


async def test_recurrence_without_a_previous_ticket_creates_one(
        aiohttp_server: Server) -> None:
    state, tickets, base = await start_fake(aiohttp_server)
    [outcome] = await send(connector(base), sample_notification("zd", incident=recurrence()))
    assert outcome.kind == "ok" and len(tickets.by_id) == 1
    assert [r.query for r in state.requests if r.method == "GET"] == [
        {"external_id": EXTERNAL_ID}, {"external_id": f"baton-{PREVIOUS}"}]


async def test_closed_ticket_refuses_a_note_but_counts_as_resolved(
        aiohttp_server: Server) -> None:
    state, tickets, base = await start_fake(aiohttp_server)
    closed = tickets.add(status="closed", external_id=EXTERNAL_ID)
    ref = {"connector": "zd", "id": str(closed["id"]), "url": None}
    note = sample_incident() | {"external_refs": [ref]}
    resolved = sample_incident("resolved") | {"external_refs": [ref]}
    noted, done = await send(connector(base), sample_notification("zd", "note", incident=note),
                             sample_notification("zd", "resolve", incident=resolved))
    assert (noted.kind, noted.status) == ("permanent", 422), noted
    assert "closed prevents ticket update" in noted.detail
    assert done.kind == "ok" and done.external_ref is not None
    assert done.external_ref.id == str(closed["id"]) and state.accepted == []


async def test_actions_without_a_ref_look_the_ticket_up(aiohttp_server: Server) -> None:
    state, tickets, base = await start_fake(aiohttp_server)
    conn = connector(base)
    [missing] = await send(conn, sample_notification("zd", "resolve"))
    assert (missing.kind, missing.status) == ("permanent", 404), missing
    state.script(Reply(204))  # created, but the answer carries no ticket
    [created] = await send(conn, sample_notification("zd"))
    assert (created.kind, created.status, created.external_ref) == ("ok", 204, None)
    [resolved] = await send(conn, sample_notification("zd", "resolve"))
    [ticket] = tickets.by_id.values()
    assert resolved.kind == "ok" and ticket["status"] == "solved"


async def test_rate_limit_is_retryable_with_retry_after(aiohttp_server: Server) -> None:
    state, tickets, base = await start_fake(aiohttp_server)
    state.script(Reply(429, {"Retry-After": "93"}))
    [outcome] = await send(connector(base), sample_notification("zd"))
    assert (outcome.kind, outcome.status, outcome.retry_after) == ("retryable", 429, 93.0)
    assert not tickets.by_id


async def test_a_lookup_answer_that_is_not_a_list_is_retried(
        aiohttp_server: Server) -> None:
    async def maintenance(request: web.Request) -> web.Response:
        return web.Response(text="<html>Down for maintenance</html>",
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/api/v2/tickets.json", maintenance)
    server = await aiohttp_server(app)
    [outcome] = await send(connector(str(server.make_url("")).rstrip("/")),
                           sample_notification("zd"))
    assert (outcome.kind, outcome.status) == ("retryable", 200), outcome


async def test_a_lookup_that_ignored_the_filter_finds_nothing(aiohttp_server: Server) -> None:
    created: list[Any] = []

    async def listing(request: web.Request) -> web.Response:  # every ticket, unfiltered
        return web.json_response({"tickets": [
            {"id": 1, "status": "open", "external_id": None},
            {"id": 2, "status": "open", "external_id": "baton-someone-else"}]})

    async def create(request: web.Request) -> web.Response:
        created.append(await request.json())
        return web.json_response({"ticket": {"id": 3, "status": "new"}}, status=201)

    app = web.Application()
    app.router.add_get("/api/v2/tickets.json", listing)
    app.router.add_post("/api/v2/tickets.json", create)
    server = await aiohttp_server(app)
    [outcome] = await send(connector(str(server.make_url("")).rstrip("/")),
                           sample_notification("zd"))
    assert outcome.kind == "ok" and outcome.external_ref is not None, outcome
    assert outcome.external_ref.id == "3" and len(created) == 1


async def test_wrong_token_is_refused_and_not_shown(aiohttp_server: Server) -> None:
    state, tickets, base = await start_fake(aiohttp_server)
    conn = connector(base, api_token=Secret("wrong-token-value"))
    [outcome] = await send(conn, sample_notification("zd"))
    assert (outcome.kind, outcome.status) == ("permanent", 401), outcome
    assert "Couldn't authenticate you" in outcome.detail
    assert "wrong-token-value" not in repr(outcome) and not tickets.by_id
    assert state.rejected == [(401, "Couldn't authenticate you")]


async def test_the_fake_refuses_what_zendesk_refuses(aiohttp_server: Server) -> None:
    state, tickets, base = await start_fake(aiohttp_server)
    auth = connector(base)._auth
    async with aiohttp.ClientSession() as http:
        async def call(method: str, path: str, body: Any, **headers: str) -> int:
            async with http.request(method, base + path, data=json.dumps(body), headers={
                    "Authorization": auth, "Content-Type": "application/json",
                    **headers}) as resp:
                return resp.status

        ok = {"ticket": {"subject": "x", "comment": {"body": "y", "public": False}}}
        assert await call("POST", "/api/v2/tickets.json", ok, Authorization="Basic eDp5") == 401
        assert await call("POST", "/api/v2/tickets.json", ok,
                          **{"Content-Type": "text/plain"}) == 415
        assert await call("POST", "/api/v2/tickets.json", {"subject": "x"}) == 400
        assert await call("POST", "/api/v2/tickets.json", {"ticket": {"subject": "x"}}) == 422
        bad = {"ticket": {**ok["ticket"], "priority": "P1"}}
        assert await call("POST", "/api/v2/tickets.json", bad) == 422
        assert await call("PUT", "/api/v2/tickets/999.json", ok) == 404
    assert state.accepted == [] and not tickets.by_id


def test_config_needs_an_http_url() -> None:
    with pytest.raises(ConfigError):
        connector("ftp://example.com")


# -- callbacks ---------------------------------------------------------------------------

STAMP = "2024-11-20T08:40:00Z"
AT = datetime.fromisoformat("2024-11-20T08:40:00+00:00").timestamp()


def signed(payload: bytes, stamp: str = STAMP, secret: str = fake.WEBHOOK_SECRET
           ) -> dict[str, str]:
    mac = hmac.new(secret.encode(), stamp.encode() + payload, hashlib.sha256).digest()
    return {"X-Zendesk-Webhook-Signature": base64.b64encode(mac).decode(),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp}


def hook(**fields: Any) -> bytes:
    doc = {"event": "solved", "ticket_id": "35436", "external_id": EXTERNAL_ID,
           "updated_at": "2024-11-20T08:39:58Z", "actor_email": "jdoe@acme.example",
           "actor_name": "Jane Doe", "comment": ""} | fields
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def test_published_signature_example_verifies() -> None:
    """Zendesk's worked example: secret, body, timestamp and the signature it gives."""
    conn = connector(webhook_secret=Secret("HRkRd4BeOAoUkfZr-mhauJT64rvBASlJRoIyPsd3zeA="))
    headers = {"X-Zendesk-Webhook-Signature": "tRDSF7URY8BLCDlaBcQ7FHu051Zk+aAB0NKMP53teMw=",
               "X-Zendesk-Webhook-Signature-Timestamp": "2021-07-25T10:00:00Z"}
    when = datetime.fromisoformat("2021-07-25T10:00:00+00:00").timestamp()
    with pytest.raises(PayloadError):  # the signature holds; the body is not Baton's
        conn.callback(b'{"say": "hello"}', headers, when)
    with pytest.raises(AuthError):
        conn.callback(b'{"say": "hellO"}', headers, when)


@pytest.mark.parametrize(("event", "action"), [
    ("solved", "resolve"), ("closed", "resolve"), ("acknowledged", "acknowledge")])
def test_signed_events_become_callback_events(event: str, action: str) -> None:
    payload = hook(event=event)
    assert connector().callback(payload, signed(payload), AT + 60) == [CallbackEvent(
        action, f"35436@2024-11-20T08:39:58Z/{event}",  # type: ignore[arg-type]
        "Jane Doe (zendesk)", incident_id=INCIDENT_ID)]


def test_a_comment_becomes_a_note_and_foreign_tickets_go_by_id() -> None:
    payload = hook(event="comment", comment="db failover done", external_id="",
                   ticket_id=77)
    [event] = connector().callback(payload, signed(payload), AT)
    assert (event.action, event.text, event.incident_id, event.external_id) == (
        "note", "db failover done", None, "77")
    same_minute = hook(event="comment", comment="and back", external_id="", ticket_id=77)
    [other] = connector().callback(same_minute, signed(same_minute), AT)
    assert other.event_id != event.event_id


def test_baton_own_changes_are_skipped() -> None:
    mine = hook(actor_email=fake.EMAIL.upper())
    assert connector().callback(mine, signed(mine), AT) == []
    echoed = hook(event="comment", comment="[Baton] Resolved in Baton by alice.")
    assert connector().callback(echoed, signed(echoed), AT) == []


@pytest.mark.parametrize("headers", [
    {}, signed(hook(), secret="wrong"), signed(hook(), stamp="not a time"),
    signed(hook(), stamp="2024-11-20T08:40:01Z") | {  # signed for another time
        "X-Zendesk-Webhook-Signature-Timestamp": STAMP},
    signed(hook(event="closed")),  # signed for another body
    {"X-Zendesk-Webhook-Signature": "!!", "X-Zendesk-Webhook-Signature-Timestamp": STAMP}])
def test_bad_signatures_raise_auth_error(headers: dict[str, str]) -> None:
    with pytest.raises(AuthError) as caught:
        connector().callback(hook(), headers, AT)
    assert fake.WEBHOOK_SECRET not in str(caught.value)


@pytest.mark.parametrize("skew", [-301.0, 301.0])
def test_stale_or_future_timestamps_raise_auth_error(skew: float) -> None:
    with pytest.raises(AuthError):
        connector().callback(hook(), signed(hook()), AT + skew)


def test_callbacks_need_a_webhook_secret() -> None:
    config = {k: v for k, v in fake.config("http://x").items() if k != "webhook_secret"}
    with pytest.raises(AuthError):
        ZendeskConnector("zd", config).callback(hook(), signed(hook()), AT)


@pytest.mark.parametrize("payload", [
    b"not json", b"[]", hook(event="reopened"), hook(ticket_id="abc"), hook(ticket_id=...),
    hook(updated_at=...), hook(actor_email=""), hook(comment=["x"])])
def test_wrong_shape_raises_payload_error(payload: bytes) -> None:
    with pytest.raises(PayloadError):
        connector().callback(payload, signed(payload), AT)


@pytest.mark.parametrize("fields", [
    {"event": "comment", "comment": "db \ud800 failover"},  # hashed for the event id
    {"actor_name": "Jane \udfff"}, {"updated_at": "2024-11-20T08:39:58Z\ud800"},
    {"external_id": "baton-\udc80"},
])
def test_unpaired_surrogates_raise_payload_error(fields: dict[str, str]) -> None:
    # json.loads turns an escaped lone surrogate into a str that no UTF-8 encoding (the
    # comment's digest, the store) takes: a signed body with one was a 500.
    payload = hook(**fields)
    assert b"\\ud" in payload  # escaped, as json.dumps writes it
    with pytest.raises(PayloadError):
        connector().callback(payload, signed(payload), AT)


def test_a_body_nested_too_deeply_raises_payload_error() -> None:
    payload = b'{"event": "comment", "comment": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(PayloadError):
        connector().callback(payload, signed(payload), AT)


async def test_a_lookup_answer_in_many_chunks_is_read_whole(aiohttp_server: Server) -> None:
    """A ticket with a long description arrives in several chunks; reading only the
    first made the lookup "not a ticket list" on every attempt until dead-lettered."""
    state, tickets, base = await start_fake(aiohttp_server)
    big = tickets.add(status="open", external_id=EXTERNAL_ID, subject="big",
                      description="x" * (20 * CHUNK))
    [outcome] = await send(connector(base), dataclasses.replace(
        sample_notification("zd"), attempt=2))
    assert outcome.kind == "ok" and outcome.external_ref is not None, outcome
    assert outcome.external_ref.id == str(big["id"]) and len(tickets.by_id) == 1
    assert state.accepted == []


async def test_an_answer_beyond_the_cap_is_retryable_not_truncated(
        aiohttp_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    from baton_connectors import zendesk
    monkeypatch.setattr(zendesk, "_READ_BYTES", 4 * CHUNK)
    _, tickets, base = await start_fake(aiohttp_server)
    tickets.add(status="open", external_id=EXTERNAL_ID, description="x" * (9 * CHUNK))
    [outcome] = await send(connector(base), sample_notification("zd"))
    assert outcome.kind == "retryable" and "longer than" in outcome.detail, outcome
    assert len(tickets.by_id) == 1


async def test_a_late_resolve_leaves_a_ticket_a_recurrence_took_over(
        aiohttp_server: Server) -> None:
    """The old incident's resolve sat in backoff while a recurrence reopened its ticket
    (replacing external_id): delivered now, it must not solve the new incident's ticket."""
    state, tickets, base = await start_fake(aiohttp_server)
    old = tickets.add(status="solved", external_id=f"baton-{PREVIOUS}", subject="before")
    [reopened] = await send(connector(base), sample_notification("zd", incident=recurrence()))
    assert reopened.kind == "ok" and old["status"] == "open", reopened
    ref = {"connector": "zd", "id": str(old["id"]), "url": None}
    late = sample_incident("resolved") | {"id": PREVIOUS, "external_refs": [ref]}
    [outcome] = await send(connector(base), sample_notification("zd", "resolve",
                                                                incident=late))
    assert outcome.kind == "ok" and "left open to the newer incident" in outcome.detail
    assert INCIDENT_ID in outcome.detail and outcome.external_ref is not None
    assert old["status"] == "open" and [a.action for a in state.accepted] == ["trigger"]
    # The new incident's own resolve still solves it.
    mine = sample_incident("resolved") | {"external_refs": [ref]}
    [solved] = await send(connector(base), sample_notification("zd", "resolve",
                                                               incident=mine))
    assert solved.kind == "ok" and old["status"] == "solved", solved
