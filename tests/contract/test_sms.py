"""What the sms connector promises beyond the generic contract: the recipient from the
target (person's phone, an E.164 ``to``, ``default_to``) or a clear permanent failure; short
texts per action, only for the configured actions; the request Twilio documents; a retry
that finds the text already sent sends nothing; the fake is strict enough to trust."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from baton_connectors.sms import SmsConnector, phone_number
from fakes import CHUNK, INCIDENT_ID, FakeState, Reply, sample_incident, sample_notification
from fakes import sms as fake
from specs import sms as spec

from baton.errors import ConfigError
from baton.model import ExternalRef, Notification, Outcome
from baton.secret import Secret

Server = Callable[[web.Application], Awaitable[TestServer]]
ALL = ["trigger", "update", "acknowledge", "resolve", "note"]
ALICE = {"connector": "pager", "to": "person:alice", "params": {}, "person": "alice",
         "contacts": {"email": "alice@example.com", "phone": "+15550111"}}


async def start_fake(aiohttp_server: Server) -> tuple[FakeState, list[dict[str, Any]], str]:
    state = FakeState()
    app = fake.make_app(state)
    server = await aiohttp_server(app)
    return state, app[fake.MESSAGES], str(server.make_url("")).rstrip("/")


async def send(config: dict[str, Any], notification: Notification) -> Outcome:
    async with aiohttp.ClientSession() as http:
        return await SmsConnector("pager", config).send(notification, http)


def note(action: str = "trigger", target: dict[str, Any] | None = None,
         **kw: Any) -> Notification:
    base = sample_notification("pager", action, **kw)
    return dataclasses.replace(base, target=ALICE if target is None else target)


def connector(**config: Any) -> SmsConnector:
    return SmsConnector("pager", {"account_sid": fake.ACCOUNT_SID,
                                  "auth_token": Secret(fake.AUTH_TOKEN), "from": fake.FROM,
                                  **config})


async def test_each_configured_action_texts_the_person(aiohttp_server: Server) -> None:
    state, messages, base = await start_fake(aiohttp_server)
    config = fake.config(base) | {"actions": ALL}
    refs = []
    for action in ("trigger", "update", "acknowledge", "note", "resolve"):
        outcome = await send(config, note(action))
        assert (outcome.kind, outcome.status) == ("ok", 201), outcome
        assert outcome.external_ref is not None
        refs.append(outcome.external_ref)
    assert [a.action for a in state.accepted] == [
        "trigger", "update", "acknowledge", "note", "resolve"]
    assert refs == [ExternalRef("pager", m["sid"]) for m in messages]
    assert all(m["to"] == "+15550111" and m["from"] == fake.FROM for m in messages)
    assert state.rejected == []


async def test_the_request_is_what_twilio_documents(aiohttp_server: Server) -> None:
    state, _, base = await start_fake(aiohttp_server)
    await send(fake.config(base), note())
    seen = state.accepted[0].seen
    assert (seen.method, seen.path) == ("POST", fake.PATH)
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert seen.headers["Authorization"] == f"Basic {fake.SENSITIVE[0]}"
    form = {k: v[0] for k, v in parse_qs(seen.body.decode()).items()}
    assert form == {"To": "+15550111", "From": fake.FROM, "Body": form["Body"]}
    assert form["Body"].startswith(
        f"[CRITICAL] High error rate on checkout (checkout) - Baton incident {INCIDENT_ID}"
        f" - ack: https://oncall.example.com/incidents/{INCIDENT_ID} ref:")


async def test_a_messaging_service_replaces_from(aiohttp_server: Server) -> None:
    state, messages, base = await start_fake(aiohttp_server)
    config = fake.config(base) | {"messaging_service_sid": fake.SERVICE_SID}
    assert (await send(config, note())).kind == "ok"
    form = parse_qs(state.accepted[0].seen.body.decode())
    assert form["MessagingServiceSid"] == [fake.SERVICE_SID] and "From" not in form
    assert messages[0]["status"] == "accepted"


def test_texts_per_action() -> None:
    incident = sample_incident() | {"acknowledged_by": "bob"}
    incident["escalation"] = incident["escalation"] | {"level": 2}
    incident["timeline"] = [*incident["timeline"], {
        "at": "2024-11-20T08:20:00.000Z", "type": "note", "actor": "carol",
        "detail": {"text": "rolling back"}}]
    sms = connector()
    texts = {a: sms.text(note(a, incident=incident if a != "resolve" else None))
             for a in ALL}
    ident = f"Baton incident {INCIDENT_ID}"
    title = "High error rate on checkout (checkout)"
    assert texts["trigger"].startswith(f"[CRITICAL] {title} - {ident} ref:")
    assert texts["update"].startswith(f"[CRITICAL] Updated (level 2): {title} - {ident}")
    assert texts["acknowledge"].startswith(f"[ACK] {title} acknowledged by bob - {ident}")
    assert texts["resolve"].startswith(f"[RESOLVED] {title} by alice - {ident}")
    assert texts["note"].startswith(
        f"[NOTE] High error rate on checkout: rolling back - {ident}")
    assert all(t.isascii() for t in texts.values())  # GSM 7-bit: 160 characters a segment
    refs = {t.rsplit(" ref:", 1)[1] for t in texts.values()}
    assert len(refs) == 5 and all(len(r) == 6 for r in refs)


def test_long_texts_are_clipped_below_twilios_limit() -> None:
    incident = sample_incident() | {"title": "t" * 3000}
    incident["timeline"] = [{"at": "2024-11-20T08:20:00.000Z", "type": "note",
                             "actor": "carol", "detail": {"text": "n" * 5000}}]
    for action in ALL:
        text = connector().text(note(action, incident=incident))
        assert len(text) <= 320 and " ref:" in text


async def test_titles_and_notes_are_one_line_and_emoji_count_twice(
        aiohttp_server: Server) -> None:
    state, messages, base = await start_fake(aiohttp_server)
    incident = sample_incident() | {"title": "Disk full\non db-1\r\n\tnow " + "🔥" * 100}
    incident["timeline"] = [{"at": "2024-11-20T08:20:00.000Z", "type": "note",
                             "actor": "carol", "detail": {"text": "rolled\nback"}}]
    assert (await send(fake.config(base) | {"actions": ALL},
                       note("note", incident=incident))).kind == "ok"
    body = messages[-1]["body"]
    assert body.startswith("[NOTE] Disk full on db-1 now 🔥") and "\n" not in body
    assert ": rolled back - Baton incident" in body
    # Twilio segments UCS-2 text by UTF-16 units: the title's 80 are counted that way.
    title = body.removeprefix("[NOTE] ").split(": rolled")[0]
    assert len(title.encode("utf-16-le")) // 2 <= 80 and title.endswith("🔥...")
    assert state.rejected == []


@pytest.mark.parametrize(("target", "expected"), [
    (ALICE, "+15550111"),
    (ALICE | {"contacts": {"phone": "+1 (555) 011-2233"}}, "+15550112233"),
    ({"connector": "pager", "to": "+447700900123", "params": {}}, "+447700900123"),
    ({"connector": "pager", "to": "tel:+447700900123", "params": {}}, "+447700900123"),
    ({"connector": "pager", "to": "channel:ops", "params": {}}, fake.DEFAULT_TO),
    ({}, fake.DEFAULT_TO),
])
async def test_recipient(aiohttp_server: Server, target: dict[str, Any],
                         expected: str) -> None:
    _, messages, base = await start_fake(aiohttp_server)
    assert (await send(fake.config(base), note(target=target))).kind == "ok"
    assert [m["to"] for m in messages] == [expected]


@pytest.mark.parametrize(("target", "config", "words"), [
    (ALICE | {"contacts": {"email": "alice@example.com"}}, {},
     "person 'alice' has no phone contact"),
    (ALICE | {"contacts": {"phone": "0170 1234567"}}, {}, "not in E.164 form"),
    ({}, {"default_to": None}, "no default_to is configured"),
])
async def test_no_phone_is_a_permanent_failure(aiohttp_server: Server, target: dict[str, Any],
                                               config: dict[str, Any], words: str) -> None:
    state, _, base = await start_fake(aiohttp_server)
    outcome = await send(fake.config(base) | config, note(target=target))
    assert outcome.kind == "permanent" and words in outcome.detail, outcome
    assert state.requests == []


async def test_default_actions_skip_acknowledge_and_note(aiohttp_server: Server) -> None:
    state, _, base = await start_fake(aiohttp_server)
    for action in ("acknowledge", "note"):
        outcome = await send(fake.config(base), note(action))
        assert outcome.kind == "ok" and "not among" in outcome.detail
    assert state.requests == []


async def test_a_retry_finds_the_text_already_sent(aiohttp_server: Server) -> None:
    state, messages, base = await start_fake(aiohttp_server)
    first = note()
    one = await send(fake.config(base), first)
    two = await send(fake.config(base), dataclasses.replace(first, attempt=2))
    assert two.kind == "ok" and two.external_ref == one.external_ref, (one, two)
    assert len(messages) == 1 and len(state.accepted) == 1
    lookup = state.requests[-1]
    assert lookup.method == "GET" and lookup.query == {
        "To": "+15550111", "From": fake.FROM, "PageSize": "20"}
    # The lookup (a retry only, so the vendor-spec suite never makes one) is a
    # ListMessage call as Twilio's own OpenAPI describes it.
    assert [p for seen in state.requests for p in spec.check(seen)] == []


async def test_a_retry_sends_again_when_the_earlier_text_failed_or_is_unseen(
        aiohttp_server: Server) -> None:
    state, messages, base = await start_fake(aiohttp_server)
    first = note()
    await send(fake.config(base), first)
    messages[0]["status"] = "undelivered"
    retry = await send(fake.config(base), dataclasses.replace(first, attempt=2))
    assert retry.kind == "ok" and len(messages) == 2
    state.script(Reply(500))  # the lookup fails: a second text beats a lost page
    third = await send(fake.config(base), dataclasses.replace(first, attempt=3))
    assert third.kind == "ok" and len(messages) == 3
    assert third.external_ref == ExternalRef("pager", messages[2]["sid"])


async def test_wrong_token_is_refused_permanently(aiohttp_server: Server) -> None:
    state, _, base = await start_fake(aiohttp_server)
    config = fake.config(base) | {"auth_token": Secret("wrong-token-x9")}
    outcome = await send(config, note())
    assert (outcome.kind, outcome.status) == ("permanent", 401)
    assert "Twilio error 20003: Authenticate" in outcome.detail
    assert "wrong-token-x9" not in repr(outcome)
    assert state.accepted == []


async def test_a_sender_not_on_the_account_is_permanent(aiohttp_server: Server) -> None:
    state, _, base = await start_fake(aiohttp_server)
    outcome = await send(fake.config(base) | {"from": "+15550199"}, note())
    assert (outcome.kind, outcome.status) == ("permanent", 400)
    assert "Twilio error 21606" in outcome.detail
    assert state.rejected[0][1].startswith("21606:")


async def test_throttling_is_retryable(aiohttp_server: Server) -> None:
    state, _, base = await start_fake(aiohttp_server)
    state.script(Reply(429, {"Retry-After": "3"}))
    outcome = await send(fake.config(base), note())
    assert (outcome.kind, outcome.retry_after) == ("retryable", 3.0)
    assert "Twilio error 20429" in outcome.detail and outcome.external_ref is None


async def test_the_fake_is_strict(aiohttp_server: Server) -> None:
    state, _, base = await start_fake(aiohttp_server)
    url = f"{base}{fake.PATH}"
    auth = {"Authorization": f"Basic {fake.SENSITIVE[0]}"}
    cases = [
        ({}, {"To": "+15550111", "From": fake.FROM, "Body": "[INFO] x"}, 401, 20003),
        (auth, {"From": fake.FROM, "Body": "[INFO] x"}, 400, 21604),
        (auth, {"To": "5550111", "From": fake.FROM, "Body": "[INFO] x"}, 400, 21211),
        (auth, {"To": "+15550111", "Body": "[INFO] x"}, 400, 21603),
        (auth, {"To": "+15550111", "From": fake.FROM}, 400, 21602),
        (auth, {"To": "+15550111", "From": fake.FROM, "Body": "[INFO] " + "x" * 1600},
         400, 21617),
    ]
    async with aiohttp.ClientSession() as http:
        for headers, form, status, code in cases:
            async with http.post(url, data=form, headers=headers) as resp:
                doc = await resp.json()
                assert (resp.status, doc["code"]) == (status, code), form
                assert set(doc) == {"code", "message", "more_info", "status"}
        async with http.post(url, json={"To": "+15550111", "From": fake.FROM,
                                        "Body": "[INFO] x"}, headers=auth) as resp:
            assert (resp.status, (await resp.json())["code"]) == (400, 21604)
        other = url.replace(fake.ACCOUNT_SID, "AC" + "0" * 32)
        async with http.get(other, headers=auth) as resp:
            assert resp.status == 404
    assert state.accepted == []


def test_phone_numbers() -> None:
    assert phone_number("+49 170 1234567") == "+491701234567"
    assert phone_number("tel:+1-555-0100") == "+15550100"
    assert phone_number("0170 1234567") is None
    assert phone_number("person:alice") is None
    assert phone_number(None) is None


def test_config_problems() -> None:
    with pytest.raises(ConfigError, match="from"):
        SmsConnector("pager", {"account_sid": fake.ACCOUNT_SID,
                               "auth_token": Secret(fake.AUTH_TOKEN)})
    with pytest.raises(ConfigError, match="default_to"):
        connector(default_to="0170 1234567")
    with pytest.raises(ConfigError, match="url"):
        connector(url="ftp://example.com")


async def test_a_retry_finds_the_text_although_the_incident_changed(
        aiohttp_server: Server) -> None:
    """Between attempts the incident's severity and escalation level moved on, so the
    retry's text differs; the idempotency reference still names the earlier message."""
    state, messages, base = await start_fake(aiohttp_server)
    first = note("update")
    one = await send(fake.config(base), first)
    changed = sample_incident() | {"severity": "warning",
                                   "escalation": {"policy": "p", "level": 3}}
    retry = dataclasses.replace(first, attempt=2, incident=changed)
    assert connector().text(retry) != connector().text(first)
    two = await send(fake.config(base), retry)
    assert two.kind == "ok" and two.external_ref == one.external_ref, (one, two)
    assert len(messages) == 1 and len(state.accepted) == 1


async def test_a_retry_does_not_take_another_deliverys_text(aiohttp_server: Server) -> None:
    _, messages, base = await start_fake(aiohttp_server)
    await send(fake.config(base), note("trigger"))
    retry = await send(fake.config(base), note("update", attempt=2))
    assert retry.kind == "ok" and len(messages) == 2


async def test_a_retry_reads_a_long_page_of_earlier_messages(aiohttp_server: Server) -> None:
    """Twenty long texts make a page of several chunks; reading only the first lost the
    earlier message and sent the page twice."""
    _, messages, base = await start_fake(aiohttp_server)
    first = note()
    one = await send(fake.config(base), first)
    for n in range(19):  # newer, long texts to the same person, listed first
        messages.append(messages[0] | {"sid": f"SM{n:032d}", "body": "y" * 1590})
    assert sum(len(m["body"]) for m in messages) > 2 * CHUNK
    two = await send(fake.config(base), dataclasses.replace(first, attempt=2))
    assert two.kind == "ok" and two.external_ref == one.external_ref, (one, two)
    assert len(messages) == 20
