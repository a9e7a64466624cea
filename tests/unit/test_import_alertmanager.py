"""``baton.importers.alertmanager``: each part of an Alertmanager config, and what it
becomes (or why it does not)."""

from __future__ import annotations

import argparse
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from baton import _cli_import
from baton.config import load_config
from baton.importers import Result
from baton.importers.alertmanager import ALWAYS, am_duration, convert
from baton.routing import Router

RECEIVERS: list[dict[str, Any]] = [
    {"name": "ops", "opsgenie_configs": [{
        "api_key": "og-secret-1", "api_url": "https://api.eu.opsgenie.com/",
        "responders": [{"name": "sre", "type": "team"}], "tags": "prod,db",
        "message": "{{ .CommonLabels.alertname }}", "priority": "P1"}]},
    {"name": "teams old", "msteams_configs": [{
        "webhook_url": "https://x.webhook.office.com/webhookb2/secret-teams-1"}]},
    {"name": "teams-new", "msteamsv2_configs": [{"webhook_url_file": "teams.url"}]},
    {"name": "hook", "webhook_configs": [
        {"url": "http://relay.internal:8080/alerts", "max_alerts": 5},
        {"url": "https://hooks.example.com/T0/abcdef0123456789abcdef",
         "http_config": {"authorization": {"credentials": "hook-cred-2"},
                         "tls_config": {"insecure_skip_verify": True}}}]},
    {"name": "pd", "pagerduty_configs": [{"routing_key": "pd-secret-3",
                                          "severity": "{{ .CommonLabels.severity }}"}]},
    {"name": "chat", "slack_configs": [{"channel": "#ops", "title": "x"}]},
    {"name": "mail", "email_configs": [{
        "to": "A <a@example.com>, b@example.com", "smarthost": "smtp.example.com:465",
        "from": "am@example.com", "auth_username": "am", "auth_password": "mail-secret-4",
        "html": "<b>x</b>"}]},
    {"name": "bridge", "pushover_configs": [{"user_key": "po-secret-5", "token": "t"}],
     "telegram_configs": [{"bot_token": "tg-secret-6", "chat_id": 1}]},
    {"name": "null"},
]

AM: dict[str, Any] = {
    "global": {"slack_api_url": "https://hooks.slack.com/services/T/B/slack-secret-7",
               "resolve_timeout": "5m", "smtp_require_tls": True},
    "templates": ["x.tmpl"],
    "route": {
        "receiver": "ops", "group_by": ["alertname"], "repeat_interval": "2h",
        "routes": [
            {"match": {"team": "db"}, "match_re": {"env": "prod|staging"}, "receiver": "pd",
             "continue": True, "group_wait": "10s", "mute_time_intervals": ["nights"]},
            {"matchers": ['severity=~"critical|warning"', "service != web"],
             "receiver": "mail", "group_by": ["..."], "repeat_interval": "1h",
             "routes": [{"matchers": ["owner=~\"a.*\""], "receiver": "hook",
                         "active_time_intervals": ["office"], "group_interval": "1m"}]},
            {"matchers": ["alertname=Watchdog"], "receiver": "null"},
            {"matchers": ["kind=chat"], "receiver": "chat", "group_by": []},
            {"matchers": ["kind=teams"], "receiver": "teams old",
             "routes": [{"matchers": ["new=yes"], "receiver": "teams-new"}]},
            {"matchers": ["kind=bridge"], "receiver": "bridge"},
        ],
    },
    "receivers": RECEIVERS,
    "time_intervals": [{"name": "office", "time_intervals": [
        {"weekdays": ["monday:friday"], "times": [{"start_time": "09:00",
                                                   "end_time": "17:00"}],
         "location": "Europe/Berlin"}]}],
    "mute_time_intervals": [{"name": "nights", "time_intervals": [
        {"times": [{"start_time": "00:00", "end_time": "06:00"}]}]}],
    "inhibit_rules": [
        {"source_match": {"severity": "critical"}, "target_match_re": {"severity": "warn.*"},
         "equal": ["instance"]},
        {"source_matchers": ['alertname="NodeDown"'], "target_matchers": ["job=node"]},
    ],
}
SECRETS = ["og-secret-1", "secret-teams-1", "abcdef0123456789abcdef", "hook-cred-2",
           "pd-secret-3", "mail-secret-4", "po-secret-5", "tg-secret-6", "slack-secret-7"]


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Result:
    base = tmp_path_factory.mktemp("am")
    (base / "teams.url").write_text("https://example.invalid/workflow\n")
    return convert(AM, base=base)


def unmapped(result: Result) -> dict[str, str]:
    return {f.path: f.message for f in result.report.unmapped}


def mapped(result: Result) -> dict[str, str]:
    return {f.path: f.message for f in result.report.mapped}


def dummies(result: Result) -> dict[str, str]:
    return {name: ("https://example.invalid/x" if name.endswith("URL") else
                   "0" * 32 if name.endswith("ROUTING_KEY") else "dummy")
            for name in result.report.env}


def test_output_loads_as_a_baton_config(result: Result, tmp_path: Path) -> None:
    path = tmp_path / "baton.yaml"
    path.write_text(yaml.safe_dump(result.config))
    config = load_config(path, environ=dummies(result))
    assert set(config.policies) == {"ops", "teams-old", "teams-new", "hook", "pd", "chat",
                                    "mail"}


def test_no_secret_is_written(result: Result) -> None:
    text = yaml.safe_dump(result.config) + "\n".join(result.report.lines())
    for secret in SECRETS:
        assert secret not in text


def test_root_becomes_a_catch_all_route_named_by_path(result: Result) -> None:
    root = result.config["routes"]
    assert len(root) == 1 and "matchers" not in root[0]
    assert root[0]["name"] == "route" and root[0]["policy"] == "ops"
    names = [r["name"] for r in root[0]["routes"]]
    assert names == [f"route.routes[{i}]" for i in range(6)]
    assert root[0]["routes"][1]["routes"][0]["name"] == "route.routes[1].routes[0]"


def test_matchers_old_and_new_forms(result: Result) -> None:
    routes = result.config["routes"][0]["routes"]
    assert routes[0]["matchers"] == ['team="db"', 'env=~"prod|staging"']
    assert routes[1]["matchers"] == ['severity=~"critical|warning"', 'service!="web"']
    assert routes[2]["matchers"] == ['alertname="Watchdog"']


def test_continue_group_by_and_intervals(result: Result) -> None:
    routes = result.config["routes"][0]["routes"]
    assert routes[0]["continue"] is True and routes[0]["policy"] == "pd"
    assert routes[0]["mute_time_intervals"] == ["nights"]
    assert routes[1]["group_by"] == ["..."]
    assert routes[1]["routes"][0]["active_time_intervals"] == ["office"]
    assert routes[3]["group_by"] == ["..."]  # explicit [] does not inherit
    assert "route.routes[3].group_by" in mapped(result)
    assert result.config["routes"][0]["group_by"] == ["alertname"]
    assert [t["name"] for t in result.config["time_intervals"]] == ["office", "nights",
                                                                     ALWAYS]


def test_timing_that_baton_lacks_is_reported(result: Result) -> None:
    skipped = unmapped(result)
    assert "route.routes[0].group_wait" in skipped
    assert "route.routes[1].routes[0].group_interval" in skipped
    assert "templates" in skipped and "global.resolve_timeout" in skipped


def test_repeat_interval_becomes_reminders(result: Result) -> None:
    policies = result.config["policies"]
    assert policies["ops"]["levels"][0]["remind_every"] == "2h"
    assert policies["mail"]["levels"][0]["remind_every"] == "1h"
    assert policies["hook"]["levels"][0]["remind_every"] == "1h"  # inherited


def test_blackhole_receivers_mute_their_routes(result: Result) -> None:
    routes = result.config["routes"][0]["routes"]
    assert routes[2]["mute_time_intervals"] == [ALWAYS] and "policy" not in routes[2]
    assert routes[5]["mute_time_intervals"] == [ALWAYS]  # only unmapped integrations
    assert {"null", "bridge"}.isdisjoint(result.config["policies"])


def test_unmapped_integrations_are_listed_with_their_path(result: Result) -> None:
    skipped = unmapped(result)
    assert "pushover" in skipped["receivers[7].pushover_configs"]
    assert "telegram" in skipped["receivers[7].telegram_configs"]
    assert "receivers[0].opsgenie_configs[0].message" in skipped
    assert "receivers[4].pagerduty_configs[0].severity" in skipped
    assert "receivers[3].webhook_configs[0].max_alerts" in skipped
    assert "receivers[3].webhook_configs[1].http_config.tls_config" in skipped
    assert "receivers[5].slack_configs[0].channel" in skipped


def test_connectors(result: Result) -> None:
    c = result.config["connectors"]
    assert c["ops-opsgenie"] == {
        "type": "opsgenie", "api_key": {"env": "BATON_OPS_OPSGENIE_API_KEY"}, "region": "eu",
        "responders": [{"name": "sre", "type": "team"}], "tags": ["prod", "db"]}
    assert c["teams-old-teams"]["webhook_url"] == {"env": "BATON_TEAMS_OLD_TEAMS_WEBHOOK_URL"}
    assert c["teams-new-teams"]["webhook_url"]["file"].endswith("/teams.url")
    assert c["hook-webhook-1"]["url"] == "http://relay.internal:8080/alerts"
    assert c["hook-webhook-2"]["url"] == {"env": "BATON_HOOK_WEBHOOK_2_URL"}
    assert c["hook-webhook-2"]["headers"] == {
        "Authorization": {"env": "BATON_HOOK_WEBHOOK_2_AUTHORIZATION"}}
    assert c["pd-pagerduty"]["routing_key"] == {"env": "BATON_PD_PAGERDUTY_ROUTING_KEY"}
    assert c["chat-slack"] == {"type": "slack", "webhook_url": {"env": "BATON_SLACK_API_URL"}}
    assert c["mail-email"] == {
        "type": "email", "host": "smtp.example.com", "port": 465, "security": "tls",
        "from": "am@example.com", "to": ["a@example.com", "b@example.com"], "username": "am",
        "password": {"env": "BATON_MAIL_EMAIL_PASSWORD"}}
    assert result.config["policies"]["hook"]["levels"][0]["notify"] == [
        "hook-webhook-1", "hook-webhook-2"]


def test_source_for_alertmanager_with_a_bearer_token(result: Result) -> None:
    src = result.config["sources"]["alertmanager"]
    assert src["auth"] == {"type": "bearer", "token": {"env": "BATON_ALERTMANAGER_TOKEN"}}
    assert "BATON_ALERTMANAGER_TOKEN" in result.report.env
    assert "/v1/ingest/alertmanager" in mapped(result)["sources.alertmanager"]
    # Severity matchers name critical and warning: unlabelled alerts get a free level.
    assert src["default_severity"] == "error"


def test_inhibit_rules_old_and_new(result: Result) -> None:
    assert result.config["inhibit_rules"] == [
        {"source_matchers": ['severity="critical"'], "target_matchers": ['severity=~"warning"'],
         "equal": ["instance"]},
        {"source_matchers": ['alertname="NodeDown"'], "target_matchers": ['job="node"']},
    ]


def test_severity_words_become_levels() -> None:
    am = {"route": {"receiver": "r", "routes": [
        {"matchers": ['severity="page"'], "receiver": "r"},
        {"matchers": ['severity=~"high|page"'], "receiver": "r"},
        {"matchers": ['severity="sev1"'], "receiver": "r"}]},
        "receivers": [{"name": "r", "webhook_configs": [{"url": "http://x.internal/"}]}]}
    res = convert(am)
    kids = res.config["routes"][0]["routes"]
    assert kids[0]["matchers"] == ['severity="critical"']
    assert kids[1]["matchers"] == ['severity=~"critical|error"']
    assert "approximate" in mapped(res)['route.routes[1]: severity=~"high|page"']
    assert kids[2]["matchers"] == ['severity="sev1"']
    assert 'route.routes[2]: severity="sev1"' in unmapped(res)


def test_routing_follows_alertmanager(result: Result, tmp_path: Path) -> None:
    path = tmp_path / "baton.yaml"
    path.write_text(yaml.safe_dump(result.config))
    router = Router(load_config(path, environ=dummies(result)).routes)

    def ends(labels: dict[str, str]) -> list[tuple[str, str | None]]:
        return [(m.name, m.policy) for m in router.match({"severity": "error", **labels})]

    assert ends({}) == [("route", "ops")]
    assert ends({"team": "db", "env": "prod"}) == [("route.routes[0]", "pd")]
    assert ends({"team": "db", "env": "prod", "kind": "chat"}) == [
        ("route.routes[0]", "pd"), ("route.routes[3]", "chat")]
    assert ends({"severity": "critical", "owner": "al"}) == [
        ("route.routes[1].routes[0]", "hook")]
    assert ends({"kind": "teams", "new": "yes"}) == [("route.routes[4].routes[0]",
                                                      "teams-new")]


def test_a_bad_matcher_drops_its_route_and_says_so() -> None:
    am = {"route": {"receiver": "r", "routes": [
        {"matchers": ['a=~"(x"'], "receiver": "r", "routes": [{"receiver": "r"}]}]},
        "receivers": [{"name": "r", "webhook_configs": [{"url": "http://x.internal/"}]}]}
    res = convert(am)
    assert "routes" not in res.config["routes"][0] or not res.config["routes"][0]["routes"]
    assert "route.routes[0]" in unmapped(res)


def test_receiver_names_that_are_not_baton_names() -> None:
    am = {"route": {"receiver": "Team A / pager"},
          "receivers": [{"name": "Team A / pager",
                         "webhook_configs": [{"url": "http://x.internal/"}]}]}
    res = convert(am)
    assert res.config["routes"][0]["policy"] == "Team-A-pager"
    assert res.config["policies"]["Team-A-pager"]["description"] == (
        "Alertmanager receiver 'Team A / pager'")
    assert "receivers[0]" in mapped(res)


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("1h30m", 5400), ("1w", 604800), ("0", 0), ("250ms", 0.25), ("x", None)])
def test_am_duration(text: str, seconds: float | None) -> None:
    assert am_duration(text) == seconds


def test_cli_leaves_out_kinds_whose_module_is_missing(monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    monkeypatch.setattr(_cli_import, "KINDS", ("alertmanager", "nosuchkind"))
    p = argparse.ArgumentParser()
    _cli_import.add_parser(p.add_subparsers())
    args = p.parse_args(["import", "alertmanager", "am.yml", "--dry-run"])
    assert args.kind == "alertmanager" and args.file == "am.yml"
    with pytest.raises(SystemExit):
        p.parse_args(["import", "nosuchkind"])


def test_cli_still_fails_on_a_broken_importer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A module that is there but imports something missing is not skipped."""

    def fail(name: str) -> types.ModuleType:
        raise ModuleNotFoundError("No module named 'yaml_extra'", name="yaml_extra")

    monkeypatch.setattr(_cli_import, "KINDS", ("brokenkind",))
    monkeypatch.setattr(_cli_import, "_module", fail)
    with pytest.raises(ModuleNotFoundError):
        _cli_import.add_parser(argparse.ArgumentParser().add_subparsers())


def test_header_credentials_from_a_file_are_reported_not_guessed() -> None:
    am = {"route": {"receiver": "r"}, "receivers": [{"name": "r", "webhook_configs": [{
        "url": "http://x.internal/", "http_config": {
            "authorization": {"credentials_file": "/etc/am/token"}}}]}]}
    res = convert(am)
    assert "headers" not in res.config["connectors"]["r-webhook"]
    assert "receivers[0].webhook_configs[0].http_config.authorization" in unmapped(res)
    assert not res.report.env.keys() - {"BATON_ALERTMANAGER_TOKEN"}
