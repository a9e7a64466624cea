"""The real Prometheus Alertmanager, Baton and a webhook receiver, end to end.

Alertmanager's own ``webhook_config`` (bearer ``authorization``, ``send_resolved``) posts
to ``/v1/ingest/prom``; Baton opens incidents keyed by Alertmanager's fingerprints and
notifies the sink; resolving in Alertmanager resolves the incidents and the sink is told.
"""

from __future__ import annotations

import collections
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from procs import Alertmanager, Baton, Received, WebhookSink, http, wait_until

from baton.schema import validator

pytestmark = pytest.mark.integration

# Wait budgets: Alertmanager flushes a group after group_wait (0s) and then every
# group_interval (1s); these leave ample room on a loaded machine and end early.
SETTLE = 20.0

ALERTS: list[dict[str, Any]] = [
    {"labels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical",
                "instance": "checkout-1:9100"},
     "annotations": {"summary": "5xx ratio above 5% on checkout",
                     "runbook_url": "https://runbooks.example/checkout/errors"}},
    {"labels": {"alertname": "HighLatency", "service": "checkout", "severity": "critical"},
     "annotations": {"summary": "p99 latency above 2s on checkout"}},
    {"labels": {"alertname": "DiskFilling", "service": "storage", "severity": "warning",
                "instance": "db-3:9100"},
     "annotations": {"summary": "disk on db-3 full within 4h"}},
]


def am_config(ingest_url: str, token: str) -> dict[str, Any]:
    return {
        "route": {
            "receiver": "baton",
            "group_by": ["alertname", "service"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [{
            "name": "baton",
            "webhook_configs": [{
                "url": ingest_url,
                "send_resolved": True,
                "http_config": {"authorization": {"credentials": token}},
            }],
        }],
    }


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def post_alerts(am: Alertmanager, starts: datetime, ends: datetime | None = None) -> None:
    body = []
    for a in ALERTS:
        item = {**a, "startsAt": rfc3339(starts),
                "generatorURL": f"http://prometheus.example/graph?g0.expr={a['labels']['alertname']}"}
        if ends is not None:
            item["endsAt"] = rfc3339(ends)
        body.append(item)
    answer = http("POST", f"{am.base_url}/api/v2/alerts", body)
    assert answer.status == 200, f"Alertmanager refused the alerts: {answer}"


def label_key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def by_action(sink: WebhookSink, action: str) -> dict[str, list[Received]]:
    out: dict[str, list[Received]] = collections.defaultdict(list)
    for r in sink.received:
        if r.note.get("action") == action:
            out[r.body["id"]].append(r)
    return out


def check_notifications(got: dict[str, list[Received]], action: str) -> dict[str, str]:
    """Every body validates against the incident schema and carries an Idempotency-Key
    equal to its ``notification.idempotency_key``, one key per incident. Returns them."""
    schema = validator("incident.schema.json")
    keys: dict[str, str] = {}
    for incident_id, items in got.items():
        seen = set()
        for r in items:
            errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                      for e in schema.iter_errors(r.body)]
            assert not errors, f"{action} body of {incident_id} is off-schema: {errors}"
            header = r.headers.get("Idempotency-Key")
            assert header, f"{action} for {incident_id} came without an Idempotency-Key"
            assert unquote(header) == r.note["idempotency_key"]
            assert r.note["connector"] == "sink"
            seen.add(header)
        assert len(seen) == 1, f"{action} of {incident_id} under several keys: {seen}"
        keys[incident_id] = seen.pop()
    return keys


def test_alertmanager_alerts_become_incidents_and_resolve(
        make_baton: Any, make_alertmanager: Any, sink: WebhookSink, token: str) -> None:
    baton: Baton = make_baton()
    am: Alertmanager = make_alertmanager(am_config(baton.url("/v1/ingest/prom"), token))

    def detail() -> str:
        return f"{am.log_tail(2000)}\n{baton.log_tail(2000)}"

    post_alerts(am, datetime.now(UTC) - timedelta(minutes=1))

    # Alertmanager's fingerprints, by label set: what Baton must use as dedup keys.
    def fingerprints() -> dict[tuple[tuple[str, str], ...], str] | None:
        alerts = http("GET", f"{am.base_url}/api/v2/alerts").body
        found = {label_key(a["labels"]): a["fingerprint"] for a in alerts}
        return found if len(found) == len(ALERTS) else None

    fps = wait_until(fingerprints, SETTLE, "Alertmanager to list the alerts", detail=detail)

    def stored() -> list[dict[str, Any]] | None:
        docs = [baton.get(f"/v1/incidents/{i['id']}") for i in baton.incidents()]
        keys = {a["dedup_key"] for d in docs for a in d["alerts"]}
        return docs if keys == set(fps.values()) else None

    docs = wait_until(stored, SETTLE, "Baton to store every alert", interval=0.2,
                      detail=detail)

    # Each alert is stored under Alertmanager's fingerprint, with the labels it was sent.
    for d in docs:
        for a in d["alerts"]:
            assert a["dedup_key"] == fps[label_key(a["labels"])]
            assert a["status"] == "firing"
            assert a["source"] == {"type": "alertmanager", "name": "prom"}
    # Critical alerts are grouped per service (one incident, two alerts); the warning
    # opens its own.
    shape = sorted((d["severity"], d["service"], len(d["alerts"])) for d in docs)
    assert shape == [("critical", "checkout", 2), ("warning", "storage", 1)], shape
    ids = {d["id"] for d in docs}
    assert all(d["status"] == "triggered" for d in docs)

    triggers = wait_until(lambda: (t := by_action(sink, "trigger")).keys() >= ids and t,
                          SETTLE, "a trigger at the sink for every incident", detail=detail)
    assert set(triggers) == ids
    trigger_keys = check_notifications(triggers, "trigger")
    for incident_id, items in triggers.items():
        assert all(r.body["status"] == "triggered" for r in items)
        assert all(r.body["alerts"] for r in items), "the incident is sent with its alerts"
        assert all(r.body["id"] == incident_id for r in items)

    # Resolve in Alertmanager: the same alerts, ended a second ago.
    post_alerts(am, datetime.now(UTC) - timedelta(minutes=1),
                ends=datetime.now(UTC) - timedelta(seconds=1))

    wait_until(lambda: {i["id"] for i in baton.incidents(status="resolved")} >= ids,
               SETTLE, "Baton to resolve both incidents", interval=0.2, detail=detail)
    for incident_id in ids:
        doc = baton.get(f"/v1/incidents/{incident_id}")
        assert doc["status"] == "resolved"
        assert doc["resolved_by"] == "source:prom"
        assert {a["status"] for a in doc["alerts"]} == {"resolved"}
        assert all(a["ended_at"] for a in doc["alerts"])

    resolves = wait_until(lambda: (r := by_action(sink, "resolve")).keys() >= ids and r,
                          SETTLE, "a resolve at the sink for every incident", detail=detail)
    assert set(resolves) == ids, "resolves carry the ids the triggers had"
    resolve_keys = check_notifications(resolves, "resolve")
    received = sink.received
    for incident_id in ids:
        assert resolve_keys[incident_id] != trigger_keys[incident_id]
        assert all(r.body["status"] == "resolved" for r in resolves[incident_id])
        # Per (incident, connector) order: the trigger reached the sink first.
        first_resolve = min(received.index(r) for r in resolves[incident_id])
        assert max(received.index(r) for r in triggers[incident_id]) < first_resolve

    # Every POST the sink got was a Baton notification with an Idempotency-Key, and the
    # ledger agrees that everything was delivered.
    assert all(r.headers.get("Idempotency-Key") and r.note for r in received)
    wait_until(lambda: all(d["state"] == "delivered" for d in baton.deliveries()),
               SETTLE, "the ledger to show every delivery delivered", interval=0.2)
    # A trigger and a resolve per incident, plus an update when Alertmanager delivered an
    # alert of a group after the group's first (it batches as it pleases).
    actions = collections.Counter(d["action"] for d in baton.deliveries())
    assert (actions["trigger"], actions["resolve"]) == (len(ids), len(ids)), actions
    assert set(actions) <= {"trigger", "update", "resolve"}, actions
