"""generic-mapped: config checks, the status/severity/condition tables, value conversion,
links, timestamps and the errors a sender sees; the fixtures show whole tools' bodies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import build, config_dict
from hypothesis import given, settings
from hypothesis import strategies as st

from baton import cli, schema
from baton.app import build_sources
from baton.errors import ConfigError, PayloadError
from baton.ingest import Planner
from baton.model import Alert, Link
from baton.sources.generic_mapped import MAX_ALERTS, GenericMappedSource

BASE = {"dedup_key": "id", "summary": "title"}


def parse(payload: Any, **config: Any) -> list[Alert]:
    return GenericMappedSource("tool", {**BASE, **config}).parse(payload, {})


def one(payload: Any, **config: Any) -> Alert:
    (alert,) = parse({"id": "k", "title": "t", **payload}, **config)
    return alert


# --- config ---------------------------------------------------------------------------

def test_config_problems_are_reported_together_with_their_path() -> None:
    with pytest.raises(ConfigError) as caught:
        GenericMappedSource("zbx", {"status": "a.[", "severity": "lenght(@)",
                                    "labels_from": {"host": "join(',')", "ok": "host"},
                                    "links": 5, "description": "",
                                    "default_severity": "high", "status_map": {"x": "open"}})
    assert caught.value.problems[:2] == ["sources.zbx.dedup_key: required",
                                         "sources.zbx.summary: required"]
    text = "\n".join(caught.value.problems)
    assert "sources.zbx.status: not a valid JMESPath expression" in text
    assert "sources.zbx.severity: unknown function lenght()" in text
    assert "sources.zbx.labels_from.host: join() takes 2 arguments, not 1" in text
    assert "sources.zbx.links: must be a JMESPath expression" in text
    assert "sources.zbx.description: must be a JMESPath expression" in text
    assert "sources.zbx.default_severity: values must be one of info, warning" in text
    assert "sources.zbx.status_map: values must be one of firing, resolved" in text
    assert len(caught.value.problems) == 9


def test_variadic_functions_take_more_arguments() -> None:
    GenericMappedSource("t", {**BASE, "summary": "not_null(a, b, c)",
                              "labels_from": "merge(a, b, c)"})
    with pytest.raises(ConfigError, match=r"not_null\(\) takes 1 or more arguments, not 0"):
        GenericMappedSource("t", {**BASE, "summary": "not_null()"})


def test_a_bad_expression_stops_the_gateway_from_starting(tmp_path: Path) -> None:
    data = config_dict(tmp_path)
    data["sources"]["zbx"] = {"type": "generic-mapped", "auth": {"type": "none"},
                              "dedup_key": "event_id", "summary": "lenght(name)"}
    config = build(data, tmp_path)  # the schema only knows it is a string
    with pytest.raises(ConfigError, match=r"sources\.zbx\.summary: unknown function"):
        build_sources(config)


@pytest.mark.parametrize(("summary", "code", "said"), [
    ("event_name", 0, "'Disk full'  dedup_key=e1 status=firing severity=warning"),
    ("lenght(event_name)", 1, "config error: sources.zbx.summary: unknown function lenght()")])
def test_simulate_runs_the_mapping_or_names_the_bad_expression(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], summary: str, code: int,
        said: str) -> None:
    data = config_dict(tmp_path)
    data["sources"] = {"zbx": {"type": "generic-mapped", "auth": {"type": "none"},
                               "dedup_key": "event_id", "summary": summary}}
    (tmp_path / "baton.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "body.json").write_text(json.dumps({"event_id": "e1", "event_name": "Disk full"}))
    assert cli.main(["simulate", "--config", str(tmp_path / "baton.yaml"), "--source", "zbx",
                     str(tmp_path / "body.json")]) == code
    out = capsys.readouterr()
    assert said in out.out + out.err
    assert "Traceback" not in out.err


def test_common_keys_work_beside_the_mapping(tmp_path: Path) -> None:
    """severity_map and labels are the common source keys: the core applies them to what
    the adapter reports (the sender's severity in the ``severity`` label)."""
    data = config_dict(tmp_path)
    data["sources"]["zbx"] = {
        "type": "generic-mapped", "auth": {"type": "none"}, "dedup_key": "event_id",
        "summary": "event_name", "severity": "event_nseverity", "default_severity": "info",
        "severity_map": {"5": "critical", "4": "error"}, "labels": {"team": "ops"}}
    config = build(data, tmp_path)
    source = build_sources(config)["zbx"]
    body = [{"event_id": "1", "event_name": "n", "event_nseverity": n} for n in ("5", "4", "2")]
    planner = Planner(config)
    out = [planner.label("zbx", source.parse(b, {}), source.severity_label)[0] for b in body]
    assert [a.severity for a in out] == ["critical", "error", "info"]
    assert out[0].labels == {"team": "ops", "severity": "5"}


# --- the tables -------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "status"), [
    ("firing", "firing"), ("PROBLEM", "firing"), ("Alerting", "firing"), ("triggered", "firing"),
    ("resolved", "resolved"), ("OK", "resolved"), ("RECOVERY", "resolved"),
    ("closed", "resolved"), ("pending", "firing"), (None, "firing"), ("", "firing")])
def test_status_words(value: Any, status: str) -> None:
    assert one({"s": value}, status="s").status == status


def test_status_map_comes_first_and_default_status_last() -> None:
    # YAML keys may be numbers or booleans: they match the value as text.
    config = {"status": "s", "status_map": {"0": "resolved", 1: "firing", "OK": "firing"},
              "default_status": "resolved"}
    got = [one({"s": v}, **config).status for v in (0, "0", 1, "1", "OK", "ok", "weird", None)]
    assert got == ["resolved", "resolved", "firing", "firing", "firing", "resolved",
                   "resolved", "resolved"]
    assert one({"s": True}, status="s", status_map={True: "resolved"}).status == "resolved"


@pytest.mark.parametrize(("value", "severity"), [
    ("Disaster", "critical"), ("CRIT", "critical"), ("p1", "critical"), ("High", "error"),
    ("major", "error"), ("Average", "warning"), ("WARN", "warning"), ("Information", "info"),
    ("Not classified", "info"), ("low", "info"), ("sev-2", "error"), (None, "error"),
    (3, "error")])
def test_severity_words_and_default(value: Any, severity: str) -> None:
    alert = one({"sev": value}, severity="sev", default_severity="error")
    assert alert.severity == severity
    if value is not None:
        assert alert.labels["severity"] == (value if isinstance(value, str) else json.dumps(value))


def test_severity_label_wins_over_a_mapped_label_of_that_name() -> None:
    alert = one({"sev": "High", "other": "x"}, severity="sev",
                labels_from={"severity": "other"})
    assert alert.labels == {"severity": "High"}
    assert GenericMappedSource.severity_label == "severity"


def test_condition_map() -> None:
    config = {"condition": "state", "condition_map": {"NODATA": "no_data", "true": "test"}}
    got = [one({"state": v}, **config).condition for v in ("NODATA", True, "ALERT", None)]
    assert got == ["no_data", "test", "normal", "normal"]
    assert one({}).condition == "normal"


# --- values -------------------------------------------------------------------------------

def test_values_become_text_and_nested_labels_json() -> None:
    alert = one({"svc": 42, "env": True, "res": 1.5, "nested": {"b": [1, None], "a": "é"},
                 "blank": " ", "none": None, "empty": []},
                service="svc", environment="env", resource="res", description="nested",
                labels_from={"nested": "nested", "blank": "blank", "none": "none",
                             "empty": "empty", "n": "svc"})
    assert (alert.service, alert.environment, alert.resource) == ("42", "true", "1.5")
    assert alert.description == '{"a":"é","b":[1,null]}'
    assert alert.labels == {"nested": '{"a":"é","b":[1,null]}', "n": "42"}


def test_labels_from_one_expression() -> None:
    assert one({"tags": {"team": "db", "tier": 1}}, labels_from="tags").labels == {
        "team": "db", "tier": "1"}
    assert one({}, labels_from="tags").labels == {}
    with pytest.raises(PayloadError, match=r"payload\.labels_from: expression `tags` gave a "
                                           r"list, not an object"):
        one({"tags": ["a"]}, labels_from="tags")


def test_composite_dedup_keys_are_hashed_stably() -> None:
    a = one({"host": "web-1", "check": "disk"}, dedup_key="[host, check]")
    b = one({"check": "disk", "host": "web-1", "x": 1}, dedup_key="[host, check]")
    c = one({"host": "web-2", "check": "disk"}, dedup_key="[host, check]")
    assert a.dedup_key == b.dedup_key != c.dedup_key
    assert len(a.dedup_key) == 64
    assert one({"id": 7}).dedup_key == "7"
    assert one({}, dedup_key="join('/', [title, 'x'])").dedup_key == "t/x"


def test_links_in_every_form() -> None:
    body = {"u": "https://a.example/1", "many": ["https://a.example/2", "", None, 5],
            "objs": [{"url": "https://a.example/3", "title": "Three"},
                     {"href": "https://a.example/4"}, {"text": "no url"}, "https://a.example/5"]}
    assert one(body, links="u").links == (Link("https://a.example/1"),)
    assert one(body, links="many").links == (Link("https://a.example/2"),)
    assert one(body, links="objs").links == (
        Link("https://a.example/3", "Three"), Link("https://a.example/4"),
        Link("https://a.example/5"))
    assert one(body, links={"Graph": "u", "More": "many", "None": "missing"}).links == (
        Link("https://a.example/1", "Graph"), Link("https://a.example/2", "More"))
    assert one(body, links="[{href: u, text: 'Dash'}, {href: missing}]").links == (
        Link("https://a.example/1", "Dash"),)


def test_timestamps() -> None:
    alert = one({"s": 1717322407, "e": "2024-06-02T10:00:00.5", "st": "OK"},
                started_at="s", ended_at="e", status="st")
    assert alert.to_dict()["started_at"] == "2024-06-02T10:00:07.000Z"
    assert alert.to_dict()["ended_at"] == "2024-06-02T10:00:00.500Z"
    assert one({"s": 1717322407123}, started_at="s").to_dict()["started_at"] == \
        "2024-06-02T10:00:07.123Z"
    # A firing alert's end time is not read, whatever it holds.
    assert one({"e": "soon"}, ended_at="e").ended_at is None
    with pytest.raises(PayloadError, match=r"payload\.started_at"):
        one({"s": {"at": 1}}, started_at="s")


# --- batches and errors ---------------------------------------------------------------

def test_errors_name_the_item_and_the_key() -> None:
    items = [{"id": "a", "title": "t"}, {"id": "b", "title": "t"}, {"title": "t"}]
    with pytest.raises(PayloadError) as caught:
        parse({"events": items}, alerts="events")
    assert str(caught.value) == "alerts[2].dedup_key: expression `id` gave nothing"
    assert caught.value.errors == ["alerts[2].dedup_key: required, but None was found"]
    with pytest.raises(PayloadError, match=r"^payload\.summary: expression `title` gave nothing"):
        parse({"id": "x", "title": "  "})


def test_an_expression_failing_on_the_data_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match=r"alerts\[0\]\.summary: expression `join\(', ', "
                                           r"parts\)` failed"):
        parse([{"id": 1, "parts": [1, 2]}], alerts="@", summary="join(', ', parts)")
    with pytest.raises(PayloadError, match=r"payload\.summary: expression `to_string\(sum\(n\)\)`"):
        parse({"id": 1, "n": [10**400, 0.5]}, summary="to_string(sum(n))")


@pytest.mark.parametrize("found", [None, {}, [], "x", {"id": 1}])
def test_alerts_must_give_a_non_empty_list(found: Any) -> None:
    with pytest.raises(PayloadError, match=r"^alerts: expression `data` gave .*not a list"):
        parse({"data": found}, alerts="data")


def test_batches_are_bounded() -> None:
    items = [{"id": i, "title": "t"} for i in range(MAX_ALERTS + 1)]
    with pytest.raises(PayloadError, match="at most 1000"):
        parse(items, alerts="@")
    assert len(parse(items[:MAX_ALERTS], alerts="@")) == MAX_ALERTS


def test_values_nested_too_deep_to_write_are_a_payload_error() -> None:
    deep: Any = "x"
    for _ in range(5000):  # past the interpreter's recursion limit
        deep = [deep]
    with pytest.raises(PayloadError, match=r"payload\.labels_from\.d"):
        one({"d": deep}, labels_from={"d": "d"})


# --- any expression on any body ---------------------------------------------------------

# Expressions a user may write, each of which some body makes fail: functions given the
# wrong types, comparisons of anything, projections of non-lists, numbers out of range.
EXPRESSIONS = ["a", "@", "a.b", "a[0]", "a[*].b", "a[?b > `1`]", "length(a)", "sort(a)",
               "sort_by(a, &b)", "max_by(a, &b)", "join(',', a)", "to_string(a)",
               "to_number(a)", "ceil(a)", "floor(a)", "abs(a)", "avg(a)", "sum(a)",
               "merge(a, b)", "keys(a)", "values(a)", "a || 'x'", "not_null(a, b)",
               "contains(a, 'x')", "starts_with(a, 'x')", "reverse(a)", "max(a)", "type(a)",
               "to_array(a)", "map(&b, a)", "a == b", "a < b", "{k: a, l: b}", "[a, b]",
               "`null`", "''"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
    | st.sampled_from([10**400, "2024-01-01T00:00:00Z", "1e999", "nan", 1e308]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["a", "b", "x"]), inner, max_size=3),
    max_leaves=12)
mapped_keys = ["dedup_key", "summary", "status", "severity", "description", "service",
               "resource", "labels_from", "links", "started_at", "ended_at", "condition"]


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(config=st.fixed_dictionaries({k: st.sampled_from(EXPRESSIONS) for k in mapped_keys}),
       batched=st.booleans(), body=json_values)
def test_any_expression_on_any_body_is_alerts_or_a_payload_error(
        config: dict[str, str], batched: bool, body: Any) -> None:
    if batched:
        config = {**config, "alerts": "@"}
        body = body if isinstance(body, list) else [body]
    source = GenericMappedSource("fuzz", config)
    try:
        alerts = source.parse(body, {})
    except PayloadError:
        return
    validator = schema.validator("incident.schema.json", "alert")
    for alert in alerts:
        validator.validate(alert.to_dict())


def test_name_is_optional_and_leads_the_title() -> None:
    alert = one({"rule": "DiskFull", "title": "/data at 93%"}, name="rule")
    assert (alert.name, alert.title) == ("DiskFull", "DiskFull: /data at 93%")
    assert one({}).name is None, "no name expression, no name"
    assert one({"rule": None}, name="rule").name is None, "nothing found is no name"
    assert one({"rule": 7}, name="rule").name == "7"
