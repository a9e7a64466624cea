"""The shipped Zabbix media type, run for real against a Baton subprocess.

The script embedded in contrib/zabbix/baton_media_type.yaml runs under Node.js in
tests/integration/zabbix_harness.js, which supplies Zabbix's synchronous ``HttpRequest``
(curl underneath) and ``Zabbix.log``. Its parameters are the YAML's, with the macros
expanded as Zabbix would for a problem, an acknowledgement and the recovery of one trigger
event; macros Zabbix cannot expand in that context stay as their names.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from procs import Baton, WebhookSink, baton_config, wait_until, write_yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent.parent
MEDIA_TYPE = ROOT / "contrib" / "zabbix" / "baton_media_type.yaml"
HARNESS = Path(__file__).resolve().parent / "zabbix_harness.js"
MACRO = re.compile(r"\{\$?[A-Z][A-Z0-9_.]*\}")

PROBLEM = {
    "{EVENT.SOURCE}": "0", "{EVENT.VALUE}": "1", "{EVENT.UPDATE.STATUS}": "0",
    "{EVENT.ID}": "2200451", "{EVENT.NAME}": "Linux: High CPU utilization (over 90% for 5m)",
    "{ALERT.SUBJECT}": "Problem: Linux: High CPU utilization (over 90% for 5m)",
    "{ALERT.MESSAGE}": "Problem started at 14:03:09 on 2024.06.11\nHost: app-7\nSeverity: High",
    "{EVENT.SEVERITY}": "High", "{EVENT.NSEVERITY}": "4",
    "{EVENT.TAGSJSON}": json.dumps([{"tag": "component", "value": "cpu"},
                                    {"tag": "service", "value": "billing"}]),
    "{EVENT.DATE}": "2024.06.11", "{EVENT.TIME}": "14:03:09",
    "{EVENT.TIMESTAMP}": "1718114589", "{EVENT.ACK.STATUS}": "No",
    "{EVENT.OPDATA}": "Current utilization: 97.2 %", "{HOST.NAME}": "app-7",
    "{HOST.HOST}": "app-7.prod.example.com", "{HOST.IP}": "10.1.4.7",
    "{TRIGGER.ID}": "31337", "{TRIGGER.DESCRIPTION}": "CPU utilization is too high.",
    "{TRIGGER.URL}": "", "{$ZABBIX.URL}": "https://zabbix.example.com",
}
ACKNOWLEDGE = {
    **PROBLEM, "{EVENT.UPDATE.STATUS}": "1", "{EVENT.ACK.STATUS}": "Yes",
    "{EVENT.UPDATE.ACTION}": "acknowledged", "{EVENT.UPDATE.MESSAGE}": "on it",
    "{USER.FULLNAME}": "Alice Example", "{EVENT.UPDATE.NSEVERITY}": "4",
    "{ALERT.SUBJECT}": "Updated problem in 2m: Linux: High CPU utilization (over 90% for 5m)",
}
RECOVERY = {
    **PROBLEM, "{EVENT.VALUE}": "0", "{EVENT.RECOVERY.ID}": "2200517",
    "{EVENT.RECOVERY.TIMESTAMP}": "1718115011",
    "{ALERT.SUBJECT}": "Resolved in 7m 2s: Linux: High CPU utilization (over 90% for 5m)",
}


def media_type() -> dict[str, Any]:
    result: dict[str, Any] = yaml.safe_load(MEDIA_TYPE.read_text("utf-8"))[
        "zabbix_export"]["media_types"][0]
    return result


def expand(macros: dict[str, str]) -> dict[str, str]:
    """The media type's parameters as Zabbix hands them to the script."""
    return {p["name"]: MACRO.sub(lambda m: macros.get(m.group(0), m.group(0)),
                                 p.get("value", ""))
            for p in media_type()["parameters"]}


@pytest.fixture
def node() -> str:
    found = shutil.which("node")
    if found is None or shutil.which("curl") is None:
        pytest.fail("Node.js and curl are needed to run the Zabbix media type's script",
                    pytrace=False)
    return found


@pytest.fixture
def baton(tmp_path: Path, token: str, sink: WebhookSink) -> Any:
    workdir = tmp_path / "baton"
    workdir.mkdir()
    config = baton_config(tmp_path / "baton.db", sink.url)
    config["sources"]["zabbix"] = {"type": "zabbix", "auth": {
        "type": "bearer", "token": {"env": "PROM_TOKEN"}}}
    proc = Baton(workdir, write_yaml(workdir / "baton.yaml", config), tmp_path / "baton.db",
                 env={"PROM_TOKEN": token})
    proc.start()
    try:
        yield proc
    finally:
        proc.stop(grace=5.0)


def run_script(node: str, tmp_path: Path, params: dict[str, str]) -> dict[str, Any]:
    script = tmp_path / "media_type_script.js"
    script.write_text(media_type()["script"], "utf-8")
    values = tmp_path / "value.json"
    values.write_text(json.dumps(params), "utf-8")
    done = subprocess.run([node, str(HARNESS), str(script), str(values)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_problem_acknowledge_recovery(node: str, tmp_path: Path, token: str, baton: Baton,
                                      sink: WebhookSink) -> None:
    user = {"{$BATON.URL}": baton.url("/v1/ingest/zabbix"), "{$BATON.TOKEN}": token}

    sent = run_script(node, tmp_path, expand({**PROBLEM, **user}))
    assert sent == {**sent, "ok": True, "result": "OK"}, sent
    assert token not in json.dumps(sent["log"]), "the token is never logged"
    body = json.loads(sent["requests"][0]["body"])
    assert "baton_token" not in body and "event_recovery_id" not in body
    incidents = baton.incidents()
    assert len(incidents) == 1
    incident = baton.get(f"/v1/incidents/{incidents[0]['id']}")
    assert (incident["status"], incident["severity"]) == ("triggered", "error")
    assert incident["alerts"][0]["dedup_key"] == "zabbix:2200451"
    wait_until(lambda: any(r.note.get("action") == "trigger" for r in sink.received),
               timeout=20.0, what="the trigger notification")

    acked = run_script(node, tmp_path, expand({**ACKNOWLEDGE, **user}))
    assert acked["ok"], acked
    incident = baton.get(f"/v1/incidents/{incidents[0]['id']}")
    assert incident["status"] == "acknowledged"

    recovered = run_script(node, tmp_path, expand({**RECOVERY, **user}))
    assert recovered["ok"], recovered
    incident = baton.get(f"/v1/incidents/{incidents[0]['id']}")
    assert incident["status"] == "resolved"
    assert len(baton.incidents()) == 1, "the recovery found the problem's incident"


def test_refusals_make_zabbix_retry(node: str, tmp_path: Path, token: str,
                                    baton: Baton) -> None:
    user = {"{$BATON.URL}": baton.url("/v1/ingest/zabbix"), "{$BATON.TOKEN}": "wrong"}
    refused = run_script(node, tmp_path, expand({**PROBLEM, **user}))
    assert not refused["ok"]
    assert "HTTP 401" in refused["error"]
    assert "wrong" not in json.dumps(refused["log"])

    # Unset global macros: the script says which, and sends nothing.
    unset = run_script(node, tmp_path, expand(PROBLEM))
    assert not unset["ok"] and "baton_url" in unset["error"]
    assert unset["requests"] == []
    assert baton.incidents() == []


def test_test_button_is_accepted(node: str, tmp_path: Path, token: str, baton: Baton) -> None:
    params = expand({"{$BATON.URL}": baton.url("/v1/ingest/zabbix"), "{$BATON.TOKEN}": token})
    params.update(alert_subject="Test", alert_message="Test message")
    sent = run_script(node, tmp_path, params)
    assert sent["ok"], sent
    assert json.loads(sent["requests"][0]["body"])["test"] is True
