"""The source contract, run on every adapter registered under ``baton.sources``.

Nothing opts in or out: a new entry point is picked up here, and it fails until its schema
and its fixtures exist (``tests/fixtures/sources/<type>/<case>.json``). A fixture is::

    {"name": "<source name>", "config": {...}, "env": {"VAR": "secret value"},
     "headers": {...}, "payload": <request body>,
     "expected": [Alert.to_dict(), ...] | "error": "<substring of the PayloadError>",
     "response": {...}, "acknowledge": [bool per alert], "same_problem_as": "<case>",
     "comment": "why this case exists"}

Secrets in ``config`` are written as in a real config (``{"env": "VAR"}``) and resolved
from ``env``, so fixture configs are also checked against the source's config schema.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from baton import schema
from baton.errors import AuthError, PayloadError
from baton.model import Alert
from baton.plugin import SOURCE_GROUP, Source, discover, load
from baton.secret import Secret

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sources"
SOURCE_TYPES = sorted(discover(SOURCE_GROUP))
FIXTURE_KEYS = {"name", "config", "env", "headers", "payload", "expected", "error", "response",
                "acknowledge", "same_problem_as", "comment"}

# Bodies no source accepts. Each must give a PayloadError (the 400) and nothing else: a
# TypeError or KeyError here would be a 500 for a sender's mistake.
GARBAGE: list[Any] = [
    None, 42, 3.5, True, "str", "", [], {}, [None], [[[]]], [42, "x"],
    {"alerts": None}, {"alerts": [None]}, {"alerts": []}, {"alerts": [{"labels": [1, 2]}]},
    {"version": "4"}, {"version": 4, "alerts": []}, {"version": "4", "alerts": "x"},
    {"version": "4", "alerts": [{}]},
    {"version": "4", "alerts": [{"status": "firing", "labels": {"a": {"b": ["c"]}}}]},
    {"version": "4", "alerts": [{"status": "firing", "labels": {}, "startsAt": "yesterday"}]},
    {"version": "4", "alerts": [{"status": "firing", "labels": {}, "annotations": [],
                                 "fingerprint": 7}]},
    {"event_action": "trigger", "payload": [1]}, {"routing_key": 5, "event_action": None},
    {"routing_key": "k", "event_action": "trigger", "payload": {"summary": "s", "source": "h",
                                                                "severity": "info",
                                                                "timestamp": "noon"}},
    {"dedup_key": {"x": 1}, "summary": ["y"]}, {"dedup_key": "", "summary": ""},
    {"dedup_key": "k", "summary": "s", "started_at": 5},
    {"a": {"b": {"c": {"d": [1, {"e": None}]}}}},
    json.loads("[" * 60 + "]" * 60),
]


def _fixture_cases() -> list[Any]:
    cases = []
    for type_ in SOURCE_TYPES:
        for path in sorted((FIXTURES / type_).glob("*.json")):
            cases.append(pytest.param(type_, path.stem, id=f"{type_}/{path.stem}"))
    return cases


@cache
def _fixtures(type_: str) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text("utf-8"))
            for p in sorted((FIXTURES / type_).glob("*.json"))}


def _resolve(value: Any, env: dict[str, str]) -> Any:
    """Config as the loader hands it to the adapter: ``{"env": NAME}`` becomes a Secret."""
    if isinstance(value, dict):
        if set(value) == {"env"}:
            return Secret(env[value["env"]], f"env:{value['env']}")
        return {k: _resolve(v, env) for k, v in value.items()}
    return value


def _source(type_: str, fixture: dict[str, Any] | None = None) -> Source:
    fixture = fixture or {}
    cls = load(SOURCE_GROUP, type_)
    config = _resolve(fixture.get("config", {}), fixture.get("env", {}))
    source: Source = cls(fixture.get("name", "test-source"), config)
    return source


def _parse(type_: str, fixture: dict[str, Any]) -> list[Alert]:
    # A fresh adapter and a copy of the body each time: nothing may carry over.
    return _source(type_, fixture).parse(copy.deepcopy(fixture["payload"]),
                                         dict(fixture.get("headers", {})))


def _good(type_: str) -> dict[str, dict[str, Any]]:
    return {k: f for k, f in _fixtures(type_).items() if "expected" in f}


# --- the plugin and its schema ---------------------------------------------------------

@pytest.mark.parametrize("type_", SOURCE_TYPES)
def test_entry_point_loads_a_source(type_: str) -> None:
    cls = load(SOURCE_GROUP, type_)
    assert isinstance(cls, type) and issubclass(cls, Source)
    assert cls.type == type_, "entry-point name, config type and Source.type are one name"


@pytest.mark.parametrize("type_", SOURCE_TYPES)
def test_schema_is_valid_and_documented(type_: str) -> None:
    name = f"sources/{type_}.schema.json"
    assert schema.exists(name), f"schemas/{name} is missing"
    doc = schema.load(name)
    Draft202012Validator.check_schema(doc)
    assert doc.get("$schema") == "https://json-schema.org/draft/2020-12/schema"
    assert doc.get("$id") == schema.BASE_URI + name
    assert doc.get("description"), "the schema is the reference doc: describe the source"
    for key, prop in doc.get("properties", {}).items():
        assert prop.get("description"), f"config key {key!r} has no description"
    cls = load(SOURCE_GROUP, type_)
    if cls.payload_def is not None:
        assert cls.payload_def in doc.get("$defs", {}), f"$defs/{cls.payload_def} is missing"


@pytest.mark.parametrize("type_", SOURCE_TYPES)
def test_schema_examples_validate(type_: str) -> None:
    name = f"sources/{type_}.schema.json"
    examples = schema.load(name).get("examples")
    assert examples, "give at least one example config"
    for example in examples:
        assert schema.problems(name, example) == [], example


# --- the fixtures ------------------------------------------------------------------------

@pytest.mark.parametrize("type_", SOURCE_TYPES)
def test_source_has_fixtures(type_: str) -> None:
    fixtures = _fixtures(type_)
    assert fixtures, f"no fixtures in tests/fixtures/sources/{type_}/"
    assert any("expected" in f for f in fixtures.values()), "no fixture that parses"
    assert any("error" in f for f in fixtures.values()), "no fixture that is refused"
    assert any("same_problem_as" in f for f in fixtures.values()), \
        "no fixture pair showing that a problem and its resolve share a dedup key"


# Formats that carry no name for the alert (PagerDuty Events v2 has only a summary); every
# other source must name its alerts, so that incidents are titled by what fired.
UNNAMED_FORMATS = {"pagerduty-events"}


@pytest.mark.parametrize("type_", SOURCE_TYPES)
def test_alerts_are_named_and_titled_by_their_name(type_: str) -> None:
    named = []
    for case, fixture in _good(type_).items():
        for alert in _parse(type_, fixture):
            if alert.name:
                named.append(case)
                assert alert.title.startswith(alert.name) or alert.name in alert.summary, \
                    (case, alert.title)
                assert alert.summary in alert.title or alert.name in alert.summary, \
                    (case, alert.title)
    if type_ not in UNNAMED_FORMATS:
        assert named, (f"no fixture of {type_} gives its alert a name (the rule, monitor or "
                       "check that fired): the incident title would lack it")


@pytest.mark.parametrize("type_", SOURCE_TYPES)
def test_fixtures_say_where_they_came_from(type_: str) -> None:
    readme = FIXTURES / type_ / "README.md"
    assert readme.is_file(), f"tests/fixtures/sources/{type_}/README.md is missing"
    text = readme.read_text("utf-8")
    unlisted = [c for c in _fixtures(type_) if c not in text]
    assert not unlisted, f"fixtures not described in {type_}/README.md: {unlisted}"


@pytest.mark.parametrize(("type_", "case"), _fixture_cases())
def test_fixture(type_: str, case: str) -> None:
    fixture = _fixtures(type_)[case]
    assert set(fixture) <= FIXTURE_KEYS, f"unknown fixture keys {set(fixture) - FIXTURE_KEYS}"
    assert "payload" in fixture
    assert ("expected" in fixture) != ("error" in fixture), "one of expected or error"
    config_problems = schema.problems(f"sources/{type_}.schema.json", fixture.get("config", {}))
    assert config_problems == [], "the fixture's config must be a valid config"
    before = copy.deepcopy(fixture["payload"])

    if "error" in fixture:
        with pytest.raises(PayloadError) as caught:
            _parse(type_, fixture)
        said = [str(caught.value), *caught.value.errors]
        assert any(fixture["error"] in s for s in said), said
        return

    alerts = _parse(type_, fixture)
    got = [a.to_dict() for a in alerts]
    assert got == fixture["expected"]
    alert_schema = schema.validator("incident.schema.json", "alert")
    for doc in got:
        alert_schema.validate(doc)
    assert [a.acknowledge for a in alerts] == fixture.get("acknowledge", [False] * len(alerts))
    if "response" in fixture:
        assert _source(type_, fixture).response(alerts) == fixture["response"]
    # Deterministic: again, with a new adapter, gives equal alerts and an equal reply.
    again = _parse(type_, fixture)
    assert again == alerts
    assert _source(type_, fixture).response(again) == _source(type_, fixture).response(alerts)
    assert fixture["payload"] == before, "parse must not modify the body"


@pytest.mark.parametrize("type_", SOURCE_TYPES)
def test_dedup_keys_identify_problems(type_: str) -> None:
    good = _good(type_)
    # Fixtures linked by same_problem_as describe one problem (firing, ack, resolve).
    family = {case: case for case in good}

    def root(case: str) -> str:
        while family[case] != case:
            case = family[case]
        return case

    for case, fixture in good.items():
        if "same_problem_as" in fixture:
            other = fixture["same_problem_as"]
            assert other in good, f"{case}: same_problem_as names no parsing fixture"
            family[root(case)] = root(other)
            keys = {a.dedup_key for a in _parse(type_, fixture)}
            assert keys <= {a.dedup_key for a in _parse(type_, good[other])}, \
                f"{case} must share its dedup key with {other}"

    owner: dict[str, str] = {}
    for case, fixture in good.items():
        keys = [a.dedup_key for a in _parse(type_, fixture)]
        assert len(set(keys)) == len(keys), f"{case}: different alerts share a dedup key"
        for key in keys:
            first = owner.setdefault(key, case)
            assert root(first) == root(case), \
                f"{case} and {first} are different problems but share dedup key {key!r}"


@pytest.mark.parametrize("junk", GARBAGE, ids=lambda j: json.dumps(j)[:40])
@pytest.mark.parametrize("type_", SOURCE_TYPES)
def test_garbage_is_a_payload_error(type_: str, junk: Any) -> None:
    fixture = next(iter(_good(type_).values()), {})
    # The empty config where the type allows it; else (generic-mapped: the mapping is the
    # config) the config of its first parsing fixture.
    name = f"sources/{type_}.schema.json"
    needs_config = schema.exists(name) and bool(schema.problems(name, {}))
    src = _source(type_, {"name": fixture.get("name", "x"), "env": fixture.get("env", {}),
                          "config": fixture.get("config", {}) if needs_config else {}})
    with pytest.raises(PayloadError):
        src.parse(copy.deepcopy(junk), {})


# --- what only one adapter does -------------------------------------------------------------

def test_pagerduty_routing_key_mismatch_is_an_auth_error_that_reveals_nothing() -> None:
    fixture = _fixtures("pagerduty-events")["trigger-with-routing-key"]
    for given in ("0" * 32, "", None, 7):
        body = dict(copy.deepcopy(fixture["payload"]), routing_key=given)
        with pytest.raises(AuthError) as caught:
            _source("pagerduty-events", fixture).parse(body, {})
        said = str(caught.value)
        assert fixture["env"]["PD_INBOUND_ROUTING_KEY"] not in said
        assert not (isinstance(given, str) and given and given in said)
    # Without a configured key, any routing key is taken.
    open_fixture = dict(fixture, config={}, env={})
    body = dict(copy.deepcopy(fixture["payload"]), routing_key="anything")
    assert _source("pagerduty-events", open_fixture).parse(body, {})


def test_pagerduty_derived_keys_differ_for_different_events() -> None:
    fixture = _fixtures("pagerduty-events")["trigger-without-dedup-key"]
    src = _source("pagerduty-events", fixture)
    body = copy.deepcopy(fixture["payload"])
    other = copy.deepcopy(body)
    other["payload"]["summary"] = "Nightly ETL job customers_daily failed"
    rotated = dict(copy.deepcopy(body), routing_key="a-new-integration-key")
    key = src.parse(body, {})[0].dedup_key
    assert src.parse(other, {})[0].dedup_key != key
    assert src.parse(rotated, {})[0].dedup_key == key, "the routing key is not part of it"


def test_generic_refuses_more_than_1000_alerts() -> None:
    alerts = [{"dedup_key": f"k{i}", "summary": "s"} for i in range(1001)]
    with pytest.raises(PayloadError):
        _source("generic").parse(alerts, {})
    assert len(_source("generic").parse(alerts[:1000], {})) == 1000


def test_alertmanager_severity_words() -> None:
    src = _source("alertmanager", {"config": {"default_severity": "info"}})
    words = {"Critical": "critical", "PAGE": "critical", "p1": "critical", "disaster": "critical",
             "emergency": "critical", "error": "error", "high": "error", "major": "error",
             "P2": "error", "warning": "warning", "warn": "warning", "medium": "warning",
             "minor": "warning", "p3": "warning", "info": "info", "low": "info", "none": "info",
             "ok": "info", "p4": "info", "P5": "info", "informational": "info",
             " critical ": "critical", "sev1": "info", "": "info"}
    for word, severity in words.items():
        body = {"version": "4", "alerts": [
            {"status": "firing", "labels": {"alertname": "A", "severity": word}}]}
        alert = src.parse(body, {})[0]
        assert alert.severity == severity, word
        assert alert.labels["severity"] == word, "the original value stays in labels"


@pytest.mark.parametrize(("text", "iso"), [
    ("2024-01-01T10:00:00.123456789Z", "2024-01-01T10:00:00.123Z"),
    ("2024-01-01T10:00:00.999999999Z", "2024-01-01T10:00:00.999Z"),
    ("2024-01-01t10:00:00z", "2024-01-01T10:00:00.000Z"),
    ("2024-01-01 10:00:00-05:30", "2024-01-01T15:30:00.000Z"),
    ("2015-07-17T08:42:58.315+0000", "2015-07-17T08:42:58.315Z"),
    ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.000Z"),
])
def test_timestamp_parser(text: str, iso: str) -> None:
    from baton.model import iso as to_iso
    from baton.sources._common import parse_timestamp

    assert to_iso(parse_timestamp(text, "t")) == iso


@pytest.mark.parametrize("text", [
    "2024-02-30T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01", "2024-01-01T10:00Z",
    "2024-01-01T10:00:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
    "2024-01-01T10:00:00+24:00", "2024-W01-1T10:00:00Z", "20240101T100000Z", "x" * 10_000,
    "\u0662\u0660\u0662\u0664-01-01T10:00:00Z",  # Arabic-Indic digits
])
def test_timestamp_parser_refuses(text: str) -> None:
    from baton.sources._common import parse_timestamp

    with pytest.raises(PayloadError) as caught:
        parse_timestamp(text, "payload.at")
    assert caught.value.errors[0].startswith("payload.at: ")
    assert len(caught.value.errors[0]) < 200, "the value is quoted, not echoed in full"
