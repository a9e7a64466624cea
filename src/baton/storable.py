"""Text every storage engine can hold: NUL (U+0000) becomes U+FFFD.

PostgreSQL ``text`` cannot contain NUL; SQLite can. Refusing it with a 400 would make a
sender drop a whole Alertmanager batch for one bad character, and storing it on one
engine only would make the engines disagree, so both store the replacement character,
which shows where something was. Applied to everything a request brings before it is
stored: alerts and raw bodies at ingest, management bodies and callback events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

NUL, REPLACEMENT = "\x00", "\ufffd"
T = TypeVar("T")


def storable(value: T) -> T:
    """``value`` with NUL replaced in every string, mapping key and element, however deeply
    nested (strings, mappings, lists, tuples and dataclass instances); unchanged values are
    returned as they are, so the common case allocates nothing."""
    return _clean(value)  # type: ignore[no-any-return]


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(NUL, REPLACEMENT) if NUL in value else value
    if isinstance(value, Mapping):
        pairs = [(k, v, _clean(k), _clean(v)) for k, v in value.items()]
        if all(k is k2 and v is v2 for k, v, k2, v2 in pairs):
            return value
        return {k2: v2 for _, _, k2, v2 in pairs}
    if isinstance(value, list | tuple):
        items = [_clean(v) for v in value]
        if all(a is b for a, b in zip(value, items, strict=True)):
            return value
        return tuple(items) if isinstance(value, tuple) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: new for f in dataclasses.fields(value)
                   if (new := _clean(old := getattr(value, f.name))) is not old}
        return dataclasses.replace(value, **changes) if changes else value
    return value
