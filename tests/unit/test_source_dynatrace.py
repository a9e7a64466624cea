"""dynatrace: severity and impact tables, states, test runs, ids, tags."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from baton.errors import PayloadError
from baton.model import Alert
from baton.sources.dynatrace import DynatraceSource

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sources" / "dynatrace"


def body(case: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / f"{case}.json").read_text())["payload"]
    return copy.deepcopy(payload)


def parse(payload: Any, **config: Any) -> Alert:
    (alert,) = DynatraceSource("dt", config).parse(payload, {})
    return alert


@pytest.mark.parametrize(("given", "expected"), [
    ("AVAILABILITY", "critical"), ("ERROR", "error"), ("PERFORMANCE", "warning"),
    ("RESOURCE_CONTENTION", "warning"), ("CUSTOM_ALERT", "warning"),
    ("MONITORING_UNAVAILABLE", "warning"), ("INFO", "info"), ("availability", "critical")])
def test_problem_severity_table(given: str, expected: str) -> None:
    payload = body("open-error")
    payload["ProblemSeverity"] = given
    alert = parse(payload)
    assert alert.severity == expected
    assert alert.labels["severity"] == given.upper()
    assert DynatraceSource.severity_label == "severity"


@pytest.mark.parametrize(("impact", "expected"), [
    ("APPLICATION", "error"), ("SERVICE", "error"), ("INFRASTRUCTURE", "warning"),
    ("ENVIRONMENT", "warning"), ("", "info"), ("SOMETHING_NEW", "info")])
def test_impact_decides_without_problem_severity(impact: str, expected: str) -> None:
    payload = body("default-template-infrastructure")
    payload["ProblemImpact"] = impact
    assert parse(payload, default_severity="info").severity == expected


@pytest.mark.parametrize(("state", "status"), [
    ("OPEN", "firing"), ("RESOLVED", "resolved"), ("MERGED", "resolved"),
    ("CLOSED", "resolved")])
def test_states(state: str, status: str) -> None:
    payload = body("open-error")
    payload["State"] = state
    alert = parse(payload)
    assert alert.status == status
    assert alert.dedup_key == parse(body("open-error")).dedup_key


def test_monitoring_unavailable_is_no_data_and_the_test_run_is_a_test() -> None:
    assert parse(body("monitoring-unavailable")).condition == "no_data"
    assert parse(body("docs-example-test-run")).condition == "test"
    assert parse(body("open-error")).condition == "normal"
    # Either marker is enough: a custom template may leave out the title or the ids.
    only_ids = {"State": "OPEN", "PID": "99999", "ProblemID": "999"}
    assert parse(only_ids).condition == "test"
    only_title = {"State": "OPEN", "ProblemID": "12",
                  "ProblemTitle": "Dynatrace problem notification test run"}
    assert parse(only_title).condition == "test"
    assert parse({"State": "OPEN", "PID": "99999", "ProblemID": "1000"}).condition == "normal"


def test_pid_is_the_key_and_problem_id_the_fallback() -> None:
    assert parse({"State": "OPEN", "PID": 42, "ProblemID": "P-1"}).dedup_key == "dynatrace:42"
    assert parse({"State": "OPEN", "ProblemID": "P-1"}).dedup_key == "dynatrace-problem:P-1"
    # An unfilled placeholder is no id.
    assert parse({"State": "OPEN", "PID": "{PID}", "ProblemID": "P-1"}).dedup_key == \
        "dynatrace-problem:P-1"
    with pytest.raises(PayloadError) as caught:
        parse({"State": "OPEN", "PID": "{PID}"})
    assert "PID" in str(caught.value)


def test_tags_become_labels_and_fields() -> None:
    payload = body("open-error")
    payload["Tags"] = "[AWS]environment:prod, service:cart, plain, url:https://x.example/a"
    alert = parse(payload)
    assert (alert.environment, alert.service) == ("prod", "cart")
    assert alert.labels["url"] == "https://x.example/a"
    assert alert.labels["tags"] == payload["Tags"]


def test_tag_parsing_uses_no_regex() -> None:
    # Tags used to be matched by a regex whose optional context prefix, whitespace runs
    # and lazy key backtracked for seconds on "[]" followed by spaces.
    from baton.sources import dynatrace

    assert not [name for name, value in vars(dynatrace).items()
                if isinstance(value, re.Pattern)]


@pytest.mark.parametrize(("tags", "expected"), [
    # The audit's input (8 s at 3,000 spaces), scaled up to 50 KB.
    ("[]" + " " * 50_000 + "x", {}),
    ("[]" + " " * 50_000 + "k :  v", {"k": "v"}),
    ("[" + "[" * 50_000 + "]", {}),
    (":" * 50_000, {}),
    ("a" + " " * 50_000 + "b:c", {"a" + " " * 50_000 + "b": "c"}),
])
def test_adversarial_tags(tags: str, expected: dict[str, str]) -> None:
    payload = body("open-error")
    payload["Tags"] = tags
    labels = parse(payload).labels
    assert {k: v for k, v in labels.items() if k not in _NOT_TAG_LABELS} == expected


_NOT_TAG_LABELS = {"tags", "pid", "problem_id", "severity", "impact", "state", "entities",
                   "entity_types"}


@pytest.mark.parametrize(("tag", "expected"), [
    ("[Kubernetes]app:payment", {"app": "payment"}),
    ("  [AWS]  env  :  prod  ", {"env": "prod"}),
    ("url:https://x.example/a", {"url": "https://x.example/a"}),
    ("key:", {}), (":value", {}), ("plain", {}), ("[ctx]plain", {}),
    ("[ctx]:value", {"[ctx]": "value"}),
    ("[a:b]c:d", {"c": "d"}), ("[a:b]c", {"[a": "b]c"}), ("[unclosed:x", {"[unclosed": "x"}),
    ("k:line\nbreak", {}), ("multi\nline key:v", {"multi\nline key": "v"}),
    ("[]\t k\t:\tv", {"k": "v"}),
])
def test_tag_shapes(tag: str, expected: dict[str, str]) -> None:
    payload = body("open-error")
    payload["Tags"] = tag
    labels = parse(payload).labels
    assert {k: v for k, v in labels.items() if k not in _NOT_TAG_LABELS} == expected


def test_times_from_problem_details_and_both_url_spellings() -> None:
    assert parse(body("open-error")).ended_at is None  # endTime -1 while open
    resolved = parse(body("resolved-error"))
    assert resolved.ended_at is not None and resolved.started_at is not None
    assert [link.text for link in parse(body("docs-example-test-run")).links] == ["Problem"]
    assert [link.text for link in parse(body("open-error")).links] == ["Problem"]


@pytest.mark.parametrize("mutate", [
    lambda p: p.update(State="open"),
    lambda p: p.update(PID=["x"]),
    lambda p: p.update(ImpactedEntities="MyHost1"),
    lambda p: p.update(ProblemDetailsJSON="{}"),
    lambda p: p.update(Tags=["a"]),
])
def test_bad_shapes_are_payload_errors(mutate: Any) -> None:
    payload = body("open-error")
    mutate(payload)
    with pytest.raises(PayloadError):
        parse(payload)


@pytest.mark.parametrize("body", [
    {"problem_id": "P-7", "state": "RESOLVED", "problem_title": "Disk full"},
    {"problemId": "P-7", "State": "RESOLVED", "problemTitle": "Disk full"},
    {"ProblemID": "P-7", "status": "RESOLVED", "title": "Disk full"},
    {"Problem ID": "P-7", "STATE": "RESOLVED", "ProblemTitle": "Disk full"},
])
def test_placeholder_keys_in_any_spelling(body: dict[str, Any]) -> None:
    [alert] = DynatraceSource("dt", {}).parse(body, {})
    assert (alert.dedup_key, alert.status, alert.name) == (
        "dynatrace-problem:P-7", "resolved", "Disk full")


def test_the_exact_key_wins_and_no_state_is_open() -> None:
    [alert] = DynatraceSource("dt", {}).parse(
        {"PID": "1_2V2", "ProblemTitle": "A", "problem_title": "B"}, {})
    assert (alert.summary, alert.status) == ("A", "firing")
