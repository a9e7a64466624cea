"""Label matchers in Prometheus Alertmanager's syntax.

``name="value"``, ``name!="value"``, ``name=~"regex"``, ``name!~"regex"``; values (and names)
may be double-quoted or bare, and a list may be wrapped in braces: ``{a="b", c=~"d|e"}``.
Semantics follow Alertmanager so routes copied from an Alertmanager config behave the same:

- a label the alert does not have equals the empty string (``team=""`` matches "no team");
- regexes are fully anchored, as if written ``^(?:regex)$``, and use RE2's syntax and
  engine: matching is linear in the label's length whatever the pattern, because label
  values come from senders; what RE2 has no linear algorithm for (backreferences,
  lookaround) is refused when the matcher is parsed;
- inside quotes ``\\"``, ``\\\\`` and ``\\n`` are escapes; any other backslash is kept, so
  ``"\\d+"`` reaches the regex engine as ``\\d+``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, cast

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

MatchOp = Literal["=", "!=", "=~", "!~"]
OPS: tuple[MatchOp, ...] = ("=", "!=", "=~", "!~")

# Characters that end a bare name: the operator and list punctuation. Alertmanager's UTF-8
# parser uses the same idea, so ``service.name=db`` works without quotes.
_BARE_NAME = re.compile(r"[^\s{}!=~,\"'`\\]+")
# Two-character operators first, or ``=~`` would parse as ``=`` with a value of ``~...``.
_OP = re.compile(r"=~|!~|!=|=")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n"}


class _Pattern(Protocol):
    def fullmatch(self, text: bytes) -> object | None: ...


# Compile errors are reported to the caller with the matcher's place; RE2's own logging to
# stderr would only duplicate them, unformatted.
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
_OPTIONS.never_capture = True  # only "does it match" is asked; groups cost without use


def _compile(regex: str) -> _Pattern:
    """``regex`` in RE2 syntax. Inline flags such as ``(?i)`` are valid anywhere in RE2, so
    unlike Python's ``re`` nothing needs moving before the non-capturing group."""
    try:
        return cast(_Pattern, re2.compile(f"(?:{regex})", _OPTIONS))
    except re2.error as exc:
        error = exc
    try:  # RE2 quotes the offending text: name the user's, not our wrapped one
        re2.compile(regex, _OPTIONS)
    except re2.error as exc:
        error = exc
    reason = error.args[0] if error.args else "invalid"
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", "replace")
    # Python's re and PCRE accept these two; say why RE2 (and so Alertmanager) does not.
    hint = ("; backreferences and lookaround are not supported"
            if reason.startswith(("invalid escape sequence", "invalid perl operator")) else "")
    raise ValueError(f"{reason} (RE2 syntax{hint})")


def _utf8(text: str) -> bytes:
    # A JSON body may carry a lone surrogate ("\ud800"), which strict UTF-8 cannot encode;
    # RE2 treats the resulting bytes as invalid UTF-8 and simply does not match them.
    return text.encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class Matcher:
    """One condition on one label. Construction validates ``op`` and compiles the regex."""

    name: str
    op: MatchOp
    value: str
    _regex: _Pattern | None = field(
        default=None, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("matcher label name must not be empty")
        if self.op not in OPS:
            raise ValueError(f"unknown matcher operator {self.op!r} (expected =, !=, =~ or !~)")
        if self.op in ("=~", "!~"):
            try:
                compiled = _compile(self.value)
            except ValueError as exc:
                raise ValueError(
                    f"invalid regular expression {self.value!r} for label {self.name!r}: {exc}"
                ) from None
            object.__setattr__(self, "_regex", compiled)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self._regex is not None:
            # fullmatch anchors both ends, as Alertmanager's ``^(?:...)$`` does in Go.
            found = self._regex.fullmatch(_utf8(actual)) is not None
            return found if self.op == "=~" else not found
        return (actual == self.value) if self.op == "=" else (actual != self.value)

    def __str__(self) -> str:
        return f"{_quote_name(self.name)}{self.op}{quote(self.value)}"


def matches_all(matchers: tuple[Matcher, ...] | list[Matcher],
                labels: Mapping[str, str]) -> bool:
    """All matchers hold (an empty list matches everything, like Alertmanager)."""
    return all(m.matches(labels) for m in matchers)


def quote(text: str) -> str:
    """``text`` as a double-quoted matcher value (the inverse of the parser)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _quote_name(name: str) -> str:
    return name if _BARE_NAME.fullmatch(name) else quote(name)


def _read_quoted(s: str, start: int, original: str) -> tuple[str, int]:
    """The unescaped text of the quoted string opening at ``s[start]``, and the index after
    its closing quote."""
    out: list[str] = []
    i = start + 1
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            nxt = s[i + 1]
            # A spurious escape stays literal, as in Alertmanager, so regexes keep ``\d``.
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise ValueError(f"invalid matcher {original!r}: unterminated quoted string")


def parse_matcher(s: str) -> Matcher:
    """One matcher, e.g. ``severity="critical"``, ``service=~"db|cache"`` or ``env!=prod``."""
    if not isinstance(s, str):
        raise ValueError(f"invalid matcher {s!r}: expected a string like name=\"value\"")
    text = s.strip()
    if not text:
        raise ValueError("invalid matcher '': expected name, operator (=, !=, =~, !~), value")
    if text.startswith('"'):
        name, pos = _read_quoted(text, 0, s)
    else:
        bare = _BARE_NAME.match(text)
        if bare is None:
            raise ValueError(f"invalid matcher {s!r}: missing label name before the operator")
        name, pos = bare.group(), bare.end()
    while pos < len(text) and text[pos].isspace():
        pos += 1
    op = _OP.match(text, pos)
    if op is None:
        raise ValueError(
            f"invalid matcher {s!r}: expected an operator (=, !=, =~, !~) after {name!r}")
    rest = text[op.end():].strip()
    if rest.startswith('"'):
        value, end = _read_quoted(rest, 0, s)
        if rest[end:].strip():
            raise ValueError(
                f"invalid matcher {s!r}: unexpected text after the quoted value: "
                f"{rest[end:].strip()!r}")
    elif '"' in rest:
        raise ValueError(f"invalid matcher {s!r}: unescaped double quote in an unquoted value")
    else:
        value = rest
    try:
        return Matcher(name, cast(MatchOp, op.group()), value)
    except ValueError as exc:
        raise ValueError(f"invalid matcher {s!r}: {exc}") from None


def _split(body: str, original: str) -> list[str]:
    """Split on commas that are not inside a quoted string."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in body:
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    if quoted:
        raise ValueError(f"invalid matchers {original!r}: unterminated quoted string")
    parts.append("".join(current))
    return parts


def parse_matchers(s: str) -> list[Matcher]:
    """A comma-separated list, optionally in braces: ``{a="b", c=~"d"}``. ``{}`` is empty."""
    if not isinstance(s, str):
        raise ValueError(f"invalid matchers {s!r}: expected a string")
    body = s.strip()
    if body.startswith("{") or body.endswith("}"):
        if not (body.startswith("{") and body.endswith("}")):
            raise ValueError(f"invalid matchers {s!r}: unbalanced braces")
        body = body[1:-1].strip()
    if not body:
        return []
    parts = _split(body, s)
    # One trailing comma is tolerated (``{a="b",}``), as the Alertmanager parser does.
    if len(parts) > 1 and not parts[-1].strip():
        parts.pop()
    return [parse_matcher(part) for part in parts]
