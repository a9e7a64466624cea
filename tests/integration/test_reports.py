"""Reports against a fake clock: incidents opened through ingest at known times,
acknowledged, escalated and resolved at known offsets, so every mean, median and rate in
``/v1/reports/response`` and ``/v1/reports/recurring`` (and ``baton report``) is exact."""

from __future__ import annotations

import asyncio
import json
import types
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import PROBLEM, ClientFactory, Gateway, Sink, alert, config_dict, start_gateway

from baton import _cli_store, cli
from baton.clock import FakeClock
from baton.store.views import ts

D = 86400.0
T0 = FakeClock().now()
T1 = T0 + 40 * D  # "old" opened at T0 is outside the default 30-day window at T1
END = T1 + 3650  # where every scenario ends
OPS_TOKEN = "s3cr3t-ops-token"


def reports_config(tmp_path: Path, url: str) -> dict[str, Any]:
    data = config_dict(tmp_path, url)
    data["policies"] = {"notify": {"levels": [{"notify": ["hook"], "escalate_after": "10m"},
                                              {"notify": ["hook"]}]}}
    return data


@pytest.fixture
async def gw(aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
             tmp_path: Path) -> Gateway:
    return await start_gateway(aiohttp_client, reports_config(tmp_path, receiver.url),
                               tmp_path, clock=clock)


async def at(gw: Gateway, when: float) -> None:
    assert when >= gw.clock.now()
    gw.clock.advance(when - gw.clock.now())


async def opened(gw: Gateway, key: str, **fields: Any) -> str:
    answer = await gw.ingest(alert(key, **fields))
    return str(answer["incidents"][0])


async def act(gw: Gateway, inc: str, action: str, **body: str) -> None:
    await gw.post(f"/v1/incidents/{inc}/{action}", {"by": "alice", **body}, 200)


async def scenario(gw: Gateway) -> dict[str, str]:
    """Offsets from T1 (seconds); ack/resolve durations in brackets.

    old    batch  T0, resolved T0+60 (outside 30d); "old" fires again at 3400 -> O2
    A      db     0, ack 60 [60], resolved 600 [600]
    B      db     100, ack 400 [300], stays acknowledged
    C      web    700, escalated by hand 800, ack 1600 [900], unack 1700, ack 1800,
                  resolved 3300 [2600]
    D      -      2000, resolved by its source 2300 [300], never acknowledged
    A2     db     2400 (recurrence of A), deduplicated 2500, source resolves 2700 [300]
    A3     db     3000 (recurrence of A2), escalated by its timer at 3600 (seen at END)
    E      web    3100, open
    S      quiet  3200, silenced
    """
    ids: dict[str, str] = {}
    ids["old"] = await opened(gw, "old", service="batch")
    await at(gw, T0 + 60)
    await act(gw, ids["old"], "resolve")
    await at(gw, T1)
    ids["A"] = await opened(gw, "a", service="db")
    await at(gw, T1 + 60)
    await act(gw, ids["A"], "acknowledge")
    await at(gw, T1 + 100)
    ids["B"] = await opened(gw, "b", service="db")
    await at(gw, T1 + 400)
    await act(gw, ids["B"], "acknowledge")
    await at(gw, T1 + 600)
    await act(gw, ids["A"], "resolve")
    await at(gw, T1 + 700)
    ids["C"] = await opened(gw, "c", service="web")
    await at(gw, T1 + 800)
    await act(gw, ids["C"], "escalate", reason="needs the DBA")
    await at(gw, T1 + 1600)
    await act(gw, ids["C"], "acknowledge")
    await at(gw, T1 + 1700)
    await act(gw, ids["C"], "unacknowledge")
    await at(gw, T1 + 1800)
    await act(gw, ids["C"], "acknowledge")
    await at(gw, T1 + 2000)
    ids["D"] = await opened(gw, "d")
    await at(gw, T1 + 2300)
    await gw.ingest(alert("d", status="resolved"))
    await at(gw, T1 + 2400)
    ids["A2"] = await opened(gw, "a", service="db")
    await at(gw, T1 + 2500)
    await gw.ingest(alert("a", service="db"))
    await at(gw, T1 + 2700)
    await gw.ingest(alert("a", service="db", status="resolved"))
    await at(gw, T1 + 3000)
    ids["A3"] = await opened(gw, "a", service="db")
    await at(gw, T1 + 3100)
    ids["E"] = await opened(gw, "e", service="web")
    await at(gw, T1 + 3200)
    await gw.post("/v1/silences", {"matchers": ['service="quiet"'], "duration": "2h",
                                   "created_by": "bob"}, 201)
    ids["S"] = await opened(gw, "s", service="quiet")
    await at(gw, T1 + 3300)
    await act(gw, ids["C"], "resolve")
    await at(gw, T1 + 3400)
    ids["O2"] = await opened(gw, "old", service="batch")
    await at(gw, END)
    # Only A3's timer is due (E's at 3700, O2's at 4000); the others were stopped.
    assert await gw.store.fire_timers(gw.clock.now()) == 1
    a3 = await gw.incident(ids["A3"])
    assert (a3["recurrence_of"], a3["escalation"]["level"]) == (ids["A2"], 2)
    assert (await gw.incident(ids["A2"]))["recurrence_of"] == ids["A"]
    assert (await gw.incident(ids["O2"]))["recurrence_of"] == ids["old"]
    assert (await gw.incident(ids["S"]))["suppressed"] is not None
    return ids


def stats(n: int, acked: int, resolved: int, mtta: tuple[float | None, float | None],
          mttr: tuple[float | None, float | None], escalated: int, rate: float | None,
          suppressed: int = 0) -> dict[str, Any]:
    return {"incidents": n, "acknowledged": acked, "resolved": resolved,
            "mtta_seconds": {"mean": mtta[0], "median": mtta[1]},
            "mttr_seconds": {"mean": mttr[0], "median": mttr[1]},
            "escalated": escalated, "escalation_rate": rate, "suppressed": suppressed}


NONE = (None, None)


async def test_response_report_by_service_and_overall(gw: Gateway) -> None:
    await scenario(gw)
    doc = await gw.get("/v1/reports/response")
    assert (doc["since"], doc["from"], doc["to"]) == ("30d", ts(END - 30 * D), ts(END))
    # acknowledged 60, 300, 900 (C's first acknowledgement, not its second at 1800);
    # resolved 600, 300, 2600, 300; escalated C (by hand) and A3 (timer) of 9.
    assert doc["overall"] == stats(9, 3, 4, (420.0, 300.0), (950.0, 450.0), 2, 0.2222, 1)
    assert doc["services"] == [
        {"service": "db", **stats(4, 2, 2, (180.0, 180.0), (450.0, 450.0), 1, 0.25)},
        {"service": "web", **stats(2, 1, 1, (900.0, 900.0), (2600.0, 2600.0), 1, 0.5)},
        {"service": "(none)", **stats(1, 0, 1, NONE, (300.0, 300.0), 0, 0.0)},
        {"service": "batch", **stats(1, 0, 0, NONE, NONE, 0, 0.0)},
        {"service": "quiet", **stats(1, 0, 0, NONE, NONE, 0, 0.0, suppressed=1)},
    ]


async def test_recurring_report(gw: Gateway) -> None:
    ids = await scenario(gw)
    doc = await gw.get("/v1/reports/recurring")
    key_a = (await gw.incident(ids["A"]))["key"]
    key_old = (await gw.incident(ids["old"]))["key"]
    # b, c, d, e and s never came back: not listed.
    assert doc == {"since": "30d", "from": ts(END - 30 * D), "to": ts(END), "limit": 10,
                   "problems": [
        {"key": key_a, "incidents": 3, "recurrences": 2, "events": 1 + 3 + 1,
         "first_seen": ts(T1), "last_seen": ts(T1 + 3000), "title": "problem a",
         "service": "db", "latest_incident": ids["A3"], "latest_status": "triggered"},
        # its first incident is older than the window; the one in it is a recurrence
        {"key": key_old, "incidents": 1, "recurrences": 1, "events": 1,
         "first_seen": ts(T1 + 3400), "last_seen": ts(T1 + 3400), "title": "problem old",
         "service": "batch", "latest_incident": ids["O2"], "latest_status": "triggered"}]}
    limited = await gw.get("/v1/reports/recurring?limit=1")
    assert [p["key"] for p in limited["problems"]] == [key_a]
    year = await gw.get("/v1/reports/recurring?since=365d&limit=100")
    assert [(p["key"], p["incidents"], p["recurrences"], p["first_seen"])
            for p in year["problems"]] == [(key_a, 3, 2, ts(T1)), (key_old, 2, 1, ts(T0))]


async def test_the_window_excludes_older_incidents(gw: Gateway) -> None:
    ids = await scenario(gw)
    # [T1+50, END]: A (opened at T1) is out; A2 and A3 are in.
    doc = await gw.get("/v1/reports/response?since=3600s")
    assert (doc["since"], doc["from"]) == ("1h", ts(END - 3600))
    assert doc["services"][0] == {
        "service": "db", **stats(3, 1, 1, (300.0, 300.0), (300.0, 300.0), 1, 0.3333)}
    assert doc["overall"]["incidents"] == 8
    recurring = await gw.get("/v1/reports/recurring?since=1h")
    assert [(p["latest_incident"], p["incidents"], p["recurrences"], p["events"],
             p["first_seen"]) for p in recurring["problems"]] == [
        (ids["A3"], 2, 2, 4, ts(T1 + 2400)), (ids["O2"], 1, 1, 1, ts(T1 + 3400))]
    year = await gw.get("/v1/reports/response?since=365d")
    assert year["overall"]["incidents"] == 10
    assert {"service": "batch", **stats(2, 0, 1, NONE, (60.0, 60.0), 0, 0.0)} in \
        year["services"]
    # a window with nothing in it
    await at(gw, END + 2 * D)
    empty = await gw.get("/v1/reports/response?since=1d")
    assert empty == {"since": "1d", "from": ts(END + D), "to": ts(END + 2 * D),
                     "overall": stats(0, 0, 0, NONE, NONE, 0, None), "services": []}
    assert (await gw.get("/v1/reports/recurring?since=1d"))["problems"] == []


@pytest.mark.parametrize(("path", "name"), [
    ("/v1/reports/response?since=abc", "since"),
    ("/v1/reports/response?since=0", "since"),
    ("/v1/reports/response?since=0d", "since"),
    ("/v1/reports/response?since=-1d", "since"),
    ("/v1/reports/response?since=366d", "since"),
    ("/v1/reports/recurring?since=30", "ok"),
    ("/v1/reports/recurring?since=53w", "since"),
    ("/v1/reports/recurring?limit=0", "limit"),
    ("/v1/reports/recurring?limit=101", "limit"),
    ("/v1/reports/recurring?limit=1.5", "limit"),
    ("/v1/reports/recurring?limit=ten", "limit"),
])
async def test_bad_query_is_400_naming_the_parameter(gw: Gateway, path: str,
                                                     name: str) -> None:
    resp = await gw.client.get(path)
    body = json.loads(await resp.text())
    if name == "ok":  # a bare number is seconds, as everywhere durations are read
        assert (resp.status, body["since"]) == (200, "30s")
        return
    assert (resp.status, resp.content_type) == (400, PROBLEM)
    assert body["errors"] == [name]
    assert name in body["detail"]


async def test_empty_parameters_take_the_defaults(gw: Gateway) -> None:
    doc = await gw.get("/v1/reports/recurring?since=&limit=")
    assert (doc["since"], doc["limit"], doc["problems"]) == ("30d", 10, [])


async def test_reports_need_a_token_when_tokens_are_configured(
        aiohttp_client: ClientFactory, receiver: Sink, clock: FakeClock,
        tmp_path: Path) -> None:
    data = reports_config(tmp_path, receiver.url)
    data["api"] = {"tokens": [{"name": "ops", "token": {"env": "OPS_TOKEN"}}]}
    gw = await start_gateway(aiohttp_client, data, tmp_path, clock=clock,
                             environ={"OPS_TOKEN": OPS_TOKEN})
    await opened(gw, "a", service="db")
    for path in ("/v1/reports/response", "/v1/reports/recurring"):
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            resp = await gw.client.get(path, headers=headers)
            text = await resp.text()
            assert (resp.status, resp.content_type) == (401, PROBLEM), text
            assert resp.headers["WWW-Authenticate"] == 'Bearer realm="baton"'
            assert "s3cr3t" not in text
    gw.headers = {"Authorization": f"Bearer {OPS_TOKEN}"}
    assert (await gw.get("/v1/reports/response"))["overall"]["incidents"] == 1
    assert (await gw.get("/v1/reports/recurring"))["problems"] == []


# --- baton report ----------------------------------------------------------------------

async def test_the_command_prints_the_api_documents(
        gw: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    ids = await scenario(gw)
    path = tmp_path / "baton.yaml"
    path.write_text(yaml.safe_dump(reports_config(tmp_path, "http://127.0.0.1:9/hook")))
    # The command reads the wall clock; here it reads the gateway's fake one.
    monkeypatch.setattr(_cli_store, "time", types.SimpleNamespace(time=gw.clock.now))

    async def baton(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = await asyncio.to_thread(cli.main, ["report", "--config", str(path), *argv])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = await baton("--json")
    assert code == 0
    assert json.loads(out) == {"response": await gw.get("/v1/reports/response"),
                               "recurring": await gw.get("/v1/reports/recurring")}
    code, out, _ = await baton("--json", "--since", "1h", "--limit", "1")
    assert json.loads(out) == {
        "response": await gw.get("/v1/reports/response?since=1h"),
        "recurring": await gw.get("/v1/reports/recurring?since=1h&limit=1")}

    code, out, _ = await baton()
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"Incidents created {ts(END - 30 * D)} .. {ts(END)} (last 30d)"
    assert lines[2].split() == ["service", "incidents", "acked", "resolved", "MTTA", "mean",
                                "MTTA", "median", "MTTR", "mean", "MTTR", "median",
                                "escalated", "suppressed"]
    rows = {line.split("  ")[0].strip(): line.split() for line in lines[3:9]}
    assert rows["db"] == ["db", "4", "2", "2", "3m", "3m", "7m30s", "7m30s", "1", "(25%)",
                          "0"]
    assert rows["all services"] == ["all", "services", "9", "3", "4", "7m", "5m", "15m50s",
                                    "7m30s", "2", "(22%)", "1"]
    assert rows["quiet"] == ["quiet", "1", "0", "0", "-", "-", "-", "-", "0", "(0%)", "1"]
    assert lines[10] == "Recurring problems (top 10)"
    assert lines[12].split() == ["problem", "a", "3", "2", "5", ts(T1 + 3000), "db"]
    assert lines[13].split() == ["problem", "old", "1", "1", "1", ts(T1 + 3400), "batch"]
    assert ids["A3"] not in out  # ids and keys are in --json

    code, _, err = await baton("--since", "2y")
    assert code == 2
    assert err.startswith("error: --since: since must be a duration")
    code, _, err = await baton("--limit", "0")
    assert (code, err) == (2, "error: --limit: limit must be an integer from 1 to 100\n")


async def test_the_command_on_an_empty_store(gw: Gateway, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "baton.yaml"
    path.write_text(yaml.safe_dump(reports_config(tmp_path, "http://127.0.0.1:9/hook")))
    capsys.readouterr()
    assert await asyncio.to_thread(cli.main, ["report", "--config", str(path),
                                              "--since", "7d"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == ["", "no incidents", "", "Recurring problems (top 10)",
                         "none: no incident key opened again in this window"]
