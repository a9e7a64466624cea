"""What the slack connector promises beyond the generic contract: one message per incident
edited through its life (Web API), the bounded metadata search that keeps a retried post
from doubling, Slack's HTTP-200 error codes classified, the webhook mode, the Block Kit
it sends, and signed button clicks (Slack's published signature example included)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from baton_connectors.slack import SlackConnector
from fakes import INCIDENT_ID, FakeState, Reply, sample_incident, sample_notification
from fakes import slack as fake
from specs import slack as spec
from test_vendor_specs import EDGES, with_state

from baton import schema
from baton.errors import AuthError, ConfigError, PayloadError
from baton.model import Notification, Outcome
from baton.secret import Secret

Server = Callable[[web.Application], Awaitable[TestServer]]
SCHEMA = "connectors/slack.schema.json"


@dataclasses.dataclass
class Rig:
    state: FakeState
    space: fake.Workspace
    base: str

    def connector(self, webhook: bool = False, **extra: Any) -> SlackConnector:
        config = fake.webhook_config(self.base) if webhook else fake.config(self.base)
        return SlackConnector("chat", {**config, **extra})

    async def send(self, notification: Notification, webhook: bool = False,
                   **extra: Any) -> Outcome:
        async with aiohttp.ClientSession() as http:
            return await self.connector(webhook, **extra).send(notification, http)


@pytest.fixture
async def rig(aiohttp_server: Server) -> Rig:
    state = FakeState()
    app = fake.make_app(state)
    server = await aiohttp_server(app)
    return Rig(state, app[fake.WORKSPACE], str(server.make_url("")).rstrip("/"))


def with_ref(incident: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    """What the dispatcher does: record the reference and hand it back later."""
    assert outcome.external_ref is not None
    return {**incident, "external_refs": [outcome.external_ref.to_dict()]}


def note(incident: dict[str, Any], text: str) -> dict[str, Any]:
    entry = {"at": "2024-11-20T08:30:00.000Z", "type": "note", "actor": "bob",
             "detail": {"text": text}}
    return {**incident, "timeline": [*incident["timeline"], entry]}


def blocks_by_id(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b for b in blocks}


# --- Web API: the lifecycle -------------------------------------------------------------

async def test_one_message_edited_through_the_incident_life(rig: Rig) -> None:
    first = await rig.send(sample_notification("chat", "trigger"))
    assert first.kind == "ok", first
    main = rig.space.messages[0]
    assert first.external_ref is not None
    assert first.external_ref.id == f"{fake.CHANNEL}/{main.ts}"
    assert first.external_ref.url == (f"https://baton-test.slack.com/archives/{fake.CHANNEL}"
                                      f"/p{main.ts.replace('.', '')}")
    assert main.metadata == {"event_type": "baton_incident", "event_payload": {
        "incident_id": INCIDENT_ID, "status": "triggered", "severity": "critical"}}
    buttons = blocks_by_id(main.blocks)["baton_actions"]["elements"]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        ("baton_acknowledge", INCIDENT_ID), ("baton_resolve", INCIDENT_ID)]

    acked = with_ref(sample_incident(), first) | {
        "status": "acknowledged", "acknowledged_by": "alice"}
    assert (await rig.send(sample_notification("chat", "acknowledge", incident=acked))).kind \
        == "ok"
    buttons = blocks_by_id(main.blocks)["baton_actions"]["elements"]
    assert [b["action_id"] for b in buttons] == ["baton_resolve"]
    fields = [f["text"] for f in blocks_by_id(main.blocks)["baton_fields"]["fields"]]
    assert "*Acknowledged by*\nalice" in fields

    noted = note(acked, "rolled back 1.4.2 <now>")
    assert (await rig.send(sample_notification("chat", "note", incident=noted))).kind == "ok"
    reply = rig.space.messages[1]
    assert (reply.thread_ts, reply.channel) == (main.ts, fake.CHANNEL)
    assert "rolled back 1.4.2 &lt;now&gt;" in json.dumps(reply.blocks)
    assert reply.metadata is None  # a reply must never be found as the incident's message

    resolved = with_ref(sample_incident("resolved"), first)
    outcome = await rig.send(sample_notification("chat", "resolve", incident=resolved))
    assert outcome.kind == "ok" and outcome.external_ref == first.external_ref
    assert "baton_actions" not in blocks_by_id(main.blocks)  # no buttons once resolved
    assert [(a.action, a.keys) for a in rig.state.accepted] == [
        ("trigger", (INCIDENT_ID,)), ("acknowledge", (INCIDENT_ID,)),
        ("note", (INCIDENT_ID,)), ("resolve", (INCIDENT_ID,))]
    assert len(rig.space.top_level(fake.CHANNEL)) == 1 and main.edits == 2
    assert rig.state.rejected == []


async def test_requests_are_as_slack_documents_them(rig: Rig) -> None:
    await rig.send(sample_notification("chat", "trigger"))
    search, post = rig.state.requests
    assert (search.method, search.path) == ("GET", "/api/conversations.history")
    assert search.query == {"channel": fake.CHANNEL, "limit": "50",
                            "include_all_metadata": "true", "oldest": "1732090230.000000"}
    assert (post.method, post.path) == ("POST", "/api/chat.postMessage")
    assert post.headers["Authorization"] == f"Bearer {fake.BOT_TOKEN}"
    assert post.headers["Content-Type"] == "application/json; charset=utf-8"
    body = json.loads(post.body)
    assert set(body) == {"channel", "text", "blocks", "metadata"}
    assert body["text"] == "[CRITICAL] High error rate on checkout (triggered)"
    header = blocks_by_id(body["blocks"])["baton_header"]["text"]
    assert header == {"type": "plain_text", "emoji": True,
                      "text": ":red_circle: High error rate on checkout"}
    assert [f["text"] for f in blocks_by_id(body["blocks"])["baton_fields"]["fields"]] == [
        "*Severity*\ncritical", "*Status*\nTriggered", "*Service*\ncheckout",
        "*Escalation level*\n1"]


async def test_retry_after_a_lost_answer_edits_instead_of_posting(rig: Rig) -> None:
    first = sample_notification("chat", "trigger")
    one = await rig.send(first)
    # The answer was lost: the dispatcher recorded nothing and tries again.
    two = await rig.send(dataclasses.replace(first, attempt=2))
    assert one.kind == two.kind == "ok" and one.external_ref == two.external_ref
    assert len(rig.space.top_level(fake.CHANNEL)) == 1
    assert [r.path for r in rig.state.requests] == [
        "/api/conversations.history", "/api/chat.postMessage",
        "/api/conversations.history", "/api/chat.update"]


async def test_the_search_skips_other_incidents_and_can_be_turned_off(rig: Rig) -> None:
    other = sample_incident() | {"id": "01JD5Z8K3QF0Y6N8W2M4R7T9VC"}
    await rig.send(sample_notification("chat", incident=other))
    await rig.send(sample_notification("chat"))
    assert len(rig.space.top_level(fake.CHANNEL)) == 2
    await rig.send(sample_notification("chat"), search_limit=0)
    assert len(rig.space.top_level(fake.CHANNEL)) == 3  # off: nothing looked for
    assert rig.state.requests[-1].path == "/api/chat.postMessage"


async def test_a_failing_search_is_retried_unless_only_the_scope_is_missing(rig: Rig) -> None:
    rig.space.history_replies.append(Reply(429, {"Retry-After": "30"}))
    outcome = await rig.send(sample_notification("chat"))
    assert (outcome.kind, outcome.status, outcome.retry_after) == ("retryable", 429, 30.0)
    assert rig.space.messages == []  # no blind post while Slack is busy
    rig.space.history_replies.append("missing_scope")
    assert (await rig.send(sample_notification("chat"))).kind == "ok"
    assert len(rig.space.messages) == 1


async def test_a_channel_name_is_posted_to_but_not_searched(rig: Rig) -> None:
    notification = dataclasses.replace(sample_notification("chat"),
                                       target={"connector": "chat", "to": "#ops"})
    outcome = await rig.send(notification)
    assert outcome.external_ref is not None
    assert outcome.external_ref.id.startswith(f"{fake.CHANNEL}/")  # the ID Slack answered
    assert [r.path for r in rig.state.requests] == ["/api/chat.postMessage"]


async def test_a_target_naming_another_channel_gets_its_own_message(rig: Rig) -> None:
    first = await rig.send(sample_notification("chat"))
    elsewhere = dataclasses.replace(
        sample_notification("chat", "update", incident=with_ref(sample_incident(), first)),
        target={"connector": "chat", "to": fake.OTHER})
    second = await rig.send(elsewhere)
    assert second.external_ref is not None
    assert second.external_ref.id.startswith(f"{fake.OTHER}/")
    assert len(rig.space.top_level(fake.OTHER)) == len(rig.space.top_level(fake.CHANNEL)) == 1
    # Later actions follow the latest reference the dispatcher keeps.
    resolved = with_ref(sample_incident("resolved"), second)
    assert (await rig.send(sample_notification("chat", "resolve", incident=resolved))).kind \
        == "ok"
    assert rig.space.top_level(fake.OTHER)[0].edits == 1


async def test_a_person_is_mentioned_and_pinged_in_the_thread_on_escalation(rig: Rig) -> None:
    first = await rig.send(sample_notification("chat"))
    target = {"connector": "chat", "to": "person:carol", "params": {}, "person": "carol",
              "contacts": {"slack": "U024BE7LH", "email": "carol@example.com"}}
    escalated = with_ref(sample_incident(), first)
    escalated["escalation"] = {**escalated["escalation"], "level": 2}
    outcome = await rig.send(dataclasses.replace(
        sample_notification("chat", "update", incident=escalated), target=target))
    assert outcome.kind == "ok", outcome
    main, ping = rig.space.messages
    assert main.text.startswith("<@U024BE7LH> ") and main.edits == 1
    assert (ping.thread_ts, ping.text.split()[0]) == (main.ts, "<@U024BE7LH>")
    assert [a.action for a in rig.state.accepted] == ["trigger", "update"]


async def test_a_deleted_message_is_posted_anew(rig: Rig) -> None:
    first = await rig.send(sample_notification("chat"))
    rig.space.messages.clear()
    resolved = with_ref(sample_incident("resolved"), first)
    outcome = await rig.send(sample_notification("chat", "resolve", incident=resolved))
    assert outcome.kind == "ok" and outcome.external_ref != first.external_ref
    assert [a.action for a in rig.state.accepted] == ["trigger", "resolve"]


@pytest.mark.parametrize(("error", "kind"), [
    ("internal_error", "retryable"), ("fatal_error", "retryable"),
    ("service_unavailable", "retryable"), ("request_timeout", "retryable"),
    ("ratelimited", "retryable"), ("invalid_blocks", "permanent"),
    ("msg_too_long", "permanent"), ("not_in_channel", "permanent")])
async def test_slack_error_codes_are_classified(rig: Rig, error: str, kind: str) -> None:
    rig.space.action_errors.append(error)
    outcome = await rig.send(sample_notification("chat"))
    assert (outcome.kind, outcome.status) == (kind, 200)
    assert outcome.detail == f"chat.postMessage: HTTP 200: {error}"


async def test_refusals_are_permanent_and_name_no_secret(rig: Rig) -> None:
    archived = dataclasses.replace(sample_notification("chat"),
                                   target={"connector": "chat", "to": fake.ARCHIVED})
    outcome = await rig.send(archived)
    assert (outcome.kind, outcome.detail) == (
        "permanent", "chat.postMessage: HTTP 200: is_archived")
    wrong = await rig.send(sample_notification("chat"), bot_token=Secret("xoxb-wrong-token"))
    assert wrong.kind == "permanent" and wrong.detail.endswith("invalid_auth")
    assert "xoxb" not in repr(wrong)


# --- the fake is strict -----------------------------------------------------------------

async def test_the_fake_web_api_refuses_what_slack_refuses(rig: Rig) -> None:
    url = f"{rig.base}/api/chat.postMessage"
    good = {"Authorization": f"Bearer {fake.BOT_TOKEN}"}
    cases = [
        ({}, {"channel": fake.CHANNEL, "text": "x"}, "not_authed"),
        ({"Authorization": "Bearer xoxb-nope"}, {"channel": fake.CHANNEL, "text": "x"},
         "invalid_auth"),
        (good, {"channel": fake.CHANNEL}, "no_text"),
        (good, {"channel": "C0NOTHERE1", "text": "x"}, "channel_not_found"),
        (good, {"channel": fake.CHANNEL, "text": "x", "thread_ts": "1.2"}, "thread_not_found"),
        (good, {"channel": fake.CHANNEL, "blocks": [{"type": "video"}]}, "invalid_blocks"),
        (good, {"channel": fake.CHANNEL, "text": "x", "metadata": {"event_type": "x"}},
         "invalid_metadata_format"),
    ]
    async with aiohttp.ClientSession() as http:
        for headers, body, error in cases:
            async with http.post(url, json=body, headers=headers) as resp:
                assert (resp.status, await resp.json()) == (200, {"ok": False, "error": error})
        async with http.post(url, data="channel=C0BATONOPS&text=x", headers={
                **good, "Content-Type": "application/x-www-form-urlencoded"}) as resp:
            assert (await resp.json())["error"] == "invalid_post_type"
        async with http.get(f"{rig.base}/api/conversations.history",
                            params={"channel": "#ops"}, headers=good) as resp:
            assert (await resp.json())["error"] == "channel_not_found"
    assert rig.state.accepted == []


# --- webhook mode -----------------------------------------------------------------------

async def test_webhook_mode_posts_a_new_message_per_action(rig: Rig) -> None:
    acked = sample_incident() | {"status": "acknowledged", "acknowledged_by": "alice"}
    for action in ("trigger", "acknowledge", "note", "resolve"):
        incident = acked if action == "acknowledge" else None
        outcome = await rig.send(sample_notification("chat", action, incident=incident),
                                 webhook=True)
        assert outcome.kind == "ok" and outcome.external_ref is None, outcome
    assert [a.action for a in rig.state.accepted] == ["trigger", "acknowledge", "note",
                                                        "resolve"]
    post = rig.state.requests[0]
    assert post.path == fake.HOOK_PATH and "Authorization" not in post.headers
    assert set(json.loads(post.body)) == {"text", "blocks"}
    note_blocks = rig.space.hook_posts[2]["blocks"]
    assert "Incident updated in Baton." in json.dumps(note_blocks)  # no timeline note given


@pytest.mark.parametrize("edge", sorted(EDGES))
async def test_webhook_mode_matches_slacks_description(rig: Rig, edge: str) -> None:
    """test_vendor_specs drives the Web API mode; the webhook mode gets the same edges."""
    for action in ("trigger", "update", "acknowledge", "note", "resolve"):
        doc = with_state(EDGES[edge], action)
        outcome = await rig.send(sample_notification("chat", action, incident=doc),
                                 webhook=True)
        assert outcome.kind == "ok", outcome
    assert [p for seen in rig.state.requests for p in spec.check(seen)] == []


@pytest.mark.parametrize(("status", "error", "kind"), [
    (400, "invalid_payload", "permanent"), (403, "invalid_token", "permanent"),
    (404, "channel_not_found", "permanent"), (410, "channel_is_archived", "permanent"),
    (500, "rollup_error", "retryable")])
async def test_webhook_errors_are_classified(rig: Rig, status: int, error: str,
                                             kind: str) -> None:
    rig.state.script(Reply(status))
    outcome = await rig.send(sample_notification("chat"), webhook=True)
    assert (outcome.kind, outcome.status, outcome.detail) == (
        kind, status, f"webhook: HTTP {status}: {error}")


async def test_a_wrong_webhook_url_is_refused_without_showing_it(rig: Rig) -> None:
    url = f"{rig.base}/services/T0BATON01/B0BATON01/s3cr3t-wrong-hook-token"
    outcome = await rig.send(sample_notification("chat"), webhook=True,
                             webhook_url=Secret(url))
    assert (outcome.kind, outcome.status) == ("permanent", 403)
    assert "s3cr3t" not in repr(outcome) and outcome.detail.endswith("invalid_token")


def test_an_unusable_webhook_url_is_refused_without_quoting_it() -> None:
    with pytest.raises(ConfigError) as caught:
        SlackConnector("chat", {"webhook_url": Secret("hooks.slack.com/services/s3cr3t")})
    assert "s3cr3t" not in str(caught.value)


async def test_an_error_page_echoing_the_webhook_path_is_scrubbed(
        aiohttp_server: Server) -> None:
    async def echo(request: web.Request) -> web.Response:  # as some proxies' 404 pages do
        return web.Response(status=404, text=f"no route to {request.path}")

    app = web.Application()
    app.router.add_post("/{tail:.*}", echo)
    server = await aiohttp_server(app)
    url = str(server.make_url("/services/T0BATON01/B0BATON01/s3cr3t-echoed"))
    async with aiohttp.ClientSession() as http:
        outcome = await SlackConnector("chat", {"webhook_url": Secret(url)}).send(
            sample_notification("chat"), http)
    assert (outcome.kind, outcome.detail) == ("permanent", "webhook: HTTP 404: no route to /***")


# --- the message ------------------------------------------------------------------------

def test_no_buttons_without_a_signing_secret_and_text_is_escaped() -> None:
    connector = SlackConnector("chat", {"webhook_url": Secret("https://hooks.example/x"),
                                        "incident_url": "https://baton.example/i/{id}"})
    incident = sample_incident() | {"service": "<b>&co", "title": "<!channel> " + "x" * 300}
    incident["alerts"][0]["links"] = [{"href": "https://grafana.example/d/1", "text": "dash"}]
    text, blocks = connector.render(sample_notification("chat", incident=incident))
    by_id = blocks_by_id(blocks)
    assert text == f"[CRITICAL] &lt;!channel&gt; {'x' * 300} (triggered)"  # pings nobody
    assert "baton_actions" not in by_id
    assert len(by_id["baton_header"]["text"]["text"]) == 150
    assert "*Service*\n&lt;b&gt;&amp;co" in [f["text"] for f in by_id["baton_fields"]["fields"]]
    assert by_id["baton_links"]["text"]["text"] == (
        f"<https://baton.example/i/{INCIDENT_ID}|Baton incident> · "
        "<https://grafana.example/d/1|dash>")
    assert fake.blocks_problem(blocks) is None


async def test_markup_in_a_title_arrives_escaped_and_pings_nobody(rig: Rig) -> None:
    incident = sample_incident() | {
        "title": "<!channel> disk <@U024BE7LH> full & <http://evil.example|click>",
        "service": "<!here>"}
    assert (await rig.send(sample_notification("chat", incident=incident))).kind == "ok"
    body = json.loads(rig.state.requests[-1].body)
    mrkdwn = [b for b in body["blocks"] if b["type"] != "header"]
    sent = json.dumps([body["text"], mrkdwn])
    for raw in ("<!channel>", "<!here>", "<@U024BE7LH>", "<http://evil.example"):
        assert raw not in sent  # neither in the fallback text nor in any mrkdwn block
    assert body["text"].startswith("[CRITICAL] &lt;!channel&gt; disk &lt;@U024BE7LH&gt; "
                                   "full &amp; &lt;http://evil.example|click&gt;")
    fields = [f["text"] for f in blocks_by_id(body["blocks"])["baton_fields"]["fields"]]
    assert "*Service*\n&lt;!here&gt;" in fields
    # The header is plain_text: shown as written, never parsed, so it is not escaped.
    assert blocks_by_id(body["blocks"])["baton_header"]["text"]["text"].endswith(
        "<!channel> disk <@U024BE7LH> full & <http://evil.example|click>")


async def test_the_header_is_one_line_and_limits_count_characters(rig: Rig) -> None:
    incident = sample_incident() | {"title": "Disk full\non db-1\r\n\tand  db-2 " + "🚨" * 200}
    assert (await rig.send(sample_notification("chat", incident=incident))).kind == "ok"
    body = json.loads(rig.state.requests[-1].body)
    header = blocks_by_id(body["blocks"])["baton_header"]["text"]["text"]
    assert header.startswith(":red_circle: Disk full on db-1 and db-2 🚨")
    assert len(header) == 150 and header.endswith("…")  # characters, as slack_sdk counts
    assert "\n" not in body["text"] and "\t" not in body["text"]


def test_a_cut_never_splits_an_escape() -> None:
    connector = SlackConnector("chat", {"webhook_url": Secret("https://hooks.example/x")})
    incident = note(sample_incident(), "<" * 2000)
    text, blocks = connector.render(sample_notification("chat", "note", incident=incident))
    shown = blocks_by_id(blocks)["baton_note"]["text"]["text"]
    assert len(shown) <= 3000 and shown.endswith("&lt;…")
    assert len(text) <= 3000 and text.endswith("&lt;…")


# --- schema -----------------------------------------------------------------------------

@pytest.mark.parametrize(("config", "valid"), [
    ({"webhook_url": {"env": "U"}}, True),
    ({"bot_token": {"env": "T"}, "channel": "C0123456789"}, True),
    ({"bot_token": {"env": "T"}, "channel": "#ops", "search_limit": 0}, True),
    ({"bot_token": {"env": "T"}}, False),
    ({"webhook_url": {"env": "U"}, "bot_token": {"env": "T"}, "channel": "C0123456789"}, False),
    ({"webhook_url": {"env": "U"}, "channel": "C0123456789"}, False),
    ({"signing_secret": {"env": "S"}}, False),
    ({"bot_token": {"env": "T"}, "channel": "ops room"}, False),
])
def test_schema_takes_exactly_one_mode(config: dict[str, Any], valid: bool) -> None:
    assert (schema.problems(SCHEMA, config) == []) is valid


# --- callbacks --------------------------------------------------------------------------

VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TS = "1531420618"
VECTOR_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    b"G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebh"
    b"ook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2"
    b"F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc8"
    b"87a14d10d2c447fce8b6703c")
VECTOR_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
NOW = 1_732_091_000.0


def receiver(secret: str = fake.SIGNING_SECRET) -> SlackConnector:
    return SlackConnector("chat", {"bot_token": Secret("xoxb-x"), "channel": "C0123456789",
                                   "signing_secret": Secret(secret)})


def signed(body: bytes, ts: float = NOW, secret: str = fake.SIGNING_SECRET
           ) -> dict[str, str]:
    stamp = str(int(ts))
    mac = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={mac.hexdigest()}"}


def clicks(*action_ids: str, user: dict[str, Any] | None = None) -> bytes:
    payload = {"type": "block_actions", "user": user or {
        "id": "U2CERLKJA", "username": "roadrunner", "name": "roadrunner"},
        "actions": [{"action_id": a, "block_id": "baton_actions", "value": INCIDENT_ID,
                     "type": "button", "action_ts": "1732091000.123456"} for a in action_ids]}
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def test_slacks_published_signature_example_verifies() -> None:
    headers = {"X-Slack-Request-Timestamp": VECTOR_TS, "X-Slack-Signature": VECTOR_SIGNATURE}
    # The example is a slash command: the signature passes, then the shape is refused.
    with pytest.raises(PayloadError):
        receiver(VECTOR_SECRET).callback(VECTOR_BODY, headers, float(VECTOR_TS) + 60)
    with pytest.raises(AuthError):
        receiver(VECTOR_SECRET).callback(VECTOR_BODY + b"&x=1", headers,
                                         float(VECTOR_TS) + 60)


def test_button_clicks_become_events() -> None:
    body = clicks("baton_acknowledge", "someone_elses_button", "baton_resolve")
    headers = {k.lower(): v for k, v in signed(body).items()}  # header case does not matter
    events = receiver().callback(body, headers, NOW)
    assert [(e.action, e.incident_id, e.actor, e.event_id) for e in events] == [
        ("acknowledge", INCIDENT_ID, "roadrunner (slack U2CERLKJA)",
         "1732091000.123456/U2CERLKJA/baton_acknowledge"),
        ("resolve", INCIDENT_ID, "roadrunner (slack U2CERLKJA)",
         "1732091000.123456/U2CERLKJA/baton_resolve")]


@pytest.mark.parametrize("change", ["stale", "future", "tampered", "other_secret", "missing",
                                    "not_a_time"])
def test_bad_or_stale_signatures_are_refused(change: str) -> None:
    body = clicks("baton_resolve")
    headers = {
        "stale": signed(body, NOW - 301), "future": signed(body, NOW + 301),
        "tampered": signed(body + b" "), "other_secret": signed(body, secret="s3cr3t-other"),
        "missing": {"X-Slack-Request-Timestamp": str(int(NOW))},
        "not_a_time": {**signed(body), "X-Slack-Request-Timestamp": "soon"},
    }[change]
    with pytest.raises(AuthError) as caught:
        receiver().callback(body, headers, NOW)
    assert fake.SIGNING_SECRET not in str(caught.value)


def test_callbacks_need_a_signing_secret() -> None:
    connector = SlackConnector("chat", fake.webhook_config("http://127.0.0.1:9"))
    body = clicks("baton_resolve")
    with pytest.raises(AuthError):
        connector.callback(body, signed(body), NOW)


@pytest.mark.parametrize("body", [
    b"not a form", b"payload=%7Bnot+json", b"payload=%5B%5D",
    urllib.parse.urlencode({"payload": json.dumps({"type": "block_actions"})}).encode(),
    urllib.parse.urlencode({"payload": json.dumps({
        "type": "block_actions", "user": {"id": "U1"},
        "actions": [{"action_id": "baton_resolve", "action_ts": "1.2"}]})}).encode(),
])
def test_wrong_shapes_are_payload_errors(body: bytes) -> None:
    with pytest.raises(PayloadError):
        receiver().callback(body, signed(body), NOW)


def test_other_interactions_are_ignored() -> None:
    body = urllib.parse.urlencode({"payload": json.dumps({"type": "view_submission"})}).encode()
    assert receiver().callback(body, signed(body), NOW) == []


def test_links_that_do_not_fit_are_left_out_not_cut() -> None:
    # A cut inside <url|label> leaves an unclosed "<" that Slack shows as raw markup
    # (and a URL cut short): a link is shown whole or not at all.
    from baton_connectors import _slack_blocks

    incident = sample_incident()
    long_url = "https://grafana.example/d/x?" + "&var-host=db" * 80
    incident["alerts"] = [incident["alerts"][0] | {"links": [
        {"href": long_url, "text": f"dash {i}"} for i in range(5)]}]
    _, blocks = _slack_blocks.incident(incident, {}, "https://baton.example/i/{id}", False)
    shown = next(b for b in blocks if b["block_id"] == "baton_links")["text"]["text"]
    assert len(shown) <= _slack_blocks.TEXT_CHARS
    items = shown.split(" · ")
    assert all(item.startswith("<") and item.endswith(">") for item in items)
    assert items[0].startswith("<https://baton.example/i/") and len(items) >= 2
