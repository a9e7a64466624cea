import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import minimal

from baton import plugin, schema
from baton.config import (
    ApiToken,
    AuthConfig,
    Config,
    Level,
    Target,
    check_config,
    config_from_dict,
    load_config,
    resolve_config_path,
)
from baton.errors import ConfigError
from baton.matcher import Matcher
from baton.plugin import CONNECTOR_GROUP, SOURCE_GROUP, discover
from baton.schedule import Person
from baton.secret import Secret

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "config"
ENV = {
    "BATON_API_TOKEN": "api-secret-value-1",
    "PROM_TOKEN": "prom-secret-value-1",
    "PROM_TOKEN_NEXT": "prom-secret-value-2",
    "HOOK_SECRET": "Bearer hook-secret-value",
}

# The message lists every registered connector type; that list grows with the plugins.
KNOWN_CONNECTORS = ", ".join(sorted(discover(CONNECTOR_GROUP)))
KNOWN_SOURCES = ", ".join(sorted(discover(SOURCE_GROUP)))


def problems_of(data: dict[str, Any], tmp_path: Path, environ: dict[str, str] | None = None
                ) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, tmp_path, environ if environ is not None else {})
    return info.value.problems




def test_schema_itself_is_valid_and_documents_every_key() -> None:
    doc = schema.load("config.schema.json")
    assert doc["$id"] == "https://baton.dev/schemas/config.schema.json"
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    from jsonschema import Draft202012Validator
    Draft202012Validator.check_schema(doc)

    undocumented: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, sub in node.get("properties", {}).items():
                # A $ref carries the description of its definition.
                if "description" not in sub and "$ref" not in sub:
                    undocumented.append(f"{where}.{key}")
            for key, sub in node.items():
                if key != "if":  # conditions, not keys
                    walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")

    walk(doc, "")
    assert undocumented == []


def test_demo_loads() -> None:
    config = load_config(None)
    assert config.path is None
    assert config.server.listen == "127.0.0.1:8080"
    assert config.storage.url == "sqlite:///./baton-data/baton.db"
    assert {n: s.type for n, s in config.sources.items()} == {
        "alertmanager": "alertmanager", "generic": "generic", "pagerduty": "pagerduty-events"}
    assert all(s.auth == AuthConfig("none") for s in config.sources.values())
    sink = config.connectors["demo-sink"]
    assert (sink.type, sink.options) == ("webhook", {"url": "http://127.0.0.1:9099/hook"})
    assert [(r.name, r.policy, r.matchers) for r in config.routes] == [
        ("critical", "page", (Matcher("severity", "=", "critical"),)),
        ("default", "ticket", ()),
    ]
    assert set(config.policies) == {"page", "ticket"}
    for policy in config.policies.values():
        assert policy.levels[0].notify == (Target("demo-sink"),)


def test_full_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)  # the default environment is os.environ
    config = load_config(FIXTURES / "full.yaml")
    assert config.path == FIXTURES / "full.yaml"
    assert (config.server.listen, config.server.max_body_bytes, config.server.shutdown_grace) \
        == ("0.0.0.0:9000", 2048, 30.0)
    assert (config.storage.url, config.storage.busy_timeout) == (
        "sqlite:////var/lib/baton/baton.db", 0.25)
    assert config.api_tokens == (
        ApiToken("ops", Secret("api-secret-value-1")), ApiToken("ci", Secret("ci-token-value")))
    assert [t.token.origin for t in config.api_tokens] == [
        "env:BATON_API_TOKEN", "file:secrets/ci-token"]

    prom = config.sources["prometheus"]
    assert prom.auth.type == "bearer"
    assert [t.reveal() for t in prom.auth.tokens] == ["prom-secret-value-1",
                                                      "prom-secret-value-2"]
    assert (prom.labels, prom.options) == ({"team": "ops"}, {"default_severity": "error"})
    scripts = config.sources["scripts"]
    assert (scripts.auth.type, scripts.auth.username, scripts.max_body_bytes) == (
        "basic", "cron", 4096)
    assert [p.reveal() for p in scripts.auth.passwords] == ["basic-pass"]  # CRLF dropped
    routing_key = config.sources["pd"].options["routing_key"]
    assert isinstance(routing_key, Secret) and routing_key.reveal() == "pd-routing-key-value"

    hook = config.connectors["hook"]
    assert hook.options["headers"]["X-Team"] == "ops"
    assert hook.options["headers"]["Authorization"].reveal() == "Bearer hook-secret-value"
    assert (hook.timeout, hook.max_attempts, hook.max_age, hook.concurrency,
            hook.backoff_initial, hook.backoff_max, hook.max_retry_after) == (
        5.0, 3, 7200.0, 2, 0.5, 60.0, 90.0)
    chat = config.connectors["chat"]
    assert chat.options["url"].reveal() == "https://chat.example.com/hook/T0KEN"
    assert (chat.timeout, chat.max_attempts, chat.backoff_max) == (10.0, 12, 300.0)

    db = config.routes[0]
    assert (db.name, db.policy, db.group_by, db.continue_) == ("db", "page", ("alertname",),
                                                              False)
    first, second = db.routes
    assert first.name == "routes[0].routes[0]"
    assert first.matchers == (Matcher("severity", "=", "critical"),
                              Matcher("env", "=~", "prod|staging"))
    assert (first.continue_, first.policy) == (True, None)
    assert (second.policy, second.mute_time_intervals) == ("quiet", ("weekends",))
    assert config.routes[1].name == "routes[1]"

    page = config.policies["page"]
    assert page.repeat == 2
    assert page.levels == (
        Level((Target("chat"), Target("hook", "schedule:primary", {"urgency": "high"})), 600.0),
        Level((Target("hook", "person:alice"),), 5400.0),
    )
    assert config.policies["quiet"].levels == (Level((Target("chat"),), None),)
    assert (config.dispatch.poll_interval, config.dispatch.lease, config.dispatch.batch_size) \
        == (2.0, 300.0, 10)
    assert (config.logging.level, config.logging.format) == ("debug", "console")
    assert config.people == {"alice": Person("alice", {"email": "alice@example.com"})}
    assert config.schedules["primary"].oncall(datetime(2026, 1, 1, tzinfo=UTC)) is None
    assert config.inhibit_rules == ()
    assert list(config.time_intervals) == ["weekends"]


def test_broken_config_reports_every_problem_with_its_path() -> None:
    problems = check_config(FIXTURES / "broken.yaml", environ={})
    expected = [
        "api.tokens[0].token: must be a secret reference, {env: NAME} or {file: PATH}; "
        "secrets cannot be written literally",
        "connectors.hook.timeout: invalid duration '10x': expected seconds or a duration "
        "like 30s, 10m, 1h30m, 2d or 250ms",
        "policies.never.levels: needs at least 1 item",
        "policies.page.levels[0].escalate_after: invalid duration '10 minutes': expected "
        "seconds or a duration like 30s, 10m, 1h30m, 2d or 250ms",
        'server.lisen: unknown key (did you mean "listen"?)',
        "sources.open: 'auth' is a required property",
        "storage.url: 'mysql://db/baton' does not match "
        "'^(sqlite://:memory:|sqlite:///.+|postgres(ql)?://.+)$'",
        "sources.prom.auth.token: environment variable PROM_TOKEN_UNSET is not set",
        f'sources.grafana.type: unknown source type "nagios-legacy" (known: {KNOWN_SOURCES})',
        f'connectors.pager.type: unknown connector type "foo" (known: {KNOWN_CONNECTORS})',
        "routes[1].matchers[0]: invalid matcher 'env=~\"(prod\"': invalid regular expression "
        "'(prod' for label 'env': missing ): (prod (RE2 syntax)",  # RE2's wording
        'routes[2].policy: unknown policy "pager"',
        'policies.page.levels[0].notify[1]: unknown connector "y"',
    ]
    assert problems == expected
    with pytest.raises(ConfigError) as info:
        load_config(FIXTURES / "broken.yaml", environ={})
    assert info.value.problems == expected
    assert "literal-api-token-value" not in str(info.value)


def test_valid_config_has_no_problems(tmp_path: Path) -> None:
    path = tmp_path / "baton.yaml"
    path.write_text(yaml.safe_dump(minimal()))
    assert check_config(path, environ={}) == []
    assert isinstance(load_config(path, environ={}), Config)


def test_unknown_connector_type(tmp_path: Path) -> None:
    data = minimal()
    data["connectors"]["pager"] = {"type": "foo", "routing_key": {"env": "PD_KEY"}}
    assert problems_of(data, tmp_path, {"PD_KEY": "x"}) == [
        f'connectors.pager.type: unknown connector type "foo" (known: {KNOWN_CONNECTORS})']


def test_registered_type_without_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    real = plugin.discover

    def discover(group: str) -> dict[str, Any]:
        found = dict(real(group))
        if group == plugin.CONNECTOR_GROUP:
            found["noschema"] = object()
        return found

    monkeypatch.setattr(plugin, "discover", discover)
    data = minimal()
    data["connectors"]["x"] = {"type": "noschema"}
    assert problems_of(data, tmp_path) == [
        'connectors.x.type: connector type "noschema" ships no schema '
        "connectors/noschema.schema.json in baton.schemas"]


def test_type_specific_keys_are_checked_after_common_keys_are_stripped(tmp_path: Path) -> None:
    data = minimal()
    data["connectors"]["hook"].update({"timeout": "3s", "backoff": {"max": "1m"}, "urll": "x"})
    data["sources"]["am"].update({"labels": {"team": "a"}, "max_body_bytes": 10,
                                  "default_severity": "loud"})
    assert problems_of(data, tmp_path) == [
        "sources.am.default_severity: 'loud' is not one of "
        "['critical', 'error', 'warning', 'info']",
        'connectors.hook.urll: unknown key (did you mean "url"?)',
    ]


def test_secrets_from_env_and_file(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "hook").write_text("file-secret\n\n")
    data = minimal(api={"tokens": [{"name": "ops", "token": {"env": "API"}}]})
    data["connectors"]["hook"]["secret"] = {"file": "keys/hook"}
    data["sources"]["am"]["auth"] = {"type": "bearer", "token": {"env": "AM"}}
    config = config_from_dict(data, tmp_path, {"API": "env-secret", "AM": "am-secret"})
    assert config.api_tokens[0].token.reveal() == "env-secret"
    secret = config.connectors["hook"].options["secret"]
    # Only one trailing newline is dropped: the rest is the file's content.
    assert (secret.reveal(), secret.origin) == ("file-secret\n", "file:keys/hook")
    assert config.sources["am"].auth.tokens == (Secret("am-secret"),)
    assert "am-secret" not in repr(config) and "file-secret" not in repr(config)


def test_secret_problems_name_the_source_never_the_value(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "binary").write_bytes(b"\xffsecret-bytes")
    data = minimal(api={"tokens": [{"name": "a", "token": {"env": "A"}},
                                   {"name": "b", "token": {"env": "EMPTY"}},
                                   {"name": "c", "token": {"file": "missing.txt"}},
                                   {"name": "d", "token": {"file": "empty"}},
                                   {"name": "e", "token": {"file": "binary"}}]})
    data["connectors"]["pager"] = {"type": "webhook", "url": "http://x/",
                                   "secret": {"env": "PD_KEY"}}
    environ = {"EMPTY": "", "A": "visible-only-when-set", "OTHER": "other-secret-value"}
    problems = problems_of(data, tmp_path, environ)
    assert problems == [
        "api.tokens[1].token: environment variable EMPTY is empty",
        'api.tokens[2].token: cannot read secret file "missing.txt": No such file or directory',
        'api.tokens[3].token: secret file "empty" is empty',
        'api.tokens[4].token: secret file "binary" is not UTF-8 text',
        "connectors.pager.secret: environment variable PD_KEY is not set",
    ]
    text = "\n".join(problems)
    for value in ("visible-only-when-set", "other-secret-value", "secret-bytes", "\\xff"):
        assert value not in text


@pytest.mark.parametrize(
    ("auth", "problem"),
    [
        ({"type": "bearer", "token": "literal-bearer-value"},
         "sources.am.auth.token: must be a secret reference, {env: NAME} or {file: PATH}; "
         "secrets cannot be written literally"),
        ({"type": "basic", "username": "u", "passwords": ["literal-basic-value"]},
         "sources.am.auth.passwords[0]: must be a secret reference, {env: NAME} or "
         "{file: PATH}; secrets cannot be written literally"),
        ({"type": "bearer", "token": {"env": "A", "file": "b"}},
         "sources.am.auth.token: {'env': 'A', 'file': 'b'} has too many properties"),
        ({"type": "bearer"}, 'sources.am.auth: needs exactly one of "token" or "tokens"'),
        ({"type": "bearer", "token": {"env": "A"}, "tokens": [{"env": "A"}]},
         'sources.am.auth: needs exactly one of "token" or "tokens"'),
        ({"type": "basic", "password": {"env": "A"}},
         "sources.am.auth: 'username' is a required property"),
        ({"type": "none", "token": {"env": "A"}}, "sources.am.auth.token: unknown key"),
        ({"type": "jwt"},
         "sources.am.auth.type: 'jwt' is not one of ['none', 'bearer', 'basic', 'hmac', "
         "'standard-webhooks']"),
        ({"type": "hmac"}, 'sources.am.auth: needs exactly one of "secret" or "secrets"'),
        ({"type": "hmac", "secret": {"env": "A"}, "encoding": "hex64"},
         "sources.am.auth.encoding: 'hex64' is not one of ['hex', 'base64']"),
        ({"type": "standard-webhooks", "secret": {"env": "SW"}, "tolerance": "soon"},
         "sources.am.auth.tolerance: invalid duration 'soon': expected seconds or a duration "
         "like 30s, 10m, 1h30m, 2d or 250ms"),
        ("none", "sources.am.auth: expected object, got string"),
    ],
)
def test_auth_problems(tmp_path: Path, auth: Any, problem: str) -> None:
    data = minimal()
    data["sources"]["am"]["auth"] = auth
    problems = problems_of(data, tmp_path, {"A": "a", "SW": "whsec_" + "A" * 32})
    assert problems == [problem]
    assert "literal-" not in problem


def test_literal_secret_in_a_plugin_schema_is_rejected_without_echo(tmp_path: Path) -> None:
    data = minimal()
    data["connectors"]["hook"]["secret"] = "whsec_literal-signing-key"
    data["connectors"]["hook"]["headers"] = {"Authorization": 12345}
    data["sources"]["pd"] = {"type": "pagerduty-events", "auth": {"type": "none"},
                             "routing_key": "literal-routing-key"}
    problems = problems_of(data, tmp_path)
    assert problems == [
        "sources.pd.routing_key: must be a secret reference, {env: NAME} or {file: PATH}; "
        "secrets cannot be written literally",
        "connectors.hook.headers.Authorization: matches none of the allowed forms (value not "
        "shown: it may be a secret); secrets are written {env: NAME} or {file: PATH}",
        "connectors.hook.secret: must be a secret reference, {env: NAME} or {file: PATH}; "
        "secrets cannot be written literally",
    ]
    assert not any("literal-" in p or "12345" in p for p in problems)


def test_auth_is_required_and_never_defaults_to_open(tmp_path: Path) -> None:
    data = minimal()
    del data["sources"]["am"]["auth"]
    assert problems_of(data, tmp_path) == ["sources.am: 'auth' is a required property"]


def test_yaml_syntax_error_is_one_problem_with_position(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("server:\n  listen: a: b\n")
    assert check_config(path) == [
        "line 2, column 12: invalid YAML: mapping values are not allowed here"]
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert len(info.value.problems) == 1


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("routes: []\npolicies: {}\nroutes: []\n")
    assert check_config(path) == ["line 3, column 1: invalid YAML: found duplicate key 'routes'"]


def test_unreadable_and_empty_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert check_config(missing) == [f"{missing}: cannot read config file: "
                                     "No such file or directory"]
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert check_config(empty) == ["(root): the config is empty"]
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n")
    assert check_config(listed) == ["(root): expected a mapping of sections, got array"]


def test_top_level_keys(tmp_path: Path) -> None:
    data = minimal(people={"a": {}}, teams={}, schedules={}, time_intervals=[],
                   inhibit_rules=[], silences=[], recievers=[])
    assert problems_of(data, tmp_path) == ["recievers: unknown key"]
    del data["recievers"]
    assert config_from_dict(data, tmp_path, {}).people == {"a": Person("a", {})}


@pytest.mark.parametrize(
    ("section", "value", "problem"),
    [
        ("server", {"shutdown_grace": "1h30"},
         "server.shutdown_grace: invalid duration '1h30': expected seconds or a duration like "
         "30s, 10m, 1h30m, 2d or 250ms"),
        ("server", {"shutdown_grace": -1},
         "server.shutdown_grace: invalid duration -1: must be a finite number >= 0"),
        ("server", {"shutdown_grace": True},
         "server.shutdown_grace: invalid duration True: expected seconds or a duration like "
         "30s, 10m, 1h30m, 2d or 250ms"),
        ("dispatch", {"lease": 0}, "dispatch.lease: must be greater than 0"),
        ("dispatch", {"poll_interval": "0s"}, "dispatch.poll_interval: must be greater than 0"),
        ("storage", {"busy_timeout": "5 s"},
         "storage.busy_timeout: invalid duration '5 s': expected seconds or a duration like "
         "30s, 10m, 1h30m, 2d or 250ms"),
        ("server", {"listen": "127.0.0.1:70000"},
         "server.listen: port 70000 is out of range (0-65535)"),
    ],
)
def test_section_problems(tmp_path: Path, section: str, value: Any, problem: str) -> None:
    assert problems_of(minimal(**{section: value}), tmp_path) == [problem]


def test_durations_in_connectors_and_policies(tmp_path: Path) -> None:
    data = minimal()
    data["connectors"]["hook"].update(
        {"timeout": "2m", "max_age": 3600, "backoff": {"initial": "10m"},
         "max_retry_after": "1d"})
    data["policies"]["p"]["levels"] = [{"notify": ["hook"], "escalate_after": "bad"},
                                       {"notify": ["hook"], "escalate_after": "0s"}]
    assert problems_of(data, tmp_path) == [
        "policies.p.levels[0].escalate_after: invalid duration 'bad': expected seconds or a "
        "duration like 30s, 10m, 1h30m, 2d or 250ms",
        "connectors.hook.backoff: initial (10m) is larger than max (5m)",
        "policies.p.levels[1].escalate_after: must be greater than 0",
    ]
    data["connectors"]["hook"]["backoff"]["max"] = "1h"
    data["policies"]["p"]["levels"] = [{"notify": ["hook"], "escalate_after": "1h30m"}]
    config = config_from_dict(data, tmp_path, {})
    hook = config.connectors["hook"]
    assert (hook.timeout, hook.max_age, hook.backoff_initial, hook.backoff_max,
            hook.max_retry_after) == (120.0, 3600.0, 600.0, 3600.0, 86400.0)
    assert config.policies["p"].levels[0].escalate_after == 5400.0


def test_cross_references(tmp_path: Path) -> None:
    data = minimal(people={"alice": {}}, time_intervals=[{"name": "nights"}])
    data["routes"] = [
        {"name": "a", "policy": "p", "mute_time_intervals": ["nights", "weekends"],
         "routes": [{"name": "a", "policy": "missing", "group_by": ["...", "x"]}]},
        {"matchers": ["severity"], "policy": "p"},
    ]
    data["policies"]["p"]["levels"] = [{"notify": [
        "hook", {"connector": "nope"}, {"connector": "hook", "to": "person:bob"},
        {"connector": "hook", "to": "schedule:primary"},
        {"connector": "hook", "to": "person:alice"}, {"connector": "hook", "to": "chan:#ops"}]}]
    data["policies"]["empty"] = {"levels": []}
    data["api"] = {"tokens": [{"name": "x", "token": {"env": "T1"}},
                              {"name": "x", "token": {"env": "T2"}},
                              {"name": "y", "token": {"env": "T1"}}]}
    assert problems_of(data, tmp_path, {"T1": "one", "T2": "two"}) == [
        "policies.empty.levels: needs at least 1 item",
        'api.tokens[1].name: duplicate token name "x" (also api.tokens[0])',
        "api.tokens[2].token: same token as api.tokens[0]: each holder needs its own",
        'routes[0].mute_time_intervals[1]: unknown time interval "weekends"',
        'routes[0].routes[0].name: duplicate route name "a" (also routes[0])',
        'routes[0].routes[0].policy: unknown policy "missing"',
        'routes[0].routes[0].group_by: "..." (all labels) cannot be combined with names',
        "routes[1].matchers[0]: invalid matcher 'severity': expected an operator "
        "(=, !=, =~, !~) after 'severity'",
        'policies.p.levels[0].notify[1].connector: unknown connector "nope"',
        'policies.p.levels[0].notify[2].to: unknown person "bob"',
        'policies.p.levels[0].notify[3].to: unknown schedule "primary"',
    ]


def test_malformed_section_does_not_cascade(tmp_path: Path) -> None:
    data = minimal(policies=["not", "a", "mapping"])
    assert problems_of(data, tmp_path) == ["policies: expected object, got array"]


def test_matchers_entries_may_hold_several(tmp_path: Path) -> None:
    data = minimal(routes=[{"matchers": ['{a="1", b=~"2|3"}', "c!=4"], "policy": "p"}])
    assert config_from_dict(data, tmp_path, {}).routes[0].matchers == (
        Matcher("a", "=", "1"), Matcher("b", "=~", "2|3"), Matcher("c", "!=", "4"))


def test_secret_files_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "token").write_text("tok\n")
    data = minimal(api={"tokens": [{"name": "ops", "token": {"file": "token"}}]})
    path = tmp_path / "conf" / "baton.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    assert load_config(path).api_tokens[0].token.reveal() == "tok"


def test_resolve_config_path() -> None:
    assert resolve_config_path("a.yaml", {"BATON_CONFIG": "b.yaml"}) == Path("a.yaml")
    assert resolve_config_path(None, {"BATON_CONFIG": "b.yaml"}) == Path("b.yaml")
    assert resolve_config_path(None, {"BATON_CONFIG": ""}) is None
    assert resolve_config_path(None, {}) is None


def test_self_referencing_yaml_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("routes: &r [{routes: *r}]\n")
    assert check_config(path) == ["(root): the config refers to itself through a YAML alias"]


def test_api_token_problems_point_at_the_right_entries(tmp_path: Path) -> None:
    data = minimal(api={"tokens": [{"name": "a", "token": {"env": "UNSET"}},
                                   {"name": "b", "token": {"env": "T"}},
                                   {"name": "c", "token": {"env": "T"}}]})
    assert problems_of(data, tmp_path, {"T": "t"}) == [
        "api.tokens[0].token: environment variable UNSET is not set",
        "api.tokens[2].token: same token as api.tokens[1]: each holder needs its own",
    ]
