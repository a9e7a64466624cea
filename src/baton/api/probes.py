"""Rate-limited logging of requests for sources that do not exist.

A 404 on ``/v1/ingest/{name}`` is a misconfigured sender or someone scanning: worth a log
line, but never one per request (a scan would flood the log). One line per name per
``interval``, carrying how many probes of that name were held back since its last line.
The names remembered are bounded: past ``max_names`` names seen within one interval, the
further ones are not logged (the ``unknown_source`` rejection metric still counts them).
"""

from __future__ import annotations


class ProbeLog:
    def __init__(self, interval: float = 60.0, max_names: int = 1024) -> None:
        self.interval = interval
        self.max_names = max_names
        self._seen: dict[str, tuple[float, int]] = {}  # name -> (last logged, held back)

    def take(self, name: str, now: float) -> int | None:
        """None when this probe is not to be logged; else how many probes of ``name``
        were held back since its last line."""
        last, held = self._seen.get(name, (None, 0))
        if last is not None and now - last < self.interval:
            self._seen[name] = (last, held + 1)
            return None
        if last is None and len(self._seen) >= self.max_names:
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.interval}
            if len(self._seen) >= self.max_names:
                return None
        self._seen[name] = (now, 0)
        return held
