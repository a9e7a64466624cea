"""The checks of config loading that are not about one section: JSON Schema validation
(with problems worded for people), plugin type schemas, secrets, durations.

jsonschema's messages quote the offending value. That is fine for a port number and wrong
for a secret written literally, so errors raised by the ``secret`` definition (or by an
``anyOf`` that offers it) are reworded without the value. Type errors and unknown keys get
shorter wording too, since a whole section printed back is no help.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema.exceptions import ValidationError

from . import plugin, schema
from ._wallclock import parse_clock, parse_date, parse_handoff, parse_instant
from .duration import parse_duration
from .secret import Secret

CONFIG_SCHEMA = "config.schema.json"
# Settings that exist for tests (a plain-HTTP fake SNS, an in-memory database) are refused
# at load unless this is "1" in the environment: one stray line must not turn a
# production gateway's signature checks or its durability off.
TEST_SETTINGS_ENV = "BATON_ALLOW_TEST_SETTINGS"
_MAX_MESSAGE = 240
# Schedule text forms: their parsers word a problem better than a regex mismatch can.
_TEXT_FORMATS: dict[str, Callable[[Any], object]] = {
    "clock_time": parse_clock, "handoff": parse_handoff, "date": parse_date,
    "instant": lambda value: parse_instant(value, UTC)}
_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
               (list, "array"), (dict, "object"), (type(None), "null"))


@cache
def _defs() -> dict[str, Any]:
    defs: dict[str, Any] = schema.load(CONFIG_SCHEMA)["$defs"]
    return defs


def _join(prefix: str, path: str) -> str:
    if not prefix or not path:
        return prefix or path
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


def _sort_key(err: ValidationError) -> list[tuple[int, Any]]:
    return [(0, p) if isinstance(p, int) else (1, str(p)) for p in err.absolute_path]


def _is_secret_ref(node: Mapping[Any, Any]) -> bool:
    return len(node) == 1 and next(iter(node)) in ("env", "file") and isinstance(
        next(iter(node.values())), str)


def _raised_by(err: ValidationError, definition: Any) -> bool:
    return bool(err.schema == definition or any(_raised_by(c, definition) for c in err.context))


class Checker:
    """Collects ``path: message`` problems; ``bad`` holds paths the schema rejected, so
    later steps do not report the same value twice."""

    def __init__(self, base_dir: Path, environ: Mapping[str, str]) -> None:
        self.problems: list[str] = []
        self.bad: set[str] = set()
        self.base_dir = base_dir  # ``{file: ...}`` secrets are relative to it
        self.environ = environ

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path or '(root)'}: {message}")

    def ensure(self, path: str, message: str) -> None:
        """Add ``message`` unless something at, above or below ``path`` was reported."""
        for problem in self.problems:
            where = problem.partition(": ")[0]
            if where == path or path.startswith(where + ".") or where.startswith(path + "."):
                return
        self.add(path, message)

    @staticmethod
    def type_name(value: Any) -> str:
        return next((name for kind, name in _JSON_TYPES if isinstance(value, kind)),
                    type(value).__name__)

    def schema(self, name: str, instance: Any, prefix: str) -> None:
        errors = sorted(schema.validator(name).iter_errors(instance), key=_sort_key)
        for err in errors:
            for path, message in self._describe(err, _join(prefix, schema.error_path(err))):
                self.bad.add(path)
                self.add(path, message)

    def duration(self, node: dict[str, Any], key: str, parent: str, default: Any,
                 positive: bool = False) -> Any:
        if key not in node:
            return default
        path = _join(parent, key)
        if path in self.bad:
            return default
        try:
            seconds = parse_duration(node[key])
        except ValueError as exc:
            self.add(path, str(exc))
            return default
        if positive and seconds <= 0:
            self.add(path, "must be greater than 0")
            return default
        return seconds

    def secrets(self, node: Any, path: str) -> Any:
        """``node`` with every ``{env: NAME}`` / ``{file: PATH}`` replaced by a Secret."""
        if isinstance(node, dict):
            if _is_secret_ref(node):
                # A ref where the schema wanted something else was reported already.
                reported = any(b == path or b.startswith(path + ".") for b in self.bad)
                return node if reported else self._secret(node, path)
            return {k: self.secrets(v, f"{path}.{k}") for k, v in node.items()}
        if isinstance(node, list):
            return [self.secrets(v, f"{path}[{i}]") for i, v in enumerate(node)]
        return node

    def _secret(self, ref: Mapping[str, str], path: str) -> Secret | None:
        # Messages name where the secret should come from, never what it is.
        if "env" in ref:
            var = ref["env"]
            value = self.environ.get(var)
            if value is None:
                self.add(path, f"environment variable {var} is not set")
                return None
            if not value:
                self.add(path, f"environment variable {var} is empty")
                return None
            return Secret(value, f"env:{var}")
        name = ref["file"]
        try:
            value = (self.base_dir / name).read_text("utf-8")
        except UnicodeDecodeError:
            # Not the codec's message: it quotes the offending bytes of the secret.
            self.add(path, f'secret file "{name}" is not UTF-8 text')
            return None
        except OSError as exc:
            self.add(path, f'cannot read secret file "{name}": '
                           f"{exc.strerror or type(exc).__name__}")
            return None
        value = value[:-2] if value.endswith("\r\n") else value.removesuffix("\n")
        if not value:
            self.add(path, f'secret file "{name}" is empty')
            return None
        return Secret(value, f"file:{name}")

    def typed(self, kind: str, group: str, type_: Any, options: dict[str, Any],
              path: str) -> None:
        """The type-specific keys against ``<kind>s/<type>.schema.json``."""
        if not isinstance(type_, str) or not type_:
            return
        known = plugin.discover(group)
        if type_ not in known:
            names = ", ".join(sorted(known)) or "none installed"
            self.add(f"{path}.type", f'unknown {kind} type "{type_}" (known: {names})')
            return
        schema_name = f"{kind}s/{type_}.schema.json"
        if not schema.exists(schema_name):
            self.add(f"{path}.type",
                     f'{kind} type "{type_}" ships no schema {schema_name} in baton.schemas')
            return
        self.schema(schema_name, options, path)
        self.test_only(schema.load(schema_name), options, path)

    def test_only(self, definition: Mapping[str, Any], options: Mapping[str, Any],
                  path: str) -> None:
        """Keys a plugin schema marks ``x-baton-test-only``, set to anything but their
        default, are refused unless the environment opts in: declared in the schema, so
        a plugin marks its own."""
        if self.environ.get(TEST_SETTINGS_ENV) == "1":
            return
        for key, prop in definition.get("properties", {}).items():
            if (isinstance(prop, dict) and prop.get("x-baton-test-only") is True
                    and key in options and options[key] != prop.get("default")):
                self.add(_join(path, key), f"a setting for tests only; refused unless the "
                                           f"environment has {TEST_SETTINGS_ENV}=1")


    def _describe(self, err: ValidationError, path: str) -> Iterator[tuple[str, str]]:
        defs = _defs()
        if not isinstance(err.instance, dict) and _raised_by(err, defs["secret"]):
            if err.schema == defs["secret"]:
                yield path, ("must be a secret reference, {env: NAME} or {file: PATH}; "
                             "secrets cannot be written literally")
            else:
                yield path, ("matches none of the allowed forms (value not shown: it may be "
                             "a secret); secrets are written {env: NAME} or {file: PATH}")
            return
        if err.schema == defs["duration"] and isinstance(err.instance, str | int | float):
            try:
                parse_duration(err.instance)
            except ValueError as exc:
                yield path, str(exc)
                return
        for name, parse in _TEXT_FORMATS.items():
            if err.schema == defs[name]:
                try:
                    parse(err.instance)
                except ValueError as exc:
                    yield path, str(exc)
                    return
        if err.validator == "additionalProperties" and err.validator_value is False:
            yield from self._unknown_keys(err, path)
            return
        if err.validator == "type":
            wanted = err.validator_value
            wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
            yield path, f"expected {wanted}, got {self.type_name(err.instance)}"
            return
        if err.validator == "minItems":
            count = err.validator_value
            yield path, f"needs at least {count} item{'s' if count != 1 else ''}"
            return
        branches = err.validator_value if err.validator == "oneOf" else None
        if isinstance(branches, list) and all(set(b) == {"required"} for b in branches):
            names = " or ".join(f'"{b["required"][0]}"' for b in branches)
            yield path, f"needs exactly one of {names}"
            return
        message = err.message
        if len(message) > _MAX_MESSAGE:
            message = message[:_MAX_MESSAGE] + "..."
        yield path, message

    def _unknown_keys(self, err: ValidationError, path: str) -> Iterator[tuple[str, str]]:
        node: Any = err.schema  # the schema holding additionalProperties: a mapping
        instance: Any = err.instance
        known = list(node.get("properties", {}))
        patterns = list(node.get("patternProperties", {}))
        for key in instance:
            if key in known or any(re.search(p, str(key)) for p in patterns):
                continue
            hint = difflib.get_close_matches(str(key), known, n=1)
            yield (_join(path, str(key)),
                   "unknown key" + (f' (did you mean "{hint[0]}"?)' if hint else ""))


# Readers of the raw document for the builders: the schema step has reported anything
# malformed already, so a wrong type reads as absent (or the default) here.

def as_dict(node: Any, key: str | None = None) -> dict[str, Any]:
    value = node.get(key) if key is not None and isinstance(node, dict) else node
    return value if isinstance(value, dict) else {}


def as_list(node: Any, key: str) -> list[Any]:
    value = node.get(key) if isinstance(node, dict) else None
    return value if isinstance(value, list) else []


def opt(node: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = node.get(key, default)
    return value if isinstance(value, kind) and not isinstance(value, bool) else default
