"""ServiceNow Table API: one ``incident`` record per Baton incident.

The record carries ``correlation_id = baton-<incident id>`` (and ``correlation_display =
Baton``). ServiceNow has no idempotency key, so a trigger first searches
``sysparm_query=correlation_id=baton-<id>`` and creates only when nothing matches: a retry
after a lost response finds the record and creates nothing. Later actions PATCH the record
whose ``sys_id`` the dispatcher recorded (``external_refs``), falling back to the same
search when there is none (a create answered 204, say). update, acknowledge and note add
``work_notes``; resolve sets ``state = 6`` (Resolved) with ``close_code`` and
``close_notes``. The external reference is the ``sys_id`` with a link to the record.

Callbacks come from an outbound REST message that a business rule on ``incident`` sends
(the script ships as ``examples/servicenow-business-rule.js``), authenticated with Basic
(``callback_username``/``callback_password``) or Bearer (``callback_token``); see
``callback`` for the body. ServiceNow signs nothing and sends no timestamp, so replays are
caught by the core's event-id dedup, not by a time window.

``short_description`` is one line of at most 160 characters (the out-of-box column).
Journal fields render text between ``[code]`` and ``[/code]`` as HTML; those tags in
alert text or notes are defused, so work notes always show as the plain text they are.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import aiohttp

from baton import __version__
from baton.errors import AuthError, ConfigError, PayloadError
from baton.model import ExternalRef, Notification, Outcome
from baton.plugin import CallbackEvent, Connector, classify_status

from ._config import base_url, json_request, reveal
from ._markup import servicenow_journal
from ._text import one_line

TABLE = "/api/now/table/incident"
DEFAULT_LEVELS = {"critical": {"urgency": 1, "impact": 1}, "error": {"urgency": 1, "impact": 2},
                  "warning": {"urgency": 2, "impact": 2}, "info": {"urgency": 3, "impact": 3}}
DEFAULT_CLOSE_CODE = "Solution provided"
RESOLVED, CLOSED, IN_PROGRESS = "6", "7", "2"
DONE = frozenset({RESOLVED, CLOSED, "8"})  # 8: Canceled
MARKER = "[Baton]"  # starts every work note Baton writes; callbacks skip such notes
SHORT_CHARS, TEXT_CHARS = 160, 4000  # the out-of-box column lengths
_FIELDS = "sys_id,number,state,correlation_id"
_DETAIL_CHARS = 200
_READ_BYTES = 65536  # a record limited to _FIELDS, or ServiceNow's short error JSON


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ServiceNowConnector(Connector):
    """Incidents through the Table API; see ``schemas/connectors/servicenow.schema.json``."""

    type: ClassVar[str] = "servicenow"
    idempotent: ClassVar[bool] = False  # no vendor key: search by correlation_id instead
    accepts_callbacks: ClassVar[bool] = True

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        self.base_url = base_url(name, "instance_url", config["instance_url"])
        self.username: str = config["username"]
        password, token = reveal(config.get("password")), reveal(config.get("token"))
        if bool(password) == bool(token):
            raise ConfigError([f"connectors.{name}: give exactly one of password, token"])
        basic = base64.b64encode(f"{self.username}:{password}".encode()).decode()
        self._auth = f"Bearer {token}" if token else f"Basic {basic}"
        self._secrets = [s for s in (password, token, basic) if s]
        self._levels = {**DEFAULT_LEVELS, **(config.get("severity_map") or {})}
        self._close_code: str = config.get("close_code") or DEFAULT_CLOSE_CODE
        self._extra = {k: str(config[k]) for k in ("caller_id", "assignment_group", "category")
                       if config.get(k)}
        self._cb_user: str = config.get("callback_username") or ""
        self._cb_password = reveal(config.get("callback_password"))
        self._cb_token = reveal(config.get("callback_token"))
        self._secrets += [s for s in (self._cb_password, self._cb_token) if s]

    @staticmethod
    def correlation_id(incident: Mapping[str, Any]) -> str:
        return f"baton-{incident['id']}"

    def record_url(self, sys_id: str) -> str:
        return f"{self.base_url}/nav_to.do?uri={quote(f'incident.do?sys_id={sys_id}', safe='')}"

    def _scrub(self, text: str, limit: int = _DETAIL_CHARS * 2) -> str:
        return self.scrub(text, limit, also=self._secrets)


    # -- request bodies --------------------------------------------------------------

    def create_body(self, notification: Notification) -> dict[str, str]:
        inc = notification.incident
        alerts = inc.get("alerts") or []
        lines = [f"Baton incident {inc['id']} ({inc.get('status')}, {inc.get('severity')})"]
        if inc.get("service"):
            lines.append(f"Service: {inc['service']}")
        for alert in alerts:
            lines.append(f"- {alert.get('summary', '')}" + (
                f": {alert['description']}" if alert.get("description") else ""))
            lines += [f"  {link['href']}" for link in alert.get("links") or ()]
        if person := (notification.target or {}).get("person"):
            lines.append(f"Notified: {person}")
        title = inc.get("title") or (alerts[0].get("summary") if alerts else "") or inc["key"]
        level = self._levels.get(str(inc.get("severity")), DEFAULT_LEVELS["error"])
        return {
            "short_description": _clip(one_line(title), SHORT_CHARS),
            "description": _clip("\n".join(lines), TEXT_CHARS),
            "urgency": str(level["urgency"]),
            "impact": str(level["impact"]),
            "correlation_id": self.correlation_id(inc),
            "correlation_display": "Baton",
            **self._extra,
        }

    def change_body(self, notification: Notification) -> dict[str, str]:
        inc, action = notification.incident, notification.action
        if action == "resolve":
            by = inc.get("resolved_by") or "baton"
            return {"state": RESOLVED, "close_code": self._close_code,
                    "close_notes": f"Resolved in Baton by {by}.",
                    "work_notes": servicenow_journal(f"{MARKER} Resolved in Baton by {by}.")}
        if action == "acknowledge":
            text = f"Acknowledged in Baton by {inc.get('acknowledged_by') or 'baton'}."
        elif action == "note":
            notes = [e for e in inc.get("timeline") or () if e.get("type") == "note"]
            last = notes[-1] if notes else {}
            said = (last.get("detail") or {}).get("text")
            text = (f"Note from {last.get('actor') or 'baton'}: {said}" if said
                    else "Incident updated in Baton.")
        else:
            esc = inc.get("escalation") or {}
            text = (f"Incident updated in Baton: status {inc.get('status')}, escalation "
                    f"level {esc.get('level')}, {inc.get('event_count', 1)} alert event(s).")
        return {"work_notes": _clip(servicenow_journal(f"{MARKER} {text}"), TEXT_CHARS)}

    # -- the wire --------------------------------------------------------------------

    async def _call(self, http: aiohttp.ClientSession, method: str, url: str,
                    params: Mapping[str, str], body: Mapping[str, str] | None = None,
                    ) -> tuple[Outcome, Any]:
        """One request: its classified outcome and the ``result`` member of a 2xx body."""
        answer = await json_request(
            http, method, url, {
                "Authorization": self._auth,  # revealed only for the wire
                "Accept": "application/json", "User-Agent": f"baton/{__version__}"},
            limit=_READ_BYTES, params=params, body=body)
        doc = answer.doc
        result = doc.get("result") if isinstance(doc, dict) else None
        detail = f"HTTP {answer.status} {method} {TABLE}"
        if not answer.ok:
            # ServiceNow's errors: {"error": {"message", "detail"}, "status": "failure"}
            err = doc.get("error") if isinstance(doc, dict) else None
            reason = (" ".join(str(err.get(k) or "") for k in ("message", "detail"))
                      if isinstance(err, dict) else answer.text)
            if reason := self._scrub(reason, _DETAIL_CHARS):
                detail += f": {reason}"
        return classify_status(answer.status, self._scrub(detail), answer.retry_after), result

    async def _read(self, http: aiohttp.ClientSession, url: str, params: Mapping[str, str],
                    many: bool) -> tuple[Outcome, Any]:
        """A GET whose 2xx answer must be a Table API result (a list of records when
        ``many``, else one record). Anything else (a hibernating instance's HTML page, a
        proxy's login form) is retried, never taken for "no such record", which would
        open a duplicate."""
        outcome, result = await self._call(http, "GET", url, params)
        if outcome.kind == "ok" and not isinstance(result, list if many else dict):
            return Outcome.retryable(f"{outcome.detail}: not a Table API result",
                                     outcome.status), None
        return outcome, result

    async def _find(self, http: aiohttp.ClientSession, correlation: str
                    ) -> tuple[Outcome, dict[str, Any] | None]:
        outcome, result = await self._read(http, self.base_url + TABLE, {
            "sysparm_query": f"correlation_id={correlation}", "sysparm_fields": _FIELDS,
            "sysparm_limit": "1"}, many=True)
        # Matched again here: ServiceNow drops a query condition it cannot evaluate (an
        # unreadable column, say) and would then answer with any incident.
        found = [r for r in result or () if isinstance(r, dict) and r.get("sys_id")
                 and r.get("correlation_id") == correlation]
        return outcome, (found[0] if found else None)

    def _ok(self, detail: str, status: int | None, record: Mapping[str, Any]) -> Outcome:
        sys_id = str(record["sys_id"])
        number = record.get("number") or sys_id
        return Outcome.ok(f"{detail} ({number})", status,
                          ExternalRef(self.name, sys_id, self.record_url(sys_id)))

    async def _perform(self, notification: Notification, http: aiohttp.ClientSession
                       ) -> Outcome:
        inc, action = notification.incident, notification.action
        correlation = self.correlation_id(inc)
        refs = [r for r in inc.get("external_refs") or () if r.get("connector") == self.name]
        params = {"sysparm_fields": _FIELDS}
        record: dict[str, Any] | None
        if refs:
            record = {"sys_id": str(refs[-1]["id"])}
            url = f"{self.base_url}{TABLE}/{quote(record['sys_id'], safe='')}"
            if action == "trigger":
                return self._ok("already recorded", None, record)
            if action == "resolve":  # read the state first: see below
                outcome, record = await self._read(http, url, params, many=False)
                if outcome.kind != "ok" or record is None:
                    return outcome
        else:
            found, record = await self._find(http, correlation)
            if found.kind != "ok":
                return found
            if record is None:
                if action not in ("trigger", "update"):
                    return Outcome.permanent(f"no ServiceNow incident with correlation_id "
                                             f"{correlation} to {action}", 404)
                outcome, result = await self._call(http, "POST", self.base_url + TABLE,
                                                   params, self.create_body(notification))
                if outcome.kind != "ok" or not isinstance(result, dict) or not result.get(
                        "sys_id"):
                    return outcome  # a 2xx without a record (204): later actions search
                return self._ok(outcome.detail, outcome.status, result)
            if action == "trigger":
                return self._ok(f"{found.detail}: exists", found.status, record)
            url = f"{self.base_url}{TABLE}/{quote(str(record['sys_id']), safe='')}"
        if action == "resolve" and record.get("state") in DONE:
            # Someone resolved it in ServiceNow (maybe the very change that resolved Baton's
            # incident): keep their close code and notes rather than overwrite them.
            return self._ok(f"already in state {record['state']}", None, record)
        outcome, result = await self._call(http, "PATCH", url, params,
                                           self.change_body(notification))
        if outcome.kind != "ok":
            return outcome
        return self._ok(outcome.detail, outcome.status,
                        result if isinstance(result, dict) and result.get("sys_id")
                        else record)

    async def send(self, notification: Notification, http: aiohttp.ClientSession) -> Outcome:
        # CancelledError (the dispatcher's timeout or shutdown) is not caught: it must
        # propagate, or a hung vendor would wedge the worker.
        try:
            return await self._perform(notification, http)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            message = f"{type(exc).__name__} calling ServiceNow at {self.base_url}: {exc}"
            return Outcome.retryable(self._scrub(message))

    # -- callbacks -------------------------------------------------------------------

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        # Case-insensitive, whatever mapping the caller hands over.
        given = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, value = given.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and self._cb_token:
            if hmac.compare_digest(value.encode(), self._cb_token.encode()):
                return
        elif scheme.lower() == "basic" and self._cb_password:
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(
                    ":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", ""
            same_user = hmac.compare_digest(user.encode(), self._cb_user.encode())
            same_password = hmac.compare_digest(password.encode(), self._cb_password.encode())
            if same_user & same_password:
                return
        challenge = 'Bearer realm="baton"' if self._cb_token else 'Basic realm="baton"'
        if not (self._cb_token or self._cb_password):
            raise AuthError("callbacks are not configured for this connector", challenge)
        raise AuthError("missing or wrong credentials", challenge)

    def callback(self, body: bytes, headers: Mapping[str, str],
                 now: float) -> list[CallbackEvent]:
        """A business rule's POST: ``{"sys_id", "number", "state", "previous_state"?,
        "correlation_id", "sys_updated_on", "sys_updated_by", "sys_mod_count"?,
        "work_notes"?}`` (strings; the event id is built from sys_id, sys_updated_on and
        sys_mod_count).

        state 6 (Resolved) or 7 (Closed) resolves, 2 (In Progress) acknowledges, each only
        when the state changed (``previous_state`` differs, when sent); a non-empty
        ``work_notes`` (the newest journal entry) becomes a note. Changes made by Baton's
        own user (``username``) and notes starting with Baton's marker are skipped.
        """
        self._authenticate(headers)
        try:
            doc = json.loads(body)
        except ValueError:
            raise PayloadError("body is not JSON") from None
        if not isinstance(doc, dict):
            raise PayloadError("body is not a JSON object")
        required = ("sys_id", "state", "sys_updated_on", "sys_updated_by")
        optional = ("number", "previous_state", "correlation_id", "work_notes",
                    "sys_mod_count")
        errors = [f"{k}: required string" for k in required
                  if not isinstance(doc.get(k), str) or not doc[k]]
        errors += [f"{k}: must be a string" for k in optional
                   if doc.get(k) is not None and not isinstance(doc[k], str)]
        if errors:
            raise PayloadError("not a Baton ServiceNow callback", errors)
        who = doc["sys_updated_by"]
        if who == self.username:
            return []  # Baton's own change, echoed by the business rule
        correlation = doc.get("correlation_id") or ""
        ours = correlation.startswith("baton-")
        incident_id = correlation.removeprefix("baton-") if ours else None
        external_id = None if ours else doc["sys_id"]
        # sys_updated_on has whole seconds; sys_mod_count (when sent) tells apart two
        # updates of the same second.
        event = f"{doc['sys_id']}@{doc['sys_updated_on']}" + (
            f"#{doc['sys_mod_count']}" if doc.get("sys_mod_count") else "")
        actor = f"{who} (servicenow)"
        events: list[CallbackEvent] = []
        note = (doc.get("work_notes") or "").strip()
        if note and not note.startswith(MARKER):
            events.append(CallbackEvent("note", f"{event}/note", actor, incident_id,
                                        external_id, note))
        state = doc["state"]
        if doc.get("previous_state") != state:
            if state in (RESOLVED, CLOSED):
                events.append(CallbackEvent("resolve", f"{event}/resolve", actor,
                                            incident_id, external_id))
            elif state == IN_PROGRESS:
                events.append(CallbackEvent("acknowledge", f"{event}/acknowledge", actor,
                                            incident_id, external_id))
        return events
