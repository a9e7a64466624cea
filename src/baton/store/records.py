"""Plain values passed between the pipeline and the store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..model import Alert


@dataclass(frozen=True)
class TargetSpec:
    """One notify target of a policy level, as frozen into an incident."""

    connector: str
    to: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"connector": self.connector, "to": self.to, "params": dict(self.params)}


@dataclass(frozen=True)
class RoutedAlert:
    """An alert with the decision the router made for it.

    ``policy_snapshot`` is the whole policy as it was when routed; it is frozen into the
    incident only when the incident opens, so config changes never alter a running
    escalation. ``first_targets`` are the level-1 targets, delivered at once.
    """

    alert: Alert
    key: str
    route: str | None
    policy: str | None
    policy_snapshot: Mapping[str, Any] | None
    first_targets: tuple[TargetSpec, ...]


@dataclass(frozen=True)
class IngestResult:
    event_id: str
    incident_ids: tuple[str, ...]
    opened: int
    deduplicated: int
    resolved: int
    deliveries: int


@dataclass(frozen=True)
class ClaimedDelivery:
    id: str
    incident_id: str
    connector: str
    action: str
    idempotency_key: str
    attempts: int  # including the one just claimed
    created_at: float
    target: Mapping[str, Any]


@dataclass(frozen=True)
class DeliveryOutcome:
    """What the dispatcher decided after one attempt."""

    delivery_id: str
    state: str  # delivered | pending (retry) | dead
    at: float
    status: int | None = None
    error: str | None = None
    next_attempt_at: float | None = None
    external_ref: Mapping[str, Any] | None = None
    duration: float = 0.0
