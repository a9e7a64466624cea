"""Opsgenie Alert API v2, checked against Opsgenie's own Swagger 2.0 description
(``opsgenie/swagger.json``, from opsgenie/opsgenie-oas).

``openapi-core`` reads OpenAPI 3 only, so the Swagger file is applied here directly: the
path must be one of its templates with the method, query parameters must be declared
(and within their ``enum``, e.g. ``identifierType``; required ones present), the
``GenieKey`` security scheme's ``Authorization`` header must be there, and the ``body``
parameter is validated with ``jsonschema`` (draft 4, Swagger's dialect) against its schema,
``$ref``s resolved within the file (``CreateAlertPayload``, ``AddNoteToAlertPayload``...).

What the file leaves out, from Opsgenie's Alert API documentation ("Create Alert" and
the other actions' body fields, docs.opsgenie.com/docs/alert-api) and "Alerts and Alert
Fields": message 130 characters, alias 512, description 15000, entity 512, source 100,
user 100, note 25000; at most 20 tags of at most 50 characters; at most 10 actions of at
most 50; at most 50 responders and 50 visibleTo; details at most 8000 characters for all
keys and values together.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from fakes import Seen
from jsonschema import Draft4Validator

from . import VENDOR_SPECS
from ._openapi import header, json_body, schema_problems

LIMITS = {"message": 130, "alias": 512, "description": 15000, "entity": 512,
          "source": 100, "user": 100, "note": 25000}
LISTS = {"tags": (20, 50), "actions": (10, 50)}
RECIPIENTS = {"responders": 50, "visibleTo": 50}
DETAILS_CHARS = 8000


@cache
def _swagger() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((VENDOR_SPECS / "opsgenie" / "swagger.json").read_text())
    return doc


def _resolve(node: Any) -> Any:
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        target: Any = _swagger()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _operation(method: str, path: str) -> tuple[dict[str, Any] | None, str]:
    base = _swagger().get("basePath") or ""
    for template, item in _swagger()["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(base + template)) + "$"
        if re.match(pattern, path):
            operation = item.get(method.lower())
            if operation is None:
                return None, f"{template} has no {method} operation"
            params = [*item.get("parameters", []), *operation.get("parameters", [])]
            return {**operation, "parameters": [_resolve(p) for p in params]}, ""
    return None, f"no path of the description matches {path}"


def check(seen: Seen) -> list[str]:
    operation, missing = _operation(seen.method, seen.path)
    if operation is None:
        return [missing]
    problems: list[str] = []
    auth = header(seen, "Authorization") or ""
    if not auth.startswith("GenieKey ") or not auth.removeprefix("GenieKey ").strip():
        problems.append("Authorization is not 'GenieKey <key>' (securityDefinitions)")
    declared = {p["name"]: p for p in operation["parameters"] if p.get("in") == "query"}
    for name, value in seen.query.items():
        if name not in declared:
            problems.append(f"query parameter {name!r} is not declared for this operation")
        elif "enum" in declared[name] and value not in declared[name]["enum"]:
            problems.append(f"query {name}={value!r} is not one of {declared[name]['enum']}")
    problems += [f"required query parameter {n!r} is missing" for n, p in declared.items()
                 if p.get("required") and n not in seen.query]
    body_param = next((p for p in operation["parameters"] if p.get("in") == "body"), None)
    doc, bad = json_body(seen)
    problems += bad
    if body_param is None:
        return problems
    if doc is None:
        return problems + (["the body is required"] if body_param.get("required") else [])
    if not (header(seen, "Content-Type") or "").startswith("application/json"):
        problems.append("Content-Type is not application/json")
    schema = {**body_param["schema"], "definitions": _swagger()["definitions"]}
    problems += schema_problems(Draft4Validator(schema), doc, "body")
    return problems + _limits(doc) if isinstance(doc, dict) else problems


def _limits(doc: dict[str, Any]) -> list[str]:
    problems = [f"{k} is {len(v)} characters, over {limit}" for k, limit in LIMITS.items()
                if isinstance(v := doc.get(k), str) and len(v) > limit]
    for key, (count, chars) in LISTS.items():
        items = doc.get(key) or []
        if len(items) > count:
            problems.append(f"{len(items)} {key}, over {count}")
        problems += [f"{key} item {i!r} is over {chars} characters"
                     for i in items if isinstance(i, str) and len(i) > chars]
    problems += [f"{len(doc[k])} {k}, over {n}" for k, n in RECIPIENTS.items()
                 if isinstance(doc.get(k), list) and len(doc[k]) > n]
    details = doc.get("details")
    if isinstance(details, dict):
        size = sum(len(str(k)) + len(str(v)) for k, v in details.items())
        if size > DETAILS_CHARS:
            problems.append(f"details total {size} characters, over {DETAILS_CHARS}")
    return problems
