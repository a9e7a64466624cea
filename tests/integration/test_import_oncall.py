"""``baton import oncall`` against a strict fake OnCall API and a saved export: the output
loads as a Baton config, puts the same people on call, escalates as the chain did, and
reports what it left out; the token never shows."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fakes_import.oncall import SEEN, create_app

from baton import _cli_import
from baton.config import Config, load_config
from baton.importers import ImportFailed, Result, oncall

EXPORT = Path(__file__).parents[1] / "fixtures" / "importers" / "oncall.json"
TOKEN = "oncall-3f9a1c7e5b2d4a6c8e0f"
BERLIN = ZoneInfo("Europe/Berlin")


def args(**kw: Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    oncall.add_arguments(parser)
    parser.add_argument("--output", default="baton.yaml")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--force", action="store_true")
    argv: list[str] = []
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}"] + ([] if v is True else [v])
    ns = parser.parse_args(argv)
    ns.kind = "oncall"
    return ns


def load(result: Result, tmp_path: Path) -> Config:
    path = tmp_path / "baton.yaml"
    path.write_text(_cli_import.render(result), encoding="utf-8")
    env = {name: "https://pager.example.com/hook" if name.endswith("_URL") else "dummy"
           for name in result.report.env}
    return load_config(path, environ=env)


@pytest.fixture
def export() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXPORT.read_text(encoding="utf-8"))
    return data


@pytest.fixture
async def api(aiohttp_server: Any, export: dict[str, Any]) -> Any:
    return await aiohttp_server(create_app(export, TOKEN, page_size=2))


async def from_api(api: Any, monkeypatch: pytest.MonkeyPatch, token: str = TOKEN) -> Result:
    monkeypatch.setenv("ONCALL_API_TOKEN", token)
    return await asyncio.to_thread(oncall.run, args(url=str(api.make_url("/"))))


async def test_api_and_export_give_the_same_config(api: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    live = await from_api(api, monkeypatch)
    saved = oncall.run(args(from_file=str(EXPORT)))
    assert live.config == saved.config
    assert live.report.lines() == saved.report.lines()
    seen = api.app[SEEN]
    assert "/api/v1/users/?page=3" in seen  # five users, two a page: every page was read
    assert "/api/v1/escalation_policies/?page=7" in seen


def test_the_output_passes_check_config(tmp_path: Path) -> None:
    result = oncall.run(args(from_file=str(EXPORT)))
    config = load(result, tmp_path)
    assert set(config.people) == {"alice", "bob", "carol", "dave", "erin-o"}
    assert config.people["alice"].contacts == {"email": "alice@example.com",
                                               "slack": "UALEXSLACKDJPK"}
    assert set(config.schedules) == {"primary", "secondary"}
    assert set(result.report.env) == {"BATON_PAGE_URL", "BATON_SOURCE_PROMETHEUS_PROD_TOKEN",
                                      "BATON_SOURCE_GRAFANA_ALERTING_TOKEN"}


@pytest.mark.parametrize(("local", "who"), [
    ("2026-01-05T08:59", None),          # before the rotation's first handoff
    ("2026-01-05T20:00", "alice"),       # week 1, evening: the weekly layer
    ("2026-01-06T10:00", "dave"),        # business hours (level 1) win over level 0
    ("2026-01-10T12:00", "alice"),       # Saturday: no business hours
    ("2026-01-12T08:59", "alice"),       # a minute before the weekly handoff
    ("2026-01-12T09:00", "dave"),        # handoff at 09:00 Monday, inside business hours
    ("2026-01-12T17:00", "bob"),         # business hours over: week 2 is bob's
    ("2026-03-28T17:59", "bob"),         # just before the override
    ("2026-03-28T18:00", "carol"),       # the override, Saturday 18:00 CET
    ("2026-03-29T12:00", "carol"),       # across the DST change (Sunday, CEST)
    ("2026-03-30T08:59", "carol"),       # 38 h later, 09:00 CEST is the override's end
    ("2026-03-30T09:00", "dave"),        # Monday business hours again
    ("2026-03-30T17:30", "alice"),       # week 13 from 2026-01-05: alice
])
def test_the_schedule_puts_the_same_person_on_call(tmp_path: Path, local: str,
                                                   who: str | None) -> None:
    config = load(oncall.run(args(from_file=str(EXPORT))), tmp_path)
    at = datetime.fromisoformat(local).replace(tzinfo=BERLIN)
    assert config.schedules["primary"].oncall(at) == who


def test_twelve_hour_rotation_in_another_zone(tmp_path: Path) -> None:
    config = load(oncall.run(args(from_file=str(EXPORT))), tmp_path)
    secondary = config.schedules["secondary"]
    utc = ZoneInfo("UTC")
    # Starts 2026-01-01 13:00 UTC with the second group (start_rotation_from_user_index 1),
    # whose first member (carol) is imported; 12 h later bob.
    assert secondary.oncall(datetime(2026, 1, 1, 12, 59, tzinfo=utc)) is None
    assert secondary.oncall(datetime(2026, 1, 1, 13, 0, tzinfo=utc)) == "carol"
    assert secondary.oncall(datetime(2026, 1, 2, 0, 59, tzinfo=utc)) == "carol"
    assert secondary.oncall(datetime(2026, 1, 2, 1, 0, tzinfo=utc)) == "bob"
    assert secondary.oncall(datetime(2026, 7, 1, 13, 0, tzinfo=utc)) == "carol"  # elapsed


def test_the_policies_follow_the_chains() -> None:
    config = oncall.run(args(from_file=str(EXPORT))).config
    default, critical = config["policies"]["default"], config["policies"]["critical"]
    assert [[t["to"] for t in lv["notify"]] for lv in default["levels"]] == [
        ["schedule:primary"], ["person:carol"], ["person:alice"]]
    assert [lv.get("escalate_after") for lv in default["levels"]] == ["5m", "15m", "1m"]
    assert default["repeat"] == 5
    assert [[t["to"] for t in lv["notify"]] for lv in critical["levels"]] == [
        ["person:alice", "person:bob"], ["schedule:secondary"]]
    assert [lv.get("escalate_after") for lv in critical["levels"]] == ["10m", None]
    assert "slack-only" not in config["policies"]


def test_routes_and_sources() -> None:
    config = oncall.run(args(from_file=str(EXPORT))).config
    assert config["sources"]["prometheus-prod"]["type"] == "alertmanager"
    assert config["sources"]["grafana-alerting"]["type"] == "grafana"
    prom = config["routes"][0]
    assert prom["matchers"] == ['oncall_integration="prometheus-prod"']
    assert [(r.get("matchers"), r.get("policy")) for r in prom["routes"]] == [
        (['severity="critical"', 'env!="dev"'], "critical"),
        (['team="noise"'], None),             # no chain: notifies nobody, as in OnCall
        (None, "default")]                    # the default route, last


def test_the_report_names_what_did_not_map() -> None:
    report = oncall.run(args(from_file=str(EXPORT))).report
    unmapped = {f.path for f in report.unmapped}
    assert {'schedules[2] "Legacy iCal"', 'on_call_shifts[4] "Month end"',
            'on_call_shifts[3] "Twelve hours".until',
            'on_call_shifts[3] "Twelve hours".rolling_users[1]',
            'schedules[1] "Secondary".ical_url_overrides', "escalation_policies[3]",
            "escalation_policies[5]", "escalation_policies[9]", "escalation_policies[10]",
            "escalation_policies[12]", 'escalation_chains[2] "Slack only"',
            "routes[1].routing_regex", 'integrations[2] "Cron heartbeat"',
            "users[3].timezone"} <= unmapped


def test_no_secret_of_the_input_is_written(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    ns = args(from_file=str(EXPORT), output=str(tmp_path / "out.yaml"))
    assert _cli_import.cmd_import(ns) == 0
    text = (tmp_path / "out.yaml").read_text() + capsys.readouterr().err
    for secret in ("mReAoNwDm0eMwKo1mTeTwYo", "Zq8GRAFANAtok3n", "HbT0ken99", "s3cr3tcal"):
        assert secret not in text


async def test_the_token_never_shows(api: Any, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    monkeypatch.setenv("ONCALL_API_TOKEN", TOKEN)
    ns = args(url=str(api.make_url("/")), output=str(tmp_path / "out.yaml"))
    assert await asyncio.to_thread(_cli_import.cmd_import, ns) == 0
    out = capsys.readouterr()
    assert TOKEN not in (tmp_path / "out.yaml").read_text() + out.out + out.err


async def test_a_wrong_token_is_one_clear_line(api: Any, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ImportFailed, match=r"refused the token in \$ONCALL_API_TOKEN "
                                           r"\(HTTP 401"):
        await from_api(api, monkeypatch, token="wrong-token")
    ns = args(url=str(api.make_url("/")), dry_run=True)
    assert await asyncio.to_thread(_cli_import.cmd_import, ns) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: Grafana OnCall refused")
    assert "Traceback" not in err and "wrong-token" not in err


def test_no_token_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MY_ONCALL", raising=False)
    with pytest.raises(ImportFailed, match="set the environment variable MY_ONCALL"):
        oncall.run(args(url="http://127.0.0.1:9/", token_env="MY_ONCALL"))


async def test_the_fake_is_strict(api: Any) -> None:
    """The fake refuses what OnCall refuses, so the importer's requests are checked."""
    client = api.make_url("/api/v1/users/")
    import aiohttp

    async with aiohttp.ClientSession() as s:
        async with s.get(client, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 401
        async with s.get(client.with_query(limit="5"), headers={"Authorization": TOKEN}) as r:
            assert r.status == 400
