"""Property-based checks, run on every adapter registered under ``baton.sources``.

The fixture contract (test_sources.py) shows each adapter on the bodies its vendor sends;
this file throws everything else at it. For any JSON a sender can get past the JSON
decoder, ``parse`` either returns alerts that are valid against the incident schema and
the same on every call, or raises ``PayloadError`` (a 400). ``AuthError`` (a 401) is
allowed only for sources whose schema documents a 401. Anything else would be a 500.

Sources are found through their entry points when the tests are collected, and their own
fixtures (``tests/fixtures/sources/<type>/``) seed the data: the keys and strings of the
vendor's bodies for random JSON, and the good bodies themselves for mutations. Nothing is
loaded at collection time, so one broken adapter fails its own tests only.

Four tests per source: random JSON; random mutations of the good bodies (keys deleted,
values of other types, list items dropped, values nested, emptied); every single change of
the top levels of each good body, which chance could miss; and bodies nested as deep as the
JSON decoder accepts. Hypothesis runs derandomized (the same examples on every run, in CI
too) with a small budget: the whole file stays well under a minute for ~20 sources.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, reject, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from baton import schema
from baton.api.problem import decode
from baton.errors import AuthError, PayloadError
from baton.model import Alert
from baton.plugin import SOURCE_GROUP, Source, discover, load
from baton.secret import Secret

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sources"
SOURCE_TYPES = sorted(discover(SOURCE_GROUP))

# Per source and test. The budget goes mostly to mutations: random JSON rarely gets past an
# adapter's first check, a mutated real body reaches its mapping code.
RANDOM_EXAMPLES, MUTATION_EXAMPLES = 40, 100
PROPERTY_SETTINGS = settings(
    deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)

# Values that break naive parsers: wrong types, empty and blank text, boundary numbers,
# NaN and infinities (Python's JSON decoder accepts them), almost-timestamps.
SPECIAL: list[Any] = [
    None, True, False, 0, -1, 1, 2**63, -(2**63) - 1, 10**30, 0.5, -0.0, 1e308,
    math.nan, math.inf, -math.inf, "", " ", "0", "null", "true", "x" * 300, "\u00e9\u2603",
    "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2024-02-30T10:00:00Z", "0001-01-01T00:00:00Z",
    "2024-01-01T10:00:00", "yesterday", "-1", "1e999", [], {}, [None], {"": None},
]
# The systematic sweep: places up to this deep, at most this many per body.
SWEEP_DEPTH, SWEEP_PLACES = 3, 50
# One value of each JSON type, for "the same field with another type".
OTHER_TYPES: list[Any] = [None, True, 0, 1.5, "", "text", [], {}, ["text"], {"k": "text"}]


# --- what each source's fixtures give the strategies -----------------------------------

@cache
def _fixtures(type_: str) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text("utf-8"))
            for p in sorted((FIXTURES / type_).glob("*.json"))}


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


@cache
def _vocabulary(type_: str) -> tuple[list[str], list[Any]]:
    """The keys and scalar values of the vendor's bodies: random objects built from them
    reach far deeper into an adapter than random text keys would."""
    keys: set[str] = set()
    scalars: dict[str, Any] = {}
    for fixture in _fixtures(type_).values():
        for node in _walk(fixture.get("payload")):
            if isinstance(node, dict):
                keys.update(node)
            elif not isinstance(node, list | dict):
                scalars.setdefault(json.dumps(node), node)
    return sorted(keys)[:300] or ["alerts"], list(scalars.values())[:300] or [None]


@cache
def _settings_of(type_: str) -> list[dict[str, Any]]:
    """The (name, config, env, headers) of each fixture, or an empty config."""
    seen: dict[str, dict[str, Any]] = {}
    for fixture in _fixtures(type_).values():
        setup = _setup(fixture)
        seen.setdefault(json.dumps(setup, sort_keys=True), setup)
    return list(seen.values()) or [{"name": "prop", "config": {}, "env": {}, "headers": {}}]


def _good(type_: str) -> list[dict[str, Any]]:
    return [f for f in _fixtures(type_).values() if "expected" in f]


def _json(type_: str) -> st.SearchStrategy[Any]:
    keys, scalars = _vocabulary(type_)
    leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                       st.text(max_size=20), st.sampled_from(scalars), st.sampled_from(SPECIAL))
    names = st.one_of(st.sampled_from(keys), st.text(max_size=8))
    return st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(names, inner, max_size=6)),
        max_leaves=30)


# --- mutations of the good bodies ----------------------------------------------------------

Path_ = tuple[str | int, ...]


def _paths(value: Any, limit: int = 12) -> list[Path_]:
    """Every place in a document, breadth first, down to ``limit`` levels (not into the
    deep nests a mutation may have made)."""
    found: list[Path_] = []
    todo: list[tuple[Path_, Any]] = [((), value)]
    while todo:
        here, node = todo.pop(0)
        found.append(here)
        if len(here) >= limit:
            continue
        if isinstance(node, dict):
            todo.extend(((*here, k), v) for k, v in node.items())
        elif isinstance(node, list):
            todo.extend(((*here, i), v) for i, v in enumerate(node))
    return found


def _get(doc: Any, path: Path_) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _set(doc: Any, path: Path_, value: Any) -> Any:
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


def _nest(value: Any, depth: int, as_list: bool) -> Any:
    for _ in range(depth):
        value = [value] if as_list else {"a": value}
    return value


@st.composite
def _mutated(draw: st.DrawFn, type_: str, payload: Any) -> Any:
    doc = _copy(payload)
    # Mostly one change, so that many mutants still parse and reach the mapping code.
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        # Not the body itself: replacing it is what the random-JSON test does.
        path = draw(st.sampled_from(_paths(doc)[1:] or [()]))
        op = draw(st.sampled_from(["delete", "retype", "retype", "drop", "nest", "empty"]))
        target = _get(doc, path)
        if op == "delete" and path:
            parent = _get(doc, path[:-1])
            del parent[path[-1]]
        elif op == "drop" and isinstance(target, list) and target:
            keep = draw(st.integers(0, len(target) - 1))
            doc = _set(doc, path, target[:keep])
        elif op == "nest":
            depth = draw(st.sampled_from([1, 2, 8, 64, 200]))
            doc = _set(doc, path, _nest(target, depth, draw(st.booleans())))
        elif op == "empty":
            doc = _set(doc, path, type(target)() if isinstance(target, list | dict | str)
                       else None)
        else:
            # A copy: SPECIAL's lists and objects must not be changed by later mutations.
            value = draw(st.one_of(st.sampled_from(OTHER_TYPES), st.sampled_from(SPECIAL),
                                   _json(type_)))
            doc = _set(doc, path, copy.deepcopy(value))
    return doc


# --- the property ----------------------------------------------------------------------

def _resolve(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"env"}:
            return Secret(env[value["env"]], f"env:{value['env']}")
        return {k: _resolve(v, env) for k, v in value.items()}
    return value


@cache
def _class(type_: str) -> Any:
    # Loaded once per type: reading the installed entry points costs milliseconds a time.
    return load(SOURCE_GROUP, type_)


@cache
def _alert_validator() -> Any:
    return schema.validator("incident.schema.json", "alert")


_VALID: set[str] = set()


def _validate(doc: dict[str, Any]) -> None:
    # Many mutants give the same alert: validating each distinct one once keeps the budget
    # for new inputs (jsonschema is most of the cost of an example otherwise).
    key = json.dumps(doc, sort_keys=True)
    if key not in _VALID:
        _alert_validator().validate(doc)
        _VALID.add(key)


def _setup(fixture: dict[str, Any]) -> dict[str, Any]:
    return {"name": fixture.get("name", "prop"), "config": fixture.get("config", {}),
            "env": fixture.get("env", {}), "headers": fixture.get("headers", {})}


def _source(type_: str, setup: dict[str, Any]) -> Source:
    source: Source = _class(type_)(setup["name"], _resolve(setup["config"], setup["env"]))
    return source


@cache
def _documents_401(type_: str) -> bool:
    name = f"sources/{type_}.schema.json"
    return schema.exists(name) and "401" in json.dumps(schema.load(name))


def _as_decoded(doc: Any) -> Any:
    """The body exactly as ingest's JSON decoder would hand it over; a document too deep
    for the decoder never reaches an adapter, so it is no example."""
    try:
        return json.loads(json.dumps(doc))
    except RecursionError:
        reject()


def _check(type_: str, setup: dict[str, Any], payload: Any) -> None:
    headers = dict(setup["headers"])
    before = _copy(payload)
    try:
        alerts = _source(type_, setup).parse(payload, headers)
    except PayloadError:
        _note("refused (PayloadError)")
        return
    except AuthError:
        if not _documents_401(type_):
            raise
        _note("refused (AuthError)")
        return
    _note("parsed")
    assert payload == before or _nan_equal(payload, before), "parse modified the body"
    for alert in alerts:
        assert isinstance(alert, Alert)
        _validate(alert.to_dict())
        assert alert.source_type == type_ and alert.source_name == setup["name"]
    again = _source(type_, setup).parse(_copy(before), dict(setup["headers"]))
    assert [a.to_dict() for a in again] == [a.to_dict() for a in alerts], "not deterministic"
    # The extra keys of the 202 answer: the same again, and JSON the answer can carry.
    reply = _source(type_, setup).response(alerts)
    assert reply == _source(type_, setup).response(again)
    json.dumps(reply, allow_nan=False)


def _note(outcome: str) -> None:
    # Shown by --hypothesis-show-statistics: how many examples got past the parser at all.
    if currently_in_test_context():
        event(outcome)


def _copy(doc: Any) -> Any:
    # Not copy.deepcopy: it needs several Python frames per level and would overflow on
    # bodies the (C) JSON decoder accepts; the JSON round trip copies what it produced.
    return json.loads(json.dumps(doc))


def _nan_equal(a: Any, b: Any) -> bool:
    # NaN != NaN: compare bodies the way the store would, as JSON text.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@pytest.mark.parametrize("type_", SOURCE_TYPES)
def test_random_json_is_parsed_or_refused(type_: str) -> None:
    setups = _settings_of(type_)

    @settings(PROPERTY_SETTINGS, max_examples=RANDOM_EXAMPLES)
    @given(setup=st.sampled_from(setups), body=_json(type_))
    def run(setup: dict[str, Any], body: Any) -> None:
        _check(type_, setup, _as_decoded(body))

    run()


@pytest.mark.parametrize("type_", SOURCE_TYPES)
def test_mutated_fixtures_are_parsed_or_refused(type_: str) -> None:
    good = _good(type_)
    if not good:
        pytest.skip("no parsing fixtures (test_sources.py reports that)")

    @settings(PROPERTY_SETTINGS, max_examples=MUTATION_EXAMPLES)
    @given(data=st.data(), index=st.integers(0, len(good) - 1))
    def run(data: st.DataObject, index: int) -> None:
        fixture = good[index]
        setup = _setup(fixture)
        body = data.draw(_mutated(type_, fixture["payload"]))
        _check(type_, setup, _as_decoded(body))

    run()


@pytest.mark.parametrize("type_", SOURCE_TYPES)
def test_every_single_change_of_a_good_body(type_: str) -> None:
    """The systematic half of the mutations, where chance may miss a field: each place in
    the top three levels of each good body deleted, or given a value of each other type."""
    for fixture in _good(type_):
        payload = fixture["payload"]
        setup = _setup(fixture)
        for path in _paths(payload, SWEEP_DEPTH)[1:SWEEP_PLACES]:
            variants = [_deleted(payload, path)]
            variants += [_set(_copy(payload), path, _copy(v)) for v in OTHER_TYPES]
            for body in variants:
                _check(type_, setup, body)


def _deleted(payload: Any, path: Path_) -> Any:
    doc = _copy(payload)
    del _get(doc, path[:-1])[path[-1]]
    return doc


@pytest.mark.parametrize("type_", SOURCE_TYPES)
def test_bodies_as_deep_as_the_decoder_allows(type_: str) -> None:
    """A sender can nest JSON as deep as ingest's decoder accepts; each good body, with one
    of its fields (top two levels) nested that deep, is still a 400 or alerts, never a
    RecursionError (a 500)."""
    checked = 0
    for fixture in _good(type_):
        payload = fixture["payload"]
        for i, path in enumerate([p for p in _paths(payload, 2) if p][:8]):
            marked = _set(_copy(payload), path, _MARK)
            checked += _decode_and_check(type_, _setup(fixture), json.dumps(marked), i % 2 == 0)
    assert checked or not _good(type_), "no body could be decoded: the test tests nothing"


_MARK = "\u0000deep\u0000"


def _decode_and_check(type_: str, setup: dict[str, Any], text: str, as_list: bool) -> int:
    """As ingest does it: the body decoded by ``decode`` and parsed from one frame, with
    the mark replaced by the deepest nesting the decoder takes at this stack depth."""
    mark = json.dumps(_MARK)
    for depth in range(sys.getrecursionlimit(), 0, -5):
        opened, closed = ("[", "]") if as_list else ('{"a":', "}")
        raw = text.replace(mark, opened * depth + "null" + closed * depth).encode()
        try:
            payload = decode(raw)
        except PayloadError:  # "nested too deeply": not a body ingest would pass on
            continue
        _check(type_, setup, payload)
        return 1
    return 0
