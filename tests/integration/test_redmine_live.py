"""The redmine connector against a real Redmine (Debian's 5.0, set up by scripts/redmine.sh).

The fixture runs ``scripts/redmine.sh`` (install when needed, prepare, start on loopback)
unless ``REDMINE_URL`` and ``REDMINE_API_KEY`` point at a running one. Redmine that cannot
be started fails these tests: they never skip. Every test uses fresh incident ids, and
issues go to the tests' own private project (``REDMINE_PROJECT``, ``baton-it``), so the
instance's database may outlive a run and may serve other uses besides.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from baton_connectors.redmine import RedmineConnector, RedmineError
from contract.fakes import sample_incident, sample_notification
from helpers import ClientFactory, Gateway, alert, config_dict, start_gateway

from baton.api import state
from baton.clock import FakeClock
from baton.ids import new_id
from baton.model import ExternalRef, Notification, Outcome
from baton.secret import Secret

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "redmine.sh"


@dataclasses.dataclass(frozen=True)
class Redmine:
    url: str
    api_key: str
    human_key: str  # a person working in Redmine (jdoe), or the same key when given
    project: str  # identifier of a private project the tests may fill with issues


@pytest.fixture(scope="module")
def redmine() -> Iterator[Redmine]:
    url, key = os.environ.get("REDMINE_URL"), os.environ.get("REDMINE_API_KEY")
    if url and key:
        yield Redmine(url.rstrip("/"), key, os.environ.get("REDMINE_HUMAN_API_KEY") or key,
                      os.environ.get("REDMINE_PROJECT") or "baton-it")
        return
    # This pytest process is the script's caller, for start and stop alike: stop then
    # stops Redmine only if this start started it and nobody else uses it meanwhile.
    env = os.environ | {"REDMINE_LEASE_PID": str(os.getpid())}
    try:
        proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True,
                              timeout=900, check=False, env=env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{SCRIPT} did not finish in {exc.timeout}s: a real Redmine is required "
                    "for these tests (or set REDMINE_URL and REDMINE_API_KEY)", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(f"{SCRIPT} failed (exit {proc.returncode}): a real Redmine is required "
                    "for these tests (or set REDMINE_URL and REDMINE_API_KEY).\n"
                    f"{proc.stderr[-4000:]}", pytrace=False)
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    missing = {"REDMINE_URL", "REDMINE_API_KEY", "REDMINE_HUMAN_API_KEY",
               "REDMINE_PROJECT"} - set(values)
    try:
        assert not missing, f"{SCRIPT} printed no {sorted(missing)}: {proc.stdout!r}"
        yield Redmine(values["REDMINE_URL"], values["REDMINE_API_KEY"],
                      values["REDMINE_HUMAN_API_KEY"], values["REDMINE_PROJECT"])
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, timeout=660,
                       check=False, env=env)


@dataclasses.dataclass
class Rig:
    redmine: Redmine
    http: aiohttp.ClientSession
    connector: RedmineConnector

    async def send(self, notification: Notification) -> Outcome:
        outcome = await self.connector.send(notification, self.http)
        assert outcome.kind == "ok", outcome
        return outcome

    async def api(self, method: str, path: str, body: Any = None, *,
                  key: str | None = None, status: int = 200) -> Any:
        """Redmine's API directly, as a person or a script would use it."""
        headers = {"X-Redmine-API-Key": key or self.redmine.api_key}
        async with self.http.request(method, f"{self.redmine.url}{path}", json=body,
                                     headers=headers) as resp:
            text = await resp.text()
            assert resp.status == status, f"{method} {path}: {resp.status} {text}"
            return await resp.json() if text.strip() else None

    async def issue(self, issue_id: str) -> dict[str, Any]:
        doc = await self.api("GET", f"/issues/{issue_id}.json?include=journals")
        issue: dict[str, Any] = doc["issue"]
        return issue

    async def closed_status(self) -> int:
        """Id of the status named Closed (the connector's default close), not assumed."""
        doc = await self.api("GET", "/issue_statuses.json")
        (found,) = [s["id"] for s in doc["issue_statuses"] if s["name"] == "Closed"]
        return int(found)

    async def marked(self, incident_id: str) -> list[int]:
        """Ids of every issue, open or closed, whose subject carries the marker."""
        doc = await self.api("GET", "/issues.json?status_id=*&subject=~"
                                    f"%5Bbaton:{incident_id}%5D&limit=100")
        return [i["id"] for i in doc["issues"]]


@pytest.fixture
async def rig(redmine: Redmine) -> AsyncIterator[Rig]:
    config = {"url": redmine.url, "api_key": Secret(redmine.api_key),
              "project": redmine.project,
              "tracker": "Bug", "priorities": {"critical": "Immediate"}}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        yield Rig(redmine, http, RedmineConnector("rm", config))


def incident(status: str = "triggered", **fields: Any) -> dict[str, Any]:
    return sample_incident(status) | {"id": new_id()} | fields


def recorded(doc: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    assert outcome.external_ref is not None
    return doc | {"external_refs": [outcome.external_ref.to_dict()]}


async def test_trigger_opens_one_issue_and_a_retry_finds_it(rig: Rig) -> None:
    doc = incident()
    trigger = sample_notification("rm", incident=doc)
    first = await rig.send(trigger)
    assert first.status == 201 and first.external_ref is not None
    issue_id = first.external_ref.id
    assert first.external_ref.url == f"{rig.redmine.url}/issues/{issue_id}"
    # The response was lost: the dispatcher tries again with nothing recorded.
    retry = await rig.send(dataclasses.replace(trigger, attempt=2))
    assert retry.external_ref == first.external_ref
    assert await rig.marked(doc["id"]) == [int(issue_id)]
    issue = await rig.issue(issue_id)
    assert issue["subject"] == f"High error rate on checkout [baton:{doc['id']}]"
    project = (await rig.api("GET", f"/projects/{rig.redmine.project}.json"))["project"]
    assert (issue["project"]["id"], issue["tracker"]["name"], issue["priority"]["name"]) \
        == (project["id"], "Bug", "Immediate")
    assert "5xx ratio above 5% for 10m" in issue["description"]


async def test_update_note_and_resolve_write_the_issue(rig: Rig) -> None:
    doc = incident()
    created = await rig.send(sample_notification("rm", incident=doc))
    doc = recorded(doc, created) | {"acknowledged_by": "bob"}
    await rig.send(sample_notification("rm", "update", incident=doc))
    await rig.send(sample_notification("rm", "acknowledge", incident=doc))
    assert created.external_ref is not None
    issue = await rig.issue(created.external_ref.id)
    notes = [j["notes"] for j in issue["journals"]]
    assert notes[0].startswith("[baton] Incident updated in Baton")
    assert notes[1] == "[baton] Acknowledged in Baton by bob."
    assert issue["status"]["is_closed"] is False

    resolved = recorded(incident("resolved", id=doc["id"]), created)
    outcome = await rig.send(sample_notification("rm", "resolve", incident=resolved))
    assert outcome.external_ref == created.external_ref
    issue = await rig.issue(created.external_ref.id)
    assert issue["status"]["name"] == "Closed" and issue["status"]["is_closed"] is True
    assert issue["closed_on"]
    assert issue["journals"][-1]["notes"] == "[baton] Resolved in Baton by alice."
    # Baton's own close is not news when polled.
    assert await rig.connector.sync([created.external_ref], rig.http) == []


async def test_an_issue_closed_in_redmine_becomes_a_resolve_event(rig: Rig) -> None:
    closed, still_open = incident(), incident()
    refs: list[ExternalRef] = []
    for doc in (closed, still_open):
        outcome = await rig.send(sample_notification("rm", incident=doc))
        assert outcome.external_ref is not None
        refs.append(outcome.external_ref)
    me = await rig.api("GET", "/users/current.json", key=rig.redmine.human_key)
    await rig.api("PUT", f"/issues/{refs[0].id}.json", {"issue": {
        "status_id": await rig.closed_status(), "notes": "Fixed the pool size."}},
        key=rig.redmine.human_key, status=204)
    issue = await rig.issue(refs[0].id)
    events = await rig.connector.sync(refs, rig.http)
    assert [(e.action, e.event_id, e.actor, e.external_id) for e in events] == [
        ("resolve", f"redmine-closed-{refs[0].id}-{issue['closed_on']}",
         f"{me['user']['firstname']} {me['user']['lastname']} (redmine)", refs[0].id)]


async def test_a_recurrence_reopens_the_earlier_issue(rig: Rig) -> None:
    first = incident()
    created = await rig.send(sample_notification("rm", incident=first))
    assert created.external_ref is not None
    await rig.send(sample_notification("rm", "resolve", incident=recorded(
        incident("resolved", id=first["id"]), created)))
    assert (await rig.issue(created.external_ref.id))["status"]["is_closed"] is True

    again = incident(recurrence_of=first["id"])
    trigger = sample_notification("rm", incident=again)
    reopened = await rig.send(trigger)
    assert reopened.external_ref == created.external_ref
    issue = await rig.issue(created.external_ref.id)
    # Redmine keeps closed_on (the last close) on a reopened issue.
    assert issue["status"]["name"] == "New" and issue["status"]["is_closed"] is False
    assert issue["subject"].endswith(f"[baton:{again['id']}]")
    assert issue["journals"][-1]["notes"].startswith(
        f"[baton] The problem is back as Baton incident {again['id']}")
    retry = await rig.send(dataclasses.replace(trigger, attempt=2))
    assert retry.external_ref == created.external_ref
    assert len((await rig.issue(created.external_ref.id))["journals"]) == len(
        issue["journals"])
    assert await rig.marked(again["id"]) == [int(created.external_ref.id)]


async def test_a_wrong_key_is_a_permanent_failure(rig: Rig) -> None:
    connector = RedmineConnector("rm", {"url": rig.redmine.url,
                                        "project": rig.redmine.project,
                                        "api_key": Secret("not-the-key")})
    outcome = await connector.send(sample_notification("rm", incident=incident()), rig.http)
    assert (outcome.kind, outcome.status) == ("permanent", 401), outcome
    assert "not-the-key" not in outcome.detail
    # Redmine lists issues to an unknown key as to anyone (200, none of a private
    # project): polling must fail, not report that nothing changed.
    created = await rig.send(sample_notification("rm", incident=incident()))
    assert created.external_ref is not None
    with pytest.raises(RedmineError) as caught:
        await connector.sync([created.external_ref], rig.http)
    assert caught.value.outcome.status == 401


async def gateway(rig: Rig, aiohttp_client: ClientFactory, tmp_path: Path) -> Gateway:
    data = config_dict(tmp_path)
    data["connectors"]["tickets"] = {"type": "redmine", "url": rig.redmine.url,
                                     "api_key": {"env": "REDMINE_KEY"},
                                     "project": rig.redmine.project}
    data["policies"]["notify"]["levels"] = [{"notify": ["tickets"]}]
    return await start_gateway(aiohttp_client, data, tmp_path,
                               environ={"REDMINE_KEY": rig.redmine.api_key})


async def settle(gw: Gateway) -> None:
    for _ in range(20):
        if not await gw.pump():
            return
    raise AssertionError("still sending after 20 cycles")


async def open_incident(rig: Rig, gw: Gateway) -> tuple[str, str]:
    """(incident id, issue id) of a new incident and the one issue it opened."""
    answer = await gw.ingest(alert(f"db-{new_id()}", "Replica lag on db-2"))
    incident_id = answer["incidents"][0]
    await settle(gw)
    doc = await gw.incident(incident_id)
    refs = [r for r in doc["external_refs"] if r["connector"] == "tickets"]
    assert len(refs) == 1, doc["external_refs"]
    assert await rig.marked(incident_id) == [int(refs[0]["id"])]
    assert (await rig.issue(refs[0]["id"]))["status"]["is_closed"] is False
    return incident_id, refs[0]["id"]


async def test_the_gateway_opens_and_closes_one_issue(
        rig: Rig, aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    gw = await gateway(rig, aiohttp_client, tmp_path)
    incident_id, issue_id = await open_incident(rig, gw)
    await gw.post(f"/v1/incidents/{incident_id}/resolve", {"by": "alice"}, 200)
    await settle(gw)
    issue = await rig.issue(issue_id)
    assert issue["status"]["is_closed"] is True
    assert issue["journals"][-1]["notes"] == "[baton] Resolved in Baton by alice."
    assert [d["state"] for d in gw.deliveries(incident_id)] == ["delivered", "delivered"]


async def test_closing_the_issue_in_redmine_resolves_the_incident(
        rig: Rig, aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    gw = await gateway(rig, aiohttp_client, tmp_path)
    incident_id, issue_id = await open_incident(rig, gw)
    me = await rig.api("GET", "/users/current.json", key=rig.redmine.human_key)
    assert await gw.app[state.SYNCER].run_once(force=True) == {"tickets": 0}
    await rig.api("PUT", f"/issues/{issue_id}.json", {"issue": {
        "status_id": await rig.closed_status(), "notes": "Replica caught up."}},
        key=rig.redmine.human_key, status=204)
    assert await gw.app[state.SYNCER].run_once(force=True) == {"tickets": 1}
    doc = await gw.incident(incident_id)
    assert doc["status"] == "resolved"
    assert doc["resolved_by"] == f"{me['user']['firstname']} {me['user']['lastname']} (redmine)"
    await settle(gw)
    # Whatever the core sends back (if anything), Redmine gets no second close.
    issue = await rig.issue(issue_id)
    assert [j["notes"] for j in issue["journals"]] == ["Replica caught up."]


class LosingProxy:
    """Forwards to Redmine, but drops the connection after Redmine has created the first
    issue: the issue exists, Baton never hears so (a lost response)."""

    def __init__(self, upstream: str, http: aiohttp.ClientSession) -> None:
        self.upstream, self.http = upstream, http
        self.creates = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("x-redmine-api-key", "content-type", "accept")}
        async with self.http.request(request.method, self.upstream + request.path_qs,
                                     data=await request.read(), headers=headers) as up:
            body, status = await up.read(), up.status
            ctype = up.headers.get("Content-Type", "application/json")
        if request.method == "POST" and request.path == "/issues.json":
            self.creates += 1
            if self.creates == 1:
                assert request.transport is not None
                request.transport.close()  # created upstream; the answer is lost
        return web.Response(body=body, status=status, headers={"Content-Type": ctype})


async def test_escalation_notes_and_a_lost_response_opens_no_second_issue(
        rig: Rig, aiohttp_client: ClientFactory, aiohttp_server: Any,
        tmp_path: Path) -> None:
    proxy = LosingProxy(rig.redmine.url, rig.http)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    server = await aiohttp_server(app)
    data = config_dict(tmp_path)
    data["connectors"]["tickets"] = {
        "type": "redmine", "url": str(server.make_url("")).rstrip("/"),
        "api_key": {"env": "REDMINE_KEY"}, "project": rig.redmine.project,
        "backoff": {"initial": "1s", "max": "1s"}}
    data["policies"]["notify"]["levels"] = [
        {"notify": ["tickets"], "escalate_after": "10m"}, {"notify": ["hook"]}]
    clock = FakeClock()
    gw = await start_gateway(aiohttp_client, data, tmp_path, clock=clock,
                             environ={"REDMINE_KEY": rig.redmine.api_key})
    incident_id = (await gw.ingest(alert(f"db-{new_id()}", "Replica lag")))["incidents"][0]
    await gw.pump()
    (first,) = gw.deliveries(incident_id)
    assert (first["state"], first["attempts"]) == ("pending", 1), first  # the lost answer
    clock.advance(2)
    await gw.pump()
    doc = await gw.incident(incident_id)
    (ref,) = [r for r in doc["external_refs"] if r["connector"] == "tickets"]
    assert proxy.creates == 1  # the retry found the issue by its marker
    assert await rig.marked(incident_id) == [int(ref["id"])]

    clock.advance(600)  # not acknowledged in 10 minutes: level 2, and a note on the issue
    await settle(gw)
    issue = await rig.issue(ref["id"])
    notes = [j["notes"] for j in issue["journals"]]
    assert len(notes) == 1 and "escalation level 2" in notes[0], notes
    assert issue["status"]["is_closed"] is False
