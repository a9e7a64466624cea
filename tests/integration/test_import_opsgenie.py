"""``baton import opsgenie`` against a strict fake Opsgenie API and a saved export: the
output loads, puts the same people on call, escalates with the same delays, and reports
what has no equivalent; the API key never shows."""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from fakes_import.opsgenie import SEEN, create_app

from baton import _cli_import
from baton.config import Config, load_config
from baton.importers import ImportFailed, Result, opsgenie

EXPORT = Path(__file__).parents[1] / "fixtures" / "importers" / "opsgenie.json"
KEY = "eb243592-faa2-4ba2-a551q-1afdf565c889"
NEW_YORK = ZoneInfo("America/New_York")


def args(**kw: Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    opsgenie.add_arguments(parser)
    parser.add_argument("--output", default="baton.yaml")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--force", action="store_true")
    argv: list[str] = []
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}"] + ([] if v is True else [v])
    ns = parser.parse_args(argv)
    ns.kind = "opsgenie"
    return ns


def load(result: Result, tmp_path: Path) -> Config:
    path = tmp_path / "baton.yaml"
    path.write_text(_cli_import.render(result), encoding="utf-8")
    env = {name: "https://pager.example.com/hook" for name in result.report.env}
    return load_config(path, environ=env)


@pytest.fixture
def export() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXPORT.read_text(encoding="utf-8"))
    return data


@pytest.fixture
async def api(aiohttp_server: Any, export: dict[str, Any]) -> Any:
    return await aiohttp_server(create_app(copy.deepcopy(export), KEY, page_size=2))


async def from_api(api: Any, monkeypatch: pytest.MonkeyPatch, key: str = KEY) -> Result:
    monkeypatch.setenv("OPSGENIE_API_KEY", key)
    return await asyncio.to_thread(opsgenie.run, args(url=str(api.make_url("/"))))


async def test_api_and_export_give_the_same_config(api: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    live = await from_api(api, monkeypatch)
    saved = opsgenie.run(args(from_file=str(EXPORT)))
    assert live.config == saved.config
    assert live.report.lines() == saved.report.lines()
    seen = api.app[SEEN]
    assert "/v2/users?limit=2&offset=4" in seen  # five users, two a page
    assert "/v2/schedules?expand=rotation" in seen


def test_the_output_passes_check_config(tmp_path: Path) -> None:
    result = opsgenie.run(args(from_file=str(EXPORT)))
    config = load(result, tmp_path)
    assert set(config.people) == {"john-doe", "jane-doe", "sam-night", "kim-lee",
                                  "lee-weekend"}
    assert config.teams["sre"] == ("john-doe", "jane-doe")
    assert set(config.schedules) == {"sre_schedule", "ops_schedule"}
    assert set(result.report.env) == {"BATON_PAGE_URL"}


@pytest.mark.parametrize(("local", "who"), [
    ("2026-01-05T08:00", None),            # before any rotation starts
    ("2026-01-05T10:00", "john-doe"),      # weekly rotation, week 1
    ("2026-01-05T23:00", "sam-night"),     # the night window (22-06) over the weekly one
    ("2026-01-06T05:59", "sam-night"),     # overnight window still open
    ("2026-01-06T06:00", "john-doe"),      # window closed
    ("2026-01-06T22:00", "kim-lee"),       # the nightly rotation handed off at 18:00
    ("2026-01-09T17:59", "john-doe"),
    ("2026-01-09T18:00", "lee-weekend"),   # Friday 18:00 to Monday 08:00
    ("2026-01-10T12:00", "lee-weekend"),
    ("2026-01-12T07:59", "lee-weekend"),
    ("2026-01-12T08:00", "john-doe"),      # weekend over; weekly handoff is at 09:00
    ("2026-01-12T09:00", "jane-doe"),      # across the weekly handoff
    ("2026-03-07T19:59", "lee-weekend"),
    ("2026-03-07T20:00", "jane-doe"),      # override from Saturday 20:00 EST
    ("2026-03-08T12:00", "jane-doe"),      # across the US DST change (EDT)
    ("2026-03-09T08:59", "jane-doe"),      # override ends Monday 09:00 EDT
    ("2026-03-09T23:00", "kim-lee"),       # night 63 from 2026-01-05: the second member
])
def test_the_schedule_puts_the_same_person_on_call(tmp_path: Path, local: str,
                                                   who: str | None) -> None:
    config = load(opsgenie.run(args(from_file=str(EXPORT))), tmp_path)
    at = datetime.fromisoformat(local).replace(tzinfo=NEW_YORK)
    assert config.schedules["sre_schedule"].oncall(at) == who


def test_the_policies_follow_the_escalations() -> None:
    policies = opsgenie.run(args(from_file=str(EXPORT))).config["policies"]
    sre = policies["sre_escalation"]
    assert [[t["to"] for t in lv["notify"]] for lv in sre["levels"]] == [
        ["schedule:sre_schedule", "person:kim-lee"], ["team:sre"], ["person:jane-doe"]]
    # Delays 0, 10 and 30 minutes from the alert; then the repeat's 5 minute wait.
    assert [lv.get("escalate_after") for lv in sre["levels"]] == ["10m", "20m", "5m"]
    assert sre["repeat"] == 2
    ops = policies["ops_escalation"]
    assert ops["levels"] == [{"notify": [{"connector": "page", "to": "person:john-doe"}],
                              "escalate_after": "1m"}]
    assert ops["repeat"] == 1


def test_the_report_names_what_did_not_map() -> None:
    unmapped = {f.path for f in opsgenie.run(args(from_file=str(EXPORT))).report.unmapped}
    ops = 'schedules[1] "Ops_Schedule"'
    assert {f"{ops}.rotations[0].participants[1]", f"{ops}.rotations[0].participants[2]",
            f"{ops}.rotations[0].endDate", f"{ops}.overrides[0]",
            'schedules[2] "Lunar"', 'teams[1] "Nobody home"', "users[3].timeZone",
            'escalations[0] "SRE_Escalation".rules[3]',
            'escalations[1] "Ops_Escalation".rules[0]',
            'escalations[1] "Ops_Escalation".rules[2]',
            'escalations[1] "Ops_Escalation".rules',
            'escalations[1] "Ops_Escalation".repeat.closeAlertAfterAll'} <= unmapped


async def test_the_key_never_shows(api: Any, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setenv("OPSGENIE_API_KEY", KEY)
    ns = args(url=str(api.make_url("/")), output=str(tmp_path / "out.yaml"))
    assert await asyncio.to_thread(_cli_import.cmd_import, ns) == 0
    out = capsys.readouterr()
    assert KEY not in (tmp_path / "out.yaml").read_text() + out.out + out.err


async def test_a_wrong_key_is_one_clear_line(api: Any, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ImportFailed, match=r"Opsgenie refused the token in "
                                           r"\$OPSGENIE_API_KEY \(HTTP 401"):
        await from_api(api, monkeypatch, key="not-the-key")
    assert await asyncio.to_thread(_cli_import.cmd_import,
                                   args(url=str(api.make_url("/")), dry_run=True)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: Opsgenie refused")
    assert "Traceback" not in err and "not-the-key" not in err


def test_an_unreachable_api_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSGENIE_API_KEY", KEY)
    with pytest.raises(ImportFailed, match=r"cannot reach Opsgenie at http://127\.0\.0\.1:9"):
        opsgenie.run(args(url="http://127.0.0.1:9"))


def test_a_broken_export_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "export.json"
    bad.write_text('{"users": {}}')
    with pytest.raises(ImportFailed, match="users must be a list"):
        opsgenie.run(args(from_file=str(bad)))


async def test_the_fake_is_strict(api: Any) -> None:
    url = api.make_url("/v2/users")
    async with aiohttp.ClientSession() as s:
        async with s.get(url, headers={"Authorization": f"Bearer {KEY}"}) as r:
            assert r.status == 401
        async with s.get(url.with_query(page="2"),
                         headers={"Authorization": f"GenieKey {KEY}"}) as r:
            assert r.status == 422
