"""Secrets from the environment or a file, never from literal config text.

A ``Secret`` hides its value from ``repr``/``str``/logs/JSON; code that must send it
calls ``reveal()`` at the last moment.
"""

from __future__ import annotations

import hmac


class Secret:
    __slots__ = ("_origin", "_value")

    def __init__(self, value: str, origin: str = "") -> None:
        self._value = value
        self._origin = origin  # e.g. "env:PD_KEY" — safe to show, it names where, not what

    def reveal(self) -> str:
        return self._value

    @property
    def origin(self) -> str:
        return self._origin

    def equals(self, other: str) -> bool:
        """Constant-time comparison, so a wrong guess leaks no prefix length."""
        # surrogateescape: a header with invalid UTF-8 arrives with lone surrogates and
        # must compare unequal, not raise.
        return hmac.compare_digest(self._value.encode(),
                                   other.encode("utf-8", "surrogateescape"))

    def __repr__(self) -> str:
        return f"Secret({self._origin or '***'})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and self.equals(other._value)

    def __hash__(self) -> int:
        return hash(self._origin)
