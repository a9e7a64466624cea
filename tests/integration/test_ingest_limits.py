"""Bounds on one alert (baton.limits), through the gateway: past a bound on labels or the
dedup key the request is 400 naming the alert and field and stores nothing; exactly at the
bound it is accepted; long summaries and descriptions are cut with a marker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import PROBLEM, ClientFactory, Gateway, config_dict, start_gateway, table_counts

from baton.limits import (
    MAX_DEDUP_KEY_BYTES,
    MAX_DESCRIPTION_BYTES,
    MAX_LABEL_NAME_BYTES,
    MAX_LABEL_VALUE_BYTES,
    MAX_LABELS,
    MAX_SUMMARY_BYTES,
    TRUNCATED,
)


@pytest.fixture
async def gw(aiohttp_client: ClientFactory, tmp_path: Path) -> Gateway:
    data = config_dict(tmp_path)
    # Alertmanager's format bounds none of these itself, unlike the generic schema.
    data["sources"]["am"] = {"type": "alertmanager", "auth": {"type": "none"}}
    return await start_gateway(aiohttp_client, data, tmp_path)


def am_alert(fingerprint: str = "f1", labels: dict[str, str] | None = None,
             **annotations: str) -> dict[str, Any]:
    return {"status": "firing", "fingerprint": fingerprint,
            "labels": {"alertname": "Disk", **(labels or {})},
            "annotations": annotations}


def body(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "alerts": list(alerts)}


EXACT = "é" * (MAX_LABEL_VALUE_BYTES // 2)  # two bytes a character: bytes are counted


@pytest.mark.parametrize(("bad", "error"), [
    (am_alert(labels={"instance": "x" * (MAX_LABEL_VALUE_BYTES + 1)}),
     f"alerts[1].labels.instance: value is {MAX_LABEL_VALUE_BYTES + 1} bytes, "
     f"at most {MAX_LABEL_VALUE_BYTES}"),
    (am_alert(labels={"instance": EXACT + "x"}),
     f"alerts[1].labels.instance: value is {MAX_LABEL_VALUE_BYTES + 1} bytes"),
    (am_alert(labels={"n" * (MAX_LABEL_NAME_BYTES + 1): "v"}),
     f"alerts[1].labels: name '{'n' * 64}…' is {MAX_LABEL_NAME_BYTES + 1} bytes, "
     f"at most {MAX_LABEL_NAME_BYTES}"),
    (am_alert(labels={f"l{i}": "v" for i in range(MAX_LABELS)}),  # + alertname
     f"alerts[1].labels: {MAX_LABELS + 1} labels, at most {MAX_LABELS}"),
    (am_alert("k" * (MAX_DEDUP_KEY_BYTES + 1)),
     f"alerts[1].dedup_key: {MAX_DEDUP_KEY_BYTES + 1} bytes, at most {MAX_DEDUP_KEY_BYTES}"),
    (am_alert(labels={"service": "s" * (MAX_LABEL_VALUE_BYTES + 1)}),
     f"alerts[1].labels.service: value is {MAX_LABEL_VALUE_BYTES + 1} bytes"),
])
async def test_past_a_bound_the_batch_is_400_naming_the_field_and_stores_nothing(
        gw: Gateway, tmp_path: Path, bad: dict[str, Any], error: str) -> None:
    resp = await gw.client.post("/v1/ingest/am", json=body(am_alert("good"), bad))
    doc = await resp.json(content_type=None)
    assert resp.status == 400, doc
    assert resp.content_type == PROBLEM
    assert any(e.startswith(error) for e in doc["errors"]), doc
    assert set(table_counts(tmp_path).values()) == {0}  # not even the good alert


async def test_exactly_at_the_bounds_is_accepted(gw: Gateway, tmp_path: Path) -> None:
    labels = {f"l{i}": "v" for i in range(MAX_LABELS - 3)}
    labels["n" * MAX_LABEL_NAME_BYTES] = "v"
    labels["instance"] = EXACT
    alert = am_alert("k" * MAX_DEDUP_KEY_BYTES, labels)
    assert len(alert["labels"]) == MAX_LABELS
    answer = await gw.ingest(body(alert), source="am")
    doc = await gw.incident(answer["incidents"][0])
    stored = doc["alerts"][0]
    assert stored["dedup_key"] == "k" * MAX_DEDUP_KEY_BYTES
    assert stored["labels"]["instance"] == EXACT


async def test_long_summary_and_description_are_cut_with_a_marker(gw: Gateway) -> None:
    summary, description = "s" * 5000, "ü" * MAX_DESCRIPTION_BYTES  # 2x the bound
    answer = await gw.ingest(body(am_alert(summary=summary, description=description)),
                             source="am")
    stored = (await gw.incident(answer["incidents"][0]))["alerts"][0]
    assert stored["summary"].endswith(TRUNCATED) and stored["summary"].startswith("sss")
    assert len(stored["summary"].encode()) <= MAX_SUMMARY_BYTES
    assert stored["description"].endswith(TRUNCATED)
    assert MAX_DESCRIPTION_BYTES - 20 < len(stored["description"].encode()) \
        <= MAX_DESCRIPTION_BYTES
    # At the bound nothing is cut.
    exact = "s" * MAX_SUMMARY_BYTES
    answer = await gw.ingest(body(am_alert("f2", summary=exact)), source="am")
    assert (await gw.incident(answer["incidents"][0]))["alerts"][0]["summary"] == exact


async def test_every_source_is_bounded(gw: Gateway, tmp_path: Path) -> None:
    # The generic source's schema does not bound label values; the pipeline does.
    resp = await gw.client.post("/v1/ingest/app", json=[
        {"dedup_key": "a", "summary": "s", "labels": {"x": "v" * (MAX_LABEL_VALUE_BYTES + 1)}}])
    doc = await resp.json(content_type=None)
    assert resp.status == 400, doc
    assert doc["errors"][0].startswith("alerts[0].labels.x: value is"), doc
    assert set(table_counts(tmp_path).values()) == {0}


async def test_many_bad_alerts_give_a_bounded_error(gw: Gateway) -> None:
    bad = [am_alert("k" * (MAX_DEDUP_KEY_BYTES + i + 1)) for i in range(100)]
    resp = await gw.client.post("/v1/ingest/am", json=body(*bad))
    doc = await resp.json(content_type=None)
    assert resp.status == 400
    assert len(doc["errors"]) == 21 and doc["errors"][-1] == "... and 80 more"
