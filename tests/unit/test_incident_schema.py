"""incident.schema.json: a valid Draft 2020-12 schema that documents every field, accepts
the documented incident document and refuses what is not one."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from baton import SCHEMA_VERSION, schema
from baton.model import Alert, Link

NAME = "incident.schema.json"


def _alert() -> dict[str, Any]:
    return Alert(
        dedup_key="5a0f4b7c0c2e6a1d", status="firing", severity="critical",
        summary="Instance db-1 down", source_type="alertmanager", source_name="prometheus",
        description="db-1 has been down for more than 5 minutes.", service="node",
        environment="production", resource="db-1:9100",
        labels={"alertname": "InstanceDown", "severity": "critical"},
        links=(Link("http://prometheus:9090/graph", "Source"),),
        started_at=datetime(2024, 3, 5, 9, 12, 30, 482000, tzinfo=UTC),
    ).to_dict()


def _incident() -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "id": "01HQZ8J5X6V2K9M3N4P7R8S1T0",
        "key": "alertname=InstanceDown,service=node",
        "status": "acknowledged",
        "severity": "critical",
        "title": "Instance db-1 down",
        "service": "node",
        "labels": {"alertname": "InstanceDown", "service": "node"},
        "route": "critical-pages",
        "created_at": "2024-03-05T09:12:31.000Z",
        "updated_at": "2024-03-05T09:20:02.117Z",
        "last_seen_at": "2024-03-05T09:17:31.000Z",
        "acknowledged_at": "2024-03-05T09:20:02.117Z",
        "acknowledged_by": "alice",
        "resolved_at": None,
        "resolved_by": None,
        "escalation": {"policy": "page-then-ticket", "level": 1, "next_at": None, "loops": 0},
        "external_refs": [{"connector": "pager", "id": "Q1W2E3R4", "url": None},
                          {"connector": "ops-tickets", "id": "4711",
                           "url": "http://redmine.internal/issues/4711"}],
        "event_count": 3,
        "recurrence_of": None,
        "alerts": [_alert()],
        "deliveries": [{
            "id": "01HQZ8J5Y0A1B2C3D4E5F6G7H8", "incident_id": "01HQZ8J5X6V2K9M3N4P7R8S1T0",
            "connector": "pager", "action": "trigger",
            "idempotency_key": "01HQZ8J5X6V2K9M3N4P7R8S1T0:pager:trigger",
            "state": "delivered", "attempts": 2, "created_at": "2024-03-05T09:12:31.000Z",
            "next_attempt_at": None, "delivered_at": "2024-03-05T09:12:33.250Z",
            "last_error": "HTTP 503", "last_status": 202,
            "external_ref": {"connector": "pager", "id": "Q1W2E3R4", "url": None},
        }],
        "timeline": [
            {"at": "2024-03-05T09:12:31.000Z", "type": "received", "actor": "source:prometheus",
             "detail": {"dedup_key": "5a0f4b7c0c2e6a1d"}},
            {"at": "2024-03-05T09:12:31.000Z", "type": "routed", "actor": "baton",
             "detail": {"route": "critical-pages", "policy": "page-then-ticket"}},
            {"at": "2024-03-05T09:20:02.117Z", "type": "acknowledged", "actor": "alice",
             "detail": {}},
        ],
        "notification": {"action": "acknowledge", "idempotency_key": "x:pager:acknowledge",
                         "delivery_id": "01HQZ8J5Y0A1B2C3D4E5F6G7H9", "connector": "pager",
                         "attempt": 1},
    }


def _errors(doc: Any) -> list[str]:
    return schema.problems(NAME, doc)


def test_schema_is_valid_draft_2020_12() -> None:
    doc = schema.load(NAME)
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == "https://baton.dev/schemas/incident.schema.json"
    assert doc["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    for name in ("alert", "delivery", "timeline_entry", "external_ref", "notification",
                 "severity"):
        assert name in doc["$defs"]


def _properties(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            yield f"{path}.{key}", value
        for key, value in node.items():
            yield from _properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _properties(value, f"{path}[{i}]")


def test_every_property_and_definition_is_described() -> None:
    doc = schema.load(NAME)
    assert doc.get("description")
    missing = [p for p, prop in _properties(doc) if not prop.get("description")]
    missing += [f"$defs/{k}" for k, v in doc["$defs"].items() if not v.get("description")]
    assert missing == []


def test_full_example_validates() -> None:
    assert _errors(_incident()) == []


def test_list_view_without_optional_parts_validates() -> None:
    doc = _incident()
    for key in ("alerts", "deliveries", "timeline", "notification", "service", "route",
                "last_seen_at", "acknowledged_at", "acknowledged_by", "resolved_at",
                "resolved_by", "recurrence_of"):
        del doc[key]
    assert _errors(doc) == []


def test_minimal_alert_from_the_model_validates() -> None:
    alert = Alert("k", "resolved", "info", "", "generic", "scripts").to_dict()
    assert schema.problems(NAME, alert, pointer="alert") == []


def _mutated(change: Any) -> dict[str, Any]:
    doc = copy.deepcopy(_incident())
    change(doc)
    return doc


@pytest.mark.parametrize(("what", "change", "where"), [
    ("bad status", lambda d: d.update(status="open"), "status"),
    ("missing id", lambda d: d.pop("id"), "(root)"),
    ("extra key", lambda d: d.update(owner="bob"), "(root)"),
    ("bad severity", lambda d: d.update(severity="high"), "severity"),
    ("wrong schema version", lambda d: d.update(schema_version="2.0"), "schema_version"),
    ("id not a ULID", lambda d: d.update(id="incident-1"), "id"),
    ("time without offset", lambda d: d.update(created_at="2024-03-05 09:12:31"), "created_at"),
    ("level 0", lambda d: d["escalation"].update(level=0), "escalation.level"),
    ("zero events", lambda d: d.update(event_count=0), "event_count"),
    ("label not a string", lambda d: d["labels"].update(port=5432), "labels.port"),
    ("alert extra key", lambda d: d["alerts"][0].update(acknowledge=True), "alerts[0]"),
    ("alert bad status", lambda d: d["alerts"][0].update(status="acknowledged"),
     "alerts[0].status"),
    ("alert without source", lambda d: d["alerts"][0].pop("source"), "alerts[0]"),
    ("alert link without text", lambda d: d["alerts"][0]["links"][0].pop("text"),
     "alerts[0].links[0]"),
    ("unknown timeline type", lambda d: d["timeline"][0].update(type="exploded"),
     "timeline[0].type"),
    ("delivery bad state", lambda d: d["deliveries"][0].update(state="sent"),
     "deliveries[0].state"),
    ("notification attempt 0", lambda d: d["notification"].update(attempt=0),
     "notification.attempt"),
    ("external ref without id", lambda d: d["external_refs"][0].pop("id"), "external_refs[0]"),
])
def test_mutations_are_refused(what: str, change: Any, where: str) -> None:
    errors = _errors(_mutated(change))
    assert errors, what
    assert any(e.startswith(f"{where}: ") for e in errors), errors
