"""Grafana adapter: the mapping tables and corners the fixtures do not pin down."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict

from baton.api.auth import check_signature
from baton.config import AuthConfig
from baton.errors import AuthError, PayloadError
from baton.model import iso
from baton.secret import Secret
from baton.sources.grafana import GrafanaSource

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources" / "grafana"


def _fixture(case: str) -> Any:
    return json.loads((FIXTURES / f"{case}.json").read_text("utf-8"))["payload"]


def _body(**alert: Any) -> dict[str, Any]:
    item = {"status": "firing", "labels": {"alertname": "HighLatency"}, **alert}
    return {"version": "1", "orgId": 1, "alerts": [item]}


def _one(body: dict[str, Any], config: dict[str, Any] | None = None) -> Any:
    [alert] = GrafanaSource("grafana", config or {}).parse(body, {})
    return alert


@pytest.mark.parametrize(("word", "severity"), [
    ("critical", "critical"), ("CRITICAL", "critical"), ("page", "critical"), ("P1", "critical"),
    ("error", "error"), ("high", "error"), ("major", "error"), ("p2", "error"),
    ("warning", "warning"), ("warn", "warning"), ("medium", "warning"), ("minor", "warning"),
    ("info", "info"), ("low", "info"), ("none", "info"), ("p5", "info"),
    (" critical ", "critical"), ("sev1", "warning"), ("", "warning"),
])
def test_severity_label_table(word: str, severity: str) -> None:
    alert = _one(_body(labels={"alertname": "A", "severity": word}))
    assert alert.severity == severity
    assert alert.labels["severity"] == word, "the original value stays in labels"


def test_default_severity_is_configurable_and_the_label_is_declared() -> None:
    assert _one(_body(), {"default_severity": "error"}).severity == "error"
    assert GrafanaSource.severity_label == "severity"


@pytest.mark.parametrize(("labels", "annotations", "condition"), [
    ({"alertname": "DatasourceNoData", "rulename": "Lag"}, {}, "no_data"),
    ({"alertname": "DatasourceError", "rulename": "Lag"}, {"Error": "timeout"}, "no_data"),
    ({"alertname": "TestAlert", "instance": "Grafana"}, {"summary": "Notification test"}, "test"),
    # A test with custom labels still carries Grafana's default summary.
    ({"alertname": "TestAlert", "instance": "web-1"}, {"summary": "Notification test"}, "test"),
    # A real rule that happens to be called TestAlert is not a test.
    ({"alertname": "TestAlert", "instance": "web-1"}, {"summary": "p99 above 2s"}, "normal"),
    ({"alertname": "HighLatency"}, {}, "normal"),
])
def test_conditions(labels: dict[str, str], annotations: dict[str, str], condition: str) -> None:
    assert _one(_body(labels=labels, annotations=annotations)).condition == condition


def test_no_data_and_error_summaries_name_the_rule() -> None:
    assert _one(_body(labels={"alertname": "DatasourceNoData", "rulename": "Lag"})).summary \
        == "Lag: no data"
    error = _one(_body(labels={"alertname": "DatasourceError", "rulename": "Lag"},
                       annotations={"Error": "context deadline exceeded"}))
    assert error.summary == "Lag: data source error"
    assert error.description == "context deadline exceeded"


def test_fixture_conditions() -> None:
    src = GrafanaSource("grafana", {})
    assert [a.condition for a in src.parse(_fixture("test-notification"), {})] == ["test"]
    assert [a.condition for a in src.parse(_fixture("no-data"), {})] == ["no_data"]
    assert [a.condition for a in src.parse(_fixture("datasource-error"), {})] == ["no_data"]
    assert [a.condition for a in src.parse(_fixture("no-data-alerting-handling"), {})] \
        == ["no_data"]
    assert [a.condition for a in src.parse(_fixture("legacy-test"), {})] == ["test"]
    assert [a.condition for a in src.parse(_fixture("legacy-no-data"), {})] == ["no_data"]
    assert [a.condition for a in src.parse(_fixture("legacy-alerting"), {})] == ["normal"]


def test_times() -> None:
    firing = _one(_body(startsAt="2021-10-12T09:51:03.157076+02:00",
                        endsAt="2021-10-12T10:51:03+02:00"))
    assert iso(firing.started_at) == "2021-10-12T07:51:03.157Z"
    assert firing.ended_at is None, "a firing alert's endsAt is only a timeout guess"
    resolved = _one(_body(status="resolved", startsAt="0001-01-01T00:00:00Z",
                          endsAt="2024-01-01T10:00:00.123456789Z"))
    assert resolved.started_at is None
    assert iso(resolved.ended_at) == "2024-01-01T10:00:00.123Z"
    with pytest.raises(PayloadError, match=r"alerts\[0\]\.startsAt"):
        _one(_body(startsAt="2021-10-12 09:51"))


def test_links_skip_empty_urls_and_keep_grafanas_order() -> None:
    alert = _one(_body(generatorURL="https://g/rule", dashboardURL="", panelURL="https://g/p",
                       silenceURL="https://g/s", imageURL="https://g/i.png",
                       annotations={"runbook_url": "https://wiki/rb"}))
    assert [(link.text, link.href) for link in alert.links] == [
        ("Alert rule", "https://g/rule"), ("Panel", "https://g/p"), ("Silence", "https://g/s"),
        ("Image", "https://g/i.png"), ("Runbook", "https://wiki/rb")]


def test_dedup_keys() -> None:
    assert _one(_body(fingerprint="abc")).dedup_key == "grafana:1:abc"
    body = _body(fingerprint="abc")
    del body["orgId"]
    assert _one(body).dedup_key == "grafana:abc"
    # Without a fingerprint the labels decide, whatever their order.
    a = _one(_body(labels={"alertname": "A", "instance": "x"}))
    b = _one(_body(labels={"instance": "x", "alertname": "A"}))
    c = _one(_body(labels={"alertname": "A", "instance": "y"}))
    assert a.dedup_key == b.dedup_key != c.dedup_key


def test_fields_from_labels_and_values() -> None:
    alert = _one(_body(labels={"alertname": "A", "job": "api", "env": "prod", "host": "web-1",
                               "component": "db"},
                       annotations={"description": "slow", "impact": "checkout"},
                       values={"B": 2.0, "A": None, "C": 0.25}))
    assert (alert.service, alert.environment, alert.resource, alert.component, alert.impact) \
        == ("api", "prod", "web-1", "db", "checkout")
    assert alert.description == "slow\n\nValues: A=null, B=2, C=0.25"
    assert alert.summary == "A", "no summary annotation: the alertname"


def test_truncated_alerts_are_reported() -> None:
    src = GrafanaSource("grafana", {})
    body = dict(_body(), truncatedAlerts=4)
    assert src.response(src.parse(body, {})) == {"truncated_alerts": 4}
    assert src.response(src.parse(_body(), {})) == {}


def test_legacy_states() -> None:
    src = GrafanaSource("grafana", {})
    body = _fixture("legacy-alerting")
    for state, status in (("alerting", "firing"), ("ok", "resolved"), ("no_data", "firing")):
        [alert] = src.parse(dict(body, state=state), {})
        assert alert.status == status
        assert alert.labels["grafana_state"] == state
    for state in ("pending", "paused"):
        assert src.parse(dict(body, state=state), {}) == []


def test_legacy_keys() -> None:
    src = GrafanaSource("grafana", {})
    body = _fixture("legacy-alerting")
    key = src.parse(body, {})[0].dedup_key
    assert key == "grafana-legacy:1:1:2:1"
    assert src.parse(dict(body, panelId=3), {})[0].dedup_key != key
    assert src.parse(dict(body, ruleId=1.0), {})[0].dedup_key == key, "re-encoded numbers"
    no_id = {k: v for k, v in body.items() if k != "ruleId"}
    assert src.parse(no_id, {})[0].dedup_key == src.parse(copy.deepcopy(no_id), {})[0].dedup_key
    # Newer Grafana gives each legacy test a random ruleId: all tests share one key.
    test = _fixture("legacy-test")
    assert src.parse(dict(test, ruleId=7533874832689366674), {})[0].dedup_key \
        == src.parse(test, {})[0].dedup_key == "grafana-legacy:test"


def test_legacy_severity_from_tags() -> None:
    body = dict(_fixture("legacy-alerting"), tags={"severity": "Critical", "service": "api"})
    alert = _one(body)
    assert (alert.severity, alert.service, alert.labels["severity"]) == ("critical", "api",
                                                                        "Critical")


@pytest.mark.parametrize("body", [
    {"version": "1", "alerts": [{"status": "firing", "labels": {"a": 1}}]},
    {"version": "1", "alerts": {"status": "firing"}},
    {"version": 1, "alerts": []},
    {"ruleName": "x"},
    {"ruleName": "x", "state": "alerting", "evalMatches": [{"value": "high"}]},
    {"ruleName": "x", "state": "alerting", "tags": ["a"]},
    {"ruleName": 5, "state": "ok", "alerts": []},
])
def test_bad_shapes_are_payload_errors(body: Any) -> None:
    with pytest.raises(PayloadError):
        GrafanaSource("grafana", {}).parse(body, {})


def test_the_documented_hmac_setup_accepts_grafanas_signature() -> None:
    # Grafana 12+ signs hex(HMAC-SHA256(secret, "<unix timestamp>:<body>")); the auth block
    # the schema description gives must accept exactly that, and nothing else.
    auth = AuthConfig("hmac", secrets=(Secret("s3cret"),),
                      header="X-Grafana-Alerting-Signature",
                      timestamp_header="X-Grafana-Alerting-Signature-Timestamp")
    body, stamp = json.dumps(_fixture("firing-docs-example")).encode(), "1700000000"
    signature = hmac.new(b"s3cret", f"{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    headers = CIMultiDict({"x-grafana-alerting-signature": signature,
                           "x-grafana-alerting-signature-timestamp": stamp})
    check_signature(auth, body, headers, now=1700000010.0)
    with pytest.raises(AuthError):
        check_signature(auth, body + b" ", headers, now=1700000010.0)


@pytest.mark.parametrize(("status", "reason", "condition"), [
    ("firing", "NoData", "no_data"),
    ("firing", "Error", "no_data"),
    ("firing", "NoData, KeepLast", "normal"),  # keep last state: a real alert still firing
    ("resolved", "MissingSeries", "normal"),
    ("resolved", "NoData", "normal"),
])
def test_state_reason(status: str, reason: str, condition: str) -> None:
    alert = _one(_body(status=status, annotations={"grafana_state_reason": reason}))
    assert alert.condition == condition
    assert alert.labels["grafana_state_reason"] == reason, "routes can match the reason"
