"""Regex matchers run in linear time (RE2, as Alertmanager does) on sender-controlled label
values, and what RE2 refuses (backreferences, lookaround) is refused with the place it
was written: the config path, or the API field."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from helpers import ClientFactory, alert, build, config_dict, minimal, start_gateway

from baton.config import Route
from baton.errors import ConfigError
from baton.matcher import parse_matcher, parse_matchers
from baton.routing import Router

# Loose: a backtracking engine needs seconds for these; RE2 needs microseconds.
BOUND = 0.5


def elapsed(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def test_a_route_regex_on_a_long_label_is_linear() -> None:
    router = Router([Route(name="prod", matchers=tuple(
        parse_matchers('instance=~".*-.*-.*-prod"')), policy="p")])
    value = "-" * 1500  # no "prod": a backtracker tries every split of the dashes, O(n³)
    found, took = elapsed(router.match, {"instance": value})
    assert found == []
    assert took < BOUND, f"route match took {took:.2f} s"
    assert [m.name for m in router.match({"instance": "web-1-eu-prod"})] == ["prod"]


def test_a_nested_quantifier_on_a_short_label_is_linear() -> None:
    matcher = parse_matcher('alertname=~"(a+)+b"')
    found, took = elapsed(matcher.matches, {"alertname": "a" * 26})
    assert found is False
    assert took < BOUND, f"match took {took:.2f} s"
    start = time.perf_counter()
    for n in range(1000):  # many values, each answered at once
        matcher.matches({"alertname": "a" * (n % 64)})
    assert time.perf_counter() - start < BOUND
    assert matcher.matches({"alertname": "aaab"})


def test_a_lone_surrogate_in_a_label_does_not_break_matching() -> None:
    # JSON may carry "\ud800"; the match must answer, not raise.
    assert not parse_matcher('x=~"a.*"').matches({"x": "b\ud800"})
    assert parse_matcher('x!~"a.*"').matches({"x": "b\ud800"})


async def test_a_silence_regex_does_not_stall_ingest(aiohttp_client: ClientFactory,
                                                     tmp_path: Path) -> None:
    gw = await start_gateway(aiohttp_client, config_dict(tmp_path), tmp_path)
    await gw.post("/v1/silences", {"matchers": ['alertname=~"(a+)+b"'], "duration": "1h",
                                   "created_by": "alice"}, 201)
    start = time.perf_counter()
    answer = await gw.ingest(alert("k1", labels={"alertname": "a" * 26}))
    took = time.perf_counter() - start
    assert len(answer["incidents"]) == 1
    assert took < 2.0, f"ingest took {took:.2f} s"  # looser: a whole request on 2 cores


@pytest.mark.parametrize("regex", ["(a)\\\\1", "(?=a)b", "a(?!b)"])
def test_what_re2_refuses_is_refused(regex: str) -> None:
    with pytest.raises(ValueError, match=r"invalid regular expression .*\(RE2 syntax"):
        parse_matcher(f'x=~"{regex}"')


def problems(data: dict[str, Any], tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        build(data, tmp_path)
    return err.value.problems


BACKREF = 'x=~"(a)\\\\1"'


@pytest.mark.parametrize(("extra", "path"), [
    ({"routes": [{"policy": "p"}, {"matchers": ['y="1"', BACKREF], "policy": "p"}]},
     "routes[1].matchers[1]"),
    ({"inhibit_rules": [{"source_matchers": [BACKREF], "target_matchers": ['y="1"']}]},
     "inhibit_rules[0].source_matchers[0]"),
    ({"silences": [{"matchers": [BACKREF], "ends": "2030-01-01T00:00:00Z"}]},
     "silences[0].matchers[0]"),
])
def test_a_backreference_in_config_is_refused_with_its_path(
        extra: dict[str, Any], path: str, tmp_path: Path) -> None:
    found = problems(minimal(**extra), tmp_path)
    assert any(p.startswith(f"{path}: ") and "RE2" in p for p in found), found


async def test_a_backreference_in_an_api_silence_is_400_naming_the_field(
        aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    gw = await start_gateway(aiohttp_client, config_dict(tmp_path), tmp_path)
    resp = await gw.client.post("/v1/silences", json={
        "matchers": ['y="1"', BACKREF], "duration": "1h", "created_by": "alice"})
    doc = await resp.json(content_type=None)
    assert resp.status == 400, doc
    assert any(e.startswith("matchers[1]: ") and "RE2" in e for e in doc["errors"]), doc
    assert (await gw.get("/v1/silences"))["silences"] == []
