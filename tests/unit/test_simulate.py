"""``baton simulate``: the dry run prints routes, suppression and the escalation timeline
with whoever is on call at each step, and touches no store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from baton import cli

CONFIG: dict[str, Any] = {
    # A store path that must never be created: simulate opens no store.
    "storage": {"url": "sqlite:///{tmp}/never/baton.db"},
    "sources": {"prom": {"type": "alertmanager", "auth": {"type": "none"}}},
    "connectors": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"},
                   "pager": {"type": "webhook", "url": "http://127.0.0.1:9/pager"}},
    "people": {"alice": {"email": "alice@example.com"}, "bob": {"email": "bob@example.com"},
               "carol": {"phone": "+15550100"}},
    "schedules": {"primary": {"timezone": "Europe/Berlin", "layers": [
        {"name": "days", "rotation": "daily", "handoff": "09:00", "start": "2026-01-05",
         "members": ["alice", "bob"]}]}},
    "time_intervals": [{"name": "business-hours", "time_intervals": [
        {"weekdays": ["monday:friday"], "times": [{"start_time": "08:00",
                                                   "end_time": "18:00"}],
         "location": "Europe/Berlin"}]}],
    "inhibit_rules": [{"source_matchers": ['alertname="NodeDown"'],
                       "target_matchers": ['severity="warning"'], "equal": ["instance"]}],
    "routes": [
        {"name": "tickets", "matchers": ['severity="warning"'], "policy": "ticket",
         "active_time_intervals": ["business-hours"]},
        {"name": "page", "policy": "page"},
    ],
    "policies": {
        "page": {"levels": [
            {"notify": [{"connector": "pager", "to": "schedule:primary"}],
             "escalate_after": "1d"},
            {"notify": [{"connector": "pager", "to": "schedule:primary"},
                        {"connector": "pager", "to": "person:carol"}]}]},
        "ticket": {"levels": [{"notify": ["hook"]}]},
    },
}


def am_payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {"version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": "firing",
            "receiver": "baton", "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://am:9093", "alerts": [
                {"status": "firing", "labels": a, "annotations": {"summary": a["alertname"]},
                 "startsAt": "2026-01-05T07:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": "http://prom", "fingerprint": a["alertname"].lower()}
                for a in alerts]}


def run(tmp_path: Path, payload: dict[str, Any], *extra: str,
        capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    cfg = json.loads(json.dumps(CONFIG).replace("{tmp}", str(tmp_path)))
    (tmp_path / "baton.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "payload.json").write_text(json.dumps(payload))
    code = cli.main(["simulate", "--config", str(tmp_path / "baton.yaml"), "--source", "prom",
                     str(tmp_path / "payload.json"), *extra])
    out = capsys.readouterr()
    assert not (tmp_path / "never").exists(), "simulate must not open a store"
    return code, out.out + out.err


def test_json_timeline_names_who_is_on_call_at_each_step(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Monday 2026-01-05 10:00 UTC = 11:00 Berlin: alice has the day (handoff 09:00 local).
    code, out = run(tmp_path, am_payload({"alertname": "Down", "severity": "critical",
                                          "instance": "n1"}),
                    "--at", "2026-01-05T10:00:00Z", "--json", capsys=capsys)
    assert code == 0, out
    report = json.loads(out)
    [item] = report["alerts"]
    [inc] = item["incidents"]
    assert (inc["route"], inc["policy"], inc["suppressed"]) == ("page", "page", None)
    assert [(s["offset_seconds"], s["at"], s["level"]) for s in inc["escalation"]] == [
        (0.0, "2026-01-05T10:00:00.000Z", 1), (86400.0, "2026-01-06T10:00:00.000Z", 2)]
    first, second = (s["targets"] for s in inc["escalation"])
    assert [(t["to"], t["person"]) for t in first] == [("schedule:primary", "alice")]
    assert first[0]["contacts"] == {"email": "alice@example.com"}
    # A day later the daily rotation has handed over to bob; carol is named directly.
    assert [(t["to"], t["person"]) for t in second] == [("schedule:primary", "bob"),
                                                         ("person:carol", "carol")]


def test_text_report_shows_mute_and_inhibition(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    # Saturday 2026-01-10 12:00 UTC: outside business hours, so the warning route is muted;
    # and NodeDown on n1 inhibits the n1 warning (listed first in the body on purpose).
    code, out = run(tmp_path, am_payload(
        {"alertname": "DiskSlow", "severity": "warning", "instance": "n1"},
        {"alertname": "NodeDown", "severity": "critical", "instance": "n1"}),
        "--at", "2026-01-10T12:00:00Z", capsys=capsys)
    assert code == 0, out
    assert "2 alert(s) parsed" in out
    assert 'suppressed (muted): {"detail": "outside active_time_intervals ' \
           '\\"business-hours\\""}' in out
    assert "t+0s      level 1: pager -> bob [email=bob@example.com] (schedule:primary)" in out
    # Only the NodeDown incident escalates: one level-2 step in the whole report.
    assert out.count("level 2:") == 1


def test_inhibition_applies_inside_business_hours(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(tmp_path, am_payload(
        {"alertname": "DiskSlow", "severity": "warning", "instance": "n1"},
        {"alertname": "NodeDown", "severity": "critical", "instance": "n1"},
        {"alertname": "DiskSlow2", "severity": "warning", "instance": "n2"}),
        "--at", "2026-01-05T10:00:00Z", "--json", capsys=capsys)
    assert code == 0, out
    by_name = {i["alert"]["labels"]["alertname"]: i["incidents"][0]
               for i in json.loads(out)["alerts"]}
    assert by_name["DiskSlow"]["suppressed"]["reason"] == "inhibited"
    assert by_name["DiskSlow"]["suppressed"]["by_alertname"] == "NodeDown"
    assert by_name["DiskSlow"]["escalation"] == []
    assert by_name["DiskSlow2"]["suppressed"] is None
    assert [s["targets"][0]["connector"] for s in by_name["DiskSlow2"]["escalation"]] == [
        "hook"]


def test_silences_file_applies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "silences.json").write_text(json.dumps({"silences": [
        {"id": "S1", "matchers": ['instance="n1"'], "starts_at": "2026-01-05T00:00:00Z",
         "ends_at": "2026-01-06T00:00:00Z"}]}))
    code, out = run(tmp_path, am_payload({"alertname": "Down", "severity": "critical",
                                          "instance": "n1"}),
                    "--at", "2026-01-05T10:00:00Z", "--json", "--silences",
                    str(tmp_path / "silences.json"), capsys=capsys)
    assert code == 0
    [inc] = json.loads(out)["alerts"][0]["incidents"]
    assert inc["suppressed"] == {"reason": "silenced", "silence_id": "S1"}


def test_a_bad_payload_is_exit_1_with_the_problem(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(tmp_path, {"version": "3", "alerts": []}, capsys=capsys)
    assert code == 1
    assert "not valid for source 'prom'" in out and "Traceback" not in out


def test_an_alert_past_a_limit_is_refused_as_ingest_would(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(tmp_path, am_payload({"alertname": "Disk", "instance": "x" * 9000}),
                    capsys=capsys)
    assert code == 1
    assert "alerts[0].labels.instance: value is 9000 bytes, at most 8192" in out, out


def test_a_person_told_before_gets_the_update_at_a_later_step(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Level 2 an hour after level 1, the same day: the schedule still has alice, who was
    # told at level 1, so she gets the escalation's update; carol is new and is paged.
    CONFIG["policies"]["page"]["levels"][0]["escalate_after"] = "1h"
    try:
        code, out = run(tmp_path, am_payload({"alertname": "Down", "severity": "critical",
                                              "instance": "n1"}),
                        "--at", "2026-01-05T10:00:00Z", "--json", capsys=capsys)
    finally:
        CONFIG["policies"]["page"]["levels"][0]["escalate_after"] = "1d"
    assert code == 0, out
    [inc] = json.loads(out)["alerts"][0]["incidents"]
    second = inc["escalation"][1]["targets"]
    assert [(t["person"], t.get("action", "trigger")) for t in second] == [
        ("alice", "update"), ("carol", "trigger")]


def test_config_silences_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    CONFIG["silences"] = [{"matchers": ['instance="n1"'], "ends": "2026-01-06T00:00:00Z"}]
    try:
        code, out = run(tmp_path, am_payload({"alertname": "Down", "severity": "critical",
                                              "instance": "n1"}),
                        "--at", "2026-01-05T10:00:00Z", capsys=capsys)
    finally:
        del CONFIG["silences"]
    assert code == 0, out
    assert "suppressed (silenced)" in out and "level 1" not in out
