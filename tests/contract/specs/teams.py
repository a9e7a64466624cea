"""Microsoft Teams (Workflows / incoming webhook), checked against the Adaptive Card schema.

* The card: ``teams/adaptive-card.<version>.json`` (microsoft/AdaptiveCards
  ``schemas/1.x.0/adaptive-card.json``), chosen by the card's declared ``version`` (1.4 or
  1.5; Teams renders up to 1.5), validated with ``jsonschema`` (draft-06, as declared).
  ``msteams`` is a Teams host extension the schema does not list (``additionalProperties:
  false``): Teams documents ``"msteams": {"width": "Full"}`` for full-width cards
  ("Format cards in Teams", learn.microsoft.com/microsoftteams/platform/task-modules-and-
  cards/cards/cards-format), so it is checked against that text and removed before the
  schema sees the card.
* The envelope Teams documents for incoming webhooks and the Workflows "When a Teams
  webhook request is received" trigger ("Create and send messages",
  .../webhooks-and-connectors/how-to/connectors-using): ``{"type": "message",
  "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
  "contentUrl": null, "content": <card>}]}``, JSON.
* Teams' message size limit, 28 KB ("Send proactive messages" / connector limits).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema
from fakes import Seen

from . import VENDOR_SPECS

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMAS = {"1.4": "adaptive-card.1.4.0.json", "1.5": "adaptive-card.1.5.0.json"}
MAX_BYTES = 28 * 1024
MSTEAMS_KEYS = {"width", "entities"}


@cache
def _validator(version: str) -> jsonschema.Draft6Validator:
    doc = json.loads((VENDOR_SPECS / "teams" / SCHEMAS[version]).read_text("utf-8"))
    return jsonschema.Draft6Validator(doc)


def card_problems(card: Any) -> list[str]:
    if not isinstance(card, dict):
        return ["the attachment's content is not a card object"]
    version = str(card.get("version"))
    if version not in SCHEMAS:
        return [f"card version {version!r}; Teams renders 1.4 / 1.5 (schemas here)"]
    card = dict(card)
    out = []
    msteams = card.pop("msteams", None)
    if msteams is not None:
        if not isinstance(msteams, dict) or set(msteams) - MSTEAMS_KEYS:
            out.append(f"msteams {msteams!r}: Teams documents width and entities only")
        elif msteams.get("width") not in (None, "Full"):
            out.append("msteams.width: Teams documents only \"Full\"")
    validator = _validator(version)
    for err in sorted(validator.iter_errors(card), key=lambda e: list(map(str, e.path))):
        # anyOf failures hide the reason: report the deepest one.
        best = jsonschema.exceptions.best_match([err]) or err
        where = "/".join(map(str, best.absolute_path)) or "(card)"
        out.append(f"{SCHEMAS[version]}: {where}: {best.message:.300}")
    return out


def check(seen: Seen) -> list[str]:
    ctype = next((v for k, v in seen.headers.items() if k.lower() == "content-type"), "")
    if ctype.split(";")[0].strip().lower() != "application/json":
        return [f"content type {ctype!r}: the webhook takes application/json"]
    out = []
    if len(seen.body) > MAX_BYTES:
        out.append(f"{len(seen.body)} bytes; Teams' message limit is 28 KB")
    doc = json.loads(seen.body)
    if not isinstance(doc, dict) or doc.get("type") != "message":
        return [*out, "the body must be a message activity ({\"type\": \"message\"})"]
    attachments = doc.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return [*out, "a message activity needs attachments"]
    if extra := sorted(set(doc) - {"type", "attachments"}):
        out.append(f"envelope fields Teams does not document: {extra}")
    for i, att in enumerate(attachments):
        if not isinstance(att, dict) or att.get("contentType") != CARD_TYPE:
            out.append(f"attachments[{i}]: contentType must be {CARD_TYPE}")
            continue
        if set(att) - {"contentType", "contentUrl", "content"}:
            out.append(f"attachments[{i}]: unexpected fields {sorted(att)}")
        if att.get("contentUrl") is not None:
            out.append(f"attachments[{i}]: contentUrl must be null for a card")
        out += [f"attachments[{i}]: {p}" for p in card_problems(att.get("content"))]
    return out
