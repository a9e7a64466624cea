"""Per-source settings applied to every adapter's alerts: defaults, labels, severity_map,
and what no-data and test signals become (ignore, info, firing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import build, config_dict

from baton.ingest import Planner
from baton.model import Alert


def planner(tmp_path: Path, **source: Any) -> Planner:
    data = config_dict(tmp_path)
    data["sources"]["app"].update(source)
    return Planner(build(data, tmp_path))


def alert(**kw: Any) -> Alert:
    base: dict[str, Any] = {"dedup_key": "k", "status": "firing", "severity": "warning",
                            "summary": "s", "source_type": "x", "source_name": "app"}
    return Alert(**{**base, **kw})


def test_defaults_fill_only_what_the_alert_leaves_empty(tmp_path: Path) -> None:
    p = planner(tmp_path, defaults={"service": "payments", "environment": "prod"},
                labels={"team": "ops", "env": "x"})
    (a, b) = p.label("app", [alert(), alert(service="db", labels={"env": "staging"})])
    assert (a.service, a.environment, a.labels) == ("payments", "prod",
                                                    {"team": "ops", "env": "x"})
    assert (b.service, b.environment, b.labels) == ("db", "prod",
                                                    {"team": "ops", "env": "staging"})


def test_severity_map_reads_the_senders_own_value(tmp_path: Path) -> None:
    p = planner(tmp_path, severity_map={"P1": "critical", "P4": "info"})
    out = p.label("app", [alert(labels={"priority": "P1"}), alert(labels={"priority": "P3"}),
                          alert(labels={"priority": "P4"}), alert()], "priority")
    assert [a.severity for a in out] == ["critical", "warning", "info", "warning"]
    # Without the adapter naming its severity label, nothing is overridden.
    assert p.label("app", [alert(labels={"priority": "P1"})])[0].severity == "warning"


@pytest.mark.parametrize(("setting", "expected"), [
    ("ignore", []), ("info", [("info", "firing")]), ("firing", [("critical", "firing")])])
@pytest.mark.parametrize("condition", ["no_data", "test"])
def test_no_data_and_test_signals_follow_the_setting(tmp_path: Path, condition: str,
                                                     setting: str, expected: list[Any]) -> None:
    p = planner(tmp_path, **{condition: setting})
    out = p.label("app", [alert(severity="critical", condition=condition)])
    assert [(a.severity, a.status) for a in out] == expected


def test_by_default_no_data_and_test_arrive_as_info(tmp_path: Path) -> None:
    p = planner(tmp_path)
    out = p.label("app", [alert(severity="critical", condition="no_data"),
                          alert(severity="critical", condition="test"),
                          alert(severity="critical")])
    assert [a.severity for a in out] == ["info", "info", "critical"]


def test_bad_settings_are_config_errors_naming_the_path(tmp_path: Path) -> None:
    from baton.config import config_from_dict
    from baton.errors import ConfigError
    data = config_dict(tmp_path)
    data["sources"]["app"].update(no_data="page", severity_map={"P1": "urgent"},
                                  defaults={"team": "x"})
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, tmp_path, {})
    text = "\n".join(info.value.problems)
    for path in ("sources.app.no_data", "sources.app.severity_map.P1", "sources.app.defaults"):
        assert path in text, text


@pytest.mark.parametrize(("listen", "warned"), [
    ("127.0.0.1:8080", False), ("[::1]:8080", False), ("localhost:8080", False),
    ("0.0.0.0:8080", True), ("10.1.2.3:8080", True), ("[::]:8080", True)])
def test_check_config_warns_about_open_sources_reachable_off_loopback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], listen: str,
        warned: bool) -> None:
    import yaml

    from baton import cli
    data = config_dict(tmp_path)
    data["server"]["listen"] = listen
    data["sources"]["signed"] = {"type": "generic", "auth": {
        "type": "hmac", "secret": {"env": "HOME"}, "header": "X-Sig"}}
    path = tmp_path / "baton.yaml"
    path.write_text(yaml.safe_dump(data), "utf-8")
    assert cli.main(["check-config", str(path)]) == 0  # a warning, not an error
    err = capsys.readouterr().err
    assert ("sources.app.auth: type none while listening on" in err) is warned
    assert "sources.signed" not in err


def test_check_config_builds_the_plugins(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A problem only the plugin can see (a JMESPath expression, a PagerDuty key's length)
    fails check-config with its path, as it would fail serve at start."""
    import yaml

    from baton import cli
    data = config_dict(tmp_path)
    data["sources"]["mapped"] = {"type": "generic-mapped", "auth": {"type": "none"},
                                 "dedup_key": "id[", "summary": "title"}
    data["connectors"]["pager"] = {"type": "pagerduty", "routing_key": {"env": "SHORT"}}
    path = tmp_path / "baton.yaml"
    path.write_text(yaml.safe_dump(data), "utf-8")
    monkeypatch.setenv("SHORT", "too-short")
    assert cli.main(["check-config", str(path)]) == 1
    out = capsys.readouterr().out
    assert "sources.mapped.dedup_key" in out
    assert "connectors.pager.routing_key: must be 32 characters" in out
    assert "too-short" not in out
