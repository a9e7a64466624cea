"""The Zabbix adapter's tables and corners, and the media type file that feeds it."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from baton import schema
from baton.errors import PayloadError
from baton.model import iso
from baton.sources.zabbix import NSEVERITY, ZabbixSource

ROOT = Path(__file__).resolve().parent.parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "sources" / "zabbix"
SCRIPT = ROOT / "contrib" / "zabbix" / "baton.js"
MEDIA_TYPE = ROOT / "contrib" / "zabbix" / "baton_media_type.yaml"


def body(case: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / f"{case}.json").read_text("utf-8"))[
        "payload"]
    return copy.deepcopy(payload)


def parse(payload: Any, **config: Any) -> list[Any]:
    return ZabbixSource("z", config).parse(payload, {})


def media_type() -> dict[str, Any]:
    doc = yaml.safe_load(MEDIA_TYPE.read_text("utf-8"))
    types = doc["zabbix_export"]["media_types"]
    assert len(types) == 1
    result: dict[str, Any] = types[0]
    return result


# --- severity -------------------------------------------------------------------------

def test_the_documented_table() -> None:
    assert NSEVERITY == {"0": "info", "1": "info", "2": "warning", "3": "warning",
                         "4": "error", "5": "critical"}


@pytest.mark.parametrize(("number", "name", "severity"), [
    ("0", "Not classified", "info"), ("1", "Information", "info"),
    ("2", "Warning", "warning"), ("3", "Average", "warning"), ("4", "High", "error"),
    ("5", "Disaster", "critical"),
    ("5", "Katastrophe", "critical"),  # renamed or translated: the number decides
    (None, "Disaster", "critical"), (None, "high", "error"), (None, "Sev1", "warning"),
    ("7", None, "warning"),
])
def test_severity(number: str | None, name: str | None, severity: str) -> None:
    payload = body("problem")
    payload.pop("event_nseverity")
    payload.pop("event_severity")
    if number is not None:
        payload["event_nseverity"] = number
    if name is not None:
        payload["event_severity"] = name
    alert = parse(payload)[0]
    assert alert.severity == severity
    assert alert.labels.get("severity") == name, "the name stays for severity_map"


def test_default_severity() -> None:
    payload = body("problem")
    payload.pop("event_nseverity")
    payload["event_severity"] = "Sev1"
    assert parse(payload, default_severity="error")[0].severity == "error"


# --- problem, recovery, update ------------------------------------------------------------

def test_problem_and_recovery_share_the_problem_event_id() -> None:
    problem, recovery = parse(body("problem"))[0], parse(body("recovery"))[0]
    assert problem.dedup_key == recovery.dedup_key == "zabbix:1048577"
    assert recovery.labels["recovery_event_id"] == "1048601"
    assert (problem.status, recovery.status) == ("firing", "resolved")
    assert iso(recovery.ended_at) == "2024-03-05T09:31:45.000Z"
    assert problem.ended_at is None


@pytest.mark.parametrize(("action", "ack", "outcome"), [
    ("acknowledged", "Yes", ("firing", True)),
    ("acknowledged, commented", "Yes", ("firing", True)),
    ("commented", "Yes", None),
    ("unacknowledged", "No", None),
    ("unacknowledged, commented", "No", None),
    ("suppressed", "No", None),
    ("closed", "No", ("resolved", False)),
    ("acknowledged, closed", "Yes", ("resolved", False)),
    ("changed severity from Warning to Disaster", "No", ("firing", False)),
    ("", "Yes", None),
])
def test_update_operations(action: str, ack: str, outcome: tuple[str, bool] | None) -> None:
    payload = body("update-acknowledged")
    payload["event_update_action"] = action
    payload["event_ack_status"] = ack
    alerts = parse(payload)
    assert [(a.status, a.acknowledge) for a in alerts] == ([outcome] if outcome else [])
    assert all(a.dedup_key == "zabbix:1048577" for a in alerts)


def test_severity_change_uses_the_new_severity() -> None:
    payload = body("update-severity-changed")
    payload["event_nseverity"] = "3"  # as if {EVENT.NSEVERITY} still said the old one
    assert parse(payload)[0].severity == "error"


# --- event sources -----------------------------------------------------------------------

def test_internal_events_are_no_data_and_recover() -> None:
    payload = body("internal-not-supported")
    assert parse(payload)[0].condition == "no_data"
    payload["event_value"] = "0"
    alert = parse(payload)[0]
    assert (alert.status, alert.condition) == ("resolved", "no_data")


def test_service_events_are_normal_problems() -> None:
    payload = body("problem")
    payload["event_source"] = "4"
    alert = parse(payload)[0]
    assert (alert.status, alert.condition) == ("firing", "normal")
    assert alert.labels["event_source"] == "service"


@pytest.mark.parametrize("source", ["1", "2"])
def test_discovery_and_autoregistration_open_nothing(source: str) -> None:
    payload = body("problem")
    payload["event_source"] = source
    assert parse(payload) == []


def test_test_button() -> None:
    alert = parse({"format": "baton-zabbix/1", "test": True})[0]
    assert (alert.condition, alert.dedup_key) == ("test", "zabbix:test")
    assert alert.summary == "Zabbix media type test"


# --- fields ---------------------------------------------------------------------------------

def test_tags() -> None:
    payload = body("problem")
    payload["event_tags"] = [{"tag": "component", "value": "cpu"},
                             {"tag": "component", "value": "memory"},
                             {"tag": "component", "value": "cpu"},
                             {"tag": "Team Name", "value": "web"}, {"tag": "flag"},
                             {"tag": "environment", "value": "staging"}]
    alert = parse(payload)[0]
    assert alert.labels["tag_component"] == "cpu,memory"
    assert alert.component == "cpu"
    assert alert.labels["tag_Team_Name"] == "web"
    assert alert.labels["tag_flag"] == ""
    assert alert.environment == "staging"
    assert alert.service is None


def test_links_need_the_frontend_url() -> None:
    payload = body("problem")
    payload["zabbix_url"] = "https://zabbix.example.com/"
    assert parse(payload)[0].links[0].href == (
        "https://zabbix.example.com/tr_events.php?triggerid=23456&eventid=1048577")
    del payload["zabbix_url"]
    assert parse(payload)[0].links == ()


def test_summary_falls_back_to_the_subject_then_the_id() -> None:
    payload = body("problem")
    del payload["event_name"]
    assert parse(payload)[0].summary.startswith("Problem: Linux")
    del payload["alert_subject"]
    assert parse(payload)[0].summary == "Zabbix event 1048577"


@pytest.mark.parametrize(("mutate", "named"), [
    (lambda p: (p.pop("event_id"), p.pop("trigger_id")), "event_id"),
    (lambda p: p.update(event_source="9"), "event_source"),
    (lambda p: p.update(event_timestamp="yesterday"), "event_timestamp"),
    (lambda p: p.update(event_tags="[]"), "event_tags"),
    (lambda p: p.update(event_tags=[{"value": "x"}]), "event_tags[0]"),
    (lambda p: p.update(format="baton-zabbix/2"), "format"),
    (lambda p: p.update(test="yes"), "test"),
])
def test_wrong_shapes_name_the_field(mutate: Any, named: str) -> None:
    payload = body("problem")
    mutate(payload)
    with pytest.raises(PayloadError) as caught:
        parse(payload)
    assert any(named in s for s in [str(caught.value), *caught.value.errors])


# --- the media type -------------------------------------------------------------------------

def test_yaml_embeds_the_script_file_exactly() -> None:
    assert media_type()["script"] == SCRIPT.read_text("utf-8")


def test_media_type_shape() -> None:
    doc = yaml.safe_load(MEDIA_TYPE.read_text("utf-8"))
    assert doc["zabbix_export"]["version"] == "6.0"  # 6.0 and every later release import it
    mt = media_type()
    assert mt["type"] == "WEBHOOK"
    names = [p["name"] for p in mt["parameters"]]
    assert names == sorted(names) and len(set(names)) == len(names)
    values = {p["name"]: p.get("value", "") for p in mt["parameters"]}
    assert values["event_id"] == "{EVENT.ID}"
    assert values["event_recovery_id"] == "{EVENT.RECOVERY.ID}"
    assert values["event_value"] == "{EVENT.VALUE}"
    assert values["event_update_status"] == "{EVENT.UPDATE.STATUS}"
    assert values["event_tags"] == "{EVENT.TAGSJSON}"
    assert values["baton_token"] == "{$BATON.TOKEN}"
    # Every field the adapter reads has a parameter of that name.
    read = set(schema.load("sources/zabbix.schema.json")["$defs"]["baton"]["properties"])
    assert read - {"format", "test"} <= set(names)
    modes = {(t["event_source"], t["operation_mode"]) for t in mt["message_templates"]}
    assert {("TRIGGERS", "PROBLEM"), ("TRIGGERS", "RECOVERY"), ("TRIGGERS", "UPDATE")} <= modes


def test_script_is_ecmascript_5() -> None:
    """Zabbix runs it in Duktape (ES5.1); Node, which runs the tests, would accept more."""
    code = re.sub(r"//[^\n]*", "", SCRIPT.read_text("utf-8"))
    for pattern, what in ((r"\blet\s", "let"), (r"\bconst\s", "const"), (r"=>", "arrow"),
                          (r"`", "template literal"), (r"\bclass\s", "class"),
                          (r"\.\.\.", "spread")):
        assert not re.search(pattern, code), what


def test_service_status_change_updates_the_severity() -> None:
    payload = body("problem")
    payload.update(event_source="4", event_update_status="1", event_update_nseverity="5",
                   event_update_severity="Disaster")
    alert = parse(payload)[0]
    assert (alert.status, alert.severity, alert.acknowledge) == ("firing", "critical", False)
    assert alert.labels["severity"] == "Disaster"


# --- other media types' parameter sets ------------------------------------------------------

def test_opsgenie_and_redmine_parameter_sets_read_as_batons() -> None:
    opsgenie = {"alert_message": "Problem started ...", "alert_subject": "Problem: Disk full",
                "event_id": "77", "event_nseverity": "4", "event_source": "0",
                "event_tags_json": '[{"tag":"service","value":"db"}]',
                "event_update_action": "{EVENT.UPDATE.ACTION}", "event_update_status": "0",
                "event_value": "1", "opsgenie_api": "https://api.opsgenie.com/v2/alerts",
                "trigger_id": "12", "zbxurl": "https://z.example.com",
                "zbxuser": "{USER.FULLNAME}"}
    [alert] = parse(opsgenie)
    assert (alert.dedup_key, alert.severity, alert.service, alert.name) == (
        "zabbix:77", "error", "db", "Disk full")
    assert alert.links[0].href == "https://z.example.com/tr_events.php?triggerid=12&eventid=77"
    redmine = {"alert_subject": "Resolved: Disk full", "event_id": "77", "event_value": "0",
               "event_update_status": "0", "event_source": "0", "trigger_id": "12",
               "redmine_issue_key": "{EVENT.TAGS.__zbx_redmine_issue_id}"}
    [resolved] = parse(redmine)
    assert (resolved.dedup_key, resolved.status, resolved.name) == (
        "zabbix:77", "resolved", "Disk full")


@pytest.mark.parametrize(("body", "status"), [
    ({"EVENT.ID": "5", "TRIGGER.STATUS": "PROBLEM"}, "firing"),
    ({"EVENT.ID": "5", "TRIGGER.STATUS": "OK"}, "resolved"),
    ({"EVENT.ID": "5", "TRIGGER.VALUE": "0"}, "resolved"),
    ({"{EVENT.ID}": "5", "EVENT.STATUS": "RESOLVED"}, "resolved"),
    ({"eventid": "5"}, "firing"),  # nothing says the state: a problem
    ({"id": "5", "status": "OK", "EVENT.VALUE": "1"}, "firing"),  # the event value decides
])
def test_state_from_whatever_the_body_has(body: dict[str, Any], status: str) -> None:
    [alert] = parse(body)
    assert (alert.dedup_key, alert.status) == ("zabbix:5", status)


def test_baton_names_win_over_aliases() -> None:
    [alert] = parse({"eventid": "9", "event_id": "5", "event_value": "1", "EVENT.ID": "7"})
    assert alert.dedup_key == "zabbix:5"


def test_a_trigger_without_an_event_is_the_problem() -> None:
    [alert] = parse({"triggerid": "23710", "eventvalue": "1", "hostname": "app-03"})
    assert alert.dedup_key == "zabbix:trigger:23710"


@pytest.mark.parametrize(("tags", "labels"), [
    ("a:1, b, c:x:y", {"tag_a": "1", "tag_b": "", "tag_c": "x:y"}),
    ('[{"tag": "a", "value": "1"}]', {"tag_a": "1"}),
    ("{EVENT.TAGS}", {}), ("[not json", {}), ('[{"tag": "a"}, 5, {"tag": 7}]', {"tag_a": ""}),
])
def test_tag_texts(tags: str, labels: dict[str, str]) -> None:
    [alert] = parse({"eventid": "5", "eventtags": tags})
    assert {k: v for k, v in alert.labels.items() if k.startswith("tag_")} == labels


@pytest.mark.parametrize("body", [
    {"alert_subject": "Problem: x"}, {"EVENT.NAME": "x", "EVENT.VALUE": "1"},
    {"eventid": "", "triggerid": "  "},
])
def test_nothing_to_key_on_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(PayloadError) as caught:
        parse(body)
    assert "payload.event_id" in str(caught.value)


def test_unexpanded_ids_are_the_test_form() -> None:
    [alert] = parse({"EVENT.ID": "{EVENT.ID}", "ALERT.SUBJECT": "Test subject"})
    assert (alert.dedup_key, alert.condition, alert.summary) == (
        "zabbix:test", "test", "Test subject")


@pytest.mark.parametrize(("state", "status"), [("alerting", "firing"), ("ok", "resolved")])
def test_the_oncall_media_type_body(state: str, status: str) -> None:
    [alert] = parse({"alert_uid": "42", "title": "Disk full", "state": state,
                     "message": "m", "link_to_upstream_details": "javascript:x"})
    assert (alert.dedup_key, alert.status, alert.name, alert.links) == (
        "zabbix:42", status, "Disk full", ())
