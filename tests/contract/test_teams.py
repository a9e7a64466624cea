"""What the teams connector promises beyond the generic contract: one Adaptive Card per
action, shaped as the Workflows trigger and Teams expect, stable per delivery so a
duplicate is recognisable; the webhook URL (and its ``sig``) never shows; the fake is strict
enough to trust."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from baton_connectors.teams import TeamsConnector
from fakes import INCIDENT_ID, FakeState, Reply, closed_port, sample_incident, sample_notification
from fakes import teams as fake

from baton.errors import ConfigError
from baton.model import Notification, Outcome
from baton.secret import Secret

Server = Callable[[web.Application], Awaitable[TestServer]]
ACTIONS = ("trigger", "update", "acknowledge", "note", "resolve")


async def start_fake(aiohttp_server: Server) -> tuple[FakeState, str]:
    state = FakeState()
    server = await aiohttp_server(fake.make_app(state))
    return state, str(server.make_url("")).rstrip("/")


async def send(config: dict[str, Any], notification: Notification) -> Outcome:
    async with aiohttp.ClientSession() as http:
        return await TeamsConnector("chat", config).send(notification, http)


def connector(**config: Any) -> TeamsConnector:
    return TeamsConnector("chat", {"webhook_url": Secret("https://example.invalid/x?sig=s"),
                                   **config})


def card_of(body: bytes) -> dict[str, Any]:
    doc = json.loads(body)
    content: dict[str, Any] = doc["attachments"][0]["content"]
    return content


async def test_every_action_posts_one_card(aiohttp_server: Server) -> None:
    state, base = await start_fake(aiohttp_server)
    for action in ACTIONS:
        outcome = await send(fake.config(base), sample_notification("chat", action))
        assert (outcome.kind, outcome.status) == ("ok", 202), outcome
        assert outcome.external_ref is None  # the workflow returns no message id
    assert [(a.action, a.keys) for a in state.accepted] == [
        (action, (f"{INCIDENT_ID}/chat/{action}",)) for action in ACTIONS]
    assert state.rejected == []
    seen = state.accepted[0].seen
    assert seen.path == fake.PATH and seen.query["sig"] == fake.SIG
    assert seen.headers["Content-Type"] == "application/json"


def test_the_message_is_an_adaptive_card_activity() -> None:
    message = connector(incident_url="https://oncall.example.com/i/{id}").card(
        sample_notification("chat"))
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert fake.message_problem(message) is None
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    title, headline, facts, alerts, footer = card["body"]
    assert title == {"type": "TextBlock", "size": "Large", "weight": "Bolder",
                     "color": "attention", "wrap": True,
                     "text": "[CRITICAL] Triggered: High error rate on checkout"}
    assert headline["text"] == "Opened: escalation level 1, 1 event(s)."
    assert facts["facts"] == [
        {"title": "Status", "value": "triggered"}, {"title": "Severity", "value": "critical"},
        {"title": "Service", "value": "checkout"}, {"title": "Level", "value": "1"},
        {"title": "Incident", "value": INCIDENT_ID}]
    assert alerts["text"] == "- High error rate on checkout: 5xx ratio above 5% for 10m"
    assert footer["id"] == "baton-footer" and footer["isSubtle"] is True
    assert footer["text"] == f"Baton · trigger · {INCIDENT_ID}/chat/trigger"
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open incident",
                                "url": f"https://oncall.example.com/i/{INCIDENT_ID}"}]


@pytest.mark.parametrize(("severity", "action", "color"), [
    ("critical", "trigger", "attention"), ("error", "update", "attention"),
    ("warning", "trigger", "warning"), ("info", "acknowledge", "accent"),
    ("critical", "resolve", "good")])
def test_title_colour_follows_severity_and_resolution(severity: str, action: str,
                                                      color: str) -> None:
    incident = sample_incident() | {"severity": severity}
    card = connector().card(sample_notification("chat", action, incident=incident))
    title = card["attachments"][0]["content"]["body"][0]
    assert title["color"] == color
    assert title["text"].startswith(f"[{severity.upper()}] ")


def test_headlines_say_who_did_what() -> None:
    incident = sample_incident() | {"acknowledged_by": "bob"}
    incident["timeline"] = [*incident["timeline"], {
        "at": "2024-11-20T08:20:00.000Z", "type": "note", "actor": "carol",
        "detail": {"text": "rolling back"}}]
    bare = {k: v for k, v in incident.items() if k != "timeline"}
    texts = [TeamsConnector.headline(sample_notification("chat", action, incident=doc))
             for action, doc in (("acknowledge", incident), ("note", incident),
                                 ("note", bare), ("resolve", sample_incident("resolved")))]
    assert texts == ["Acknowledged by bob.", "carol: rolling back",
                     "Incident updated in Baton.", "Resolved by alice."]


def test_alert_links_become_buttons_http_only_and_bounded() -> None:
    incident = sample_incident()
    links = [{"href": f"https://grafana.example.com/d/{n}", "text": f"dash {n}"}
             for n in range(8)]
    links[1:1] = [{"href": "javascript:alert(1)", "text": "bad"},
                  {"href": "https://grafana.example.com/d/0", "text": "dup"}]
    incident["alerts"] = [incident["alerts"][0] | {"links": links}]
    card = connector().card(sample_notification("chat", incident=incident))
    urls = [a["url"] for a in card["attachments"][0]["content"]["actions"]]
    assert urls == [f"https://grafana.example.com/d/{n}" for n in range(5)]


def test_many_alerts_are_summarised_and_the_card_stays_small() -> None:
    incident = sample_incident()
    incident["alerts"] = [incident["alerts"][0] | {"summary": f"alert {n}",
                                                   "description": "d" * 5000}
                          for n in range(40)]
    incident["title"] = "t" * 1000
    message = connector().card(sample_notification("chat", incident=incident))
    body = message["attachments"][0]["content"]["body"]
    assert body[3]["text"].count("\n- alert ") == 9 and body[3]["text"].endswith(
        "- ... and 30 more")
    assert len(body[0]["text"]) == 200
    assert len(json.dumps(message).encode()) < 28 * 1024  # Teams' message size limit


async def test_markdown_in_alert_text_arrives_escaped_and_titles_are_one_line(
        aiohttp_server: Server) -> None:
    state, base = await start_fake(aiohttp_server)
    incident = sample_incident() | {
        "title": "[click](http://evil.example) **now**\n_line two_", "service": "*svc*"}
    incident["alerts"][0] |= {"summary": "# big", "description": "a\n- b\n1. c"}
    outcome = await send(fake.config(base), sample_notification("chat", incident=incident))
    assert outcome.kind == "ok", outcome
    title, _, facts, alerts, _ = card_of(state.requests[-1].body)["body"]
    # Teams renders TextBlock text as Markdown: the link and the emphasis show as text.
    assert title["text"] == ("[CRITICAL] Triggered: \\[click\\]\\(http://evil.example\\) "
                             "\\*\\*now\\*\\* \\_line two\\_")
    assert {"title": "Service", "value": "\\*svc\\*"} in facts["facts"]
    # Each alert is one list item Baton writes; its own text cannot start another.
    assert alerts["text"] == "- \\# big: a - b 1. c"


def test_a_note_keeps_its_lines_but_not_their_markup() -> None:
    incident = sample_incident()
    incident["timeline"].append({"at": "2024-11-20T08:20:00.000Z", "type": "note",
                                 "actor": "bob", "detail": {"text": "see\n- [x](y)\n2. z"}})
    card = connector().card(sample_notification("chat", "note", incident=incident))
    assert card["attachments"][0]["content"]["body"][1]["text"] == (
        "bob: see\n\\- \\[x\\]\\(y\\)\n2\\. z")


async def test_a_retry_posts_the_same_card(aiohttp_server: Server) -> None:
    """No dedup at the vendor: a retry after a lost 202 posts again, the same card."""
    state, base = await start_fake(aiohttp_server)
    first = sample_notification("chat", "resolve")
    for notification in (first, dataclasses.replace(first, attempt=2)):
        assert (await send(fake.config(base), notification)).kind == "ok"
    one, two = (a.seen.body for a in state.accepted)
    assert one == two


async def test_actions_not_configured_make_no_request(aiohttp_server: Server) -> None:
    state, base = await start_fake(aiohttp_server)
    config = fake.config(base) | {"actions": ["trigger", "resolve"]}
    outcome = await send(config, sample_notification("chat", "note"))
    assert outcome.kind == "ok" and "not among" in outcome.detail
    assert state.requests == []


async def test_wrong_signature_is_refused_and_not_shown(aiohttp_server: Server) -> None:
    state, base = await start_fake(aiohttp_server)
    wrong = f"{base}{fake.PATH}?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=nope-x1"
    outcome = await send({"webhook_url": Secret(wrong)}, sample_notification("chat"))
    assert (outcome.kind, outcome.status) == ("permanent", 401), outcome
    assert "DirectApiInvalidAuthorizationSignature" in outcome.detail
    assert "nope-x1" not in repr(outcome) and fake.PATH not in repr(outcome)
    missing = f"{base}{fake.PATH}?api-version=1"
    outcome = await send({"webhook_url": Secret(missing)}, sample_notification("chat"))
    assert "DirectApiAuthorizationRequired" in outcome.detail
    assert state.accepted == []


async def test_throttling_is_retryable_with_retry_after(aiohttp_server: Server) -> None:
    state, base = await start_fake(aiohttp_server)
    state.script(Reply(429, {"Retry-After": "20"}))
    outcome = await send(fake.config(base), sample_notification("chat"))
    assert (outcome.kind, outcome.status, outcome.retry_after) == ("retryable", 429, 20.0)
    assert "ScriptedFailure" in outcome.detail


async def test_connection_failure_names_only_the_host() -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}{fake.PATH}?{fake.QUERY}"
    outcome = await send({"webhook_url": Secret(url)}, sample_notification("chat"))
    assert outcome.kind == "retryable"
    assert f"http://127.0.0.1:{port}/***" in outcome.detail
    assert fake.SIG not in outcome.detail and fake.WORKFLOW not in outcome.detail


def test_the_fake_refuses_what_teams_cannot_render() -> None:
    good = connector().card(sample_notification("chat"))
    card = good["attachments"][0]["content"]
    assert fake.message_problem(good) is None
    assert fake.card_problem(card | {"version": "1.6"}) is not None
    assert fake.card_problem(card | {"body": []}) is not None
    assert fake.card_problem(card | {"body": [{"text": "no type"}]}) is not None
    assert fake.card_problem(card | {"actions": [{"type": "Action.OpenUrl"}]}) is not None
    assert fake.card_problem({k: v for k, v in card.items() if k != "type"}) is not None
    assert fake.message_problem(good | {"type": "event"}) is not None
    assert fake.message_problem(good | {"attachments": []}) is not None
    assert fake.message_problem({"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.hero", "content": card}]}) is not None


async def test_the_fake_refuses_a_form_body(aiohttp_server: Server) -> None:
    state, base = await start_fake(aiohttp_server)
    async with aiohttp.ClientSession() as http, http.post(
            f"{base}{fake.PATH}?{fake.QUERY}", data={"text": "hi"}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "TriggerInputSchemaMismatch"
    assert state.accepted == []


def test_config_needs_an_http_url() -> None:
    with pytest.raises(ConfigError) as caught:
        TeamsConnector("chat", {"webhook_url": Secret("ftp://example.com/x?sig=hidden")})
    assert "hidden" not in str(caught.value)


def test_escaping_does_not_carry_text_past_its_cut() -> None:
    # Markdown escapes are added characters: a cut made before escaping lets a title of
    # markup reach twice TITLE_CHARS, and an alert line twice ALERT_CHARS.
    markup = "*_[]" * 500
    incident = sample_incident() | {"title": markup}
    incident["alerts"] = [incident["alerts"][0] | {"summary": markup, "description": markup}]
    incident["timeline"].append({"at": "2024-11-20T08:20:00.000Z", "type": "note",
                                 "actor": "bob", "detail": {"text": markup * 2}})
    body = connector().card(sample_notification("chat", incident=incident))[
        "attachments"][0]["content"]["body"]
    assert len(body[0]["text"]) <= 200 and body[0]["text"].endswith("…")
    assert body[0]["text"].startswith("[CRITICAL] Triggered: \\*\\_\\[\\]")
    assert len(body[3]["text"]) <= len("- ") + 300
    note = connector().card(sample_notification("chat", "note", incident=incident))[
        "attachments"][0]["content"]["body"][1]["text"]
    assert len(note) <= 2000 and note.startswith("bob: \\*\\_")
    # A cut never leaves an escaping backslash without the character it escapes.
    for text in (body[0]["text"], body[3]["text"], note):
        assert not text.removesuffix("…").endswith("\\") or text.removesuffix(
            "…").endswith("\\\\")
