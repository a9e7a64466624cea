"""The JSON Schemas shipped in ``baton.schemas`` and validators built from them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sized
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

BASE_URI = "https://baton.dev/schemas/"


def _walk(prefix: str, node: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for child in node.iterdir():
        name = f"{prefix}{child.name}"
        if child.is_dir():
            out.extend(_walk(name + "/", child))
        elif child.name.endswith(".schema.json"):
            out.append((name, child))
    return out


@cache
def _all() -> dict[str, dict[str, Any]]:
    root = resources.files("baton.schemas")
    return {name: json.loads(f.read_text("utf-8")) for name, f in _walk("", root)}


def load(name: str) -> dict[str, Any]:
    """A schema by its path under ``schemas/``, e.g. ``connectors/webhook.schema.json``."""
    try:
        return _all()[name]
    except KeyError:
        raise FileNotFoundError(f"no schema {name!r} in baton.schemas") from None


def exists(name: str) -> bool:
    return name in _all()


@cache
def _registry() -> Registry:  # type: ignore[type-arg,unused-ignore]
    resources_ = [
        (BASE_URI + name, Resource.from_contents(doc)) for name, doc in _all().items()
    ]
    return Registry().with_resources(resources_)


@cache
def validator(name: str, pointer: str = "") -> Draft202012Validator:
    """A validator for a schema file, or for a ``$defs`` part of it (``pointer='payload'``)."""
    doc = load(name)
    target: dict[str, Any] = (
        {"$ref": f"{BASE_URI}{name}#/$defs/{pointer}"} if pointer else doc
    )
    if pointer:
        target = {"$schema": doc.get("$schema"), **target}
    return Draft202012Validator(
        target, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def error_path(err: Any) -> str:
    """``alerts[0].labels`` from a jsonschema error's absolute path."""
    out = ""
    for part in err.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def problems(name: str, instance: Any, pointer: str = "", prefix: str = "") -> list[str]:
    """Every validation problem as ``path: message``, sorted by path for stable output."""
    errs = sorted(validator(name, pointer).iter_errors(instance), key=lambda e: list(
        map(str, e.absolute_path)))
    out = []
    for e in errs:
        path = error_path(e)
        full = f"{prefix}.{path}" if prefix and path else (prefix or path or "(root)")
        if path.startswith("["):
            full = f"{prefix}{path}"
        out.append(f"{full}: {e.message}")
    return out


# --- a fast "certainly valid" check ---------------------------------------------------------
# jsonschema's ``iter_errors`` costs about 0.2 ms per alert (17 % of Baton's CPU per
# ingested alert in the benchmark), and nearly every body is valid: for those only a "yes"
# is needed, not the error list. ``certainly_valid`` answers it with plain Python
# predicates compiled from the same schema document, for the subset of draft 2020-12
# keywords the source schemas use (a schema with any other keyword is not compiled, and
# all its instances go to jsonschema). Each keyword is compiled to exactly jsonschema's
# test for it, so ``if`` can branch on a compiled subschema; callers still treat False as
# "ask jsonschema", which words the errors and has the last word.
# tests/unit/test_schema_fast.py checks the two agree on fixtures and on broken variants.

Check = Callable[[Any], bool]

# Keywords that assert nothing about the instance ("then"/"else" are applied with "if").
_ANNOTATIONS = frozenset({"$schema", "$comment", "$defs", "title", "description",
                          "default", "examples", "deprecated", "readOnly", "writeOnly",
                          "then", "else"})
_LOCAL_REF = re.compile(r"#/\$defs/([A-Za-z0-9_.-]+)")
_TYPES = Draft202012Validator.TYPE_CHECKER
_FORMATS = Draft202012Validator.FORMAT_CHECKER  # the one ``validator()`` gives jsonschema


class _Unsupported(Exception):
    """The schema uses something the fast check does not implement."""


def _is_type(name: str) -> Check:
    # The tests jsonschema's draft 2020-12 type checker makes; the rest are delegated.
    simple: dict[str, Check] = {
        "object": lambda x: isinstance(x, dict), "array": lambda x: isinstance(x, list),
        "string": lambda x: isinstance(x, str), "null": lambda x: x is None}
    return simple.get(name) or (lambda x: bool(_TYPES.is_type(x, name)))


def _any_of(checks: list[Check]) -> Check:
    return checks[0] if len(checks) == 1 else (lambda x: any(c(x) for c in checks))


def _all_of(checks: list[Check]) -> Check:
    return checks[0] if len(checks) == 1 else (lambda x: all(c(x) for c in checks))


def _one_of_strings(values: Any, keyword: str) -> Check:
    # enum/const use jsonschema's own equality (there 1 is not True); for strings and null
    # that is plain == / is, so only those values are compiled.
    if not isinstance(values, list) or not all(isinstance(v, str) or v is None
                                               for v in values):
        raise _Unsupported(keyword)
    allowed = frozenset(v for v in values if v is not None)
    null_ok = None in values
    return lambda x: (isinstance(x, str) and x in allowed) or (null_ok and x is None)


def _required(names: list[str]) -> Check:
    return lambda x: not isinstance(x, dict) or all(k in x for k in names)


def _properties(props: dict[str, Check]) -> Check:
    return lambda x: not isinstance(x, dict) or all(
        check(x[k]) for k, check in props.items() if k in x)


def _additional(known: frozenset[str], extra: Check | None) -> Check:
    if extra is None:  # additionalProperties: false
        return lambda x: not isinstance(x, dict) or all(k in known for k in x)
    return lambda x: not isinstance(x, dict) or all(
        extra(v) for k, v in x.items() if k not in known)


def _items(each: Check) -> Check:
    return lambda x: not isinstance(x, list) or all(each(v) for v in x)


def _length(kind: type[Sized], low: int | None, high: int | None) -> Check:
    def check(x: Any) -> bool:
        if not isinstance(x, kind):
            return True
        n = len(x)
        return (low is None or n >= low) and (high is None or n <= high)
    return check


def _bound(limit: float, minimum: bool) -> Check:
    def check(x: Any) -> bool:
        if not _TYPES.is_type(x, "number"):
            return True
        return bool(x >= limit) if minimum else bool(x <= limit)
    return check


def _format(name: str) -> Check:
    return lambda x: bool(_FORMATS.conforms(x, name))


def _if(cond: Check, then: Check, else_: Check) -> Check:
    return lambda x: then(x) if cond(x) else else_(x)


def _ref(refs: dict[str, Check], name: str) -> Check:
    return lambda x: refs[name](x)  # looked up when called: refs may be recursive


def _compile(doc: dict[str, Any], node: Any, refs: dict[str, Check]) -> Check:
    if isinstance(node, bool):
        return lambda x: node
    if not isinstance(node, dict):
        raise _Unsupported(repr(node))
    checks: list[Check] = []
    for key, value in node.items():
        if key in _ANNOTATIONS or (key == "$id" and node is doc):
            continue
        if key == "type":
            names = [value] if isinstance(value, str) else value
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise _Unsupported(key)
            checks.append(_any_of([_is_type(n) for n in names]))
        elif key in ("enum", "const"):
            checks.append(_one_of_strings(value if key == "enum" else [value], key))
        elif key == "required":
            checks.append(_required(list(value)))
        elif key == "properties":
            checks.append(_properties({k: _compile(doc, v, refs) for k, v in value.items()}))
        elif key == "additionalProperties":
            if "patternProperties" in node:
                raise _Unsupported(key)
            if value is not True:
                checks.append(_additional(frozenset(node.get("properties", {})),
                                          None if value is False
                                          else _compile(doc, value, refs)))
        elif key == "items":
            if "prefixItems" in node:
                raise _Unsupported(key)
            checks.append(_items(_compile(doc, value, refs)))
        elif key in ("minItems", "maxItems", "minLength", "maxLength"):
            kind: type[Sized] = list if key.endswith("Items") else str
            low, high = (value, None) if key.startswith("min") else (None, value)
            checks.append(_length(kind, low, high))
        elif key in ("minimum", "maximum"):
            checks.append(_bound(value, key == "minimum"))
        elif key == "format":
            checks.append(_format(value))
        elif key == "$ref":
            m = _LOCAL_REF.fullmatch(value)
            if m is None or m[1] not in doc.get("$defs", {}):
                raise _Unsupported(key)
            if m[1] not in refs:
                refs[m[1]] = lambda x: False  # a placeholder while a cycle compiles
                refs[m[1]] = _compile(doc, doc["$defs"][m[1]], refs)
            checks.append(_ref(refs, m[1]))
        elif key == "if":
            checks.append(_if(_compile(doc, value, refs),
                              _compile(doc, node.get("then", True), refs),
                              _compile(doc, node.get("else", True), refs)))
        elif key == "allOf":
            checks.append(_all_of([_compile(doc, v, refs) for v in value]))
        elif key == "anyOf":
            checks.append(_any_of([_compile(doc, v, refs) for v in value]))
        else:
            raise _Unsupported(key)
    return _all_of(checks) if checks else (lambda x: True)


@cache
def _fast(name: str, pointer: str) -> Check | None:
    doc = load(name)
    try:
        return _compile(doc, doc["$defs"][pointer] if pointer else doc, {})
    except (_Unsupported, KeyError, TypeError, AttributeError):  # odd schema: no shortcut
        return None  # not compiled: every instance goes to jsonschema


def certainly_valid(name: str, instance: Any, pointer: str = "") -> bool:
    """True only if ``validator(name, pointer)`` finds no error in ``instance``; False means
    "ask jsonschema" (invalid, or not decidable here)."""
    check = _fast(name, pointer)
    return check is not None and check(instance)
