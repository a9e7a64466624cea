"""The Slack connector's messages: Block Kit built from an incident document.

Pure functions of the incident (no I/O), shared by the webhook and the Web API modes.
Block ids are stable (``baton_header``, ``baton_fields``, ``baton_links``,
``baton_context``, ``baton_actions``, ``baton_note``) so a message can be read back.
Everything from the incident that lands in mrkdwn is escaped (``&``, ``<``, ``>``, per
Slack's "Formatting text"): a title containing ``<!channel>`` must not ping a whole
channel. Limits are Block Kit's, counted in characters as Slack and its SDK count them;
a cut never splits an escape. The header is plain text on one line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._markup import slack_clip, slack_escape
from ._text import clip as _clip_plain
from ._text import one_line

EVENT_TYPE = "baton_incident"
GENERIC_NOTE = "Incident updated in Baton."
SEVERITY_ICON = {"critical": ":red_circle:", "error": ":large_orange_circle:",
                 "warning": ":large_yellow_circle:", "info": ":large_blue_circle:"}
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
# Block Kit limits: header text 150, section field 2000, section text 3000 (slack_sdk's
# block models hold the same numbers). Text is escaped first, then clipped to these.
HEADER_CHARS, FIELD_CHARS, TEXT_CHARS = 150, 2000, 3000
MAX_LINKS = 5

Block = dict[str, Any]


clip = slack_clip  # every clipped text here is mrkdwn or plain text already escaped
esc = slack_escape


def mention(target: Mapping[str, Any]) -> str | None:
    """``<@U…>`` for a person target whose contacts carry a Slack user id."""
    user = (target.get("contacts") or {}).get("slack")
    return f"<@{user}>" if isinstance(user, str) and USER_ID.match(user) else None


def metadata(inc: Mapping[str, Any]) -> dict[str, Any]:
    """Message metadata: what the duplicate-post search looks for."""
    return {"event_type": EVENT_TYPE, "event_payload": {
        "incident_id": inc["id"], "status": inc.get("status"),
        "severity": inc.get("severity")}}


def context(inc: Mapping[str, Any]) -> Block:
    key = esc(inc.get("key") or "")
    return {"type": "context", "block_id": "baton_context", "elements": [
        {"type": "mrkdwn", "text": clip(f"Baton incident {inc['id']} · {key}", TEXT_CHARS)}]}


def links(inc: Mapping[str, Any], incident_url: str | None) -> str:
    found: list[tuple[str, str]] = []
    if incident_url:
        found.append((incident_url.replace("{id}", str(inc["id"])), "Baton incident"))
    for alert in inc.get("alerts") or ():
        for link in alert.get("links") or ():
            if link.get("href") and len(found) < MAX_LINKS:
                found.append((link["href"], link.get("text") or link["href"]))
    # Whole links only, within a section's text: a cut inside <url|label> would leave an
    # unclosed "<" that Slack shows as raw markup, around a URL cut short.
    shown = ""
    for href, label in found:
        item = f"<{esc(href)}|{esc(label)}>"
        joined = f"{shown} · {item}" if shown else item
        if len(joined) <= TEXT_CHARS:
            shown = joined
    return shown


def incident(inc: Mapping[str, Any], target: Mapping[str, Any], incident_url: str | None,
             buttons: bool) -> tuple[str, list[Block]]:
    """The fallback text (notifications, screen readers) and the blocks of the incident's
    message. ``buttons``: whether clicks can be taken (a signing secret is configured)."""
    severity, status = str(inc.get("severity") or "error"), str(inc.get("status"))
    title = one_line(inc.get("title") or inc.get("key") or inc["id"])
    who = mention(target)
    text = f"[{severity.upper()}] {esc(title)} ({status})"
    if who:
        text = f"{who} {text}"
    fields = [("Severity", severity), ("Status", status.capitalize())]
    if inc.get("service"):
        fields.append(("Service", inc["service"]))
    if level := (inc.get("escalation") or {}).get("level"):
        fields.append(("Escalation level", level))
    for key, label in (("acknowledged_by", "Acknowledged by"), ("resolved_by", "Resolved by")):
        if inc.get(key):
            fields.append((label, inc[key]))
    blocks: list[Block] = [
        {"type": "header", "block_id": "baton_header", "text": {
            # plain_text is shown as is: no mrkdwn, so no escaping (an escape would show).
            "type": "plain_text", "emoji": True, "text": _clip_plain(
                f"{SEVERITY_ICON.get(severity, '')} {title}".strip(), HEADER_CHARS)}},
        {"type": "section", "block_id": "baton_fields", "fields": [
            {"type": "mrkdwn", "text": clip(f"*{label}*\n{esc(value)}", FIELD_CHARS)}
            for label, value in fields]},
    ]
    if who:
        blocks[1]["text"] = {"type": "mrkdwn", "text": f"{who} you are notified"}
    if shown := links(inc, incident_url):
        blocks.append({"type": "section", "block_id": "baton_links",
                       "text": {"type": "mrkdwn", "text": clip(shown, TEXT_CHARS)}})
    blocks.append(context(inc))
    if buttons and status != "resolved":
        offered = [("Resolve", "baton_resolve", "danger")]
        if status == "triggered":
            offered.insert(0, ("Acknowledge", "baton_acknowledge", "primary"))
        blocks.append({"type": "actions", "block_id": "baton_actions", "elements": [
            {"type": "button", "action_id": action_id, "value": inc["id"], "style": style,
             "text": {"type": "plain_text", "text": label}}
            for label, action_id, style in offered]})
    return clip(text, TEXT_CHARS), blocks


def note(inc: Mapping[str, Any]) -> tuple[str, list[Block]]:
    """The incident's last timeline note; a generic line when it came without one."""
    notes = [e for e in inc.get("timeline") or () if e.get("type") == "note"]
    last = notes[-1] if notes else None
    body = str((last.get("detail") or {}).get("text") or GENERIC_NOTE) if last else GENERIC_NOTE
    who = f" by {last['actor']}" if last and last.get("actor") else ""
    title = one_line(inc.get("title") or inc["id"])
    text = clip(f"Note{esc(who)} on {esc(title)}: {esc(body)}", TEXT_CHARS)
    return text, [{"type": "section", "block_id": "baton_note", "text": {
        "type": "mrkdwn", "text": clip(f"*Note{esc(who)}*\n{esc(body)}", TEXT_CHARS)}},
        context(inc)]


def ping(inc: Mapping[str, Any], who: str) -> str:
    """A thread reply for a person paged on an existing message (an edit notifies nobody)."""
    title = one_line(inc.get("title") or inc["id"])
    return clip(f"{who} this incident needs you: {esc(title)}", TEXT_CHARS)
