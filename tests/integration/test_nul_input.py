"""Finding 3 of issue 10: a NUL character behaves the same on SQLite and PostgreSQL.

PostgreSQL text cannot hold U+0000, so an alert carrying one was stored on SQLite and
refused by PostgreSQL with a 503 forever (and the good alerts of its batch with it). NUL
now becomes U+FFFD before storage on both engines, so the sender gets its 202."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import ClientFactory, Gateway, Sink, alert, config_dict, start_gateway
from pg import pg_schema, pg_url  # noqa: F401

from baton.clock import FakeClock
from baton.errors import PayloadError
from baton.store import open_store

pytestmark = pytest.mark.integration
NUL, REPLACED = "\u0000", "\ufffd"


@pytest.fixture(params=["sqlite", "postgresql"])
async def gw(request: pytest.FixtureRequest, aiohttp_client: ClientFactory, receiver: Sink,
             clock: FakeClock, tmp_path: Path) -> Gateway:
    data = config_dict(tmp_path, receiver.url)
    if request.param == "postgresql":
        data["storage"]["url"] = request.getfixturevalue("pg_url")
    return await start_gateway(aiohttp_client, data, tmp_path, clock=clock)


async def test_nul_in_every_text_field_is_stored_as_replacement(gw: Gateway) -> None:
    bad = alert(f"key{NUL}1", f"sum{NUL}mary", description=f"de{NUL}sc",
                service=f"svc{NUL}", labels={f"la{NUL}bel": f"va{NUL}lue"})
    answer = await gw.ingest([alert("good"), bad])
    assert answer["accepted"] == 2 and len(answer["incidents"]) == 2
    docs = [await gw.incident(i) for i in answer["incidents"]]
    stored = next(d for d in docs if d["alerts"][0]["dedup_key"] != "good")
    first = stored["alerts"][0]
    assert first["dedup_key"] == f"key{REPLACED}1"
    assert first["summary"] == f"sum{REPLACED}mary"
    assert first["description"] == f"de{REPLACED}sc"
    assert first["service"] == f"svc{REPLACED}"
    assert first["labels"][f"la{REPLACED}bel"] == f"va{REPLACED}lue"
    # The same alert again deduplicates onto the same incident: the key is stable.
    again = await gw.ingest([bad])
    assert again["incidents"] == [stored["id"]]


async def test_nul_in_a_note_is_stored_as_replacement(gw: Gateway) -> None:
    [incident] = (await gw.ingest([alert("a")]))["incidents"]
    await gw.post(f"/v1/incidents/{incident}/notes", {"by": f"al{NUL}ice",
                                                       "text": f"no{NUL}te"}, 201)
    await gw.post(f"/v1/incidents/{incident}/acknowledge",
                  {"by": "bob", "note": f"ack{NUL}"}, 200)
    doc = await gw.incident(incident)
    texts = [str(e.get("detail")) + str(e.get("actor")) for e in doc["timeline"]]
    assert any(f"no{REPLACED}te" in t for t in texts), doc["timeline"]
    assert not any(NUL in t for t in texts)


async def test_nul_in_a_silence_comment_is_stored_as_replacement(gw: Gateway) -> None:
    resp = await gw.client.post("/v1/silences", json={
        "matchers": ['service="db"'], "duration": "1h",
        "comment": f"x{NUL}y", "created_by": "ops"})
    assert resp.status == 201, await resp.text()
    listed = await gw.get("/v1/silences")
    assert f"x{REPLACED}y" in str(listed) and NUL not in str(listed)


@pytest.mark.parametrize("value", ["a\u0000b", "2026-13-45"])
async def test_a_data_error_on_postgresql_is_a_payload_error(pg_url: str,  # noqa: F811
                                                             value: str) -> None:
    """What still reaches PostgreSQL with data it refuses (class 22, or NUL refused by the
    driver) is the request's fault: PayloadError (400), not StorageUnavailable (503, which
    a sender retries forever)."""
    store = open_store(pg_url)
    store.open()
    try:
        with pytest.raises(PayloadError, match="refused a value"):
            await store.engine.write(
                lambda tx: tx.one("SELECT CAST(? AS text), CAST(? AS date)", (value, "2026-01-01")
                                      if NUL in value else ("ok", value)))
    finally:
        store.close()
