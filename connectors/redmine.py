"""Redmine REST API: one issue per incident, found again by a marker in its subject.

Redmine has no idempotency key, so the subject ends with ``[baton:<incident id>]`` and a
trigger first searches for it (``status_id=*`` so closed issues count) before creating:
a retry after a lost response finds the issue and creates nothing. Later actions go to
the issue recorded in the incident's ``external_refs`` and fall back to the same search.
A recurrence moves the marker to the new incident; a resolve of the old incident that
arrives after that (it sat in backoff) finds another incident's marker and leaves the
issue open to it.

Redmine quietly ignores a status the workflow does not allow (the update still answers
204), so a status change is read back and an unapplied one is a permanent failure, not a
silent success. Tracker, priority and status names are looked up once per connector
(``/trackers.json``, ``/enumerations/issue_priorities.json``, ``/issue_statuses.json``);
integers are taken as ids.

Redmine cannot call back, so the connector polls (``sync``): an open incident's issue that
a human closed becomes a ``resolve`` event. Baton's own journal notes start with
``[baton]``; a close made with such a note is Baton's and yields nothing.

The subject is one line of at most 255 characters (Redmine's column; Ruby counts
characters). Descriptions and notes are rendered with the instance's text formatting
(``text_formatting``: Textile by default, or Markdown): alert text goes into a block that
formatter shows verbatim, so ``*x*``, ``"a":http://...`` or ``<b>`` in an alert stays text.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import aiohttp

from baton import __version__
from baton.errors import ConfigError
from baton.model import ExternalRef, Notification, Outcome
from baton.plugin import CallbackEvent, Connector, classify_status
from baton.secret import Secret

from ._config import base_url, json_request
from ._markup import REDMINE_FORMATS, redmine_verbatim
from ._text import one_line

PRIORITIES = {"critical": "Urgent", "error": "High", "warning": "Normal", "info": "Low"}
NOTE_PREFIX = "[baton]"
GENERIC_NOTE = "Incident updated in Baton."
SUBJECT_CHARS = 255  # Redmine's column size
TEXT_CHARS = 60000  # well inside Redmine's text columns, readable in a browser
PAGE = 100  # Redmine's largest page
_DETAIL_CHARS = 200
_CONCURRENCY = 4  # journal reads in flight during one sync
_READ_BYTES = 16 * 1024 * 1024  # a page of 100 issues with long descriptions
Json = dict[str, Any]
_LINK = re.compile(r"^https?://[^\s<>\"'`]+$")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def marker(incident_id: str) -> str:
    return f"[baton:{incident_id}]"


_MARKER = re.compile(r"\[baton:([^\]]+)\]")


def owner(issue: Mapping[str, Any]) -> str | None:
    """The incident whose marker the issue's subject carries now (a recurrence moves it)."""
    found = _MARKER.findall(str(issue.get("subject") or ""))
    return str(found[-1]) if found else None


class RedmineError(Exception):
    """A Redmine call that did not succeed, already classified (``outcome``)."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        super().__init__(outcome.detail)


class RedmineConnector(Connector):
    """One issue per incident; see ``schemas/connectors/redmine.schema.json``."""

    type: ClassVar[str] = "redmine"
    idempotent: ClassVar[bool] = False
    polls: ClassVar[bool] = True

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        key: str | Secret = config["api_key"]
        self._key = key.reveal() if isinstance(key, Secret) else key
        self.base_url = base_url(name, "url", config["url"])
        self.project = str(config["project"])
        self._tracker: str | int | None = config.get("tracker")
        self._priorities: dict[str, str | int] = {**PRIORITIES,
                                                   **(config.get("priorities") or {})}
        self._closed: str | int = config.get("closed_status", "Closed")
        self._reopen: str | int = config.get("reopen_status", "New")
        self._assignee: int | None = config.get("assigned_to_id")
        self._names: dict[str, dict[str, int]] = {}  # lookup path -> name -> id
        self._closed_ids: set[int] | None = None
        self.formatting: str = config.get("text_formatting", "textile")
        if self.formatting not in REDMINE_FORMATS:  # the schema refuses it at load already
            raise ConfigError([f"connectors.{name}.text_formatting: one of "
                               f"{', '.join(REDMINE_FORMATS)}"])

    # --- the wire -------------------------------------------------------------------

    def _scrub(self, text: str, limit: int = _DETAIL_CHARS * 2) -> str:
        return self.scrub(text, limit)


    async def _call(self, http: aiohttp.ClientSession, method: str, path: str, *,
                    params: Sequence[tuple[str, str]] = (), body: Json | None = None
                    ) -> tuple[int, Any]:
        """One request; the status and the decoded JSON (None when there is none).
        Anything but 2xx raises ``RedmineError`` with the shared status table."""
        answer = await json_request(
            http, method, f"{self.base_url}{path}", {
                "X-Redmine-API-Key": self._key,  # revealed only for the wire
                "Accept": "application/json", "User-Agent": f"baton/{__version__}"},
            limit=_READ_BYTES, params=list(params), body=body)
        doc = answer.doc
        if answer.ok:
            if doc is None and answer.text.strip():
                # Never read a garbled search answer as "no issue yet": that would open
                # a second one. Trying again is safe, a create included.
                raise RedmineError(Outcome.retryable(
                    f"HTTP {answer.status} from Redmine {method} {path}: not JSON",
                    answer.status))
            return answer.status, doc
        detail = f"HTTP {answer.status} from Redmine {method} {path}"
        # Redmine's validation errors are {"errors": ["Subject cannot be blank", ...]}.
        errors = doc.get("errors") if isinstance(doc, dict) else None
        reason = "; ".join(map(str, errors)) if isinstance(errors, list) else (
            "" if doc is not None else answer.text)
        if reason := self._scrub(reason, _DETAIL_CHARS):
            detail += f": {reason}"
        raise RedmineError(classify_status(answer.status, self._scrub(detail),
                                           answer.retry_after))

    async def _ids(self, http: aiohttp.ClientSession, path: str, key: str) -> dict[str, int]:
        if path not in self._names:
            _, doc = await self._call(http, "GET", path)
            items = (doc or {}).get(key) or []
            self._names[path] = {str(i["name"]).casefold(): int(i["id"]) for i in items}
            if key == "issue_statuses":
                self._closed_ids = {int(i["id"]) for i in items if i.get("is_closed")}
        return self._names[path]

    async def _resolve_id(self, http: aiohttp.ClientSession, what: str, value: str | int,
                          path: str, key: str) -> int:
        if isinstance(value, int) or value.isdigit():
            return int(value)
        found = (await self._ids(http, path, key)).get(value.casefold())
        if found is None:
            raise RedmineError(Outcome.permanent(
                f"{what} {value!r} is not known to Redmine ({path}); check the config"))
        return found

    async def _status_id(self, http: aiohttp.ClientSession, value: str | int) -> int:
        return await self._resolve_id(http, "status", value, "/issue_statuses.json",
                                      "issue_statuses")

    async def _is_closed(self, http: aiohttp.ClientSession, issue: Json) -> bool:
        status = issue.get("status") or {}
        if "is_closed" in status:  # Redmine 5 says so in the issue itself
            return bool(status["is_closed"])
        await self._ids(http, "/issue_statuses.json", "issue_statuses")
        return int(status.get("id", 0)) in (self._closed_ids or set())

    async def find(self, http: aiohttp.ClientSession, incident_id: str) -> Json | None:
        """The oldest issue whose subject carries the incident's marker, open or closed."""
        tag = marker(incident_id)
        _, doc = await self._call(http, "GET", "/issues.json", params=[
            ("f[]", "status_id"), ("op[status_id]", "*"),
            ("f[]", "subject"), ("op[subject]", "~"), ("v[subject][]", tag),
            ("sort", "id"), ("limit", "25")])
        # "contains" ignores case; the marker must match exactly.
        hits = [i for i in (doc or {}).get("issues") or () if tag in str(i.get("subject"))]
        return min(hits, key=lambda i: int(i["id"])) if hits else None

    async def _get(self, http: aiohttp.ClientSession, issue_id: int) -> Json:
        _, doc = await self._call(http, "GET", f"/issues/{issue_id}.json")
        issue: Json = (doc or {}).get("issue") or {}
        return issue

    async def _set_status(self, http: aiohttp.ClientSession, issue_id: int, body: Json,
                          wanted: int) -> None:
        """Update with a status change and read it back: Redmine drops a status its
        workflow does not allow for this user and tracker, and still answers 204."""
        await self._call(http, "PUT", f"/issues/{issue_id}.json", body={"issue": body})
        now = (await self._get(http, issue_id)).get("status") or {}
        if int(now.get("id", 0)) != wanted:
            raise RedmineError(Outcome.permanent(
                f"Redmine kept issue {issue_id} in status {now.get('name')!r}: its workflow "
                f"does not allow status id {wanted} for this API user and tracker"))

    # --- what Baton writes ------------------------------------------------------------

    def subject(self, incident: Mapping[str, Any]) -> str:
        tag = marker(incident["id"])
        alerts = incident.get("alerts") or []
        title = incident.get("title") or (alerts[0].get("summary") if alerts else "") \
            or incident.get("key") or "Baton incident"
        return f"{_clip(one_line(title), SUBJECT_CHARS - len(tag) - 1)} {tag}"

    def verbatim(self, text: str, limit: int = TEXT_CHARS - 200) -> str:
        """Alert text as a block the instance's formatter shows as it is, the whole block
        (its defused tags and its fences too) within ``limit``: a cut made after it could
        drop the closing tag or fence, and the rest would be formatted after all."""
        keep = limit
        while len(block := redmine_verbatim(_clip(text, keep), self.formatting)) > limit \
                and keep > 1:
            keep = max(1, keep - (len(block) - limit))
        return block

    def description(self, incident: Mapping[str, Any]) -> str:
        head = (f"Baton incident {incident['id']} ({incident.get('status')}, severity "
                f"{incident.get('severity')})")
        lines = [f"Key: {incident.get('key')}"]
        links: list[str] = []
        if incident.get("service"):
            lines.append(f"Service: {incident['service']}")
        lines += ["", "Alerts:"]
        for alert in incident.get("alerts") or ():
            text = str(alert.get("summary") or alert.get("dedup_key"))
            if alert.get("description"):
                text += f": {alert['description']}"
            lines.append(f"* {text}")
            if labels := alert.get("labels"):
                lines.append("  labels: " + ", ".join(f"{k}={v}" for k, v in labels.items()))
            for link in alert.get("links") or ():
                lines.append(f"  link: {link.get('text') or link['href']} {link['href']}")
                if _LINK.match(str(link["href"])) and link["href"] not in links:
                    links.append(link["href"])
        block = self.verbatim(chr(10).join(lines))
        # Plain URLs after the block, one a line, so every formatter still links them; only
        # those that fit whole (a URL cut short would still be linked, to the wrong place).
        room = TEXT_CHARS - len(head) - len(block) - 3
        shown: list[str] = []
        for href in links[:20]:
            if len(href) + 1 > room:
                break
            shown.append(href)
            room -= len(href) + 1
        tail = "".join(f"\n{href}" for href in shown)
        return f"{head}\n\n{block}\n{tail}".rstrip()

    def note(self, notification: Notification) -> str:
        inc, action = notification.incident, notification.action
        if action == "acknowledge":
            text = f"Acknowledged in Baton by {inc.get('acknowledged_by') or 'someone'}."
        elif action == "resolve":
            text = f"Resolved in Baton by {inc.get('resolved_by') or 'someone'}."
        elif action == "note":
            notes = [e for e in inc.get("timeline") or () if e.get("type") == "note"]
            last = notes[-1] if notes else {}
            said = (last.get("detail") or {}).get("text")
            text = (f"Note from {one_line(last.get('actor') or 'someone')}:\n\n"
                    f"{self.verbatim(str(said))}" if said else GENERIC_NOTE)
        else:
            level = (inc.get("escalation") or {}).get("level")
            text = (f"Incident updated in Baton: status {inc.get('status')}, severity "
                    f"{inc.get('severity')}, {inc.get('event_count')} event(s), "
                    f"escalation level {level}.")
        return _clip(f"{NOTE_PREFIX} {text}", TEXT_CHARS)

    async def create_body(self, http: aiohttp.ClientSession,
                          incident: Mapping[str, Any]) -> Json:
        body: Json = {"project_id": self.project, "subject": self.subject(incident),
                      "description": self.description(incident)}
        if self._tracker is not None:
            body["tracker_id"] = await self._resolve_id(
                http, "tracker", self._tracker, "/trackers.json", "trackers")
        severity = str(incident.get("severity"))
        if (priority := self._priorities.get(severity)) is not None:
            try:
                body["priority_id"] = await self._resolve_id(
                    http, "priority", priority, "/enumerations/issue_priorities.json",
                    "issue_priorities")
            except RedmineError:
                if priority != PRIORITIES.get(severity):
                    raise  # a configured name must exist; a default may be localised
        if self._assignee is not None:
            body["assigned_to_id"] = self._assignee
        return {"issue": body}

    # --- the actions ------------------------------------------------------------------

    def _ref(self, issue_id: int) -> ExternalRef:
        return ExternalRef(self.name, str(issue_id), f"{self.base_url}/issues/{issue_id}")

    async def _recorded(self, http: aiohttp.ClientSession,
                        incident: Mapping[str, Any]) -> int | None:
        for ref in incident.get("external_refs") or ():
            if ref.get("connector") == self.name and str(ref.get("id")).isdigit():
                return int(ref["id"])
        found = await self.find(http, incident["id"])
        return int(found["id"]) if found else None

    async def _open(self, http: aiohttp.ClientSession, incident: Mapping[str, Any]
                    ) -> tuple[str, int | None, int]:
        """(detail, issue id, status) of the issue that is now this incident's."""
        if found := await self.find(http, incident["id"]):
            return "found the incident's issue; nothing created", int(found["id"]), 200
        previous = incident.get("recurrence_of")
        if previous and (old := await self.find(http, str(previous))):
            issue_id = int(old["id"])
            body: Json = {"subject": self.subject(incident), "notes": (
                f"{NOTE_PREFIX} The problem is back as Baton incident {incident['id']}; "
                "this issue tracks it again.\n\n" + self.description(incident))}
            if await self._is_closed(http, old):
                wanted = await self._status_id(http, self._reopen)
                await self._set_status(http, issue_id, body | {"status_id": wanted}, wanted)
                return f"reopened issue {issue_id} of incident {previous}", issue_id, 204
            await self._call(http, "PUT", f"/issues/{issue_id}.json", body={"issue": body})
            return f"issue {issue_id} of incident {previous} was still open", issue_id, 204
        status, doc = await self._call(http, "POST", "/issues.json",
                                       body=await self.create_body(http, incident))
        created = (doc or {}).get("issue") if isinstance(doc, dict) else None
        if isinstance(created, dict) and created.get("id"):
            return "created", int(created["id"]), status
        # A success without the issue in it: the marker says which one it was.
        found = await self.find(http, incident["id"])
        return "created", (int(found["id"]) if found else None), status

    async def _act(self, notification: Notification, http: aiohttp.ClientSession
                   ) -> Outcome:
        inc, action = notification.incident, notification.action
        if action == "trigger":
            detail, issue_id, status = await self._open(http, inc)
        elif (issue_id := await self._recorded(http, inc)) is None:
            if action != "update":
                # Nothing to tell: the trigger never made an issue (it failed for good),
                # and opening one now only to close or annotate it would be noise.
                return Outcome.ok(f"no Redmine issue for incident {inc['id']}; "
                                  f"{action} needs none", 200)
            detail, issue_id, status = await self._open(http, inc)
        elif action == "resolve":
            issue = await self._get(http, issue_id)
            if await self._is_closed(http, issue):
                return Outcome.ok(f"issue {issue_id} already closed", 200,
                                  self._ref(issue_id))
            if (newer := owner(issue)) is not None and newer != inc["id"]:
                # A recurrence took the issue over (it moved the marker); this resolve
                # of the old incident, delivered late, must not close the new one's.
                return Outcome.ok(f"issue {issue_id} now tracks Baton incident {newer}; "
                                  "left open to the newer incident", 200,
                                  self._ref(issue_id))
            wanted = await self._status_id(http, self._closed)
            await self._set_status(http, issue_id, {"notes": self.note(notification),
                                                    "status_id": wanted}, wanted)
            detail, status = f"closed issue {issue_id}", 204
        else:
            status, _ = await self._call(http, "PUT", f"/issues/{issue_id}.json", body={
                "issue": {"notes": self.note(notification)}})
            detail = f"{action} noted on issue {issue_id}"
        return Outcome.ok(detail, status, self._ref(issue_id) if issue_id else None)

    async def send(self, notification: Notification, http: aiohttp.ClientSession) -> Outcome:
        # CancelledError (the dispatcher's timeout or shutdown) is not caught: it must
        # propagate, or a hung vendor would wedge the worker.
        try:
            return await self._act(notification, http)
        except RedmineError as exc:
            return exc.outcome
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            message = f"{type(exc).__name__} calling Redmine at {self.base_url}: {exc}"
            return Outcome.retryable(self._scrub(message))
        except (KeyError, TypeError, ValueError) as exc:  # an answer not of Redmine's shape
            return Outcome.permanent(self._scrub(f"unexpected answer from Redmine: {exc!r}"))

    # --- polling ----------------------------------------------------------------------

    async def _closer(self, http: aiohttp.ClientSession, issue_id: int) -> Json | None:
        """The journal that closed the issue (the last status change), if any."""
        _, doc = await self._call(http, "GET", f"/issues/{issue_id}.json",
                                  params=[("include", "journals")])
        closing = [j for j in ((doc or {}).get("issue") or {}).get("journals") or ()
                   if any(d.get("name") == "status_id" and str(d.get("new_value")).isdecimal()
                          and str(d.get("new_value")).isascii()
                          and int(d["new_value"]) in (self._closed_ids or set())
                          for d in j.get("details") or ())]
        return closing[-1] if closing else None

    async def sync(self, refs: Sequence[ExternalRef],
                   http: aiohttp.ClientSession) -> list[CallbackEvent]:
        """Closed issues among ``refs`` as ``resolve`` events, in pages of 100 ids."""
        ids = sorted({int(r.id) for r in refs if r.connector == self.name and r.id.isdigit()})
        events: list[CallbackEvent] = []
        # Who closed an issue takes a request per issue: a few at a time, so a page full
        # of closed issues stays well inside the round's timeout.
        gate = asyncio.Semaphore(_CONCURRENCY)

        async def closer(issue_id: int) -> Json | None:
            async with gate:
                return await self._closer(http, issue_id)

        for start in range(0, len(ids), PAGE):
            page = ids[start:start + PAGE]
            _, doc = await self._call(http, "GET", "/issues.json", params=[
                ("issue_id", ",".join(map(str, page))), ("status_id", "*"),
                ("limit", str(PAGE))])
            issues = (doc or {}).get("issues") or []
            if len(issues) < len(page):
                # Redmine answers a list for an unknown key anonymously (200, no private
                # issues): ask who we are, which is a 401 then, rather than see nothing.
                await self._call(http, "GET", "/users/current.json")
            closed = [i for i in issues if await self._is_closed(http, i)]
            if not closed:
                continue
            await self._ids(http, "/issue_statuses.json", "issue_statuses")
            journals: list[Json | None] = []
            for found in await asyncio.gather(*(closer(int(i["id"])) for i in closed),
                                              return_exceptions=True):
                if isinstance(found, BaseException):
                    raise found  # after all have ended: none is left running
                journals.append(found)
            for issue, journal in zip(closed, journals, strict=True):
                if journal and str(journal.get("notes") or "").startswith(NOTE_PREFIX):
                    continue  # Baton closed it itself
                who = ((journal or {}).get("user") or {}).get("name")
                events.append(CallbackEvent(
                    action="resolve",
                    event_id=f"redmine-closed-{issue['id']}-"
                             f"{issue.get('closed_on') or issue.get('updated_on')}",
                    actor=f"{who} (redmine)" if who else "redmine",
                    external_id=str(issue["id"])))
        return events
