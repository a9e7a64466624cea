"""Slack, checked against Slack's Web API description and its SDK's Block Kit models.

* ``slack/slack_web_openapi_v2.json`` (slackapi/slack-api-specs, Swagger 2.0): the method's
  parameters (``formData``/``query``), which are required, their types, and the content
  types the method consumes. A JSON body carries the same arguments; there ``blocks`` may be
  the array itself rather than the URL-encoded string a form needs ("JSON-encoded bodies",
  docs.slack.dev/apis/web-api). The snapshot is from 2021 and lacks ``metadata``, which
  chat.postMessage / chat.update document since 2022 (an object ``{event_type,
  event_payload}``), nor conversations.history's ``include_all_metadata``: both are
  allowed here, metadata in that shape.
* Block Kit through ``slack_sdk``'s block models (pinned 3.48.0): ``Block.parse`` then
  ``to_dict()`` runs every ``JsonValidator`` (header text 150, section text 3000 and
  10 fields, block_id 255, button text 75 and value 2000, context elements 10, ...); the
  SDK counts characters as Python does (code points), and so does this check.
* Limits the SDK leaves out, from the Block Kit reference: at most 50 blocks in a message;
  each section field's text at most 2,000 characters; a header is plain_text. And from
  chat.postMessage: ``text`` is truncated past 40,000 characters.
* Incoming webhooks (``POST /services/T.../B.../...``) take the message payload as JSON
  (``text``, ``blocks``; docs.slack.dev/messaging/sending-messages-using-incoming-webhooks):
  the same Block Kit checks apply.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from typing import Any

from fakes import Seen
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from . import VENDOR_SPECS

SPEC = VENDOR_SPECS / "slack" / "slack_web_openapi_v2.json"
MAX_BLOCKS, FIELD_CHARS, TEXT_CHARS = 50, 2000, 40000
# Documented with message metadata (2022), after the 2021 snapshot.
LATER_PARAMS = {"metadata", "include_all_metadata"}
_TYPES = {"string": str, "boolean": bool, "integer": int, "number": (int, float)}


@cache
def _spec() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SPEC.read_text("utf-8"))
    return doc


def _header(seen: Seen, name: str) -> str:
    return next((v for k, v in seen.headers.items() if k.lower() == name), "")


def blocks_problems(blocks: Any) -> list[str]:
    if not isinstance(blocks, list):
        return ["blocks is not an array"]
    out = [f"{len(blocks)} blocks; a message holds at most {MAX_BLOCKS}"
           ] if len(blocks) > MAX_BLOCKS else []
    sdk = logging.getLogger("slack_sdk.models")
    for i, raw in enumerate(blocks):
        try:
            block = Block.parse(raw)
            if block is None:
                out.append(f"blocks[{i}]: slack_sdk cannot parse {raw!r:.80}")
                continue
            level, sdk.level = sdk.level, logging.ERROR  # unknown-field warnings: below
            try:
                shown = block.to_dict()  # runs every validator
            finally:
                sdk.setLevel(level)
        except (SlackObjectFormationError, TypeError, ValueError, KeyError) as exc:
            out.append(f"blocks[{i}] ({raw.get('type') if isinstance(raw, dict) else '?'}): "
                       f"slack_sdk: {exc}")
            continue
        if shown != raw:
            out.append(f"blocks[{i}]: fields slack_sdk's model does not know: "
                       f"{sorted(set(raw) - set(shown))}")
        if raw.get("type") == "header" and (raw.get("text") or {}).get("type") != "plain_text":
            out.append(f"blocks[{i}]: a header's text must be plain_text")
        for j, item in enumerate(raw.get("fields") or ()):
            if len(str(item.get("text", ""))) > FIELD_CHARS:
                out.append(f"blocks[{i}].fields[{j}]: over {FIELD_CHARS} characters")
    return out


def _message_problems(doc: dict[str, Any]) -> list[str]:
    out = []
    if "blocks" in doc:
        blocks = doc["blocks"]
        if isinstance(blocks, str):  # form style: a JSON-encoded string
            blocks = json.loads(blocks)
        out += blocks_problems(blocks)
    if len(str(doc.get("text", ""))) > TEXT_CHARS:
        out.append(f"text over {TEXT_CHARS} characters (Slack truncates it)")
    meta = doc.get("metadata")
    if meta is not None and not (isinstance(meta, dict) and isinstance(
            meta.get("event_type"), str) and isinstance(meta.get("event_payload"), dict)):
        out.append("metadata must be {event_type: str, event_payload: object}")
    return out


def _web_api(seen: Seen) -> list[str]:
    method = seen.path.removeprefix("/api")
    ops = _spec()["paths"].get(method)
    op = (ops or {}).get(seen.method.lower())
    if op is None:
        return [f"{seen.method} {method} is not a Slack Web API method"]
    params = {p["name"]: p for p in op.get("parameters", ())}
    out = []
    if not (_header(seen, "authorization").startswith("Bearer ") or "token" in seen.query):
        out.append("no token (Authorization: Bearer or token)")
    if seen.method == "GET":
        args: dict[str, Any] = dict(seen.query)
        for name, value in args.items():
            p = params.get(name)
            if name in LATER_PARAMS:
                continue
            if p is None:
                out.append(f"query parameter {name!r} is not one of {method}'s")
            elif p.get("type") in ("integer", "number"):
                try:
                    float(value)
                except ValueError:
                    out.append(f"{name}={value!r} is not a {p['type']}")
    else:
        ctype = _header(seen, "content-type").split(";")[0].strip().lower()
        if ctype not in op.get("consumes", ()):
            out.append(f"content type {ctype!r}; {method} consumes {op.get('consumes')}")
        args = json.loads(seen.body) if ctype == "application/json" else {}
        for name, value in args.items():
            p = params.get(name)
            if name in LATER_PARAMS:
                continue
            if p is None or p.get("in") != "formData":
                out.append(f"argument {name!r} is not one of {method}'s")
                continue
            kind = _TYPES.get(p.get("type", ""), object)
            if name in ("blocks", "attachments") and isinstance(value, list):
                continue  # a JSON body carries the array itself
            if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                out.append(f"argument {name!r} should be a {p.get('type')}")
        out += _message_problems(args)
    out += [f"required parameter {name!r} missing" for name, p in params.items()
            if p.get("required") and p.get("in") != "header" and name not in args]
    return out


def check(seen: Seen) -> list[str]:
    if seen.path.startswith("/services/"):
        ctype = _header(seen, "content-type").split(";")[0].strip().lower()
        if ctype != "application/json":
            return [f"incoming webhooks take application/json, not {ctype!r}"]
        doc = json.loads(seen.body)
        if not doc.get("text") and not doc.get("blocks"):
            return ["a webhook message needs text or blocks"]
        return _message_problems(doc)
    return _web_api(seen)
