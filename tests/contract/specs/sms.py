"""Twilio Programmable Messaging, checked against Twilio's own OpenAPI description.

``twilio/twilio_api_v2010.json`` (twilio/twilio-oai) describes ``CreateMessage``
(``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded) and
``ListMessage`` (``GET`` on the same path): ``openapi-core`` validates the path, the query
and the form body against it (required ``To``; no parameter Twilio does not define).

Limits the schema states only in prose, checked here:

* ``Body`` "can be up to 1,600 characters in length" (the ``Body`` property's description;
  error 21617 "Concatenated message body exceeds the 1600 character limit"). Twilio
  segments by UCS-2/UTF-16 code units, so an astral-plane emoji is counted as two: the
  stricter count is used.
* One of ``From`` / ``MessagingServiceSid`` (error 21603 "A 'From' or 'MessagingServiceSid'
  parameter is required") and, without ``MediaUrl``/``ContentSid``, a ``Body`` (21602).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from fakes import Seen
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from . import VENDOR_SPECS

SPEC = VENDOR_SPECS / "twilio" / "twilio_api_v2010.json"
HOST = "https://api.twilio.com"  # the description's only server
BODY_LIMIT = 1600
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"


@cache
def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SPEC.read_text("utf-8"))
    # Only the operations the connector calls: the whole file has ~200 paths.
    doc["paths"] = {PATH: doc["paths"][PATH]}
    return doc


@cache
def _api() -> OpenAPI:
    # Twilio's own format name; E.164 or a channel address (``whatsapp:+1...``).
    formats = {"phone-number": lambda v: bool(E164.match(str(v).rpartition(":")[2]))}
    return OpenAPI.from_dict(_doc(), config=Config(extra_format_validators=formats))


@dataclass
class _Request:
    """A captured request in the shape ``openapi-core`` reads."""

    method: str
    path: str
    body: bytes | None
    content_type: str
    parameters: RequestParameters = field(default_factory=RequestParameters)
    host_url: str = HOST


def _request(seen: Seen) -> _Request:
    headers = {k.lower(): v for k, v in seen.headers.items()}
    content_type = headers.get("content-type", "").lower()
    params = RequestParameters(query=ImmutableMultiDict(list(seen.query.items())),
                               header=Headers(list(seen.headers.items())))
    return _Request(seen.method.lower(), seen.path, seen.body or None, content_type, params)


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def check(seen: Seen) -> list[str]:
    problems: list[str] = []
    result: Any = _api().unmarshal_request(_request(seen))
    for err in result.errors:
        cause = err.__cause__
        problems.append(f"{SPEC.name}: {err}" + (f" ({cause})" if cause else ""))
    if seen.method != "POST":
        return problems
    form = dict(urllib.parse.parse_qsl(seen.body.decode("utf-8"), keep_blank_values=True))
    known = _doc()["paths"][PATH]["post"]["requestBody"]["content"][
        "application/x-www-form-urlencoded"]["schema"]["properties"]
    problems += [f"form field {name!r} is not a CreateMessage parameter"
                 for name in form if name not in known]
    if not (form.get("From") or form.get("MessagingServiceSid")):
        problems.append("neither From nor MessagingServiceSid (Twilio error 21603)")
    body = form.get("Body")
    if not body and not form.get("MediaUrl") and not form.get("ContentSid"):
        problems.append("no Body (Twilio error 21602)")
    if body and utf16_units(body) > BODY_LIMIT:
        problems.append(f"Body is {utf16_units(body)} UTF-16 units; Twilio's limit is "
                        f"{BODY_LIMIT} (error 21617)")
    return problems
