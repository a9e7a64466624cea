"""``PUT /v1/ingest/{source}``: Grafana's webhook contact point sends POST or PUT (its
"HTTP Method" setting), so a grafana source takes both alike. Other source types answer
405 naming POST: their senders only POST, and a PUT there is a misconfiguration to report,
not a request to take."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers import PROBLEM, ClientFactory, config_dict, start_gateway, table_counts

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sources" / "grafana"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))
    return data


async def test_grafana_put_is_taken_as_post(aiohttp_client: ClientFactory,
                                            tmp_path: Path) -> None:
    data = config_dict(tmp_path)
    data["sources"]["grafana"] = {"type": "grafana", "auth": {"type": "none"}}
    gw = await start_gateway(aiohttp_client, data, tmp_path)
    firing, resolved = fixture("firing-docs-example"), fixture("resolved-docs-example")
    resp = await gw.client.put("/v1/ingest/grafana", json=firing["payload"],
                               headers=firing.get("headers") or {})
    body = await resp.json()
    assert resp.status == 202, body
    assert body["accepted"] == len(firing["expected"])
    docs = [await gw.incident(i) for i in body["incidents"]]
    assert {d["status"] for d in docs} == {"triggered"}
    # The resolve by PUT closes what the PUT opened, as a POST would.
    resp = await gw.client.put("/v1/ingest/grafana", json=resolved["payload"],
                               headers=resolved.get("headers") or {})
    assert resp.status == 202, await resp.text()
    assert (await gw.incident(body["incidents"][0]))["status"] == "resolved"


async def test_put_elsewhere_is_405_naming_post(aiohttp_client: ClientFactory,
                                                tmp_path: Path) -> None:
    data = config_dict(tmp_path)
    data["sources"]["am"] = {"type": "alertmanager", "auth": {"type": "none"}}
    gw = await start_gateway(aiohttp_client, data, tmp_path)
    for name in ("app", "am"):
        resp = await gw.client.put(f"/v1/ingest/{name}",
                                   json={"dedup_key": "k", "summary": "s"})
        assert resp.status == 405
        assert resp.headers["Allow"] == "POST"
        assert resp.content_type == PROBLEM
        assert (await resp.json())["detail"] == f"source {name!r} takes POST"
    # An unknown source is unknown whatever the method.
    resp = await gw.client.put("/v1/ingest/nope", json={})
    assert resp.status == 404
    assert table_counts(tmp_path)["events"] == 0
