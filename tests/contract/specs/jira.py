"""Jira Cloud REST API v3, checked against Atlassian's own descriptions: the platform's
OpenAPI document (``jira/swagger-v3.v3.json``) for every request, and the Atlassian
Document Format JSON Schema (``jira/adf-full.v1.json``, from ``@atlaskit/adf-schema``)
for every document Baton writes (an issue's description, comments, the comment that rides
with a transition).

``openapi-core`` judges path, method, parameters and body against the operation's
request schema (``SearchAndReconcileRequestBean`` refuses unknown keys, ``IssueUpdate
Details``, ``Comment``...). The operations also accept anonymous access (``{}`` among
their security requirements), so the ``basicAuth`` scheme Baton uses (an email and API
token) is checked here.

What the files leave out, from Atlassian's documentation: Jira counts text limits in
UTF-16 code units (a Java platform), a summary at most 255 ("Jira Cloud field
limits"), a rich-text field (description, comment) at most 32,767 as stored: the ADF JSON
document, not its plain text; a label at most 255 characters without spaces.
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from typing import Any

from fakes import Seen
from jsonschema import Draft4Validator
from openapi_core import Config, OpenAPI

from . import VENDOR_SPECS
from ._openapi import header, json_body, request_problems, schema_problems, walk

HOST = "https://your-domain.atlassian.net"  # the description's server
SUMMARY_UNITS, ADF_UNITS, LABEL_CHARS = 255, 32767, 255


@cache
def _app() -> OpenAPI:
    spec = json.loads((VENDOR_SPECS / "jira" / "swagger-v3.v3.json").read_text())
    # The 2.4 MB document is Atlassian's and trusted; checking it on every run is slow.
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


@cache
def _adf() -> Draft4Validator:
    return Draft4Validator(json.loads((VENDOR_SPECS / "jira" / "adf-full.v1.json").read_text()))


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def check(seen: Seen) -> list[str]:
    with warnings.catch_warnings():
        # openapi-core has no provider for the OAuth2 alternative; basic auth is ours.
        warnings.filterwarnings("ignore", "Unsupported scheme type")
        problems = request_problems(_app(), HOST, seen)
    auth = header(seen, "Authorization") or ""
    if not auth.startswith("Basic "):
        problems.append("Authorization is not HTTP basic (the basicAuth scheme)")
    doc, bad = json_body(seen)
    problems += bad
    if isinstance(doc, dict):
        for where, adf in _documents(seen, doc):
            problems += schema_problems(_adf(), adf, f"ADF {where}")
            stored = utf16(json.dumps(adf, ensure_ascii=False))
            if stored > ADF_UNITS:
                problems.append(f"{where} is {stored} UTF-16 units as ADF JSON, over 32,767")
        problems += _fields(doc)
    return problems


def _documents(seen: Seen, doc: dict[str, Any]) -> list[tuple[str, Any]]:
    """The ADF documents in a request body, by where they sit."""
    found: list[tuple[str, Any]] = []
    if seen.path.endswith("/comment") and "body" in doc:
        found.append(("comment body", doc["body"]))
    if (description := walk(doc, "fields", "description")) is not None:
        found.append(("fields.description", description))
    for i, op in enumerate(walk(doc, "update", "comment") or []):
        if (body := walk(op, "add", "body")) is not None:
            found.append((f"update.comment[{i}].add.body", body))
    return found


def _fields(doc: dict[str, Any]) -> list[str]:
    problems = []
    summary = walk(doc, "fields", "summary")
    if isinstance(summary, str):
        if utf16(summary) > SUMMARY_UNITS:
            problems.append(f"summary is {utf16(summary)} UTF-16 units, over 255")
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in summary):
            problems.append("summary holds a lone surrogate (a split emoji)")
    labels = [*(walk(doc, "fields", "labels") or []),
              *[walk(op, "add") for op in walk(doc, "update", "labels") or []]]
    for label in labels:
        if not isinstance(label, str) or len(label) > LABEL_CHARS or not label or any(
                ch.isspace() for ch in label):
            problems.append(f"label {label!r} is not 1 to 255 characters without spaces")
    return problems
