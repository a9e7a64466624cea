"""The generic webhook, checked against Baton's own published document schema.

There is no vendor here: the receiver is whatever a user points it at, and the contract
is the one Baton publishes. So the nearest authoritative text is
``schemas/incident.schema.json`` (the body, ``notification`` included, validated with
``baton.schema.problems``) and, for the signature headers, the Standard Webhooks
specification (github.com/standard-webhooks/standard-webhooks, spec/standard-webhooks.md):
``webhook-id`` printable ASCII without spaces, ``webhook-timestamp`` integer Unix seconds,
``webhook-signature`` space-delimited ``v1,<base64>`` entries; all three or none.
"""

from __future__ import annotations

import base64
import binascii
import re

from fakes import Seen

from baton import schema

from ._openapi import json_request

_ID = re.compile(r"^[\x21-\x7e]+$")
_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def check(seen: Seen) -> list[str]:
    headers = {k.lower(): v for k, v in seen.headers.items()}
    out = []
    doc, problems = json_request(seen)
    out += problems
    if doc is None:
        return out
    out += schema.problems("incident.schema.json", doc, prefix="body")
    present = [h for h in _HEADERS if h in headers]
    if present and len(present) != len(_HEADERS):
        out.append(f"Standard Webhooks: {present} without the others")
    if len(present) == len(_HEADERS):
        if not _ID.match(headers["webhook-id"]):
            out.append("webhook-id: not printable ASCII without spaces")
        if not headers["webhook-timestamp"].isdigit():
            out.append("webhook-timestamp: not integer seconds")
        for sig in headers["webhook-signature"].split(" "):
            version, _, value = sig.partition(",")
            try:
                ok = version == "v1" and len(base64.b64decode(value, validate=True)) == 32
            except binascii.Error:
                ok = False
            if not ok:
                out.append(f"webhook-signature entry {sig[:12]!r}...: not v1,<base64 HMAC-SHA256>")
    return out
