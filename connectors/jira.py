"""Jira Cloud REST API v3: one issue per incident, found again by its marker label.

Jira has no idempotency key, so every issue Baton opens carries the label
``baton-<incident id>``. A trigger first searches for that label (``POST
/rest/api/3/search/jql``) and creates the issue only when none carries it: a retry after a
lost response finds the first attempt's issue and creates nothing. Search lags behind
writes, so a retried trigger (attempts 2 to ``SEARCH_LAG_ATTEMPTS``) that finds nothing is
answered retryable ("not yet searchable") rather than creating; attempt 1 and later ones
create. Later actions go to the issue recorded in the incident's ``external_refs`` and
fall back to the same search.

``update``, ``acknowledge`` and ``note`` add a comment; ``resolve`` performs the workflow
transition named ``resolve_transition`` with the comment riding in the same request, so
the two cannot come apart. A site whose transition screen refuses a comment answers 400
naming the ``comment`` field; then the transition is sent bare and the comment on its own.
A recurrence (``recurrence_of`` set) reuses the previous incident's issue: it gets this
incident's label first (so a retry finds it), then the ``reopen_transition`` with a
comment. An issue already in a done status is not transitioned again, which makes a
retried resolve harmless. A resolve of an incident whose issue also carries the label of
a newer incident (a recurrence took it over; ULIDs sort in time order) leaves it open.

Every comment Baton writes starts with ``[Baton]``: Jira echoes comments back by webhook,
and that marker is how ``callback`` recognises its own words (Jira's webhook does not tell
which API token acted, and Baton cannot learn its account id from an email address).
Transitions Baton made come back as status changes too: a resolve of an already resolved
incident, which the core records as unchanged, and a reopen into a to-do status, which
means nothing. When ``account_id`` names Baton's account, its events are dropped whole.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import aiohttp

from baton import __version__
from baton.model import ExternalRef, Notification, Outcome
from baton.plugin import CallbackEvent, Connector, classify_status
from baton.secret import Secret

from . import _jira_adf as adf
from ._config import base_url, json_request, reveal
from ._jira_webhook import parse_webhook
from ._text import clip, one_line

MARKER = adf.MARKER
SUMMARY_CHARS = 255  # Jira refuses a longer summary, counted in UTF-16 units
GENERIC_NOTE = "Incident updated in Baton."
_DETAIL_CHARS = 200
_READ_BYTES = 256 * 1024  # a search page or an issue with its transitions; never unbounded
# Jira's search lags behind writes, so a retried trigger (its first attempt's create may
# have landed with the answer lost) that finds no labelled issue answers "not yet
# searchable" on attempts 2 up to this one, and creates only after them.
SEARCH_LAG_ATTEMPTS = 4
_LABEL_PREFIX = "baton-"


class _Answered(Exception):
    """A vendor answer that ends this attempt (a refusal, a failure); carries the outcome."""

    def __init__(self, outcome: Outcome, doc: Any = None) -> None:
        super().__init__(outcome.detail)
        self.outcome = outcome
        self.doc = doc  # the vendor's parsed error body, when it sent one


def _jql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fields(issue: Mapping[str, Any]) -> dict[str, Any]:
    fields = issue.get("fields")
    return fields if isinstance(fields, dict) else {}


def _category(issue: Mapping[str, Any]) -> str:
    status = _fields(issue).get("status")
    category = status.get("statusCategory") if isinstance(status, dict) else None
    return str(category.get("key") or "") if isinstance(category, dict) else ""


class JiraConnector(Connector):
    """One issue per incident; see ``schemas/connectors/jira.schema.json``."""

    type: ClassVar[str] = "jira"
    idempotent: ClassVar[bool] = False  # no vendor key: the marker label search stands in
    accepts_callbacks: ClassVar[bool] = True

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        self.site = base_url(name, "url", config["url"])
        raw = reveal(config["api_token"])
        pair = base64.b64encode(f"{config['email']}:{raw}".encode()).decode()
        self._auth = f"Basic {pair}"  # revealed only for the wire
        self._hidden = [s for s in (raw, pair) if s]
        self.project: str = config["project"]
        self.issue_type: str = config.get("issue_type", "Task")
        self.priorities: dict[str, str] = dict(config.get("priorities") or {})
        self.labels: list[str] = list(config.get("labels") or [])
        self.resolve_transition: str = config.get("resolve_transition", "Done")
        self.reopen_transition: str = config.get("reopen_transition", "To Do")
        self._webhook_secret: Secret | str | None = config.get("webhook_secret")
        self._done = {s.casefold() for s in config.get("done_statuses") or ()}
        self._ack = {s.casefold() for s in config.get("acknowledge_statuses") or ()}
        self._account_id: str | None = config.get("account_id")

    # --- outbound -----------------------------------------------------------------------
    @staticmethod
    def label(incident_id: str) -> str:
        return f"{_LABEL_PREFIX}{incident_id}"

    def ref(self, key: str) -> ExternalRef:
        return ExternalRef(self.name, key, f"{self.site}/browse/{quote(key, safe='')}")

    def _scrub(self, text: str, limit: int = _DETAIL_CHARS * 2) -> str:
        return self.scrub(text, limit, also=self._hidden)


    async def send(self, notification: Notification, http: aiohttp.ClientSession) -> Outcome:
        # CancelledError (the dispatcher's timeout or shutdown) is not caught: it must
        # propagate, or a hung vendor would wedge the worker.
        try:
            if notification.action == "trigger":
                return await self._trigger(notification, http)
            return await self._follow_up(notification, http)
        except _Answered as answered:
            return answered.outcome
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            message = f"{type(exc).__name__} calling Jira at {self.site}: {exc}"
            return Outcome.retryable(self._scrub(message))

    async def _call(self, http: aiohttp.ClientSession, method: str, path: str,
                    what: str, body: Any = None) -> tuple[int, Any]:
        """One request; a non-2xx answer ends the attempt with its classified outcome."""
        answer = await json_request(
            http, method, f"{self.site}{path}", {
                "Authorization": self._auth, "Accept": "application/json",
                "User-Agent": f"baton/{__version__}"}, limit=_READ_BYTES, body=body)
        if answer.ok:
            return answer.status, answer.doc
        detail = f"HTTP {answer.status} {what}"
        if reason := self._scrub(self._reason(answer.doc, answer.text), _DETAIL_CHARS):
            detail += f": {reason}"
        raise _Answered(classify_status(answer.status, self._scrub(detail),
                                        answer.retry_after), answer.doc)

    @staticmethod
    def _reason(doc: Any, text: str) -> str:
        if isinstance(doc, dict) and ("errorMessages" in doc or "errors" in doc):
            messages = [str(m) for m in doc.get("errorMessages") or []]
            errors = doc.get("errors")
            if isinstance(errors, dict):
                messages += [f"{k}: {v}" for k, v in errors.items()]
            return "; ".join(messages)
        return text

    async def _search(self, http: aiohttp.ClientSession,
                      labels: list[str]) -> list[dict[str, Any]]:
        """Issues carrying any of the labels, oldest first (one bounded page)."""
        clause = (f"labels = {_jql_string(labels[0])}" if len(labels) == 1 else
                  "labels in (" + ", ".join(_jql_string(x) for x in labels) + ")")
        body = {"jql": f"{clause} ORDER BY created ASC", "maxResults": 20,
                "fields": ["status", "labels"]}
        status, doc = await self._call(http, "POST", "/rest/api/3/search/jql", "searching",
                                       body)
        issues = doc.get("issues") if isinstance(doc, dict) else None
        if not isinstance(issues, list):
            # Taking an unreadable answer for "no such issue" would open a duplicate.
            raise _Answered(Outcome.retryable(f"HTTP {status} searching: no issue list in "
                                              "Jira's answer", status))
        return [i for i in issues if isinstance(i, dict) and i.get("key")]

    async def _issue(self, http: aiohttp.ClientSession, key: str) -> dict[str, Any]:
        path = (f"/rest/api/3/issue/{quote(key, safe='')}"
                "?fields=status,labels&expand=transitions")
        _, doc = await self._call(http, "GET", path, f"reading {key}")
        if not isinstance(doc, dict):
            raise _Answered(Outcome.retryable(f"Jira answered no issue document for {key}"))
        return doc

    async def _comment(self, http: aiohttp.ClientSession, key: str,
                       body: dict[str, Any]) -> int:
        status, _ = await self._call(http, "POST", f"/rest/api/3/issue/{quote(key, safe='')}"
                                     "/comment", f"commenting on {key}", {"body": body})
        return status

    async def _transition(self, http: aiohttp.ClientSession, issue: Mapping[str, Any],
                          name: str, comment: dict[str, Any]) -> int:
        key = str(issue["key"])
        wanted = name.casefold()
        options = [t for t in issue.get("transitions") or []
                   if isinstance(t, dict) and t.get("id") is not None]
        # The transition's own name first, then the status it leads to: simplified
        # workflows name transitions after their target, classic ones do not.
        match = next((t for t in options if str(t.get("name", "")).casefold() == wanted),
                     None) or next((t for t in options if str(
                         (t.get("to") or {}).get("name", "")).casefold() == wanted), None)
        if match is None:
            names = ", ".join(repr(str(t.get("name"))) for t in options) or "none"
            raise _Answered(Outcome.permanent(self._scrub(
                f"{key} has no transition named {name!r} from its status; available: "
                f"{names}")))
        path = f"/rest/api/3/issue/{quote(key, safe='')}/transitions"
        body = {"transition": {"id": str(match["id"])},
                "update": {"comment": [{"add": {"body": comment}}]}}
        try:
            status, _ = await self._call(http, "POST", path, f"transitioning {key}", body)
            return status
        except _Answered as refused:
            errors = refused.doc.get("errors") if isinstance(refused.doc, dict) else None
            if refused.outcome.status != 400 or not isinstance(errors, dict) or (
                    "comment" not in errors):
                raise
        # The transition screen does not take a comment: the same move, then the comment.
        await self._call(http, "POST", path, f"transitioning {key}",
                         {"transition": {"id": str(match["id"])}})
        return await self._comment(http, key, comment)

    async def _trigger(self, notification: Notification,
                       http: aiohttp.ClientSession) -> Outcome:
        inc = notification.incident
        own = self.label(inc["id"])
        previous = self.label(inc["recurrence_of"]) if inc.get("recurrence_of") else None
        found = await self._search(http, [own, previous] if previous else [own])
        issue = next((i for i in found if own in self._labels_of(i)), None)
        if issue is not None and previous is None:
            return Outcome.ok(f"found {issue['key']} by label {own}", 200,
                              self.ref(str(issue["key"])))
        if issue is None and previous is not None:
            issue = next((i for i in found if previous in self._labels_of(i)), None)
        if issue is None:
            if 1 < notification.attempt <= SEARCH_LAG_ATTEMPTS:
                # The first attempt may have created the issue and lost the answer, and
                # a fresh issue is not searchable at once: creating now could open a
                # second one. Wait a few retries for the search to catch up.
                return Outcome.retryable(
                    f"no issue carries label {own} (not yet searchable?); attempt "
                    f"{notification.attempt} waits for Jira's search before creating, "
                    f"up to attempt {SEARCH_LAG_ATTEMPTS}")
            return await self._create(notification, http, own)
        return await self._recur(notification, http, issue, own)

    @classmethod
    def _newer_owner(cls, issue: Mapping[str, Any], incident_id: str) -> str | None:
        """The newest incident after ``incident_id`` whose label the issue carries, if
        any. Baton's ids are ULIDs: of equal length, they sort in time order."""
        newer = [label.removeprefix(_LABEL_PREFIX) for label in cls._labels_of(issue)
                 if label.startswith(_LABEL_PREFIX)]
        newer = [i for i in newer if len(i) == len(incident_id) and i > incident_id]
        return max(newer) if newer else None

    @staticmethod
    def _labels_of(issue: Mapping[str, Any]) -> list[str]:
        labels = _fields(issue).get("labels")
        return [str(x) for x in labels] if isinstance(labels, list) else []

    async def _recur(self, notification: Notification, http: aiohttp.ClientSession,
                     issue: Mapping[str, Any], own: str) -> Outcome:
        """Bring the previous incident's issue back for this recurrence."""
        key = str(issue["key"])
        comment = adf.recurrence(notification.incident)
        path = f"/rest/api/3/issue/{quote(key, safe='')}"
        labelled = own in self._labels_of(issue)
        if _category(issue) != "done":
            if labelled:  # an earlier attempt finished the job
                return Outcome.ok(f"{key} already carries {own}", 200, self.ref(key))
            await self._comment(http, key, comment)
            status, _ = await self._call(http, "PUT", path, f"labelling {key}",
                                         {"update": {"labels": [{"add": own}]}})
            return Outcome.ok(f"recurrence noted on open {key}", status, self.ref(key))
        if not labelled:  # the label first, so a retry finds this issue by its own label
            await self._call(http, "PUT", path, f"labelling {key}",
                             {"update": {"labels": [{"add": own}]}})
        status = await self._transition(http, await self._issue(http, key),
                                        self.reopen_transition, comment)
        return Outcome.ok(f"reopened {key} for recurrence", status, self.ref(key))

    def _create_body(self, notification: Notification, own: str) -> dict[str, Any]:
        inc = notification.incident
        alerts = inc.get("alerts") or []
        title = inc.get("title") or (alerts[0].get("summary") if alerts else "") or inc["id"]
        # One line, cut by UTF-16 units as Jira counts (an emoji is two), never inside one.
        summary = clip(one_line(str(title)), SUMMARY_CHARS, utf16=True)
        fields: dict[str, Any] = {
            "project": {"key": self.project},
            "issuetype": {"name": self.issue_type},
            "summary": summary,
            "description": adf.description(inc, notification.target),
            "labels": list(dict.fromkeys(["baton", own, *self.labels])),
        }
        if priority := self.priorities.get(str(inc.get("severity"))):
            fields["priority"] = {"name": priority}
        return {"fields": fields}

    async def _create(self, notification: Notification, http: aiohttp.ClientSession,
                      own: str) -> Outcome:
        status, doc = await self._call(http, "POST", "/rest/api/3/issue", "creating issue",
                                       self._create_body(notification, own))
        key = doc.get("key") if isinstance(doc, dict) else None
        if not key:  # a 2xx without the usual body (a proxy): the label still finds it
            found = await self._search(http, [own])
            key = found[0]["key"] if found else None
        if not key:
            return Outcome.ok(f"created an issue labelled {own}", status)
        return Outcome.ok(f"created {key}", status, self.ref(str(key)))

    async def _follow_up(self, notification: Notification,
                         http: aiohttp.ClientSession) -> Outcome:
        inc = notification.incident
        key = next((str(r["id"]) for r in inc.get("external_refs") or []
                    if r.get("connector") == self.name and r.get("id")), None)
        if key is None:
            own = self.label(inc["id"])
            found = await self._search(http, [own])
            if not found:
                # Jira's search lags behind writes by seconds, so "not yet" is possible;
                # the dispatcher's attempt limit ends the wait if the trigger never landed.
                return Outcome.retryable(f"no Jira issue carries label {own} (yet); "
                                         f"nothing to {notification.action}")
            key = str(found[0]["key"])
        if notification.action == "resolve":
            issue = await self._issue(http, key)
            if _category(issue) == "done":  # a retry, or closed in Jira already
                return Outcome.ok(f"{key} is already done", 200, self.ref(key))
            if newer := self._newer_owner(issue, str(inc["id"])):
                # A recurrence reuses this issue (it added its own label): a resolve of
                # the old incident, delivered late, must not close the new one's issue.
                return Outcome.ok(f"{key} now tracks Baton incident {newer}; left open "
                                  "to the newer incident", 200, self.ref(key))
            status = await self._transition(http, issue, self.resolve_transition,
                                            adf.action_comment(notification))
            return Outcome.ok(f"resolved {key}", status, self.ref(key))
        status = await self._comment(http, key, adf.action_comment(notification))
        return Outcome.ok(f"commented on {key}", status, self.ref(key))

    # --- inbound ------------------------------------------------------------------------
    def callback(self, body: bytes, headers: Mapping[str, str],
                 now: float) -> list[CallbackEvent]:
        return parse_webhook(body, headers, secret=self._webhook_secret,
                             done_statuses=self._done, acknowledge_statuses=self._ack,
                             account_id=self._account_id)
