"""PagerDuty Events API v2, checked against PagerDuty's own OpenAPI description
(``pagerduty/events-v2.openapiv3.json``, from PagerDuty/api-schema).

The description's server is ``https://events.pagerduty.com/v2`` and its path
``/enqueue``: the connector's ``url`` is the whole endpoint (``.../v2/enqueue``), so the
path the fake saw is judged as is under that host. ``openapi-core`` validates the body
against ``createV2Event``'s request schema (routing_key, event_action and the payload's
required summary, severity and source, the severity enum, types).

What the file leaves out, from PagerDuty's "Send an Alert Event" page
(developer.pagerduty.com/docs/events-api-v2/trigger-events/) and the Events API v2
overview: payload.summary at most 1024 characters; dedup_key at most 255 characters and
required for acknowledge and resolve; routing_key exactly 32 characters (the API's 400
"Length of 'routing_key' is incorrect (should be 32 characters)"); an event of at most
512 KB; a JSON body (``Content-Type: application/json``).
"""

from __future__ import annotations

import json
from functools import cache

from fakes import Seen
from openapi_core import OpenAPI

from . import VENDOR_SPECS
from ._openapi import header, json_body, request_problems, walk

HOST = "https://events.pagerduty.com"
SUMMARY_CHARS, DEDUP_KEY_CHARS, ROUTING_KEY_CHARS = 1024, 255, 32
EVENT_BYTES = 512 * 1024


@cache
def _app() -> OpenAPI:
    return OpenAPI.from_dict(json.loads(
        (VENDOR_SPECS / "pagerduty" / "events-v2.openapiv3.json").read_text()))


def check(seen: Seen) -> list[str]:
    problems = request_problems(_app(), HOST, seen)
    if not (header(seen, "Content-Type") or "").startswith("application/json"):
        problems.append("Content-Type is not application/json")
    event, bad = json_body(seen)
    problems += bad
    if not isinstance(event, dict):
        return problems or ["body is not a JSON object"]
    if len(seen.body) > EVENT_BYTES:
        problems.append(f"event is {len(seen.body)} bytes, over PagerDuty's 512 KB")
    key = event.get("routing_key")
    if isinstance(key, str) and len(key) != ROUTING_KEY_CHARS:
        problems.append(f"routing_key is {len(key)} characters, not 32")
    dedup_key = event.get("dedup_key")
    if event.get("event_action") in ("acknowledge", "resolve") and not dedup_key:
        problems.append(f"dedup_key is required for {event['event_action']}")
    if isinstance(dedup_key, str) and len(dedup_key) > DEDUP_KEY_CHARS:
        problems.append(f"dedup_key is {len(dedup_key)} characters, over 255")
    summary = walk(event, "payload", "summary")
    if isinstance(summary, str) and len(summary) > SUMMARY_CHARS:
        problems.append(f"payload.summary is {len(summary)} characters, over 1024")
    return problems
