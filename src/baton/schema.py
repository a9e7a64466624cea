"""The JSON Schemas shipped in ``baton.schemas`` and validators built from them."""

from __future__ import annotations

import json
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
