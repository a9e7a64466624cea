"""What the redmine connector promises beyond the generic contract: one issue per incident
found again by its subject marker, journal notes for later actions on the recorded issue,
a read-back status change on resolve, recurrence reusing the earlier issue, polling for
issues humans closed, and that the fake is strict enough to trust."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from baton_connectors.redmine import RedmineConnector, RedmineError
from fakes import CHUNK, INCIDENT_ID, FakeState, Reply, sample_incident, sample_notification
from fakes import redmine as fake

from baton.model import ExternalRef, Notification, Outcome
from baton.secret import Secret

Server = Callable[[web.Application], Awaitable[TestServer]]
MARKER = f"[baton:{INCIDENT_ID}]"
LATER = "01JD60000000000000000000ZZ"


@dataclasses.dataclass
class Rig:
    state: FakeState
    issues: fake.Issues
    base: str
    http: aiohttp.ClientSession

    def connector(self, **overrides: Any) -> RedmineConnector:
        return RedmineConnector("rm", fake.config(self.base) | overrides)

    async def send(self, notification: Notification, **overrides: Any) -> Outcome:
        return await self.connector(**overrides).send(notification, self.http)

    async def human(self, method: str, path: str, body: dict[str, Any]) -> int:
        """A person changing an issue through the API, as Redmine's UI would."""
        async with self.http.request(method, f"{self.base}{path}", json=body, headers={
                "X-Redmine-API-Key": fake.HUMAN_KEY}) as resp:
            return resp.status

    def writes(self) -> list[tuple[str, str]]:
        return [(s.method, s.path) for s in self.state.requests if s.method != "GET"]


@pytest.fixture
async def rig(aiohttp_server: Server) -> Any:
    state = FakeState()
    app = fake.make_app(state)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as http:
        yield Rig(state, app[fake.ISSUES], str(server.make_url("")).rstrip("/"), http)
    state.release.set()


def with_ref(incident: dict[str, Any], issue_id: int | str) -> dict[str, Any]:
    return incident | {"external_refs": [{"connector": "rm", "id": str(issue_id),
                                          "url": None}]}


def noted(incident: dict[str, Any], actor: str, text: str) -> dict[str, Any]:
    entry = {"at": "2024-11-20T08:20:00.000Z", "type": "note", "actor": actor,
             "detail": {"text": text, "note_id": "n1"}}
    return incident | {"timeline": [*incident["timeline"], entry]}


async def test_lifecycle_on_one_issue(rig: Rig) -> None:
    first = await rig.send(sample_notification("rm"))
    assert first.kind == "ok" and first.status == 201, first
    assert first.external_ref == ExternalRef("rm", "1", f"{rig.base}/issues/1")
    retry = await rig.send(dataclasses.replace(sample_notification("rm"), attempt=2))
    assert retry.kind == "ok" and retry.external_ref == first.external_ref
    assert len(rig.issues.by_id) == 1 and rig.writes() == [("POST", "/issues.json")]

    issue = rig.issues.by_id[1]
    assert issue["subject"] == f"High error rate on checkout {MARKER}"
    assert issue["tracker"]["name"] == "Bug" and issue["priority"]["name"] == "Immediate"
    assert "* High error rate on checkout: 5xx ratio above 5% for 10m" in issue["description"]
    assert "labels: alertname=HighErrorRate, severity=critical" in issue["description"]

    incident = sample_incident()  # the dispatcher hands later actions the recorded ref
    incident = with_ref(incident, 1) | {"acknowledged_by": "bob"}
    for action, doc in (("update", incident), ("acknowledge", incident),
                        ("note", noted(incident, "carol", "rolling back"))):
        outcome = await rig.send(sample_notification("rm", action, incident=doc))
        assert (outcome.kind, outcome.status) == ("ok", 204), outcome
    resolved = with_ref(sample_incident("resolved"), 1)
    closed = await rig.send(sample_notification("rm", "resolve", incident=resolved))
    assert closed.kind == "ok" and closed.external_ref == first.external_ref, closed
    assert issue["status"]["name"] == "Closed" and issue["closed_on"]
    notes = [j["notes"] for j in issue["journals"]]
    assert notes[0].startswith("[baton] Incident updated in Baton: status triggered")
    assert notes[1:] == ["[baton] Acknowledged in Baton by bob.",
                         "[baton] Note from carol:\n\n<pre>\nrolling back\n</pre>",
                         "[baton] Resolved in Baton by alice."]
    assert [(a.action, a.keys) for a in rig.state.accepted] == [
        ("trigger", (MARKER,)), ("note", (MARKER,)), ("note", (MARKER,)),
        ("note", (MARKER,)), ("resolve", (MARKER,))]
    assert rig.state.rejected == []


async def test_create_body_follows_the_docs(rig: Rig) -> None:
    await rig.send(sample_notification("rm"), assigned_to_id=5, tracker=3)
    seen = rig.state.accepted[0].seen
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["X-Redmine-API-Key"] == fake.API_KEY
    body = json.loads(seen.body)
    assert set(body) == {"issue"}
    assert body["issue"] | {"description": ""} == {
        "project_id": "ops", "subject": f"High error rate on checkout {MARKER}",
        "description": "", "tracker_id": 3, "priority_id": 5, "assigned_to_id": 5}


async def test_later_actions_go_to_the_recorded_issue(rig: Rig) -> None:
    assert await rig.human("POST", "/issues.json", {"issue": {
        "project_id": "ops", "subject": "filed by hand"}}) == 201
    await rig.send(sample_notification("rm"))  # issue 2 carries the marker
    doc = with_ref(sample_incident(), 1)
    outcome = await rig.send(sample_notification("rm", "note", incident=doc))
    assert outcome.external_ref == ExternalRef("rm", "1", f"{rig.base}/issues/1")
    assert [j["notes"] for j in rig.issues.by_id[1]["journals"]] == [
        "[baton] Incident updated in Baton."]
    assert rig.issues.by_id[2]["journals"] == []


async def test_without_a_recorded_ref_the_marker_finds_the_issue(rig: Rig) -> None:
    await rig.send(sample_notification("rm"))
    rig.issues.by_id[1]["status"] = fake._status(2)  # "In Progress" by a human
    outcome = await rig.send(sample_notification("rm", "resolve"))
    assert outcome.kind == "ok" and outcome.external_ref is not None
    assert rig.issues.by_id[1]["status"]["name"] == "Closed"


async def test_actions_without_an_issue_do_nothing(rig: Rig) -> None:
    for action in ("acknowledge", "note", "resolve"):
        outcome = await rig.send(sample_notification("rm", action))
        assert outcome.kind == "ok" and outcome.external_ref is None, outcome
        assert "no Redmine issue" in outcome.detail
    assert rig.writes() == [] and rig.issues.by_id == {}
    update = await rig.send(sample_notification("rm", "update"))
    assert update.kind == "ok" and update.external_ref is not None
    assert [a.action for a in rig.state.accepted] == ["trigger"]


async def test_resolve_of_an_issue_already_closed_writes_nothing(rig: Rig) -> None:
    await rig.send(sample_notification("rm"))
    assert await rig.human("PUT", "/issues/1.json", {"issue": {"status_id": 6}}) == 204
    before = len(rig.writes())
    outcome = await rig.send(sample_notification("rm", "resolve", incident=with_ref(
        sample_incident("resolved"), 1)))
    assert outcome.kind == "ok" and "already closed" in outcome.detail
    assert len(rig.writes()) == before


async def test_a_status_the_workflow_refuses_is_a_permanent_failure(rig: Rig) -> None:
    await rig.send(sample_notification("rm"))
    rig.issues.forbidden.add(5)  # Redmine answers 204 and keeps the status
    outcome = await rig.send(sample_notification("rm", "resolve"))
    assert outcome.kind == "permanent", outcome
    assert "kept issue 1 in status 'New'" in outcome.detail
    assert rig.issues.by_id[1]["status"]["name"] == "New"


async def test_recurrence_reopens_the_earlier_issue(rig: Rig) -> None:
    await rig.send(sample_notification("rm"))
    await rig.send(sample_notification("rm", "resolve"))
    again = sample_incident() | {"id": LATER, "recurrence_of": INCIDENT_ID,
                                 "external_refs": []}
    trigger = sample_notification("rm", incident=again)
    outcome = await rig.send(trigger)
    assert outcome.kind == "ok" and outcome.external_ref == ExternalRef(
        "rm", "1", f"{rig.base}/issues/1"), outcome
    issue = rig.issues.by_id[1]
    assert len(rig.issues.by_id) == 1 and issue["status"]["name"] == "New"
    assert issue["subject"] == f"High error rate on checkout [baton:{LATER}]"
    assert issue["journals"][-1]["notes"].startswith(
        f"[baton] The problem is back as Baton incident {LATER}")
    assert [a.action for a in rig.state.accepted] == ["trigger", "resolve", "reopen"]
    writes = len(rig.writes())
    retry = await rig.send(dataclasses.replace(trigger, attempt=2))
    assert retry.external_ref == outcome.external_ref and len(rig.writes()) == writes


async def test_recurrence_of_a_still_open_issue_only_adds_a_note(rig: Rig) -> None:
    await rig.send(sample_notification("rm"))
    again = sample_incident() | {"id": LATER, "recurrence_of": INCIDENT_ID}
    outcome = await rig.send(sample_notification("rm", incident=again))
    assert outcome.kind == "ok" and outcome.external_ref is not None
    body = json.loads(rig.state.accepted[-1].seen.body)["issue"]
    assert "status_id" not in body and LATER in body["subject"]
    assert [a.action for a in rig.state.accepted] == ["trigger", "note"]


async def test_recurrence_without_the_earlier_issue_creates_one(rig: Rig) -> None:
    again = sample_incident() | {"id": LATER, "recurrence_of": INCIDENT_ID}
    outcome = await rig.send(sample_notification("rm", incident=again))
    assert outcome.kind == "ok" and outcome.status == 201
    assert rig.issues.by_id[1]["subject"].endswith(f"[baton:{LATER}]")


@pytest.mark.parametrize(("overrides", "words"), [
    ({"tracker": "Incident"}, "tracker 'Incident' is not known"),
    ({"priorities": {"critical": "Sev1"}}, "priority 'Sev1' is not known"),
    ({"closed_status": "Done"}, "status 'Done' is not known"),
])
async def test_unknown_names_fail_permanently_before_writing(
        rig: Rig, overrides: dict[str, Any], words: str) -> None:
    notification = sample_notification("rm")
    if "closed_status" in overrides:
        await rig.send(notification)
        notification = sample_notification("rm", "resolve")
    writes = len(rig.writes())
    outcome = await rig.send(notification, **overrides)
    assert outcome.kind == "permanent" and words in outcome.detail, outcome
    assert len(rig.writes()) == writes


async def test_names_are_looked_up_once_and_case_insensitively(rig: Rig) -> None:
    connector = rig.connector(tracker="support", priorities={"critical": "URGENT"})
    for incident_id in (INCIDENT_ID, LATER):
        doc = sample_incident() | {"id": incident_id}
        assert (await connector.send(sample_notification("rm", incident=doc),
                                     rig.http)).kind == "ok"
    lookups = [s.path for s in rig.state.requests if s.path.startswith(("/trackers",
                                                                        "/enumerations"))]
    assert lookups == ["/trackers.json", "/enumerations/issue_priorities.json"]
    assert {(i["tracker"]["name"], i["priority"]["name"]) for i in
            rig.issues.by_id.values()} == {("Support", "Urgent")}


async def test_validation_errors_are_permanent_with_redmines_words(rig: Rig) -> None:
    outcome = await rig.send(sample_notification("rm"), project="nope")
    assert (outcome.kind, outcome.status) == ("permanent", 422)
    assert "Project cannot be blank" in outcome.detail


async def test_wrong_key_is_refused_permanently(rig: Rig) -> None:
    outcome = await rig.send(sample_notification("rm"), api_key=Secret("wrong-key"))
    assert (outcome.kind, outcome.status) == ("permanent", 401), outcome
    assert "wrong-key" not in outcome.detail + repr(outcome)
    assert rig.issues.by_id == {}


async def test_a_failing_search_is_retryable(rig: Rig) -> None:
    rig.issues.read_replies.append(Reply(503, {"Retry-After": "9"}))
    outcome = await rig.send(sample_notification("rm"))
    assert (outcome.kind, outcome.status, outcome.retry_after) == ("retryable", 503, 9.0)
    assert rig.writes() == []


async def test_long_titles_keep_the_marker(rig: Rig) -> None:
    doc = sample_incident() | {"title": "x" * 400}
    assert (await rig.send(sample_notification("rm", incident=doc))).kind == "ok"
    subject = rig.issues.by_id[1]["subject"]
    assert len(subject) == 255 and subject.endswith(f"… {MARKER}")


async def test_a_multi_line_title_reaches_the_subject_as_one_line(rig: Rig) -> None:
    doc = sample_incident() | {"title": "Disk full\non db-1\r\n\tand   db-2 🔥"}
    assert (await rig.send(sample_notification("rm", incident=doc))).kind == "ok"
    assert rig.issues.by_id[1]["subject"] == f"Disk full on db-1 and db-2 🔥 {MARKER}"


def markup_incident() -> dict[str, Any]:
    doc = sample_incident()
    doc["alerts"][0] |= {
        "summary": '*bold* "link":http://evil.example </pre> <b>x</b> ```',
        "description": "h1. heading\n# item\n[x](http://evil.example)",
        "links": [{"href": "https://grafana.example/d/1", "text": "dash"},
                  {"href": "javascript:alert(1)", "text": "bad"}]}
    return doc


async def test_alert_text_is_shown_verbatim_in_textile(rig: Rig) -> None:
    doc = markup_incident()
    assert (await rig.send(sample_notification("rm", incident=doc))).kind == "ok"
    text = rig.issues.by_id[1]["description"]
    head, block = text.split("\n\n<pre>\n", 1)
    assert head.startswith(f"Baton incident {INCIDENT_ID}")
    inside, after = block.split("\n</pre>", 1)
    # Everything from the alert is inside the one <pre> block; a </pre> of its own is
    # broken by a zero-width space, so Redmine keeps escaping to the real end.
    assert '*bold* "link":http://evil.example <\u200b/pre> <b>x</b>' in inside
    assert "h1. heading\n# item" in inside and "</pre>" not in inside
    assert after == "\n\nhttps://grafana.example/d/1"  # linkable; javascript: is not


async def test_alert_text_is_fenced_for_markdown(rig: Rig) -> None:
    doc = noted(markup_incident(), "bob", "see ```` and **this**")
    await rig.send(sample_notification("rm", incident=doc), text_formatting="common_mark")
    await rig.send(sample_notification("rm", "note", incident=with_ref(doc, 1)),
                   text_formatting="common_mark")
    issue = rig.issues.by_id[1]
    assert "\n\n````text\n" in issue["description"]  # the summary holds a ```
    assert "</pre>" in issue["description"]  # no escaping needed inside a fence
    # The fence is longer than any run of backticks in the text, so nothing closes it.
    assert issue["journals"][-1]["notes"] == (
        "[baton] Note from bob:\n\n`````text\nsee ```` and **this**\n`````")


async def test_sync_reports_issues_humans_closed(rig: Rig) -> None:
    ids = []
    for n in range(4):
        doc = sample_incident() | {"id": f"{LATER[:-1]}{n}"}
        outcome = await rig.send(sample_notification("rm", incident=doc))
        assert outcome.external_ref is not None
        ids.append(outcome.external_ref.id)
    for issue_id in (1, 4):
        assert await rig.human("PUT", f"/issues/{issue_id}.json", {"issue": {
            "status_id": 5, "notes": "fixed the config"}}) == 204
    doc = sample_incident() | {"id": f"{LATER[:-1]}1"}
    await rig.send(sample_notification("rm", "resolve", incident=doc))  # Baton's close
    refs = [ExternalRef("rm", i) for i in ids] + [ExternalRef("other", "3")]
    events = await rig.connector().sync(refs, rig.http)
    closed_on = {n: i["closed_on"] for n, i in rig.issues.by_id.items()}
    assert [(e.action, e.event_id, e.actor, e.external_id, e.incident_id) for e in events] == [
        ("resolve", f"redmine-closed-{n}-{closed_on[n]}", "Jane Doe (redmine)", str(n), None)
        for n in (4, 1)]  # Redmine lists newest first
    listing = [s for s in rig.state.requests if s.path == "/issues.json"][-1]
    assert listing.query == {"issue_id": "1,2,3,4", "status_id": "*", "limit": "100"}


async def test_sync_pages_and_raises_on_failure(rig: Rig) -> None:
    for n in range(250):
        doc = sample_incident() | {"id": f"{LATER[:-3]}{n:03d}"}
        assert (await rig.send(sample_notification("rm", incident=doc))).kind == "ok"
    rig.state.requests.clear()
    refs = [ExternalRef("rm", str(n)) for n in range(1, 251)]
    assert await rig.connector().sync(refs, rig.http) == []
    pages = [s.query["issue_id"].count(",") + 1 for s in rig.state.requests]
    assert pages == [100, 100, 50]
    rig.issues.read_replies.append(Reply(503))
    with pytest.raises(RedmineError) as caught:
        await rig.connector().sync(refs, rig.http)
    assert caught.value.outcome.kind == "retryable" and fake.API_KEY not in str(caught.value)


async def test_the_fake_is_strict(rig: Rig) -> None:
    url, key = f"{rig.base}/issues.json", {"X-Redmine-API-Key": fake.API_KEY}
    body = json.dumps({"issue": {"project_id": "ops", "subject": "s"}})
    async with rig.http.post(url, data=body, headers=key | {
            "Content-Type": "text/plain"}) as resp:
        assert resp.status == 422 and (await resp.json())["errors"] == fake.BLANK
    async with rig.http.post(url, data=body, headers={
            "Content-Type": "application/json", "X-Redmine-API-Key": "nope"}) as resp:
        assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Basic")
    assert await rig.human("POST", "/issues.json", json.loads(body)) == 201
    async with rig.http.get(url, params={"status_id": "*"}) as resp:  # anonymous
        assert (await resp.json())["issues"] == []
    async with rig.http.get(url, params={"f[]": "sbject"}, headers=key) as resp:
        assert resp.status == 422
    async with rig.http.put(f"{rig.base}/issues/1.json", data=json.dumps(
            {"issue": {"notes": "x"}}), headers=key | {"Content-Type": "text/plain"}) as resp:
        assert resp.status == 204
    assert rig.issues.lost == [("update", 1)] and rig.issues.by_id[1]["journals"] == []
    # As in Redmine: short forms start from "open issues"; f[] filters only as given.
    assert await rig.human("PUT", "/issues/1.json", {"issue": {"status_id": 5}}) == 204
    for params, found in (([("subject", "~S")], 0), ([("subject", "~S"), ("status_id", "*")], 1),
                          ([("subject", "~x"), ("status_id", "*")], 0),
                          ([("f[]", "subject"), ("op[subject]", "~"), ("v[subject][]", "s"),
                            ("status_id", "open")], 1)):
        async with rig.http.get(url, params=params, headers=key) as resp:
            assert len((await resp.json())["issues"]) == found, params


async def test_sync_with_a_wrong_key_fails_instead_of_seeing_nothing(rig: Rig) -> None:
    created = await rig.send(sample_notification("rm"))
    assert created.external_ref is not None
    assert await rig.human("PUT", "/issues/1.json", {"issue": {"status_id": 5}}) == 204
    wrong = rig.connector(api_key=Secret("wrong-key"))
    with pytest.raises(RedmineError) as caught:
        await wrong.sync([created.external_ref], rig.http)
    assert (caught.value.outcome.kind, caught.value.outcome.status) == ("permanent", 401)
    assert [s.path for s in rig.state.requests[-2:]] == ["/issues.json", "/users/current.json"]


async def test_a_garbled_search_answer_creates_nothing(rig: Rig) -> None:
    rig.issues.read_replies.append(Reply(200))
    outcome = await rig.send(sample_notification("rm"))
    assert outcome.kind == "retryable" and "not JSON" in outcome.detail, outcome
    assert rig.writes() == []


async def test_sync_of_many_issues_with_long_descriptions(rig: Rig) -> None:
    """A page of 100 issues with 20 KB descriptions arrives in many chunks; reading only
    the first made every sync round fail with "not JSON"."""
    for n in range(100):
        doc = sample_incident() | {"id": f"{LATER[:-3]}{n:03d}"}
        assert (await rig.send(sample_notification("rm", incident=doc))).kind == "ok"
    for issue in rig.issues.by_id.values():
        issue["description"] = "stack trace line\n" * 1200  # about 20 KB
    assert await rig.human("PUT", "/issues/7.json", {"issue": {"status_id": 5}}) == 204
    refs = [ExternalRef("rm", str(n)) for n in range(1, 101)]
    events = await rig.connector().sync(refs, rig.http)
    assert [(e.action, e.external_id) for e in events] == [("resolve", "7")]


async def test_find_reads_an_issue_with_a_long_description(rig: Rig) -> None:
    await rig.send(sample_notification("rm"))
    rig.issues.by_id[1]["description"] = "x" * (5 * CHUNK)
    retry = await rig.send(dataclasses.replace(sample_notification("rm"), attempt=2))
    assert retry.kind == "ok" and retry.external_ref is not None, retry
    assert retry.external_ref.id == "1" and len(rig.issues.by_id) == 1
    resolve = await rig.send(sample_notification("rm", "resolve"))
    assert resolve.kind == "ok" and rig.issues.closed(1), resolve


async def test_an_answer_beyond_the_cap_is_retryable_not_truncated(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    from baton_connectors import redmine
    monkeypatch.setattr(redmine, "_READ_BYTES", 2 * CHUNK)
    await rig.send(sample_notification("rm"))
    rig.issues.by_id[1]["description"] = "x" * (5 * CHUNK)
    retry = await rig.send(dataclasses.replace(sample_notification("rm"), attempt=2))
    assert retry.kind == "retryable" and "longer than" in retry.detail, retry
    assert len(rig.issues.by_id) == 1


async def test_a_late_resolve_leaves_an_issue_a_recurrence_took_over(rig: Rig) -> None:
    """The old incident's resolve sat in backoff while a recurrence took its issue over
    (moving the subject marker): delivered now, it must not close the new one's issue."""
    await rig.send(sample_notification("rm"))
    again = sample_incident() | {"id": LATER, "recurrence_of": INCIDENT_ID}
    assert (await rig.send(sample_notification("rm", incident=again))).kind == "ok"
    assert rig.issues.by_id[1]["subject"].endswith(f"[baton:{LATER}]")
    late = with_ref(sample_incident("resolved"), 1)
    outcome = await rig.send(sample_notification("rm", "resolve", incident=late))
    assert outcome.kind == "ok" and "left open to the newer incident" in outcome.detail
    assert LATER in outcome.detail and outcome.external_ref is not None
    assert not rig.issues.closed(1)
    assert [a.action for a in rig.state.accepted] == ["trigger", "note"]
    mine = with_ref(sample_incident("resolved") | {"id": LATER}, 1)
    closed = await rig.send(sample_notification("rm", "resolve", incident=mine))
    assert closed.kind == "ok" and rig.issues.closed(1), closed


@pytest.mark.parametrize("formatting", ["textile", "markdown"])
def test_a_full_description_keeps_its_block_closed_and_its_links_whole(
        formatting: str) -> None:
    # Alert text fills the description; what is appended after the verbatim block (its
    # closing tag or fence, the plain links) must fit in what is left, not be cut.
    link = "https://grafana.example/d/abc?" + "&var-host=db-primary" * 15
    incident = sample_incident()
    incident["alerts"] = [incident["alerts"][0] | {
        "summary": f"alert {n}", "description": "<pre>``` " * 300,
        "links": [{"href": link, "text": "dashboard"}]} for n in range(40)]
    rm = RedmineConnector("rm", fake.config("http://redmine.invalid")
                          | {"text_formatting": formatting})
    text = rm.description(incident)
    assert len(text) <= 60000
    closing = "\n</pre>" if formatting == "textile" else "\n````"  # longest run + 1
    assert closing in text
    # The link after the block is on its own line whole, or left out: never cut short.
    tail = text.rsplit(closing, 1)[1]
    assert all(line == link for line in tail.split("\n") if line)
