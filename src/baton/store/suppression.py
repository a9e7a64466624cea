"""Whether a new incident notifies anyone: silences, muted routes, inhibition.

Evaluated inside the ingest transaction, against the silences and firing alerts in
storage, so every replica decides the same way. A suppressed incident is stored and
visible; its timeline says what suppressed it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..inhibit import InhibitRule, inhibited_by
from ..model import Alert
from . import silences
from .records import RoutedAlert
from .tx import Tx


class Suppressor:
    def __init__(self, inhibit_rules: Sequence[InhibitRule] = ()) -> None:
        self.rules = tuple(inhibit_rules)

    def __call__(self, tx: Tx, ra: RoutedAlert, now: float) -> dict[str, Any] | None:
        if ra.muted:
            return {"reason": "muted", "route": ra.route, "detail": ra.muted}
        labels = ra.alert.match_labels()
        silence = silences.matching(tx, labels, now)
        if silence is not None:
            return {"reason": "silenced", "silence_id": silence}
        if self.rules and any(r.applies_to(labels) for r in self.rules):
            return self._inhibited(tx, ra.alert, labels)
        return None

    def _inhibited(self, tx: Tx, alert: Alert, labels: dict[str, str]) -> dict[str, Any] | None:
        rows = tx.all("SELECT a.incident_id, a.doc FROM alerts a JOIN incidents i "
                      "ON i.id = a.incident_id WHERE a.status = 'firing' "
                      "AND i.open_key IS NOT NULL")
        sources = []
        for row in rows:
            other = Alert.from_dict(json.loads(row["doc"]))
            if (other.source_name, other.dedup_key) != (alert.source_name, alert.dedup_key):
                sources.append((row["incident_id"], other.match_labels()))
        hit = inhibited_by(self.rules, labels, [s for _, s in sources])
        if hit is None:
            return None
        index, source_labels = hit
        incident_id = next(i for i, s in sources if s is source_labels)
        return {"reason": "inhibited", "rule": index, "rule_text": str(self.rules[index]),
                "by_incident": incident_id,
                "by_alertname": source_labels.get("alertname")}
