"""What the jira connector promises beyond the generic contract: one issue per incident
found again by its marker label, comments in ADF that start with Baton's marker, the
resolve and reopen transitions by name, recurrence on the previous issue, the request
bodies the v3 reference describes, and the webhook callbacks (signature, meaning, loop
guard, shape). The fake is checked to be strict enough to trust."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from baton_connectors import _jira_adf as adf
from baton_connectors.jira import SEARCH_LAG_ATTEMPTS, JiraConnector
from fakes import CHUNK, INCIDENT_ID, FakeState, Reply, sample_incident, sample_notification
from fakes import jira as fake

from baton.errors import AuthError, ConfigError, PayloadError
from baton.model import ExternalRef, Notification, Outcome
from baton.secret import Secret

Server = Callable[[web.Application], Awaitable[TestServer]]
LABEL = f"baton-{INCIDENT_ID}"
LATER_ID = "01JD6Z8K3QF0Y6N8W2M4R7T9VC"


@dataclasses.dataclass
class Rig:
    state: FakeState
    jira: fake.Jira
    base: str

    def config(self, **overrides: Any) -> dict[str, Any]:
        return {**fake.config(self.base), **overrides}

    async def send(self, notification: Notification, **overrides: Any) -> Outcome:
        async with aiohttp.ClientSession() as http:
            return await JiraConnector("tickets", self.config(**overrides)).send(
                notification, http)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.state.requests]


@pytest.fixture
async def rig(aiohttp_server: Server) -> Rig:
    state = FakeState()
    app = fake.make_app(state)
    server = await aiohttp_server(app)
    return Rig(state, app[fake.JIRA], str(server.make_url("")).rstrip("/"))


def notification(action: str, incident: dict[str, Any] | None = None,
                 ref: ExternalRef | None = None, attempt: int = 1) -> Notification:
    doc = incident if incident is not None else sample_incident(
        "resolved" if action == "resolve" else "triggered")
    if ref is not None:
        doc["external_refs"] = [ref.to_dict()]
    return sample_notification("tickets", action, attempt, doc)


def body(rig: Rig, index: int) -> Any:
    return json.loads(rig.state.requests[index].body)


def texts(node: dict[str, Any]) -> str:
    return adf.plain_text(node)


# --- outbound ------------------------------------------------------------------------------
async def test_lifecycle_on_one_issue(rig: Rig) -> None:
    first = await rig.send(notification("trigger"))
    ref = ExternalRef("tickets", "OPS-1", f"{rig.base}/browse/OPS-1")
    assert first.kind == "ok" and first.status == 201 and first.external_ref == ref
    for action in ("update", "acknowledge", "note", "resolve"):
        outcome = await rig.send(notification(action, ref=ref))
        assert outcome.kind == "ok" and outcome.external_ref == ref, (action, outcome)
    assert [(a.action, a.keys) for a in rig.state.accepted] == [
        ("trigger", (LABEL,)), ("note", (LABEL,)), ("note", (LABEL,)), ("note", (LABEL,)),
        ("resolve", (LABEL,))]
    assert list(rig.jira.issues) == ["OPS-1"] and rig.jira.issues["OPS-1"].status == "Done"
    assert rig.state.rejected == []
    # later actions went to the recorded issue: no search after the trigger's
    assert rig.paths().count("POST /rest/api/3/search/jql") == 1
    comments = [texts(c) for c in rig.jira.issues["OPS-1"].comments]
    assert all(c.startswith("[Baton] ") for c in comments), comments
    assert comments[1] == "[Baton] Acknowledged in Baton by someone."
    assert comments[-1] == "[Baton] Resolved in Baton by alice."


async def test_create_request_matches_the_reference(rig: Rig) -> None:
    await rig.send(notification("trigger"))
    search, create = rig.state.requests
    assert json.loads(search.body) == {
        "jql": f'labels = "{LABEL}" ORDER BY created ASC', "maxResults": 20,
        "fields": ["status", "labels"]}
    assert create.headers["Content-Type"] == "application/json"
    assert create.headers["Accept"] == "application/json"
    fields = json.loads(create.body)["fields"]
    assert fields["project"] == {"key": "OPS"} and fields["issuetype"] == {"name": "Incident"}
    assert fields["summary"] == "High error rate on checkout"
    assert fields["labels"] == ["baton", LABEL, "on-call"]
    assert fields["priority"] == {"name": "Highest"}  # critical -> Highest in the config
    description = fields["description"]
    assert description["type"] == "doc" and description["version"] == 1
    assert fake.adf_problem(description) is None
    text = texts(description)
    assert f"Baton incident {INCIDENT_ID}" in text and "High error rate on checkout" in text
    assert "alertname=HighErrorRate" in text


async def test_priority_is_omitted_without_a_mapping(rig: Rig) -> None:
    await rig.send(notification("trigger"), priorities={"warning": "Low"})
    assert "priority" not in body(rig, 1)["fields"]


async def test_summary_is_one_line_of_at_most_255_characters(rig: Rig) -> None:
    incident = sample_incident()
    incident["title"] = "disk\nfull " + "x" * 400
    outcome = await rig.send(notification("trigger", incident))
    assert outcome.kind == "ok", outcome
    summary = body(rig, 1)["fields"]["summary"]
    assert len(summary) == 255 and "\n" not in summary and summary.startswith("disk full x")


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@pytest.mark.parametrize("prefix", ["", "x"])  # the emoji straddles the boundary or ends on it
async def test_summary_is_cut_by_utf16_units_without_splitting_an_emoji(
        rig: Rig, prefix: str) -> None:
    incident = sample_incident()
    incident["title"] = prefix + "🔥" * 300  # each emoji is two UTF-16 units in Jira's count
    outcome = await rig.send(notification("trigger", incident))
    assert outcome.kind == "ok", outcome
    summary = body(rig, 1)["fields"]["summary"]
    assert utf16_units(summary) <= 255 and summary.endswith("🔥…")
    assert summary.encode("utf-8")  # no lone surrogate: every emoji kept whole or dropped
    assert summary == prefix + "🔥" * ((254 - len(prefix)) // 2) + "…"


async def test_description_stays_within_32767_as_adf_json(rig: Rig) -> None:
    incident = sample_incident()
    # Text full of characters JSON escapes, so the stored document is far longer than
    # its plain text: cutting by plain text alone would overrun Jira's limit.
    incident["alerts"] = [{**incident["alerts"][0], "dedup_key": f"a/{i}",
                           "summary": f'alert {i} "quoted" \\ path',
                           "description": '"\\"' * 200} for i in range(50)]
    incident["labels"] = {f"label_{i:03d}": '"\\' * 60 for i in range(128)}
    outcome = await rig.send(notification("trigger", incident))
    assert outcome.kind == "ok", outcome
    description = body(rig, 1)["fields"]["description"]
    assert fake.adf_problem(description) is None
    stored = utf16_units(json.dumps(description, ensure_ascii=False))
    assert 30000 < stored <= 32767  # full up to the limit, not over it
    assert texts(description).endswith("(truncated; the full incident is in Baton)")


async def test_a_note_too_long_for_one_comment_is_cut_to_fit(rig: Rig) -> None:
    incident = sample_incident()
    incident["timeline"] = [{"at": "2024-11-20T08:40:00.000Z", "type": "note",
                             "actor": "alice", "detail": {"text": "🚨" * 40000}}]
    ref = (await rig.send(notification("trigger"))).external_ref
    outcome = await rig.send(notification("note", incident, ref=ref))
    assert outcome.kind == "ok", outcome
    comment = json.loads(rig.state.requests[-1].body)["body"]
    assert fake.adf_problem(comment) is None
    assert utf16_units(json.dumps(comment, ensure_ascii=False)) <= 32767
    assert "🚨" * 1000 in texts(comment)  # cut to the room left, not dropped whole


async def test_retry_after_a_lost_response_creates_no_second_issue(rig: Rig) -> None:
    lost = await rig.send(notification("trigger"))  # the answer never reached Baton
    retry = await rig.send(notification("trigger", attempt=2))
    assert lost.external_ref == retry.external_ref and retry.kind == "ok"
    assert len(rig.jira.issues) == 1
    assert rig.paths()[2:] == ["POST /rest/api/3/search/jql"]


async def test_retry_leaves_an_issue_closed_meanwhile_alone(rig: Rig) -> None:
    await rig.send(notification("trigger"))
    rig.jira.issues["OPS-1"].status = "Done"  # someone closed it in Jira
    retry = await rig.send(notification("trigger", attempt=2))
    assert retry.kind == "ok" and rig.jira.issues["OPS-1"].status == "Done"
    assert len(rig.state.requests) == 3


async def test_update_comment_summarises_the_incident(rig: Rig) -> None:
    ref = (await rig.send(notification("trigger"))).external_ref
    await rig.send(notification("update", ref=ref))
    comment = json.loads(rig.state.requests[-1].body)["body"]
    assert fake.adf_problem(comment) is None
    assert texts(comment) == (
        "[Baton] Incident updated: triggered, severity critical, 1 alert(s), escalation "
        "level 1.\nHigh error rate on checkout (firing): 5xx ratio above 5% for 10m")


async def test_create_answered_without_a_body_finds_the_issue_by_label(rig: Rig) -> None:
    rig.state.script(Reply(204))
    outcome = await rig.send(notification("trigger"))
    assert (outcome.kind, outcome.status) == ("ok", 204)
    assert outcome.external_ref is not None and outcome.external_ref.id == "OPS-1"


async def test_later_actions_without_a_ref_find_the_issue_by_label(rig: Rig) -> None:
    await rig.send(notification("trigger"))
    outcome = await rig.send(notification("acknowledge"))
    assert outcome.kind == "ok" and outcome.external_ref is not None
    assert outcome.external_ref.id == "OPS-1"
    assert rig.paths()[2:] == ["POST /rest/api/3/search/jql",
                               "POST /rest/api/3/issue/OPS-1/comment"]


async def test_action_before_its_issue_is_searchable_is_retried(rig: Rig) -> None:
    outcome = await rig.send(notification("acknowledge"))
    assert outcome.kind == "retryable" and LABEL in outcome.detail


async def test_note_comment_carries_the_timeline_note(rig: Rig) -> None:
    ref = (await rig.send(notification("trigger"))).external_ref
    incident = sample_incident()
    incident["timeline"].append({"at": "2024-11-20T08:20:00.000Z", "type": "note",
                                 "actor": "bob", "detail": {"text": "rolled back\nv2.3"}})
    await rig.send(notification("note", incident, ref))
    comment = json.loads(rig.state.requests[-1].body)["body"]
    assert comment == {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "[Baton] Note from bob:"}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "rolled back"}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "v2.3"}]}]}
    incident.pop("timeline")
    await rig.send(notification("note", incident, ref))
    assert texts(rig.jira.issues["OPS-1"].comments[-1]) == "[Baton] Incident updated in Baton."


async def test_resolve_transitions_by_name_with_the_comment(rig: Rig) -> None:
    ref = (await rig.send(notification("trigger"))).external_ref
    outcome = await rig.send(notification("resolve", ref=ref), resolve_transition="done")
    assert (outcome.kind, outcome.status) == ("ok", 204)
    transition = json.loads(rig.state.requests[-1].body)
    assert transition["transition"] == {"id": "31"}
    [comment] = transition["update"]["comment"]
    assert texts(comment["add"]["body"]) == "[Baton] Resolved in Baton by alice."
    assert rig.state.requests[-2].query == {"fields": "status,labels", "expand": "transitions"}


async def test_resolve_matches_the_target_status_of_a_classic_workflow(rig: Rig) -> None:
    rig.jira.transitions = {"5": ("Resolve Issue", "Done"), "3": ("Reopen Issue", "To Do")}
    ref = (await rig.send(notification("trigger"))).external_ref
    assert (await rig.send(notification("resolve", ref=ref))).kind == "ok"
    assert json.loads(rig.state.requests[-1].body)["transition"] == {"id": "5"}


async def test_unknown_transition_is_permanent_and_names_the_offered_ones(rig: Rig) -> None:
    ref = (await rig.send(notification("trigger"))).external_ref
    outcome = await rig.send(notification("resolve", ref=ref), resolve_transition="Closed")
    assert outcome.kind == "permanent"
    assert "'Closed'" in outcome.detail and "'Done'" in outcome.detail
    assert rig.jira.issues["OPS-1"].status == "To Do"


async def test_resolving_a_done_issue_changes_nothing(rig: Rig) -> None:
    ref = (await rig.send(notification("trigger"))).external_ref
    await rig.send(notification("resolve", ref=ref))
    again = await rig.send(notification("resolve", ref=ref, attempt=2))
    assert again.kind == "ok" and "already done" in again.detail
    assert [a.action for a in rig.state.accepted] == ["trigger", "resolve"]


async def test_transition_screen_without_comment_falls_back_to_two_requests(rig: Rig) -> None:
    rig.jira.comment_on_transition = False
    ref = (await rig.send(notification("trigger"))).external_ref
    outcome = await rig.send(notification("resolve", ref=ref))
    assert outcome.kind == "ok", outcome
    assert [a.action for a in rig.state.accepted] == ["trigger", "resolve", "note"]
    assert texts(rig.jira.issues["OPS-1"].comments[0]).startswith("[Baton] Resolved")


def recurrence() -> dict[str, Any]:
    incident = sample_incident()
    incident.update(id=LATER_ID, recurrence_of=INCIDENT_ID)
    return incident


async def test_recurrence_reopens_the_previous_issue(rig: Rig) -> None:
    ref = (await rig.send(notification("trigger"))).external_ref
    await rig.send(notification("resolve", ref=ref))
    outcome = await rig.send(notification("trigger", recurrence()))
    assert outcome.kind == "ok" and outcome.external_ref == ref
    issue = rig.jira.issues["OPS-1"]
    assert len(rig.jira.issues) == 1 and issue.status == "To Do"
    assert issue.fields["labels"] == ["baton", LABEL, "on-call", f"baton-{LATER_ID}"]
    assert [a.action for a in rig.state.accepted] == ["trigger", "resolve", "trigger"]
    assert texts(issue.comments[-1]).startswith(f"[Baton] The problem recurred as Baton "
                                                f"incident {LATER_ID}")
    search = json.loads(rig.state.requests[4].body)
    assert search["jql"] == (f'labels in ("baton-{LATER_ID}", "{LABEL}") '
                             "ORDER BY created ASC")
    # a retry finds the issue by its own label and does nothing more
    retry = await rig.send(notification("trigger", recurrence(), attempt=2))
    assert retry.external_ref == ref and len(rig.state.accepted) == 3


async def test_recurrence_on_a_still_open_issue_comments_and_labels(rig: Rig) -> None:
    await rig.send(notification("trigger"))
    outcome = await rig.send(notification("trigger", recurrence()))
    assert outcome.kind == "ok" and outcome.external_ref is not None
    issue = rig.jira.issues["OPS-1"]
    assert issue.status == "To Do" and f"baton-{LATER_ID}" in issue.fields["labels"]
    assert [a.action for a in rig.state.accepted] == ["trigger", "note"]


async def test_recurrence_without_a_previous_issue_creates_one(rig: Rig) -> None:
    outcome = await rig.send(notification("trigger", recurrence()))
    assert outcome.kind == "ok" and list(rig.jira.issues) == ["OPS-1"]
    assert rig.jira.issues["OPS-1"].markers() == (f"baton-{LATER_ID}",)


async def test_a_retry_waits_for_search_before_creating_again(rig: Rig) -> None:
    """The first attempt's create landed but its answer was lost, and Jira's search does
    not show the new issue yet: attempts 2 to 4 wait rather than open a second issue."""
    lost = await rig.send(notification("trigger"))
    assert lost.kind == "ok"
    rig.jira.unindexed.add("OPS-1")
    for attempt in (2, 3, 4):
        waited = await rig.send(notification("trigger", attempt=attempt))
        assert waited.kind == "retryable" and "not yet searchable" in waited.detail, waited
        assert LABEL in waited.detail
    assert list(rig.jira.issues) == ["OPS-1"]
    rig.jira.unindexed.clear()  # the search caught up
    found = await rig.send(notification("trigger", attempt=5))
    assert found.kind == "ok" and found.external_ref == lost.external_ref, found
    assert list(rig.jira.issues) == ["OPS-1"]


async def test_a_retry_creates_once_the_wait_is_over(rig: Rig) -> None:
    rig.state.script(Reply(503))  # the first create failed for real
    assert (await rig.send(notification("trigger"))).kind == "retryable"
    outcome = await rig.send(notification("trigger", attempt=SEARCH_LAG_ATTEMPTS + 1))
    assert outcome.kind == "ok" and list(rig.jira.issues) == ["OPS-1"], outcome


async def test_a_late_resolve_leaves_an_issue_a_recurrence_took_over(rig: Rig) -> None:
    """The old incident's resolve sat in backoff while a recurrence took its issue over
    (adding its own label): delivered now, it must not close the new incident's issue."""
    ref = (await rig.send(notification("trigger"))).external_ref
    assert (await rig.send(notification("trigger", recurrence()))).external_ref == ref
    late = await rig.send(notification("resolve", ref=ref))
    assert late.kind == "ok" and "left open to the newer incident" in late.detail, late
    assert LATER_ID in late.detail and late.external_ref == ref
    assert rig.jira.issues["OPS-1"].status == "To Do"
    assert [a.action for a in rig.state.accepted] == ["trigger", "note"]
    mine = recurrence() | {"status": "resolved"}
    done = await rig.send(notification("resolve", mine, ref=ref))
    assert done.kind == "ok" and rig.jira.issues["OPS-1"].status == "Done", done


async def test_an_issue_with_a_long_answer_is_read_whole(rig: Rig) -> None:
    """A workflow with many transitions makes the issue's answer several chunks long;
    reading only the first made it unreadable and the resolve failed every attempt."""
    rig.jira.transitions = {str(100 + n): (f"Escalate to support team number {n:04d}",
                                           "In Progress") for n in range(300)}
    rig.jira.transitions["31"] = ("Done", "Done")
    assert len(json.dumps(rig.jira.transitions)) > 2 * CHUNK
    ref = (await rig.send(notification("trigger"))).external_ref
    outcome = await rig.send(notification("resolve", ref=ref))
    assert outcome.kind == "ok" and rig.jira.issues["OPS-1"].status == "Done", outcome


async def test_failed_search_is_classified(rig: Rig) -> None:
    rig.jira.read_failures.append(503)
    outcome = await rig.send(notification("trigger"))
    assert (outcome.kind, outcome.status) == ("retryable", 503)
    assert "scripted read failure" in outcome.detail and not rig.jira.issues


async def test_search_answer_without_issues_never_leads_to_a_create(rig: Rig) -> None:
    rig.jira.read_failures.append(200)  # a 2xx whose body holds no issue list
    outcome = await rig.send(notification("trigger"))
    assert (outcome.kind, outcome.status) == ("retryable", 200)
    assert rig.paths() == ["POST /rest/api/3/search/jql"] and not rig.jira.issues


async def test_refusal_detail_carries_jiras_errors(rig: Rig) -> None:
    outcome = await rig.send(notification("trigger"), project="NOPE", issue_type="Story")
    assert (outcome.kind, outcome.status) == ("permanent", 400)
    assert "project: valid project is required" in outcome.detail
    assert "issuetype: Specify an issue type" in outcome.detail


async def test_wrong_token_is_refused_and_not_shown(rig: Rig) -> None:
    outcome = await rig.send(notification("trigger"),
                             api_token=Secret("s3cr3t-wrong-token-do-not-leak"))
    assert (outcome.kind, outcome.status) == ("permanent", 401)
    assert "s3cr3t" not in outcome.detail and rig.state.rejected[0][0] == 401


def test_site_must_be_http() -> None:
    with pytest.raises(ConfigError):
        JiraConnector("tickets", {**fake.config("ftp://example.com"), "url": "ftp://x"})


# --- the fake is strict -------------------------------------------------------------------
async def test_fake_refuses_what_jira_refuses(rig: Rig) -> None:
    auth = {"Authorization": "Basic " + fake.SENSITIVE[0]}
    issue = {"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "s"}
    async with aiohttp.ClientSession() as http:
        async def post(path: str, doc: Any, headers: dict[str, str] = auth) -> tuple[int, Any]:
            async with http.post(rig.base + path, json=doc, headers=headers) as resp:
                return resp.status, await resp.json()

        assert (await post("/rest/api/3/issue", {"fields": issue}, {}))[0] == 401
        async with http.post(rig.base + "/rest/api/3/issue", data=b"{}",
                             headers={**auth, "Content-Type": "text/plain"}) as resp:
            assert resp.status == 415
        status, doc = await post("/rest/api/3/issue", {"fields": {"project": {"key": "OPS"}}})
        assert status == 400 and doc["errorMessages"] == []
        assert {"summary", "issuetype"} <= set(doc["errors"])
        status, doc = await post("/rest/api/3/issue",
                                 {"fields": {**issue, "description": "plain text"}})
        assert status == 400 and "description" in doc["errors"]
        # 128 emoji are 128 characters but 256 UTF-16 units: too long for Jira.
        status, doc = await post("/rest/api/3/issue", {"fields": {**issue, "summary": "🔥" * 128}})
        assert status == 400 and "summary" in doc["errors"]
        quoted = {"type": "doc", "version": 1, "content": [  # 20,000 characters of text,
            {"type": "paragraph", "content": [{"type": "text", "text": '"' * 20000}]}]}
        status, doc = await post("/rest/api/3/issue",  # over 40,000 as JSON
                                 {"fields": {**issue, "description": quoted}})
        assert status == 400 and "32,767" in doc["errors"]["description"]
        assert (await post("/rest/api/3/issue", {"fields": issue}))[0] == 201
        status, doc = await post("/rest/api/3/issue/OPS-1/comment", {"body": "plain"})
        assert status == 400 and "comment" in doc["errors"]
        status, doc = await post("/rest/api/3/issue/OPS-1/transitions",
                                 {"transition": {"id": "99"}})
        assert status == 400 and "not valid" in doc["errorMessages"][0]
        status, _ = await post("/rest/api/3/search/jql", {"jql": "labels = \"x\"",
                                                          "startAt": 0})
        assert status == 400


# --- inbound ------------------------------------------------------------------------------
def connector(**overrides: Any) -> JiraConnector:
    return JiraConnector("tickets", {**fake.config("https://acme.atlassian.net"), **overrides})


def signed(doc: Any, secret: str = fake.WEBHOOK_SECRET, **headers: str) -> tuple[bytes,
                                                                                 dict[str, str]]:
    raw = json.dumps(doc).encode()
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"X-Hub-Signature": f"sha256={digest}", "Content-Type": "application/json",
                 **headers}


def status_change(to: str, category: str) -> dict[str, Any]:
    return {
        "timestamp": 1732090000000, "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Alice Doe"},
        "issue": {"id": "10001", "key": "OPS-1", "fields": {
            "status": {"name": to, "statusCategory": {"key": category}},
            "labels": ["baton", LABEL]}},
        "changelog": {"id": "10100", "items": [
            {"field": "status", "fieldtype": "jira", "from": "10000", "fromString": "To Do",
             "to": "10002", "toString": to}]},
    }


def comment_created(body: Any, comment_id: str = "20001") -> dict[str, Any]:
    return {
        "timestamp": 1732090001000, "webhookEvent": "comment_created",
        "comment": {"id": comment_id, "author": {"displayName": "Bob Roe"}, "body": body},
        "issue": {"id": "10001", "key": "OPS-1", "fields": {"summary": "High error rate"}},
    }


def test_issue_moved_to_done_resolves() -> None:
    raw, headers = signed(status_change("Done", "done"),
                          **{"X-Atlassian-Webhook-Identifier": "wh-77"})
    [event] = connector().callback(raw, headers, 0.0)
    assert (event.action, event.event_id, event.actor, event.external_id) == (
        "resolve", "jira:issue_updated:1732090000000:10001:10100", "Alice Doe (jira)",
        "OPS-1")
    assert event.incident_id is None


def test_the_event_id_comes_from_the_signed_body_not_the_identifier_header() -> None:
    """X-Atlassian-Webhook-Identifier is not signed: a captured body replayed under a new
    identifier must name the same event, or the core would apply it again."""
    ids = set()
    for doc in (status_change("Done", "done"), comment_created("looking at it")):
        raw, _ = signed(doc)
        events = [connector().callback(raw, signed(doc, **{
            "X-Atlassian-Webhook-Identifier": header})[1], 0.0)[0].event_id
            for header in ("wh-1", "wh-2", "")]
        assert len(set(events)) == 1 and not {"wh-1", "wh-2"} & set(events), events
        ids.add(events[0])
    assert ids == {"jira:issue_updated:1732090000000:10001:10100",
                   "comment_created:1732090001000:10001:20001"}


def test_in_progress_acknowledges_and_to_do_means_nothing() -> None:
    raw, headers = signed(status_change("In Progress", "indeterminate"))
    [event] = connector().callback(raw, headers, 0.0)
    assert event.action == "acknowledge"
    assert event.event_id == "jira:issue_updated:1732090000000:10001:10100"
    raw, headers = signed(status_change("To Do", "new"))
    assert connector().callback(raw, headers, 0.0) == []


def test_done_statuses_replace_the_category() -> None:
    raw, headers = signed(status_change("Won't Fix", "done"))
    assert connector(done_statuses=["Closed"]).callback(raw, headers, 0.0) == []
    raw, headers = signed(status_change("Closed", "done"))
    [event] = connector(done_statuses=["closed"]).callback(raw, headers, 0.0)
    assert event.action == "resolve"


def test_a_human_comment_becomes_a_note() -> None:
    body = {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "Rolled back "},
                                          {"type": "text", "text": "v2.3", "marks": [
                                              {"type": "code"}]}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "watching it"}]}]}
    raw, headers = signed(comment_created(body))
    [event] = connector().callback(raw, headers, 0.0)
    assert (event.action, event.actor, event.external_id, event.text) == (
        "note", "Bob Roe (jira)", "OPS-1", "Rolled back v2.3\nwatching it")
    assert event.event_id == "comment_created:1732090001000:10001:20001"


@pytest.mark.parametrize("body", [
    adf.doc(adf.paragraph(adf.text("[Baton] Acknowledged in Baton by alice."))),
    "\\[Baton\\] Resolved in Baton by alice.",  # as wiki markup, brackets escaped
    "  ",
])
def test_batons_own_or_empty_comment_yields_nothing(body: Any) -> None:
    raw, headers = signed(comment_created(body))
    assert connector().callback(raw, headers, 0.0) == []


@pytest.mark.parametrize("body", [
    {"type": "doc", "content": 5},
    {"type": "doc", "content": "Rolled back"},
    {"type": "doc", "content": {"type": "text", "text": "x"}},
    {"type": "doc", "content": [{"type": "paragraph", "content": -1}]},
    {"type": "doc", "content": [{"type": "mention", "attrs": 5}]},
    {"type": "doc", "content": [{"type": "emoji", "attrs": ["x"]}]},
    {"type": "doc", "content": [{"type": "text", "text": [[[[[[[[[[]]]]]]]]]]}]},
])
def test_adf_of_other_shapes_reads_as_empty_text(body: Any) -> None:
    # A signed body whose ADF holds something other than a list of nodes was a TypeError.
    raw, headers = signed(comment_created(body))
    assert connector().callback(raw, headers, 0.0) == []


def test_adf_of_other_shapes_keeps_the_readable_text() -> None:
    body = {"type": "doc", "content": [
        {"type": "paragraph", "content": 5},
        {"type": "paragraph", "content": [{"type": "text", "text": "still "},
                                          {"type": "mention", "attrs": None},
                                          {"type": "mention", "attrs": {"text": "@Bob"}}]},
        {"type": "bulletList", "content": [{"type": "listItem", "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "a"},
                                              {"type": "hardBreak"},
                                              {"type": "text", "text": "b"}]}]}]}]}
    assert adf.plain_text(body) == "still @Bob\na\nb"


def test_adf_nested_deeper_than_the_stack_is_read() -> None:
    node: dict[str, Any] = {"type": "text", "text": "deep"}
    for _ in range(sys.getrecursionlimit() * 3):
        node = {"type": "paragraph", "content": [node]}
    assert adf.plain_text(node) == "deep"


def test_batons_comments_round_trip_as_its_own() -> None:
    comment = adf.action_comment(notification("acknowledge"))
    raw, headers = signed(comment_created(comment))
    assert connector().callback(raw, headers, 0.0) == []


def test_other_events_are_ignored() -> None:
    raw, headers = signed({"webhookEvent": "jira:issue_created", "issue": {"key": "OPS-2"}})
    assert connector().callback(raw, headers, 0.0) == []
    doc = status_change("Done", "done")
    doc["changelog"]["items"][0]["field"] = "assignee"
    raw, headers = signed(doc)
    assert connector().callback(raw, headers, 0.0) == []


@pytest.mark.parametrize("mangle", [
    lambda h: h.pop("X-Hub-Signature"),
    lambda h: h.update({"X-Hub-Signature": "sha256=" + "0" * 64}),
    lambda h: h.update({"X-Hub-Signature": "sha1=" + h["X-Hub-Signature"][7:]}),
    lambda h: h.update({"X-Hub-Signature": "sha256=é"}),
])
def test_bad_or_missing_signature_is_refused(mangle: Callable[[dict[str, str]], Any]) -> None:
    raw, headers = signed(status_change("Done", "done"))
    mangle(headers)
    with pytest.raises(AuthError) as caught:
        connector().callback(raw, headers, 0.0)
    assert fake.WEBHOOK_SECRET not in str(caught.value)


def test_signature_by_another_secret_is_refused() -> None:
    raw, headers = signed(status_change("Done", "done"), secret="another")
    with pytest.raises(AuthError):
        connector().callback(raw, headers, 0.0)


def test_without_a_webhook_secret_nothing_is_accepted() -> None:
    config = fake.config("https://acme.atlassian.net")
    config.pop("webhook_secret")
    raw, headers = signed(status_change("Done", "done"))
    with pytest.raises(AuthError):
        JiraConnector("tickets", config).callback(raw, headers, 0.0)


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    # RFC 4231 test case 2: key "Jefe"; the digest is the published one, not recomputed.
    raw = b"what do ya want for nothing?"
    digest = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    headers = {"x-hub-signature": f"sha256={digest}"}
    with pytest.raises(PayloadError):  # authentic, so it gets as far as the shape check
        connector(webhook_secret=Secret("Jefe")).callback(raw, headers, 0.0)


@pytest.mark.parametrize("doc", [
    [1, 2],
    {"timestamp": 1},
    {"webhookEvent": "jira:issue_updated"},
    {"webhookEvent": "jira:issue_updated", "issue": {"id": "1"}},
    {"webhookEvent": "comment_created", "issue": {"key": "OPS-1"}},
    {"webhookEvent": "comment_created", "issue": {"key": "OPS-1"}, "comment": {"id": "1"}},
    {"webhookEvent": "jira:issue_updated", "issue": {"key": "OPS-1"},
     "changelog": {"id": "1"}},
])
def test_wrong_shape_is_a_payload_error(doc: Any) -> None:
    raw, headers = signed(doc)
    with pytest.raises(PayloadError):
        connector().callback(raw, headers, 0.0)


def test_body_that_is_not_json_is_a_payload_error() -> None:
    raw = b"not json"
    digest = hmac.new(fake.WEBHOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    with pytest.raises(PayloadError):
        connector().callback(raw, {"X-Hub-Signature": f"sha256={digest}"}, 0.0)


def test_description_stays_within_jiras_size() -> None:
    incident = sample_incident()
    alert = incident["alerts"][0]
    incident["alerts"] = [{**alert, "summary": f"alert {n}", "description": "y" * 5000}
                          for n in range(80)]
    incident["labels"] = {f"k{n}": "v" * 200 for n in range(200)}
    description = adf.description(incident, {})
    assert fake.adf_problem(description) is None
    text = adf.plain_text(description)
    assert len(text) < 32767 and "alert 49" in text and "alert 50" not in text
    assert text.endswith("(truncated; the full incident is in Baton)")


def test_events_by_batons_own_account_are_dropped() -> None:
    own = connector(account_id="5b10ac8d82e05b22cc7d4ef5")
    raw, headers = signed(status_change("In Progress", "indeterminate"))
    assert own.callback(raw, headers, 0.0) == []
    doc = comment_created("a plain comment")
    doc["comment"]["author"]["accountId"] = "5b10ac8d82e05b22cc7d4ef5"
    raw, headers = signed(doc)
    assert own.callback(raw, headers, 0.0) == []
    assert len(connector().callback(raw, headers, 0.0)) == 1


async def test_a_replay_under_a_new_identifier_header_is_replayed_by_the_gateway(
        aiohttp_client: Any, aiohttp_server: Server, tmp_path: Any) -> None:
    """Through the real gateway: a genuine resolve is applied; the same signed body sent
    again with another X-Atlassian-Webhook-Identifier is a replay, not a new event."""
    from helpers import alert, start_gateway
    from test_callbacks import NAME, as_config, external_id, post

    from baton.clock import FakeClock

    server = await aiohttp_server(fake.make_app(FakeState()), access_log=None)
    environ: dict[str, str] = {}
    block = as_config(fake.config(str(server.make_url("")).rstrip("/")), environ)
    g = await start_gateway(aiohttp_client, {
        "server": {"shutdown_grace": "1s"},
        "storage": {"url": f"sqlite:///{tmp_path}/b.db"},
        "sources": {"app": {"type": "generic", "auth": {"type": "none"}}},
        "connectors": {NAME: {"type": "jira", **block}},
        "routes": [{"name": "all", "policy": "p"}],
        "policies": {"p": {"levels": [{"notify": [NAME]}]}},
    }, tmp_path, clock=FakeClock(), environ=environ)
    incident_id = (await g.ingest(alert("disk")))["incidents"][0]
    await g.pump()
    ref = external_id(await g.incident(incident_id))
    body, headers = fake.callback_request("resolve", incident_id, ref, "evt-1",
                                          g.clock.now()) or (b"", {})
    assert (await post(g, (body, headers), 200))["applied"] == 1
    after = await g.incident(incident_id)
    assert after["status"] == "resolved"
    for identifier in ("evt-2", "something-else"):
        replay = headers | {"X-Atlassian-Webhook-Identifier": identifier}
        result = await post(g, (body, replay), 200)
        assert (result["applied"], result["replayed"]) == (0, 1), result
    assert (await g.incident(incident_id))["timeline"] == after["timeline"]
