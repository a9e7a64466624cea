"""Shared by the spec checks of OpenAPI 3 descriptions: one captured request judged by
``openapi-core`` against a vendor's document, its findings as plain sentences."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from fakes import Seen
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest


def header(seen: Seen, name: str) -> str | None:
    """A request header by name, whatever its case on the wire."""
    wanted = name.lower()
    return next((v for k, v in seen.headers.items() if k.lower() == wanted), None)


def json_body(seen: Seen) -> tuple[Any, list[str]]:
    """The request body decoded as JSON, or the problem with it."""
    if not seen.body:
        return None, []
    try:
        return json.loads(seen.body), []
    except ValueError as exc:
        return None, [f"body is not JSON: {exc}"]


def json_request(seen: Seen) -> tuple[Any, list[str]]:
    """A request that must carry JSON: its decoded body, and what is wrong with its
    Content-Type or body (the body is None when it does not decode)."""
    out = []
    if (header(seen, "Content-Type") or "").split(";")[0].strip() != "application/json":
        out.append("Content-Type must be application/json")
    try:
        return json.loads(seen.body), out
    except ValueError:
        return None, [*out, "body is not JSON"]


def request_problems(app: OpenAPI, host_url: str, seen: Seen,
                     path: str | None = None) -> list[str]:
    """What ``app``'s description finds wrong with ``seen`` sent to ``host_url``: path and
    method, parameters, and the body against the operation's request schema."""
    content_type = (header(seen, "Content-Type") or "application/json").lower()
    request = MockRequest(host_url, seen.method, path or seen.path, args=dict(seen.query),
                          headers=dict(seen.headers), data=seen.body,
                          content_type=content_type)
    return [problem for error in app.iter_request_errors(request)
            for problem in _sentences(error)]


def _sentences(error: BaseException) -> Iterator[str]:
    cause = error.__cause__
    schema_errors = getattr(cause, "schema_errors", None) or getattr(
        error, "schema_errors", None)
    if schema_errors:
        for item in schema_errors:
            where = "/".join(str(p) for p in getattr(item, "absolute_path", ())) or "(body)"
            yield f"{type(error).__name__} at {where}: {getattr(item, 'message', item)}"
        return
    nested = getattr(error, "errors", None)
    if isinstance(nested, list | tuple) and nested:
        for inner in nested:
            yield from _sentences(inner)
        return
    yield f"{type(error).__name__}: {error}" + (f" ({cause})" if cause else "")


def schema_problems(validator: Any, instance: Any, what: str, most: int = 10) -> list[str]:
    """A ``jsonschema`` validator's findings on ``instance`` (at most ``most``), each
    ``anyOf`` failure as the branch that came closest, so it reads as one sentence (ADF
    nests them deeply)."""
    from jsonschema.exceptions import best_match

    out = []
    for error in validator.iter_errors(instance):
        while error.context:
            error = best_match(error.context)
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        out.append(f"{what} at {where}: {error.message[:300]}")
    return out[:most]


def walk(doc: Any, *keys: str | int) -> Any:
    """``doc[keys[0]][keys[1]]...``, or None where a step is missing."""
    for key in keys:
        if isinstance(key, int):
            doc = doc[key] if isinstance(doc, list) and len(doc) > key else None
        else:
            doc = doc.get(key) if isinstance(doc, Mapping) else None
    return doc
