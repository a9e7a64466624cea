"""A strict Jira Cloud REST API v3, the vendor behind the ``jira`` connector.

Written from the v3 reference: HTTP basic auth with email and API token or 401; a JSON
body on POST/PUT or 415; errors as ``{"errorMessages": [...], "errors": {field: msg}}``.
Create issue needs ``fields.project`` (the one known project), ``issuetype`` (a known
type), a one-line ``summary`` of at most 255 characters counted in UTF-16 units (an emoji
is two, as Jira counts), and refuses a description that is not an ADF document (``type:
doc``, ``version: 1``, non-empty text nodes) or whose JSON is over 32,767 units, an unknown
priority, a label with a space, or a field it does not know. Comments need an ADF
``body``. A transition id not offered from the issue's current status is a 400. Search is
``POST /rest/api/3/search/jql`` (the deprecated ``/search`` is not served) with JQL of the
forms ``labels = "x"`` and ``labels in ("x", ...)``, optionally ``ORDER BY created``.

The workflow is Jira's simplified one unless ``Jira.transitions`` says otherwise: global
transitions named after their target status (To Do, In Progress, Done), none offered into
the status the issue is in.
``Jira.comment_on_transition = False`` makes transitions refuse a comment, as a workflow
whose transition screen lacks the field does.

Scripted replies apply to the requests that change something (create, edit, comment,
transition); reads (search, get issue, get transitions) answer normally, or with the
statuses queued in ``Jira.read_failures``. Accepted actions, in Baton's terms: create ->
``trigger``; a transition into a done status -> ``resolve``, into an in-progress status
-> ``acknowledge``, into a to-do status -> ``trigger`` (a reopen); a comment -> ``note``.
The keys are the issue's ``baton-<id>`` marker labels.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from baton.secret import Secret

from . import STATE, FakeState, Seen, chunked_json

EMAIL = "baton@acme.example"
API_TOKEN = "s3cr3t-JIRA-api-token-do-not-leak"
WEBHOOK_SECRET = "s3cr3t-JIRA-webhook-secret-do-not-leak"
PROJECT = "OPS"
ISSUE_TYPES = frozenset({"Task", "Bug", "Incident"})
PRIORITIES = frozenset({"Highest", "High", "Medium", "Low", "Lowest"})
STATUSES = {"To Do": "new", "In Progress": "indeterminate", "Done": "done"}
# id -> (transition name, target status); simplified workflows name them after the target
TRANSITIONS = {"11": ("To Do", "To Do"), "21": ("In Progress", "In Progress"),
               "31": ("Done", "Done")}
FIELDS = frozenset({"project", "issuetype", "summary", "description", "labels", "priority"})
SENSITIVE = (base64.b64encode(f"{EMAIL}:{API_TOKEN}".encode()).decode(),)
ACTIONS = {"done": "resolve", "indeterminate": "acknowledge", "new": "trigger"}
_JQL = re.compile(r'^labels\s*(?:=\s*(?P<one>"[^"]*")|in\s*\((?P<many>[^)]*)\))'
                  r'(?:\s+ORDER\s+BY\s+created(?:\s+(?:ASC|DESC))?)?\s*$', re.IGNORECASE)


@dataclass
class Issue:
    id: str
    key: str
    fields: dict[str, Any]
    status: str = "To Do"
    comments: list[dict[str, Any]] = field(default_factory=list)

    def markers(self) -> tuple[str, ...]:
        return tuple(sorted(x for x in self.fields.get("labels", []) if x.startswith("baton-")))


@dataclass
class Jira:
    """The fake's issue store and knobs."""

    issues: dict[str, Issue] = field(default_factory=dict)
    read_failures: deque[int] = field(default_factory=deque)
    comment_on_transition: bool = True
    transitions: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(TRANSITIONS))
    unindexed: set[str] = field(default_factory=set)  # keys search does not see yet (lag)

    def by_labels(self, labels: set[str]) -> list[Issue]:
        return [i for i in self.issues.values() if labels & set(i.fields.get("labels", []))
                and i.key not in self.unindexed]


JIRA = web.AppKey("jira", Jira)


def config(base_url: str) -> dict[str, Any]:
    return {
        "url": base_url,
        "email": EMAIL,
        "api_token": Secret(API_TOKEN, "env:JIRA_API_TOKEN"),
        "project": PROJECT,
        "issue_type": "Incident",
        "priorities": {"critical": "Highest", "error": "High"},
        "labels": ["on-call"],
        "webhook_secret": Secret(WEBHOOK_SECRET, "env:JIRA_WEBHOOK_SECRET"),
    }


def make_app(state: FakeState) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app[JIRA] = Jira()
    app.router.add_post("/rest/api/3/search/jql", _search)
    app.router.add_post("/rest/api/3/issue", _create)
    app.router.add_get("/rest/api/3/issue/{key}", _get)
    app.router.add_put("/rest/api/3/issue/{key}", _edit)
    app.router.add_post("/rest/api/3/issue/{key}/comment", _comment)
    app.router.add_get("/rest/api/3/issue/{key}/transitions", _transitions)
    app.router.add_post("/rest/api/3/issue/{key}/transitions", _transition)
    return app


def _error(status: int, messages: list[str] | None = None,
           errors: dict[str, str] | None = None,
           headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"errorMessages": messages or [], "errors": errors or {}},
                             status=status, headers=headers)


def _refuse(state: FakeState, status: int, messages: list[str] | None = None,
            errors: dict[str, str] | None = None) -> web.Response:
    state.rejected.append((status, "; ".join([*(messages or []), *(errors or {}).values()])))
    return _error(status, messages, errors)


def _checks(request: web.Request, seen: Seen) -> tuple[web.Response | None, Any]:
    """(refusal, parsed body): the refusal is None when the request may proceed."""
    state = request.app[STATE]
    expected = "Basic " + SENSITIVE[0]
    if request.headers.get("Authorization") != expected:
        return _refuse(state, 401, ["You are not authenticated. Authentication required "
                                    "to perform this operation."]), None
    if request.method == "GET":
        return None, None
    if request.content_type != "application/json":
        return _refuse(state, 415, ["Unsupported Media Type"]), None
    try:
        return None, json.loads(seen.body)
    except ValueError:
        return _refuse(state, 400, ["Unexpected character in the request body."]), None


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def adf_problem(node: Any, top: bool = True) -> str | None:
    """Why ``node`` is not an ADF document Jira stores, or None when it is one."""
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        return "every ADF node is an object with a type"
    if top and (node["type"] != "doc" or node.get("version") != 1):
        return "an ADF document has type doc and version 1"
    if top and utf16_units(json.dumps(node, ensure_ascii=False)) > 32767:
        # Jira stores rich text as its ADF JSON and limits that, not the plain text.
        return "The entered text is too long. It exceeds the allowed limit of 32,767 characters."
    if not top and node["type"] == "doc":
        return "doc is only the top node"
    if node["type"] == "text":
        return None if isinstance(node.get("text"), str) and node["text"] else (
            "text nodes need non-empty text")
    content = node.get("content", [])
    if not isinstance(content, list):
        return "content must be an array"
    return next((p for c in content if (p := adf_problem(c, False))), None)


async def _scripted(state: FakeState) -> int | web.Response:
    reply = await state.next_reply()
    if reply is None:
        return 0
    if not 200 <= reply.status < 300:
        return _error(reply.status, [reply.message], headers=dict(reply.headers))
    return reply.status


async def _read_failure(request: web.Request) -> web.Response | None:
    failures = request.app[JIRA].read_failures
    return _error(failures.popleft(), ["scripted read failure"]) if failures else None


def _answer(scripted: int, default: int, body: Any = None) -> web.Response:
    status = scripted or default
    if status == 204 or body is None:
        return web.Response(status=status)
    return web.json_response(body, status=status)


def _issue_or_404(request: web.Request) -> Issue | web.Response:
    issue = request.app[JIRA].issues.get(request.match_info["key"])
    if issue is None:
        return _refuse(request.app[STATE], 404, ["Issue does not exist or you do not have "
                                                 "permission to see it."])
    return issue


def _view(request: web.Request, issue: Issue, wanted: list[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in wanted:
        if name == "status":
            fields["status"] = {"name": issue.status,
                                "statusCategory": {"key": STATUSES[issue.status]}}
        elif name in issue.fields:
            fields[name] = issue.fields[name]
    base = str(request.url.origin())
    return {"id": issue.id, "key": issue.key, "self": f"{base}/rest/api/3/issue/{issue.id}",
            "fields": fields}


def _offered(jira: Jira, issue: Issue) -> list[dict[str, Any]]:
    return [{"id": tid, "name": name, "to": {
        "name": target, "statusCategory": {"key": STATUSES[target]}}}
        for tid, (name, target) in jira.transitions.items() if target != issue.status]


async def _search(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    refusal, doc = _checks(request, seen)
    if refusal:
        return refusal
    if failed := await _read_failure(request):
        return failed
    allowed = {"jql", "fields", "maxResults", "nextPageToken", "expand", "reconcileIssues"}
    if not isinstance(doc, dict) or set(doc) - allowed or not isinstance(doc.get("jql"), str):
        return _refuse(state, 400, ["Invalid request payload. Refer to the REST API "
                                    "documentation and try again."])
    match = _JQL.match(doc["jql"].strip())
    if match is None:
        return _refuse(state, 400, [f"Error in the JQL Query: {doc['jql']!r} is not "
                                    "understood by this fake."])
    raw = match["one"] or match["many"] or ""
    labels = {x.strip().strip('"') for x in raw.split(",") if x.strip()}
    found = request.app[JIRA].by_labels(labels)[: int(doc.get("maxResults", 50))]
    if doc["jql"].rstrip().upper().endswith("DESC"):
        found.reverse()
    wanted = [str(f) for f in doc.get("fields") or []]
    return await chunked_json(request, {"issues": [_view(request, i, wanted)
                                                   for i in found], "isLast": True})


def _create_problems(doc: Any) -> dict[str, str]:
    fields = doc.get("fields") if isinstance(doc, dict) else None
    if not isinstance(fields, dict):
        return {"fields": "fields is required"}
    errors = {k: f"Field '{k}' cannot be set. It is not on the appropriate screen, or "
                 "unknown." for k in fields if k not in FIELDS}
    if (fields.get("project") or {}).get("key") != PROJECT:
        errors["project"] = "valid project is required"
    if (fields.get("issuetype") or {}).get("name") not in ISSUE_TYPES:
        errors["issuetype"] = "Specify an issue type"
    summary = fields.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors["summary"] = "You must specify a summary of the issue."
    elif utf16_units(summary) > 255 or "\n" in summary:
        errors["summary"] = "Summary must be one line of less than 255 characters."
    if "description" in fields and (problem := adf_problem(fields["description"])):
        errors["description"] = f"Operation value must be an Atlassian Document: {problem}"
    labels = fields.get("labels", [])
    if not isinstance(labels, list) or not all(
            isinstance(x, str) and x and " " not in x and len(x) <= 255 for x in labels):
        errors["labels"] = "The label must not contain spaces."
    if "priority" in fields and (fields["priority"] or {}).get("name") not in PRIORITIES:
        errors["priority"] = "Specify a valid priority"
    return errors


async def _create(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    refusal, doc = _checks(request, seen)
    if refusal:
        return refusal
    if errors := _create_problems(doc):
        return _refuse(state, 400, errors=errors)
    scripted = await _scripted(state)
    if isinstance(scripted, web.Response):
        return scripted
    jira = request.app[JIRA]
    number = len(jira.issues) + 1
    issue = Issue(str(10000 + number), f"{PROJECT}-{number}", dict(doc["fields"]))
    jira.issues[issue.key] = issue
    state.accept("trigger", issue.markers(), seen)
    base = str(request.url.origin())
    return _answer(scripted, 201, {"id": issue.id, "key": issue.key,
                                   "self": f"{base}/rest/api/3/issue/{issue.id}"})


async def _get(request: web.Request) -> web.StreamResponse:
    seen = await request.app[STATE].record(request)
    refusal, _ = _checks(request, seen)
    if refusal:
        return refusal
    if failed := await _read_failure(request):
        return failed
    issue = _issue_or_404(request)
    if isinstance(issue, web.Response):
        return issue
    wanted = request.query.get("fields", "status,labels,summary").split(",")
    view = _view(request, issue, wanted)
    if "transitions" in request.query.get("expand", "").split(","):
        view["transitions"] = _offered(request.app[JIRA], issue)
    return await chunked_json(request, view)


async def _transitions(request: web.Request) -> web.StreamResponse:
    seen = await request.app[STATE].record(request)
    refusal, _ = _checks(request, seen)
    if refusal:
        return refusal
    if failed := await _read_failure(request):
        return failed
    issue = _issue_or_404(request)
    if isinstance(issue, web.Response):
        return issue
    return web.json_response({"transitions": _offered(request.app[JIRA], issue)})


async def _edit(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    refusal, doc = _checks(request, seen)
    if refusal:
        return refusal
    issue = _issue_or_404(request)
    if isinstance(issue, web.Response):
        return issue
    ops = (doc.get("update") or {}).get("labels") if isinstance(doc, dict) else None
    if not isinstance(ops, list) or not all(
            isinstance(op, dict) and set(op) == {"add"} and isinstance(op["add"], str)
            and " " not in op["add"] for op in ops):
        return _refuse(state, 400, errors={"labels": "this fake edits labels by add only"})
    scripted = await _scripted(state)
    if isinstance(scripted, web.Response):
        return scripted
    labels = issue.fields.setdefault("labels", [])
    labels.extend(op["add"] for op in ops if op["add"] not in labels)
    return _answer(scripted, 204)


async def _comment(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    refusal, doc = _checks(request, seen)
    if refusal:
        return refusal
    issue = _issue_or_404(request)
    if isinstance(issue, web.Response):
        return issue
    body = doc.get("body") if isinstance(doc, dict) else None
    if body is None:
        return _refuse(state, 400, errors={"comment": "Comment body can not be empty!"})
    if problem := adf_problem(body):
        return _refuse(state, 400, errors={"comment": f"Comment body is not valid: {problem}"})
    scripted = await _scripted(state)
    if isinstance(scripted, web.Response):
        return scripted
    issue.comments.append(body)
    state.accept("note", issue.markers(), seen)
    return _answer(scripted, 201, {"id": str(20000 + len(issue.comments)), "body": body})


async def _transition(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    seen = await state.record(request)
    refusal, doc = _checks(request, seen)
    if refusal:
        return refusal
    issue = _issue_or_404(request)
    if isinstance(issue, web.Response):
        return issue
    tid = str(((doc or {}).get("transition") or {}).get("id")) if isinstance(doc, dict) else ""
    if tid not in {t["id"] for t in _offered(request.app[JIRA], issue)}:
        return _refuse(state, 400, [f"Transition id '{tid}' is not valid for this issue."])
    update = doc.get("update") or {}
    comments: list[Any] = []
    for name, ops in update.items():
        if name != "comment" or not request.app[JIRA].comment_on_transition:
            return _refuse(state, 400, errors={name: f"Field '{name}' cannot be set. It is "
                                               "not on the appropriate screen, or unknown."})
        comments += [op.get("add", {}).get("body") for op in ops if isinstance(op, dict)]
    if problem := next((p for c in comments if (p := adf_problem(c))), None):
        return _refuse(state, 400, errors={"comment": f"Comment body is not valid: {problem}"})
    scripted = await _scripted(state)
    if isinstance(scripted, web.Response):
        return scripted
    issue.status = request.app[JIRA].transitions[tid][1]
    issue.comments.extend(comments)
    state.accept(ACTIONS[STATUSES[issue.status]], issue.markers(), seen)
    return _answer(scripted, 204)


def callback_request(action: str, incident_id: str, external_id: str | None, event_id: str,
                     now: float, forged: bool = False) -> tuple[bytes, dict[str, str]] | None:
    """A signed ``jira:issue_updated`` webhook: a person moved Baton's issue to a status of
    the category that means ``action`` (in progress: acknowledge, done: resolve)."""
    to = {"acknowledge": ("In Progress", "indeterminate"), "resolve": ("Done", "done")}
    if action not in to or external_id is None:
        return None
    name, category = to[action]
    body = json.dumps({
        "timestamp": int(now * 1000), "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Alice Doe"},
        "issue": {"id": "10001", "key": external_id, "fields": {
            "status": {"name": name, "statusCategory": {"key": category}},
            "labels": ["baton", f"baton-{incident_id}"]}},
        # The vendor's own id of this change: a distinct event_id is a distinct change.
        "changelog": {"id": str(10100 + int(hashlib.sha256(event_id.encode()).hexdigest()[
            :8], 16)), "items": [
            {"field": "status", "fieldtype": "jira", "from": "10000", "fromString": "To Do",
             "to": "10002", "toString": name}]}}).encode()
    key = b"not-the-secret" if forged else WEBHOOK_SECRET.encode()
    return body, {"Content-Type": "application/json",
                  "X-Atlassian-Webhook-Identifier": event_id,
                  "X-Hub-Signature": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()}
