"""``schema.certainly_valid`` (the ingest fast path) agrees with jsonschema.

Ingest skips jsonschema when the fast check says a body is valid, so a body the fast
check wrongly passed would be accepted without its 400. Here both judge every source
fixture, bodies no source accepts, and many broken variants of every valid body (each
value replaced, each key dropped, an unknown key added, lengths at the limits).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from baton import schema

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
# Sources whose payload has a fixed shape (generic-mapped takes any JSON: no $defs/payload).
SOURCE_SCHEMAS = sorted(n for n in schema._all() if n.startswith("sources/")
                        and "payload" in schema.load(n).get("$defs", {}))

# Stand-ins for any value: every JSON type, edge lengths of the schemas' limits.
VALUES: list[Any] = [None, True, 0, -1, 1.5, "", "x", "resolved", "x" * 255, "x" * 256,
                     "x" * 1024, "x" * 1025, [], ["x"], {}, {"a": 1}]


def _bodies(type_: str) -> list[tuple[Any, bool]]:
    """Every fixture body, and whether it gets broken variants: the valid ones with the
    most distinct fields (three per source keep the test at a few seconds)."""
    bodies = [json.loads(p.read_text("utf-8")) for p in sorted((FIXTURES / type_).glob("*.json"))]
    valid = sorted((f["payload"] for f in bodies if "expected" in f),
                   key=lambda b: len(_shape(b)), reverse=True)
    varied = {json.dumps(b, sort_keys=True) for b in valid[:3]}
    return [(f["payload"], json.dumps(f["payload"], sort_keys=True) in varied) for f in bodies]


def _shape(node: Any) -> set[str]:
    """The field paths of a body, list positions folded, e.g. ``alerts[].labels.job``."""
    if isinstance(node, dict):
        return {f"{k}{sub}" for k, v in node.items() for sub in {"", *(f".{p}" for p in _shape(v))}}
    if isinstance(node, list):
        return {"[]", *(f"[]{p}" for item in node for p in _shape(item))}
    return set()


def _variants(body: Any) -> Iterator[Any]:
    """``body`` with one change at one place, for every place in it."""
    yield body
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, k))
        elif isinstance(node, list) and node:
            walk(node[0], (*path, 0))  # items share one schema: the first stands for all

    walk(body, ())
    for path in paths:
        for value in VALUES:
            yield _replaced(body, path, value)
        if path:
            yield _replaced(body, path, _DROP)
        yield _replaced(body, path, _ADD_KEY)
        if len(path) <= 1:  # the alert lists: one past the 1000 the generic format allows
            yield _replaced(body, path, _REPEAT)


_DROP, _ADD_KEY, _REPEAT = object(), object(), object()


def _replaced(body: Any, path: tuple[Any, ...], change: Any) -> Any:
    out = copy.deepcopy(body)
    if not path:
        parent, key = None, None
        target = out
    else:
        parent = out
        for step in path[:-1]:
            parent = parent[step]
        key = path[-1]
        target = parent[key]
    if change is _ADD_KEY:
        if isinstance(target, dict):
            target["surely_unknown_key"] = "x"
        return out
    if change is _REPEAT:
        if isinstance(target, list) and target:
            target.extend([target[0]] * (1001 - len(target)))
        return out
    if parent is None:
        return change
    if change is _DROP:
        del parent[key]
    else:
        parent[key] = change
    return out


def test_the_source_schemas_compile() -> None:
    # If one stops compiling (a new keyword), ingest silently loses the fast path.
    for name in SOURCE_SCHEMAS:
        assert schema._fast(name, "payload") is not None, name


@pytest.mark.parametrize("name", SOURCE_SCHEMAS)
def test_fast_check_agrees_with_jsonschema(name: str) -> None:
    type_ = name.removeprefix("sources/").removesuffix(".schema.json")
    validator = schema.validator(name, "payload")
    checked = 0
    for body, good in _bodies(type_):
        for variant in _variants(body) if good else [body]:
            expected = not any(True for _ in validator.iter_errors(variant))
            assert schema.certainly_valid(name, variant, "payload") == expected, variant
            checked += 1
    assert checked > 500


@pytest.mark.parametrize("body", [None, 42, 3.5, True, "str", "", [], {}, [None], [[[]]],
                                  {"alerts": None}, {"alerts": []}, {"alerts": [{}]},
                                  json.loads("[" * 60 + "]" * 60)])
def test_garbage_is_never_certainly_valid(body: Any) -> None:
    for name in SOURCE_SCHEMAS:
        assert not schema.certainly_valid(name, body, "payload")


def test_unsupported_keywords_are_not_compiled() -> None:
    doc: dict[str, Any] = {"$defs": {"s": {"type": "string"}}}
    for node in ({"type": "string", "pattern": "^a"}, {"oneOf": [{"type": "string"}]},
                 {"$ref": "other.schema.json#/$defs/s"}, {"enum": ["a", 1]}):
        with pytest.raises(schema._Unsupported):
            schema._compile(doc, node, {})
