"""Microsoft Teams through a Workflows webhook: one Adaptive Card per action.

The channel's workflow ("Post to a channel when a webhook request is received", trigger
"When a Teams webhook request is received") takes a message activity whose attachment is
an Adaptive Card, and posts the card. Its URL carries the credential (the ``sig`` query
parameter), so the whole URL is a secret: messages show only ``https://<host>/***``.

The workflow answers 202 once it has accepted the request; posting happens afterwards in
the flow run (a failure there shows in the workflow's run history, not here). There is no
message id to record and no way to edit or find an earlier card, so there is no external
reference, and no dedup at the vendor: a retry after a lost response may post a second
card (at-least-once). The card is a pure function of the notification and its footer
names the action and the idempotency key, so such a duplicate is recognisably the same.

Version 1.4: Teams renders cards up to 1.5, but nothing here needs more than 1.2, and an
older client shows only fallback text for a version it does not know.

Teams renders TextBlock text and fact values as Markdown ("Text formatting in cards"), so
everything that came from an alert or a person is backslash-escaped (CommonMark 2.4): a
title like ``[x](http://...)`` or ``**x**`` shows as written. The title is one line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp
from yarl import URL

from baton import __version__
from baton.errors import ConfigError
from baton.model import Notification, Outcome
from baton.plugin import Connector, classify_status
from baton.secret import Secret

from ._markup import markdown_clip, markdown_escape
from ._text import one_line

CARD_VERSION = "1.4"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"
ACTIONS = ("trigger", "update", "acknowledge", "resolve", "note")
FOOTER_ID = "baton-footer"
GENERIC_NOTE = "Incident updated in Baton."
# Adaptive Card colours name a meaning, and each Teams theme picks the shade.
SEVERITY_COLORS = {"critical": "attention", "error": "attention", "warning": "warning",
                   "info": "accent"}
VERBS = {"trigger": "Triggered", "update": "Updated", "acknowledge": "Acknowledged",
         "resolve": "Resolved", "note": "Note"}
MAX_ALERTS = 10
MAX_BUTTONS = 5  # a readable row; the incident's own link first, then alert links
TITLE_CHARS = 200
ALERT_CHARS = 300
NOTE_CHARS = 2000  # the whole message must stay under Teams' 28 KB
USER_AGENT = f"baton/{__version__}"
_DETAIL_CHARS = 200
_READ_BYTES = 1024


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _md(value: Any) -> str:
    """Text from an alert or a person, as literal text in a Markdown TextBlock."""
    return markdown_escape(value)


def _http_url(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        url = URL(value)
    except ValueError:
        return None
    return value if url.scheme in ("http", "https") and url.host else None


class TeamsConnector(Connector):
    """Posts Adaptive Cards to a Teams channel; see ``schemas/connectors/teams.schema.json``."""

    type: ClassVar[str] = "teams"
    idempotent: ClassVar[bool] = False  # the workflow posts every request it accepts

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        raw: str | Secret = config["webhook_url"]
        self._url = raw.reveal() if isinstance(raw, Secret) else raw
        try:
            url = URL(self._url)
        except ValueError:
            url = URL()
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError([f"connectors.{name}.webhook_url: not an absolute http(s) URL"])
        self._shown = f"{url.origin()}/***"
        # Library errors may quote the URL or parts of it: all of them are scrubbed.
        hidden = {self._url, str(url), url.raw_path_qs, url.path_qs, url.raw_query_string,
                  url.query_string, url.query.get("sig", ""), url.raw_path}
        self._hidden = sorted((h for h in hidden if len(h) > 1), key=len, reverse=True)
        self._actions = frozenset(config.get("actions") or ACTIONS)
        self._incident_url: str | None = config.get("incident_url")

    def _scrub(self, text: str, limit: int = _DETAIL_CHARS * 2) -> str:
        return self.scrub(text, limit, also=self._hidden)


    def incident_link(self, incident: Mapping[str, Any]) -> str | None:
        if not self._incident_url:
            return None
        return self._incident_url.replace("{id}", str(incident["id"]))

    @staticmethod
    def headline(notification: Notification) -> str:
        """What happened, in one line under the title."""
        inc, action = notification.incident, notification.action
        if action == "acknowledge":
            return f"Acknowledged by {_md(inc.get('acknowledged_by') or 'someone')}."
        if action == "resolve":
            return f"Resolved by {_md(inc.get('resolved_by') or 'the source')}."
        if action == "note":
            notes = [e for e in inc.get("timeline") or () if e.get("type") == "note"]
            if not notes:
                return GENERIC_NOTE
            text = (notes[-1].get("detail") or {}).get("text") or GENERIC_NOTE
            # Escaped, then kept to NOTE_CHARS: escapes count against the limit too.
            return markdown_clip(f"{notes[-1].get('actor') or 'someone'}: {text}", NOTE_CHARS)
        level = (inc.get("escalation") or {}).get("level")
        events = inc.get("event_count")
        parts = [f"escalation level {level}" if level else "",
                 f"{events} event(s)" if events else ""]
        lead = "Opened" if action == "trigger" else "Updated"
        return lead + (": " + ", ".join(p for p in parts if p) if any(parts) else "") + "."

    def card(self, notification: Notification) -> dict[str, Any]:
        inc, action = notification.incident, notification.action
        severity = str(inc.get("severity") or "info")
        alerts = list(inc.get("alerts") or [])
        title = inc.get("title") or (alerts[0].get("summary") if alerts else "") or inc["key"]
        color = "good" if action == "resolve" else SEVERITY_COLORS.get(severity, "default")
        facts = [("Status", inc.get("status")), ("Severity", severity),
                 ("Service", inc.get("service")),
                 ("Level", (inc.get("escalation") or {}).get("level")),
                 ("Incident", inc["id"])]
        lead = f"[{severity.upper()}] {VERBS[action]}: "
        body: list[dict[str, Any]] = [
            # "[CRITICAL]" is no link (no "(" or reference follows): left as written.
            {"type": "TextBlock", "text": lead + markdown_clip(one_line(title),
                                                                TITLE_CHARS - len(lead)),
             "size": "Large", "weight": "Bolder", "color": color, "wrap": True},
            {"type": "TextBlock", "text": self.headline(notification), "wrap": True},
            {"type": "FactSet", "facts": [{"title": k, "value": _md(v)} for k, v in facts
                                          if v not in (None, "")]},
        ]
        if alerts:
            # One list item per alert: its text on one line, escaped, after Baton's "- ".
            lines = ["- " + markdown_clip(one_line(f"{a.get('summary', '')}" + (
                f": {a['description']}" if a.get("description") else "")), ALERT_CHARS)
                for a in alerts[:MAX_ALERTS]]
            if len(alerts) > MAX_ALERTS:
                lines.append(f"- ... and {len(alerts) - MAX_ALERTS} more")
            body.append({"type": "TextBlock", "text": "\n".join(lines), "wrap": True,
                         "spacing": "Medium"})
        # The idempotency key, so a card posted twice (a retry after a lost 202) is
        # recognisably the same delivery.
        body.append({"type": "TextBlock", "id": FOOTER_ID, "size": "Small", "isSubtle": True,
                     "wrap": True, "spacing": "Medium",
                     "text": f"Baton · {action} · {notification.idempotency_key}"})
        card: dict[str, Any] = {"$schema": CARD_SCHEMA, "type": "AdaptiveCard",
                                "version": CARD_VERSION, "body": body,
                                "msteams": {"width": "Full"}}
        if buttons := self._buttons(inc, alerts):
            card["actions"] = buttons
        return {"type": "message", "attachments": [
            {"contentType": CARD_TYPE, "contentUrl": None, "content": card}]}

    def _buttons(self, inc: Mapping[str, Any], alerts: list[Any]) -> list[dict[str, str]]:
        buttons: list[dict[str, str]] = []
        if link := self.incident_link(inc):
            buttons.append({"type": "Action.OpenUrl", "title": "Open incident", "url": link})
        seen = {b["url"] for b in buttons}
        for alert in alerts:
            for link in alert.get("links") or ():
                href = _http_url(link.get("href"))
                if href and href not in seen and len(buttons) < MAX_BUTTONS:
                    seen.add(href)
                    buttons.append({"type": "Action.OpenUrl", "url": href,
                                    "title": _clip(link.get("text") or "Link", 40)})
        return buttons

    async def send(self, notification: Notification, http: aiohttp.ClientSession) -> Outcome:
        if notification.action not in self._actions:
            return Outcome.ok(f"no card: {notification.action} is not among this "
                              "connector's actions")
        body = json.dumps(self.card(notification), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        # CancelledError (the dispatcher's timeout or shutdown) is not caught: it must
        # propagate, or a hung workflow endpoint would wedge the worker.
        try:
            async with http.post(self._url, data=body, headers=headers,
                                 allow_redirects=False) as resp:
                text = (await resp.content.read(_READ_BYTES)).decode("utf-8", "replace")
                detail = f"HTTP {resp.status}"
                if reason := self._scrub(self._reason(text), _DETAIL_CHARS):
                    detail += f": {reason}"
                return classify_status(resp.status, self._scrub(detail),
                                       resp.headers.get("Retry-After"))
        except aiohttp.InvalidURL:
            return Outcome.permanent(f"invalid webhook URL {self._shown}")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            message = f"{type(exc).__name__} posting to {self._shown}: {exc}"
            return Outcome.retryable(self._scrub(message))

    @staticmethod
    def _reason(text: str) -> str:
        """The workflow endpoint's errors are ``{"error": {"code", "message"}}``."""
        try:
            doc = json.loads(text)
        except ValueError:
            return text
        error = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(error, dict):
            return ": ".join(str(error[k]) for k in ("code", "message") if error.get(k))
        return text
