"""One source of truth for config keys: config.schema.json and the loader's table of the
keys it reads (``baton._config_load.KEYS``) name the same keys, and every ``default`` the
schema documents is the dataclass default the loader uses.

A key added to the schema and not to the loader (it would be accepted and ignored), or to
the loader and not to the schema (the schema would refuse it), fails here. Sections
another module builds are listed in ``BUILT_ELSEWHERE``; a new section goes there or,
key by key, into ``KEYS``.
"""

from __future__ import annotations

from typing import Any

import pytest

from baton import schema
from baton._config_keys import BUILT_ELSEWHERE, KEYS, NOT_READ
from baton.duration import parse_duration

# Definitions read whole by one check (a secret reference, a duration), not key by key.
LEAVES = {"secret", "duration", "string_map", "timezone", "clock_time", "weekday",
          "handoff", "date", "instant", "name"}


def schema_keys() -> dict[str, Any]:
    """Every key path of config.schema.json outside BUILT_ELSEWHERE -> its ``default``
    (``...`` when it has none)."""
    doc = schema.load("config.schema.json")
    defs = doc["$defs"]
    out: dict[str, Any] = {}

    def walk(node: Any, path: str, stack: tuple[str, ...]) -> None:
        if not isinstance(node, dict):
            return
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            name = ref.rsplit("/", 1)[1]
            if name not in LEAVES and name not in stack:  # a route's routes: seen once
                walk(defs[name], path, (*stack, name))
        for key in ("allOf", "oneOf", "anyOf"):
            for branch in node.get(key, []):
                walk(branch, path, stack)
        for key in ("then", "else"):
            walk(node.get(key), path, stack)
        for key, sub in node.get("properties", {}).items():
            here = f"{path}.{key}" if path else key
            if here in BUILT_ELSEWHERE:
                continue
            default = sub.get("default", ...) if isinstance(sub, dict) else ...
            if out.get(here, ...) is ...:
                out[here] = default
            walk(sub, here, stack)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*", stack)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]", stack)

    walk(doc, "", ())
    return out


def sections(keys: Any) -> set[str]:
    return {k.split(".")[0].split("[")[0] for k in keys}


def test_every_schema_key_is_read_by_the_loader() -> None:
    ignored = set(schema_keys()) - set(KEYS) - NOT_READ - sections(KEYS)
    assert not ignored, f"in config.schema.json, not read by the loader: {sorted(ignored)}"


def test_every_key_the_loader_reads_is_in_the_schema() -> None:
    unknown = (set(KEYS) | NOT_READ) - set(schema_keys())
    assert not unknown, f"read by the loader, not in config.schema.json: {sorted(unknown)}"


def test_every_top_level_section_is_built_somewhere() -> None:
    top = set(schema.load("config.schema.json")["properties"])
    assert top == sections(KEYS) | set(BUILT_ELSEWHERE)


@pytest.mark.parametrize("key", sorted(k for k, v in schema_keys().items() if v is not ...))
def test_schema_defaults_are_the_dataclass_defaults(key: str) -> None:
    documented = schema_keys()[key]
    owner = KEYS.get(key)
    assert owner is not None, f"{key}: the schema documents a default no field holds"
    actual = getattr(*owner)
    if isinstance(actual, float) and isinstance(documented, str):
        documented = parse_duration(documented)
    assert actual == documented, f"{key}: schema says {documented!r}, {owner} has {actual!r}"


def test_defaults_come_from_the_fields(tmp_path: Any) -> None:
    """What the loader builds from an empty section is the dataclass's own default."""
    from helpers import build, minimal

    from baton.config import ConnectorConfig, DispatchConfig, ServerConfig

    config = build(minimal(), tmp_path)
    assert config.server == ServerConfig()
    assert config.dispatch == DispatchConfig()
    hook = config.connectors["hook"]
    assert (hook.timeout, hook.max_age, hook.backoff_max) == (
        ConnectorConfig.timeout, ConnectorConfig.max_age, ConnectorConfig.backoff_max)
