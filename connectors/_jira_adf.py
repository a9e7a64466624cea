"""Atlassian Document Format, both ways, for the ``jira`` connector.

REST API v3 takes descriptions and comments only as ADF documents (``{"type": "doc",
"version": 1, "content": [...]}``); plain strings are refused. Jira rejects an empty text
node, so builders here drop empty text instead of sending it. Webhooks deliver comment
bodies as ADF or, from older senders, as a plain string; ``plain_text`` reads both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from baton.model import Notification

from ._text import clip, one_line, utf16_len

MARKER = "[Baton]"  # first text of every comment Baton writes; the webhook loop guard
GENERIC_NOTE = "Incident updated in Baton."
# Jira's text fields hold 32,767 characters, counted in UTF-16 units on the document as
# stored: the ADF JSON, markup and all, not its plain text (Atlassian: "Jira Cloud field
# limits"). Every document built here is kept within that, serialized as it is sent.
ADF_CHARS = 32767
_TRUNCATED = "(truncated; the full incident is in Baton)"
MAX_ALERTS = 50
ALERT_CHARS = 400  # per alert line, so fifty alerts still fit in one description
Node = dict[str, Any]


def text(value: Any, href: str | None = None, strong: bool = False) -> Node | None:
    value = str(value)
    if not value:
        return None
    node: Node = {"type": "text", "text": value}
    marks: list[Node] = []
    if href and href.lower().startswith(("http://", "https://")):
        marks.append({"type": "link", "attrs": {"href": href}})
    if strong:
        marks.append({"type": "strong"})
    if marks:
        node["marks"] = marks
    return node


def paragraph(*nodes: Node | None) -> Node:
    return {"type": "paragraph", "content": [n for n in nodes if n is not None]}


def heading(title: str) -> Node:
    return {"type": "heading", "attrs": {"level": 3},
            "content": [{"type": "text", "text": title}]}


def bullets(items: Iterable[list[Node | None]]) -> Node | None:
    entries = [{"type": "listItem", "content": [paragraph(*item)]} for item in items
               if any(n is not None for n in item)]
    return {"type": "bulletList", "content": entries} if entries else None


def size(node: Any) -> int:
    """The length of ``node`` serialized as the connector sends it, in UTF-16 units."""
    return utf16_len(json.dumps(node, ensure_ascii=False))


def doc(*blocks: Node | None, limit: int = ADF_CHARS) -> Node:
    """A document of the given blocks whose serialized JSON stays within ``limit`` (Jira's
    32,767): blocks that do not fit are dropped from the end and a note says so; the
    first list or paragraph that does not fit is cut to the room left, not dropped."""
    content = [b for b in blocks if b is not None and b.get("content") != []]
    shell = {"type": "doc", "version": 1, "content": []}
    note = paragraph(text(_TRUNCATED))
    # Each block costs its own JSON plus the ", " that joins it to the one before.
    room = limit - size(shell) - size(note) - 2
    kept: list[Node] = []
    for index, block in enumerate(content):
        cost = size(block) + (2 if kept else 0)
        if index == len(content) - 1 and cost <= room + size(note) + 2:
            kept.append(block)  # the last block may use the room kept for the note
            break
        if cost > room:
            if cut := _cut(block, room):
                kept.append(cut)
            kept.append(note)
            break
        kept.append(block)
        room -= cost
    return {**shell, "content": kept}


def _cut(block: Node, room: int) -> Node | None:
    """``block`` shortened so that it and its separator fit in ``room`` units: a list
    keeps its leading items, a paragraph its last text cut short. None when not even a
    stub would fit, or for other blocks."""
    nodes = list(block.get("content") or [])
    if block.get("type") == "bulletList":
        kept: list[Node] = []
        for item in nodes:
            if size({**block, "content": [*kept, item]}) + 2 > room:
                break
            kept.append(item)
        return {**block, "content": kept} if kept else None
    if block.get("type") != "paragraph" or not nodes or nodes[-1].get("type") != "text":
        return None
    value = str(nodes[-1]["text"])
    spare = room - 2 - size({**block, "content": [*nodes[:-1], {**nodes[-1], "text": ""}]})
    while spare > 16:  # JSON escapes make a text longer than it reads: shrink and retry
        trial = {**block, "content": [*nodes[:-1], {**nodes[-1], "text": clip(
            value, spare, utf16=True)}]}
        over = size(trial) + 2 - room
        if over <= 0:
            return trial
        spare -= over
    return None


def lines(value: str) -> list[Node]:
    """Paragraphs of a multi-line text (a text node cannot hold a line break)."""
    return [paragraph(text(line)) for line in value.splitlines() if line.strip()]


def _clip(value: str, limit: int) -> str:
    return clip(one_line(value), limit, utf16=True)


def _alert_item(alert: Mapping[str, Any]) -> list[Node | None]:
    summary = _clip(str(alert.get("summary") or alert.get("dedup_key") or "alert"), 200)
    item: list[Node | None] = [text(summary, strong=True)]
    if alert.get("status"):
        item.append(text(f" ({alert['status']})"))
    if alert.get("description"):
        item.append(text(f": {_clip(str(alert['description']), ALERT_CHARS - len(summary))}"))
    return item


def _links(alerts: list[Mapping[str, Any]]) -> list[list[Node | None]]:
    seen: dict[str, str] = {}
    for alert in alerts:
        for link in alert.get("links") or []:
            if link.get("href"):
                seen.setdefault(str(link["href"]), str(link.get("text") or link["href"]))
    return [[text(label, href=href)] for href, label in seen.items()]


def description(inc: Mapping[str, Any], target: Mapping[str, Any]) -> Node:
    alerts: list[Mapping[str, Any]] = list(inc.get("alerts") or [])[:MAX_ALERTS]
    facts = [f"status {inc.get('status')}", f"severity {inc.get('severity')}"]
    facts += [f"{k} {inc[k]}" for k in ("service", "key") if inc.get(k)]
    level = (inc.get("escalation") or {}).get("level")
    if level is not None:
        facts.append(f"escalation level {level}")
    if target.get("person"):
        facts.append(f"for {target['person']}")
    labels = inc.get("labels") or {}
    return doc(
        paragraph(text(f"Baton incident {inc['id']}", strong=True),
                  text(": " + ", ".join(facts) + ".")),
        heading("Alerts") if alerts else None,
        bullets(_alert_item(a) for a in alerts),
        heading("Labels") if labels else None,
        bullets([text(f"{k}={v}")] for k, v in sorted(labels.items())),
        heading("Links") if _links(alerts) else None,
        bullets(_links(alerts)),
    )


def _last_note(inc: Mapping[str, Any]) -> tuple[str | None, str | None]:
    notes = [e for e in inc.get("timeline") or () if e.get("type") == "note"]
    if not notes:
        return None, None
    text_ = (notes[-1].get("detail") or {}).get("text")
    return (str(text_) if text_ else None), notes[-1].get("actor")


def action_comment(notification: Notification) -> Node:
    """The comment for update, acknowledge, note and resolve; it starts with MARKER."""
    inc, action = notification.incident, notification.action
    if action == "acknowledge":
        return doc(paragraph(text(f"{MARKER} Acknowledged in Baton by "
                                  f"{inc.get('acknowledged_by') or 'someone'}.")))
    if action == "resolve":
        return doc(paragraph(text(f"{MARKER} Resolved in Baton by "
                                  f"{inc.get('resolved_by') or 'someone'}.")))
    if action == "note":
        note, actor = _last_note(inc)
        if note is None:
            return doc(paragraph(text(f"{MARKER} {GENERIC_NOTE}")))
        return doc(paragraph(text(f"{MARKER} Note from {actor or 'Baton'}:")), *lines(note))
    alerts: list[Mapping[str, Any]] = list(inc.get("alerts") or [])[:MAX_ALERTS]
    level = (inc.get("escalation") or {}).get("level")
    summary = (f"{MARKER} Incident updated: {inc.get('status')}, severity "
               f"{inc.get('severity')}, {len(inc.get('alerts') or [])} alert(s)"
               + (f", escalation level {level}." if level is not None else "."))
    return doc(paragraph(text(summary)), bullets(_alert_item(a) for a in alerts))


def recurrence(inc: Mapping[str, Any]) -> Node:
    return doc(paragraph(text(
        f"{MARKER} The problem recurred as Baton incident {inc['id']} (after incident "
        f"{inc.get('recurrence_of')}); this issue tracks it again.")))


_INLINE = ("text", "hardBreak", "mention", "emoji", "inlineCard")


def plain_text(node: Any) -> str:
    """The text of an ADF node (block nodes on their own lines), or a string as is.

    Read from a signed but otherwise untrusted body: a ``content`` that is not a list, or
    ``attrs`` that are not an object, read as no text; the walk keeps its own stack, so a
    document nested as deep as the JSON decoder allows is no RecursionError.
    """
    leaf = _leaf_text(node)
    if leaf is not None:
        return leaf
    # (a node's children, the texts of those read so far), from the top node down
    stack: list[tuple[list[Any], list[str]]] = [(_children(node), [])]
    while True:
        children, parts = stack[-1]
        if len(parts) < len(children):
            child = children[len(parts)]
            leaf = _leaf_text(child)
            if leaf is None:
                stack.append((_children(child), []))
            else:
                parts.append(leaf)
            continue
        stack.pop()
        inline = all(isinstance(c, dict) and c.get("type") in _INLINE for c in children)
        joined = ("" if inline else "\n").join(p for p in parts if p)
        if not stack:
            return joined
        stack[-1][1].append(joined)


def _leaf_text(node: Any) -> str | None:
    """The text of a node that has no children to read; None for one that may have."""
    if isinstance(node, str):
        return node
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    if kind == "text":
        return _scalar(node.get("text"))
    if kind == "hardBreak":
        return "\n"
    if kind in ("mention", "emoji"):
        attrs = node.get("attrs")
        return _scalar(attrs.get("text")) if isinstance(attrs, dict) else ""
    return None


def _scalar(value: Any) -> str:
    # Not str() of anything: a list nested thousands deep would overflow its repr.
    return str(value) if value and isinstance(value, str | int | float) else ""


def _children(node: Any) -> list[Any]:
    content = node.get("content") if isinstance(node, dict) else None
    return content if isinstance(content, list) else []
