"""Helpers shared by the built-in source adapters: schema checks, timestamps, stable keys.

Everything here is a pure function of its arguments, as the adapters must be.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from .. import schema
from ..errors import PayloadError
from ..model import Alert

# At most this many problems are listed in a PayloadError: a body of 10,000 broken alerts
# gets a readable answer, not a huge one.
MAX_PROBLEMS = 50

# RFC 3339 plus what real senders add to it: fractions of any length (Go prints
# nanoseconds), a lowercase "t"/"z" or a space (RFC 3339 section 5.6 allows them), and
# PagerDuty's "+0000" offset without a colon. Not datetime.fromisoformat: it also takes
# ISO 8601 forms no sender of ours means (week dates, date-only, "20240101T1000"), which
# should be refused, not guessed at.
_TIMESTAMP = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[Tt ]"
    r"(?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})(?:[.,](?P<frac>\d+))?"
    r"(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<oh>\d{2}):?(?P<om>\d{2}))?",
    re.ASCII,  # only 0-9: int() would happily read other scripts' digits
)


def parse_timestamp(value: str, path: str, *, naive_is_utc: bool = False,
                    zero_is_none: bool = False) -> datetime | None:
    """An aware UTC datetime from an RFC 3339 string; ``PayloadError`` naming ``path`` if not.

    Fractions beyond microseconds are truncated, never rounded, so a nanosecond timestamp
    cannot roll over into the next second. ``zero_is_none`` maps year 1 (Go's zero
    ``time.Time``, which Alertmanager sends for "unset") to None. ``naive_is_utc`` accepts a
    missing offset as UTC, for ISO 8601 senders that omit it.
    """
    m = _TIMESTAMP.fullmatch(value.strip())
    if m is None:
        raise PayloadError(f"{path}: not an RFC 3339 date-time",
                           [f"{path}: {quote(value)} is not an RFC 3339 date-time"])
    if zero_is_none and int(m["y"]) <= 1:
        return None
    if not (m["z"] or m["sign"] or naive_is_utc):
        raise PayloadError(f"{path}: date-time without a UTC offset",
                           [f"{path}: {quote(value)} has no UTC offset (add 'Z' or '+00:00')"])
    micro = int((m["frac"] or "0")[:6].ljust(6, "0"))
    # RFC 3339 allows a leap second (:60); datetime cannot hold one, and the second before
    # is the closest moment it can represent.
    second = min(int(m["s"]), 59)
    try:
        tz = UTC
        if m["sign"]:
            minutes = int(m["oh"]) * 60 + int(m["om"])
            tz = timezone(timedelta(minutes=-minutes if m["sign"] == "-" else minutes))
        dt = datetime(int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"]), int(m["mi"]),
                      second, micro, tzinfo=tz)
        return dt.astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # month 13, offset +25:00, year 0 in UTC
        raise PayloadError(f"{path}: not a valid date-time",
                           [f"{path}: {quote(value)} is not a valid date-time ({exc})"]
                           ) from None


# Epoch numbers above these are milliseconds, microseconds, nanoseconds: seconds that
# large are past the year 5000, and no sender means those.
_MS, _US, _NS = 10**11, 10**14, 10**17


def parse_time(value: Any, path: str) -> datetime | None:
    """An aware UTC datetime from any timestamp shape monitoring tools send: epoch seconds,
    milliseconds, microseconds or nanoseconds (number or digit string, fractions allowed),
    RFC 3339 / ISO 8601 date-times with or without a zone (none means UTC) and with
    fractions of any length. ``None``, ``""`` and ``0`` are None (unset). Anything else is a
    ``PayloadError`` naming ``path``."""
    if value is None or value == "" or value == 0 or value is False:
        return None
    if isinstance(value, bool):
        raise PayloadError(f"{path}: not a timestamp", [f"{path}: {quote(value)}"])
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\d{1,20}(\.\d{1,9})?", value.strip(),
                                                 re.ASCII):
        number = float(value.strip())
    if number is not None:
        if number != number or number < 0:  # NaN or before 1970
            raise PayloadError(f"{path}: not a timestamp", [f"{path}: {quote(value)}"])
        for scale, divisor in ((_NS, 1e9), (_US, 1e6), (_MS, 1e3)):
            if number >= scale:
                number /= divisor
                break
        try:
            return datetime.fromtimestamp(number, UTC)
        except (OverflowError, OSError, ValueError):
            raise PayloadError(f"{path}: timestamp out of range",
                               [f"{path}: {quote(value)}"]) from None
    if isinstance(value, str):
        return parse_timestamp(value, path, naive_is_utc=True)
    raise PayloadError(f"{path}: not a timestamp", [f"{path}: {quote(value)} is not a "
                                                    "date-time or an epoch number"])


def quote(value: Any, limit: int = 64) -> str:
    """``repr`` of a sender's value, cut short: errors name the value, never echo a body."""
    try:
        text = repr(value)
    except RecursionError:  # JSON nested as deep as the decoder allows: still a 400
        text = f"<{type(value).__name__} nested too deeply>"
    return text if len(text) <= limit else text[:limit] + "..."


def check_payload(schema_name: str, payload: Any, what: str, pointer: str = "payload") -> None:
    """Validate ``payload`` against ``$defs/<pointer>`` of a source schema (``payload``
    unless the shape depends on a header, as Sentry's does), all problems at once."""
    try:
        if schema.certainly_valid(schema_name, payload, pointer=pointer):
            return  # the common case, at a fraction of jsonschema's cost; errors from it
        found = [_shorten(p) for p in
                 schema.problems(schema_name, payload, pointer=pointer, prefix="payload")]
    except RecursionError:
        # jsonschema descends a few Python frames per level: JSON the decoder accepted
        # can still be too deep for it, and that is the sender's 400, not a 500.
        raise PayloadError(f"not a valid {what} payload: nested too deeply",
                           ["payload: nested too deeply to validate"]) from None
    if found:
        listed = found[:MAX_PROBLEMS]
        if len(found) > MAX_PROBLEMS:
            listed.append(f"(and {len(found) - MAX_PROBLEMS} more problems)")
        raise PayloadError(f"not a valid {what} payload: {found[0]}"
                           + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""),
                           listed)


def _shorten(problem: str, limit: int = 240) -> str:
    # jsonschema quotes the offending value; a 500 kB string must not come back in the
    # 400 body or the log line. The end of the message says what is wrong, so keep it.
    if len(problem) <= limit:
        return problem
    return f"{problem[:limit // 2]} ... {problem[-(limit // 2 - 5):]}"


def stable_hash(value: Any) -> str:
    """sha256 hex of the canonical JSON of ``value`` (sorted keys, no whitespace), so equal
    data always gives the same key whatever order the sender wrote it in."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def first_text(mapping: Any, keys: Iterable[str]) -> str | None:
    """The first non-empty string among ``mapping[key]`` for ``keys``, or None."""
    if not isinstance(mapping, dict):
        return None
    for key in keys:
        value = mapping.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


class AlertBatch(list[Alert]):
    """The alerts of one request plus facts about the request that are not alerts.

    ``Source.response()`` only receives the list ``parse()`` returned; carrying the facts on
    that list (instead of on the adapter instance) keeps concurrent requests to one source
    from seeing each other's values. A plain ``list`` compares equal to it.
    """

    def __init__(self, alerts: Iterable[Alert] = (), *, truncated_alerts: int = 0) -> None:
        super().__init__(alerts)
        self.truncated_alerts = truncated_alerts
