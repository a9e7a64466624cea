"""A strict Redmine 5.0 REST API (JSON), the vendor behind the ``redmine`` connector.

Written from Redmine's REST reference (Rest_Issues, Rest_IssueStatuses, Rest_Trackers,
Rest_Enumerations) and checked against Debian bookworm's Redmine 5.0.4:

- Auth is ``X-Redmine-API-Key``. A missing or unknown key makes the request anonymous:
  writes and reading an issue of the (private) project answer 401 with an empty body and
  ``WWW-Authenticate: Basic realm="Redmine API"``; lists and lookups answer 200 with what
  anonymous may see (no issues here).
- Rails parses only a JSON body: another content type leaves the parameters empty, so a
  create answers 422 with every required field blank and an update answers 204 having
  done nothing (recorded in ``lost``). Malformed JSON is a 400 with an empty body.
- Validation failures are 422 ``{"errors": [...]}`` with Redmine's messages: blank or
  over-long (255) subject, unknown project, unknown priority, unknown assignee. An
  unknown ``tracker_id`` is silently replaced by the project's first tracker, and an
  update's ``status_id`` that is unknown or not allowed by the workflow (``forbidden``)
  is silently ignored: both as Redmine does.
- Create answers 201 with the issue and a ``Location``; update answers 204.
  ``GET /users/current.json`` says who the key belongs to (401 for anonymous).
- ``GET /issues.json`` filters by ``issue_id`` and ``status_id`` (``open`` by default,
  ``closed``, ``*``, an id) or, with ``f[]``, by ``op``/``v`` on ``status_id`` and
  ``subject`` (``~`` contains, case-insensitive); ``f[]`` makes Redmine ignore the short
  forms. ``limit`` is capped at 100. Stricter than Redmine: a filter this fake does not
  implement is a 422 rather than ignored, so a misspelt filter cannot pass unnoticed.

Scripted replies (``state.next_reply()``) apply to writes only (create, update): the
connector's lookups and marker search come first and the contract is about the action
itself. ``Issues.read_replies`` scripts answers to reads (an HTML page with the given status,
as a proxy in front of Redmine would send) for the connector's own tests.

Accepted actions: create -> ``trigger``; an update that closes -> ``resolve``; one that
reopens -> ``reopen``; any other update with notes -> ``note``. The keys are the
``[baton:...]`` markers in the issue's subject.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from baton.secret import Secret

from . import STATE, FakeState, Reply, Seen, chunked_json

API_KEY = "s3cr3t-RM-api-key-do-not-leak"
HUMAN_KEY = "rm-human-key"  # a person working in Redmine's UI, for sync tests
USERS = {API_KEY: {"id": 1, "name": "Redmine Admin"}, HUMAN_KEY: {"id": 5, "name": "Jane Doe"}}
PROJECTS = [{"id": 1, "identifier": "ops", "name": "Ops"}]
TRACKERS = [{"id": 1, "name": "Bug"}, {"id": 2, "name": "Feature"}, {"id": 3, "name": "Support"}]
STATUSES = [{"id": 1, "name": "New", "is_closed": False},
            {"id": 2, "name": "In Progress", "is_closed": False},
            {"id": 3, "name": "Resolved", "is_closed": False},
            {"id": 4, "name": "Feedback", "is_closed": False},
            {"id": 5, "name": "Closed", "is_closed": True},
            {"id": 6, "name": "Rejected", "is_closed": True}]
PRIORITIES = [{"id": n, "name": name, "is_default": name == "Normal", "active": True}
              for n, name in enumerate(("Low", "Normal", "High", "Urgent", "Immediate"), 1)]
ASSIGNABLE = {1, 5}
MARKER = re.compile(r"\[baton:[^\]]+\]")
BLANK = ["Subject cannot be blank", "Project cannot be blank", "Tracker cannot be blank",
         "Status cannot be blank"]


@dataclass
class Issues:
    """The fake's issue store, and knobs for the connector's own tests."""

    by_id: dict[int, dict[str, Any]] = field(default_factory=dict)
    forbidden: set[int] = field(default_factory=set)  # statuses the workflow refuses
    lost: list[tuple[str, int]] = field(default_factory=list)  # updates that did nothing
    read_replies: deque[Reply] = field(default_factory=deque)  # proxy pages for GETs

    def closed(self, issue_id: int) -> bool:
        return _status(self.by_id[issue_id]["status"]["id"])["is_closed"] is True


ISSUES = web.AppKey("issues", Issues)


def config(base_url: str) -> dict[str, Any]:
    return {"url": base_url, "api_key": Secret(API_KEY, "env:REDMINE_API_KEY"),
            "project": "ops", "tracker": "Bug", "priorities": {"critical": "Immediate"}}


def make_app(state: FakeState) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app[ISSUES] = Issues()
    app.router.add_get("/issues.json", _list)
    app.router.add_post("/issues.json", _create)
    app.router.add_get(r"/issues/{id:\d+}.json", _show)
    app.router.add_put(r"/issues/{id:\d+}.json", _update)
    app.router.add_get("/users/current.json", _current)
    for path, key, items in (("/trackers.json", "trackers", TRACKERS),
                             ("/issue_statuses.json", "issue_statuses", STATUSES),
                             ("/enumerations/issue_priorities.json", "issue_priorities",
                              PRIORITIES)):
        app.router.add_get(path, _lookup(key, items))
    return app


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(status_id: int) -> dict[str, Any]:
    return next(s for s in STATUSES if s["id"] == status_id)


def _ref(items: list[dict[str, Any]], item_id: Any) -> dict[str, Any] | None:
    return next(({"id": i["id"], "name": i["name"]} for i in items
                 if str(i["id"]) == str(item_id)), None)


def _user(request: web.Request) -> dict[str, Any] | None:
    return USERS.get(request.headers.get("X-Redmine-API-Key", ""))


def _unauthorized(state: FakeState) -> web.Response:
    state.rejected.append((401, "unauthorized"))
    return web.Response(status=401, content_type="application/json",
                        headers={"WWW-Authenticate": 'Basic realm="Redmine API"'})


def _errors(state: FakeState, errors: list[str], status: int = 422) -> web.Response:
    state.rejected.append((status, "; ".join(errors)))
    return web.json_response({"errors": errors}, status=status)


def _body(request: web.Request, seen: Seen) -> dict[str, Any] | None:
    """The ``issue`` parameters as Rails would see them; None for malformed JSON."""
    if request.content_type != "application/json":
        return {}
    try:
        doc = json.loads(seen.body)
    except ValueError:
        return None
    issue = doc.get("issue") if isinstance(doc, dict) else None
    return issue if isinstance(issue, dict) else {}


async def _read_failure(request: web.Request) -> web.Response | None:
    issues = request.app[ISSUES]
    if not issues.read_replies:
        return None
    reply = issues.read_replies.popleft()
    # What a proxy in front of Redmine would say, whatever the status.
    return web.Response(status=reply.status, headers=reply.headers,
                        text="<html><body>proxy says no</body></html>",
                        content_type="text/html")


async def _written(state: FakeState) -> Reply | web.Response | None:
    reply = await state.next_reply()
    if reply is not None and not 200 <= reply.status < 300:
        body = {"errors": [f"{reply.message} {reply.status}"]}
        return web.json_response(body, status=reply.status, headers=dict(reply.headers))
    return reply


def _lookup(key: str, items: list[dict[str, Any]]) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        await request.app[STATE].record(request)
        return await _read_failure(request) or web.json_response({key: items})
    return handler


def _filters(query: Any) -> dict[str, tuple[str, list[str]]] | list[str]:
    """field -> (operator, values), from ``f[]`` or the short forms; errors as a list."""
    if "f[]" in query:  # the filters exactly as given: no default status filter either
        out = {f: (query.get(f"op[{f}]", "="), query.getall(f"v[{f}][]", []))
               for f in query.getall("f[]") if f}
    else:  # the default query (open issues) plus the short forms
        out = {"status_id": ("o", [])}
        if "status_id" in query:
            value = query["status_id"]
            out["status_id"] = (value, []) if value in ("*", "open", "closed") else (
                "=", value.split(","))
        if "issue_id" in query:
            out["issue_id"] = ("=", query["issue_id"].split(","))
        if "subject" in query:
            value = query["subject"]
            out["subject"] = ("~", [value[1:]]) if value.startswith("~") else ("=", [value])
    unknown = [f for f in out if f not in ("status_id", "subject", "issue_id")]
    return [f"fake: filter {f!r} is not implemented" for f in unknown] or out


def _matches(issue: dict[str, Any], filters: dict[str, tuple[str, list[str]]]) -> bool:
    for name, (op, values) in filters.items():
        if name == "status_id":
            closed = _status(issue["status"]["id"])["is_closed"]
            ok = {"*": True, "o": not closed, "open": not closed, "c": closed,
                  "closed": closed}.get(op, str(issue["status"]["id"]) in values)
        elif name == "issue_id":
            ok = str(issue["id"]) in values
        else:  # subject: "~" contains, anything else taken as "="
            subject = issue["subject"].casefold()
            ok = all(v.casefold() in subject for v in values) if op == "~" else (
                issue["subject"] in values)
        if not ok:
            return False
    return True


async def _current(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    await state.record(request)
    user = _user(request)
    if not user:
        return _unauthorized(state)
    first, last = user["name"].split(" ", 1)
    return web.json_response({"user": {"id": user["id"], "login": first.lower(),
                                       "firstname": first, "lastname": last}})


async def _list(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    await state.record(request)
    if failure := await _read_failure(request):
        return failure
    filters = _filters(request.query)
    if isinstance(filters, list):
        return _errors(state, filters)
    issues = request.app[ISSUES]
    # Anonymous sees only public projects' issues: there are none here.
    found = [i for i in issues.by_id.values() if _matches(i, filters)] if _user(request) \
        else []
    found.sort(key=lambda i: int(i["id"]), reverse=request.query.get("sort") != "id")
    limit = min(int(request.query.get("limit", "25")), 100)
    offset = int(request.query.get("offset", "0"))
    page = [{k: v for k, v in i.items() if k != "journals"}
            for i in found[offset:offset + limit]]
    return await chunked_json(request, {"issues": page, "total_count": len(found),
                                        "offset": offset, "limit": limit})


async def _show(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    await state.record(request)
    if failure := await _read_failure(request):
        return failure
    if not _user(request):
        return _unauthorized(state)
    issue = request.app[ISSUES].by_id.get(int(request.match_info["id"]))
    if issue is None:
        return web.Response(status=404, content_type="application/json")
    with_journals = "journals" in request.query.get("include", "").split(",")
    return await chunked_json(request, {"issue": {k: v for k, v in issue.items()
                                                  if k != "journals" or with_journals}})


async def _create(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    user = _user(request)
    if not user:
        return _unauthorized(state)
    doc = _body(request, seen)
    if doc is None:
        return web.Response(status=400)
    if not doc:
        return _errors(state, BLANK)
    project = next((p for p in PROJECTS if str(doc.get("project_id")) in
                    (p["identifier"], str(p["id"]))), None)
    subject = doc.get("subject")
    errors = []
    if not isinstance(subject, str) or not subject.strip():
        errors.append("Subject cannot be blank")
    elif len(subject) > 255:
        errors.append("Subject is too long (maximum is 255 characters)")
    if project is None:
        errors += BLANK[1:]
    priority = _ref(PRIORITIES, doc.get("priority_id", 2))
    if priority is None:
        errors.append("Priority cannot be blank")
    if "assigned_to_id" in doc and doc["assigned_to_id"] not in ASSIGNABLE:
        errors.append("Assignee is invalid")
    if errors:
        return _errors(state, errors)
    written = await _written(state)
    if isinstance(written, web.Response):
        return written
    issues = request.app[ISSUES]
    issue_id = max(issues.by_id, default=0) + 1
    now = _now()
    issue = {"id": issue_id, "project": {"id": 1, "name": "Ops"},
             "tracker": _ref(TRACKERS, doc.get("tracker_id")) or _ref(TRACKERS, 1),
             "status": {**_status(1)}, "priority": priority,
             "author": dict(user), "subject": subject,
             "description": doc.get("description"), "created_on": now, "updated_on": now,
             "closed_on": None, "journals": []}
    if "assigned_to_id" in doc:
        issue["assigned_to"] = {"id": doc["assigned_to_id"], "name": "someone"}
    issues.by_id[issue_id] = issue
    state.accept("trigger", tuple(MARKER.findall(subject)), seen)
    status = written.status if written else 201
    headers = {"Location": f"{request.url.origin()}/issues/{issue_id}", **(
        written.headers if written else {})}
    if status == 204:
        return web.Response(status=204, headers=headers)
    body = {"issue": {k: v for k, v in issue.items() if k != "journals"}}
    return web.json_response(body, status=status, headers=headers)


async def _update(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    user = _user(request)
    if not user:
        return _unauthorized(state)
    issues = request.app[ISSUES]
    issue_id = int(request.match_info["id"])
    issue = issues.by_id.get(issue_id)
    if issue is None:
        return web.Response(status=404, content_type="application/json")
    doc = _body(request, seen)
    if doc is None:
        return web.Response(status=400)
    if "subject" in doc and not str(doc["subject"] or "").strip():
        return _errors(state, ["Subject cannot be blank"])
    if len(str(doc.get("subject", ""))) > 255:
        return _errors(state, ["Subject is too long (maximum is 255 characters)"])
    written = await _written(state)
    if isinstance(written, web.Response):
        return written
    was_closed = issues.closed(issue_id)
    details = []
    wanted = doc.get("status_id")
    if (wanted is not None and _ref(STATUSES, wanted) and int(wanted) not in issues.forbidden
            and int(wanted) != issue["status"]["id"]):
        details.append({"property": "attr", "name": "status_id",
                        "old_value": str(issue["status"]["id"]), "new_value": str(wanted)})
        issue["status"] = {**_status(int(wanted))}
    if doc.get("subject") and doc["subject"] != issue["subject"]:
        details.append({"property": "attr", "name": "subject",
                        "old_value": issue["subject"], "new_value": doc["subject"]})
        issue["subject"] = doc["subject"]
    if not details and not doc.get("notes"):
        issues.lost.append(("update", issue_id))
    else:
        now = _now()
        issue["updated_on"] = now
        closed = issues.closed(issue_id)
        if closed and not was_closed:
            issue["closed_on"] = now
        issue["journals"].append({"id": sum(len(i["journals"]) for i in issues.by_id.values())
                                  + 1, "user": dict(user), "notes": doc.get("notes") or "",
                                  "created_on": now, "private_notes": False,
                                  "details": details})
        action = ("resolve" if closed and not was_closed else
                  "reopen" if was_closed and not closed else "note")
        state.accept(action, tuple(MARKER.findall(issue["subject"])), seen)
    status = written.status if written else 204
    return web.Response(status=status, headers=dict(written.headers) if written else None)
