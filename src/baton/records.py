"""Plain values passed between the pipeline and the store."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .model import Alert


@dataclass(frozen=True)
class TargetSpec:
    """One notify target of a policy level, as frozen into an incident.

    ``person`` and ``contacts`` are filled in when the target is resolved at the moment
    it is notified (``to: schedule:primary`` -> whoever is on call then)."""

    connector: str
    to: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    person: str | None = None
    contacts: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {"connector": self.connector, "to": self.to, "params": dict(self.params)}
        if self.person is not None:
            out.update(person=self.person, contacts=dict(self.contacts))
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TargetSpec:
        return cls(d["connector"], d.get("to"), d.get("params") or {}, d.get("person"),
                   d.get("contacts") or {})


# Turns a target into the concrete targets to notify at an instant (epoch seconds): a
# person's contacts, a team's members, whoever a schedule has on call. May be empty.
Resolver = Callable[[TargetSpec, float], list[TargetSpec]]


def unresolved(target: TargetSpec, at: float) -> list[TargetSpec]:
    return [target]


@dataclass(frozen=True)
class RoutedAlert:
    """An alert with the decision the router made for it.

    ``policy_snapshot`` is the whole policy as it was when routed; it is frozen into the
    incident only when the incident opens, so config changes never alter a running
    escalation. Its first level is notified at once.
    """

    alert: Alert
    key: str
    route: str | None
    policy: str | None
    policy_snapshot: Mapping[str, Any] | None


@dataclass(frozen=True)
class IngestResult:
    event_id: str
    incident_ids: tuple[str, ...]
    opened: int
    deduplicated: int
    resolved: int
    deliveries: int
    replayed: bool = False  # the sender's message id was seen before: nothing was done


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
    # The incident document the connector is sent, read in the claim's own transaction:
    # one trip to the writer per claim instead of a claim plus a read per delivery. None
    # when it could not be built there; the dispatcher then reads it itself.
    incident: Mapping[str, Any] | None = None


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
