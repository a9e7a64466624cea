"""The email connector against a real local SMTP server (fakes/email.py): what arrives,
how it is protected, and how SMTP replies are classified."""

from __future__ import annotations

import base64
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from baton_connectors.email import EmailConnector, message_id
from fakes import FakeState, sample_incident, sample_notification
from fakes.email import PASSWORD, USERNAME, FakeSMTP, Mode, config

from baton import schema
from baton.errors import ConfigError
from baton.model import Notification, Outcome
from baton.secret import Secret

NAME = "mail"
Start = Callable[..., Awaitable[FakeSMTP]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    servers: list[FakeSMTP] = []

    async def _start(mode: Mode = "starttls", auth: bool = True,
                     cls: type[FakeSMTP] = FakeSMTP) -> FakeSMTP:
        server = cls(FakeState(), mode, auth)
        await server.start()
        servers.append(server)
        return server

    yield _start
    for server in servers:
        server.state.release.set()
        await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:  # the port's argument; SMTP ignores it
        yield session


def connector(server: FakeSMTP, **overrides: Any) -> EmailConnector:
    cfg = config(f"smtp://127.0.0.1:{server.port}")
    cfg.update(overrides)
    return EmailConnector(NAME, {k: v for k, v in cfg.items() if v is not None})


def note(action: str = "trigger", incident: dict[str, Any] | None = None,
         target: dict[str, Any] | None = None, attempt: int = 1) -> Notification:
    n = sample_notification(NAME, action, attempt, incident)
    return dataclasses.replace(n, target=target or {})


def parts(server: FakeSMTP, index: int = -1) -> tuple[str, str]:
    msg = server.messages[index].message
    plain, page = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and page is not None
    # Parsed from the wire, the lines still end in CRLF.
    return (str(plain.get_content()).replace("\r\n", "\n"),
            str(page.get_content()).replace("\r\n", "\n"))


async def test_trigger_arrives_over_starttls_after_auth(
        start: Start, http: aiohttp.ClientSession) -> None:
    server = await start()
    n = note()
    outcome = await connector(server).send(n, http)
    assert (outcome.kind, outcome.status) == ("ok", 250), outcome
    assert outcome.external_ref is not None
    assert outcome.external_ref.id == message_id(n.idempotency_key)
    [got] = server.messages
    assert got.tls and got.login == USERNAME and got.helo == "baton.test"
    assert got.mail_from == USERNAME and got.rcpt_tos == ("oncall@example.com",)
    msg = got.message
    assert msg["Subject"] == "[Baton][CRITICAL] High error rate on checkout (triggered)"
    assert msg["From"] == f"Baton <{USERNAME}>" and msg["To"] == "oncall@example.com"
    assert msg["Message-ID"] == outcome.external_ref.id
    assert msg["Message-ID"].startswith("<") and msg["Message-ID"].endswith("@baton>")
    assert msg["X-Baton-Incident"] == n.incident["id"]
    assert msg["X-Baton-Action"] == "trigger"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["In-Reply-To"] is None and msg["References"] is None
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    plain, page = parts(server)
    assert "High error rate on checkout" in plain and "5xx ratio above 5% for 10m" in plain
    assert n.incident["id"] in plain and "<b>High error rate on checkout</b>" in page


async def test_everything_from_alerts_is_escaped_and_headers_stay_single_line(
        start: Start, http: aiohttp.ClientSession) -> None:
    server = await start()
    incident = sample_incident()
    evil = '<script>alert("x")</script> & co'
    incident["title"] = f"{evil}\r\nBcc: thief@example.com"
    incident["alerts"][0].update(summary=evil, description="<img src=x onerror=y>",
                                 links=[{"href": "javascript:alert(1)", "text": "<b>run</b>"},
                                        {"href": "https://runbooks.example/a?b=1&c=2",
                                         "text": "runbook"}])
    outcome = await connector(server).send(note(incident=incident), http)
    assert outcome.kind == "ok", outcome
    [got] = server.messages
    assert got.rcpt_tos == ("oncall@example.com",) and got.message["Bcc"] is None
    assert "\n" not in got.message["Subject"] and "Bcc: thief" in got.message["Subject"]
    plain, page = parts(server)
    assert "<script>" not in page and "<img" not in page and "javascript:" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in page
    assert "&lt;img src=x onerror=y&gt;" in page and "<h2>&lt;script&gt;" in page
    assert '<a href="https://runbooks.example/a?b=1&amp;c=2">runbook</a>' in page
    assert evil in plain and "javascript:alert(1)" in plain  # plain text is not markup


@pytest.mark.parametrize(("action", "state", "says"), [
    ("update", "updated", "The incident was updated"),
    ("acknowledge", "acknowledged", "Acknowledged by bob."),
    ("note", "note", "Incident updated in Baton."),
    ("resolve", "resolved", "Resolved by alice."),
    ("trigger", "triggered", "A new incident needs attention."),  # a later level's
])
async def test_later_actions_thread_to_the_first_message(
        start: Start, http: aiohttp.ClientSession, action: str, state: str, says: str) -> None:
    server = await start()
    mail = connector(server)
    first = await mail.send(note("trigger"), http)
    assert first.kind == "ok" and first.external_ref is not None
    root = first.external_ref.id
    incident = sample_incident("resolved" if action == "resolve" else "triggered")
    incident |= {"external_refs": [first.external_ref.to_dict()], "acknowledged_by": "bob"}
    later = dataclasses.replace(note(action, incident), idempotency_key=f"{action}/L2")
    second = await mail.send(later, http)
    assert second.kind == "ok" and second.external_ref == first.external_ref
    msg = server.messages[1].message
    assert msg["In-Reply-To"] == root and msg["References"] == root
    assert msg["Message-ID"] == message_id(f"{action}/L2") != root
    assert msg["Subject"] == f"[Baton][CRITICAL] High error rate on checkout ({state})"
    assert says in parts(server)[0]
    assert [a.action for a in server.state.accepted] == ["trigger", action]


async def test_note_carries_the_last_timeline_note_or_a_generic_text(
        start: Start, http: aiohttp.ClientSession) -> None:
    server = await start()
    mail = connector(server)
    incident = sample_incident()
    incident["timeline"].append({"at": "2024-11-20T08:20:00.000Z", "type": "note",
                                 "actor": "bob", "detail": {"text": "rolled back <v42>"}})
    assert (await mail.send(note("note", incident), http)).kind == "ok"
    plain, page = parts(server)
    assert "Note from bob:\nrolled back <v42>" in plain and "rolled back &lt;v42&gt;" in page
    del incident["timeline"]
    assert (await mail.send(note("note", incident), http)).kind == "ok"
    assert "Incident updated in Baton." in parts(server)[0]
    assert server.messages[-1].message["Subject"].endswith("(note)")


async def test_a_retry_repeats_the_message_id(start: Start, http: aiohttp.ClientSession) -> None:
    server = await start()
    mail = connector(server)
    one, two = await mail.send(note(), http), await mail.send(note(attempt=2), http)
    assert one.external_ref == two.external_ref
    ids = {m.message["Message-ID"] for m in server.messages}
    assert len(server.messages) == 2 and len(ids) == 1


@pytest.mark.parametrize(("target", "expected"), [
    ({"to": "person:carol", "person": "carol", "contacts": {"email": "carol@example.com"}},
     ("carol@example.com",)),
    ({"to": "person:dave", "person": "dave", "contacts": {"phone": "+15550100"}},
     ("oncall@example.com",)),  # no email contact: the connector's list
    ({"to": "mailto:dba@example.com,%20ops@example.com?subject=x"},
     ("dba@example.com", "ops@example.com")),
    ({"to": "schedule:primary"}, ("oncall@example.com",)),
])
async def test_recipients(start: Start, http: aiohttp.ClientSession,
                          target: dict[str, Any], expected: tuple[str, ...]) -> None:
    server = await start()
    outcome = await connector(server).send(note(target={"connector": NAME, **target}), http)
    assert outcome.kind == "ok", outcome
    assert server.messages[0].rcpt_tos == expected
    assert server.messages[0].message["To"] == ", ".join(expected)


async def test_no_recipient_is_permanent_and_sends_nothing(
        start: Start, http: aiohttp.ClientSession) -> None:
    server = await start()
    outcome = await connector(server, to=[]).send(note(), http)
    assert outcome.kind == "permanent" and "no recipient" in outcome.detail, outcome
    assert server.state.requests == [] and server.messages == []


async def test_wrong_password_is_permanent_535_and_never_surfaces(
        start: Start, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = await start()
    wrong = "s3cr3t-wrong-password-do-not-leak"
    outcome = await connector(server, password=Secret(wrong, "env:X")).send(note(), http)
    assert (outcome.kind, outcome.status) == ("permanent", 535), outcome
    assert server.messages == [] and server.state.rejected[0][0] == 535
    for text in (outcome.detail, repr(outcome), caplog.text):
        assert wrong not in text and base64.b64encode(wrong.encode()).decode() not in text


async def test_auth_is_required_by_the_server(start: Start,
                                              http: aiohttp.ClientSession) -> None:
    server = await start()
    outcome = await connector(server, username=None, password=None).send(note(), http)
    assert (outcome.kind, outcome.status) == ("permanent", 530), outcome
    assert server.messages == []


async def test_starttls_is_never_skipped(start: Start, http: aiohttp.ClientSession) -> None:
    server = await start(mode="none", auth=False)  # offers no STARTTLS
    outcome = await connector(server).send(note(), http)
    assert outcome.kind == "permanent" and "STARTTLS" in outcome.detail, outcome
    assert server.messages == [] and server.state.requests == []


async def test_an_untrusted_certificate_stops_before_auth(
        start: Start, http: aiohttp.ClientSession) -> None:
    server = await start()
    outcome = await connector(server, ca_file=None).send(note(), http)
    assert outcome.kind == "retryable" and "CERTIFICATE_VERIFY_FAILED" in outcome.detail
    assert server.state.rejected == [] and server.messages == []  # no AUTH was attempted


async def test_implicit_tls(start: Start, http: aiohttp.ClientSession) -> None:
    server = await start(mode="tls")
    outcome = await connector(server, security="tls").send(note(), http)
    assert outcome.kind == "ok", outcome
    assert server.messages[0].tls and server.messages[0].login == USERNAME


async def test_plain_relay_without_auth(start: Start, http: aiohttp.ClientSession) -> None:
    server = await start(mode="none", auth=False)
    mail = connector(server, security="none", username=None, password=None, ca_file=None)
    outcome = await mail.send(note(), http)
    assert outcome.kind == "ok", outcome
    assert not server.messages[0].tls and server.messages[0].login is None


async def test_auth_in_clear_text_needs_an_explicit_yes(
        start: Start, http: aiohttp.ClientSession) -> None:
    server = await start(mode="none", auth=True)
    with pytest.raises(ConfigError, match="allow_insecure_auth"):
        connector(server, security="none")
    text = {k: v for k, v in config("smtp://127.0.0.1:25").items() if k != "password"}
    text |= {"security": "none", "password": {"env": "P"}}
    assert schema.problems("connectors/email.schema.json", text)
    assert not schema.problems("connectors/email.schema.json",
                               text | {"allow_insecure_auth": True})
    outcome = await connector(server, security="none", allow_insecure_auth=True).send(
        note(), http)
    assert outcome.kind == "ok" and server.messages[0].login == USERNAME, outcome


@pytest.mark.parametrize(("to", "kind", "status"), [
    (["x@nowhere.invalid"], "permanent", 550),
    (["x@busy.example"], "retryable", 450),
    (["x@busy.example", "y@nowhere.invalid"], "retryable", 450),
])
async def test_refused_recipients(start: Start, http: aiohttp.ClientSession,
                                  to: list[str], kind: str, status: int) -> None:
    server = await start()
    outcome = await connector(server, to=to).send(note(), http)
    assert (outcome.kind, outcome.status) == (kind, status), outcome
    assert server.messages == []


async def test_a_partly_refused_message_is_sent_and_says_so(
        start: Start, http: aiohttp.ClientSession) -> None:
    server = await start()
    to = ["oncall@example.com", "gone@nowhere.invalid"]
    outcome = await connector(server, to=to).send(note(), http)
    assert outcome.kind == "ok" and "gone@nowhere.invalid (550" in outcome.detail, outcome
    assert server.messages[0].rcpt_tos == ("oncall@example.com",)


class EchoingSMTP(FakeSMTP):
    """A server that quotes the credentials back in its refusal."""

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        blob = base64.b64encode(f"\0{USERNAME}\0{PASSWORD}".encode()).decode()
        return f"550 5.1.1 no such user; you said {PASSWORD} ({blob})"


async def test_server_text_is_scrubbed(start: Start, http: aiohttp.ClientSession) -> None:
    server = await start(cls=EchoingSMTP)
    outcome: Outcome = await connector(server).send(note(), http)
    assert (outcome.kind, outcome.status) == ("permanent", 550), outcome
    blob = base64.b64encode(f"\0{USERNAME}\0{PASSWORD}".encode()).decode()
    assert PASSWORD not in outcome.detail and blob not in outcome.detail
    assert "no such user" in outcome.detail


async def test_non_ascii_titles_arrive_intact(start: Start,
                                              http: aiohttp.ClientSession) -> None:
    server = await start()
    incident = sample_incident()
    incident["title"] = "Dïsk fülľ on dö-01 ✓"
    assert (await connector(server).send(note(incident=incident), http)).kind == "ok"
    assert server.messages[0].message["Subject"] == (
        "[Baton][CRITICAL] Dïsk fülľ on dö-01 ✓ (triggered)")
    plain, page = parts(server)
    assert plain.startswith("Dïsk fülľ on dö-01 ✓\n") and "<h2>Dïsk fülľ on dö-01 ✓</h2>" in page
    assert max(server.messages[0].raw) < 128  # 7-bit clean on the wire


def test_config_problems_are_reported_together() -> None:
    cfg = config("smtp://127.0.0.1:587") | {"from": "nobody", "to": ["not an address"],
                                             "ca_file": "/nonexistent/ca.pem"}
    with pytest.raises(ConfigError) as caught:
        EmailConnector(NAME, cfg)
    problems = "\n".join(caught.value.problems)
    assert ".from:" in problems and ".to:" in problems and ".ca_file:" in problems
