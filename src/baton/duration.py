"""Durations as config writes them (``30s``, ``10m``, ``1h30m``, ``250ms``) and as seconds.

The grammar is Prometheus's: one or more ``<number><unit>`` terms, summed. A bare number
(YAML ``30`` or the string ``"30"``) means seconds, so numeric and string forms agree.
``DURATION_PATTERN`` is the same grammar for JSON Schema, so editors validate what we parse.
"""

from __future__ import annotations

import math
import re

UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}

DURATION_PATTERN = r"^(?:[0-9]+(?:\.[0-9]+)?|(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d|w))+)$"
_FULL = re.compile(DURATION_PATTERN)
# "ms" before "m", otherwise "250ms" would read as 250 minutes followed by garbage.
_TERM = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)")

_EXPECTED = "expected seconds or a duration like 30s, 10m, 1h30m, 2d or 250ms"


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``value``; ``ValueError`` naming the value and the accepted forms."""
    # bool is an int subclass, and YAML turns ``yes``/``on`` into True: never a duration.
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: {_EXPECTED}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"invalid duration {value!r}: must be a finite number >= 0")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}: {_EXPECTED}")
    text = value.strip()
    if not _FULL.match(text):
        raise ValueError(f"invalid duration {value!r}: {_EXPECTED}")
    if text[-1].isdigit():
        return float(text)
    return sum(float(num) * UNITS[unit] for num, unit in _TERM.findall(text))


def format_duration(seconds: float) -> str:
    """The shortest ``1d2h3m4s500ms`` form of ``seconds`` (millisecond precision)."""
    if isinstance(seconds, bool) or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"cannot format duration {seconds!r}: must be a finite number >= 0")
    remaining = round(seconds * 1000)
    if remaining == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000),
                       ("ms", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
