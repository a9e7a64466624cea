"""Time-ordered identifiers (ULID layout): 48-bit milliseconds + 80 random bits, Crockford
base32. Sorting ids sorts by creation time, which gives cursors for free, and any replica
can mint them without coordination. Within one process ids are strictly increasing (the
random part is incremented inside a millisecond), so timeline entries written in one
transaction keep their order."""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last = 0


def new_id(now: float | None = None) -> str:
    global _last
    ms = int((time.time() if now is None else now) * 1000)
    with _lock:
        value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
        if value <= _last:
            value = _last + 1
        _last = value
    out = []
    for _ in range(26):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))
