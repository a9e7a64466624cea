"""``baton import alertmanager`` on real Alertmanager configs, checked against amtool.

For every fixture in tests/fixtures/import/alertmanager/: amtool accepts it; the command
writes a config that ``baton check-config`` accepts (its variables set to dummies); no
secret of the input is in it; and for each sample label set Baton's router, run through
``simulate`` as the gateway would, ends at the same receivers, in the same order, as
``amtool config routes test`` says Alertmanager does.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from baton.config import load_config
from baton.importers.alertmanager import ALWAYS
from baton.matcher import parse_matchers
from baton.simulate import simulate

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "import" / "alertmanager"
AMTOOL = os.environ.get("AMTOOL_BIN", "/usr/bin/amtool")
LEVELS = ("critical", "error", "warning", "info")
AT = 1_796_644_800.0  # 2026-12-07T12:00:00Z, a Monday: inside the fixtures' working hours

# Label sets per fixture, chosen to reach every route (and to fall through some), with
# severities spelled as Baton's levels: other words are mapped, and the report says so.
SAMPLES: dict[str, list[dict[str, str]]] = {
    "simple.yml": [
        {"alertname": "A", "service": "foo1"},
        {"alertname": "A", "service": "foo2", "severity": "critical"},
        {"alertname": "A", "service": "baz", "severity": "warning"},
        {"alertname": "A", "service": "foo12", "severity": "critical"},
        {"alertname": "A", "service": "files"},
        {"alertname": "A", "service": "files", "severity": "critical"},
        {"alertname": "A", "service": "database"},
        {"alertname": "A", "service": "database", "owner": "team-X"},
        {"alertname": "A", "service": "database", "owner": "team-Y", "severity": "critical"},
        {"alertname": "A", "service": "database", "owner": "team-Z"},
        {"alertname": "A", "service": "other", "severity": "critical"},
        {"alertname": "A"},
    ],
    "working-hours.yml": [
        {"alertname": "A", "severity": "info"},
        {"alertname": "A", "severity": "warning"},
        {"alertname": "A", "severity": "critical"},
        {"alertname": "A", "severity": "error"},
        {"alertname": "A", "service": "x", "job": "x"},
    ],
    "null-receiver.yml": [
        {"alertname": "Watchdog"},
        {"alertname": "InfoInhibitor", "severity": "info"},
        {"alertname": "DiskFull", "severity": "critical", "service": "db"},
        {"alertname": "Watchdogs"},
    ],
    "push-monitor.yml": [
        {"alertname": "PushMonitor"},
        {"alertname": "PushMonitor", "severity": "critical"},
        {"alertname": "Other"},
    ],
    "slack-sms.yml": [
        {"alertname": "A", "severity": "error"},
        {"alertname": "A", "severity": "warning"},
        {"alertname": "A", "severity": "critical"},
        {"alertname": "A", "severity": "info"},
        {"alertname": "A"},
    ],
}

# Literal secrets in the fixtures: none may appear in the written config.
SECRETS: dict[str, list[str]] = {
    "simple.yml": ["<team-X-key>", "<team-Y-key>", "<team-DB-key>"],
    "working-hours.yml": ["smtp-secret-7f3a9c", "123456:tg-bot-token-5d1e"],
    "null-receiver.yml": ["slackhooksecret9b2", "hooks.slack.com"],
    "push-monitor.yml": ["pd-routing-key-0c4e8a17b2d9", "pushtoken4f9d2a"],
    "slack-sms.yml": ["xxxxxxxxxxxxxxxxxxxxxxxxxxx", "hooks.slack.com"],
}
# Values whose text is too common to search for (a key name could hold it): no value of
# the written config may equal them.
SECRET_VALUES = {"simple.yml": ["password"]}


def amtool() -> str:
    """amtool (Debian's prometheus-alertmanager ships it); absent fails, never skips."""
    if not (os.path.isfile(AMTOOL) and os.access(AMTOOL, os.X_OK)):
        pytest.fail(f"amtool is not installed at {AMTOOL}: run scripts/install-test-deps.sh "
                    "(Debian package prometheus-alertmanager) or point $AMTOOL_BIN at it",
                    pytrace=False)
    return AMTOOL


def fixtures() -> list[str]:
    return sorted(p.name for p in FIXTURES.glob("*.yml"))


def baton(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "baton", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def dummy(name: str) -> str:
    """A value of the shape Baton checks for each kind of variable."""
    if name.endswith(("_URL", "_WEBHOOK_URL")):
        return "https://hooks.example.invalid/dummy"
    if name.endswith("_ROUTING_KEY"):
        return "0" * 32
    return "dummy-value"


def imported(tmp_path: Path, name: str) -> tuple[Path, dict[str, str], str]:
    out = tmp_path / "baton.yaml"
    done = baton("import", "alertmanager", str(FIXTURES / name), "--output", str(out))
    assert done.returncode == 0, done.stderr
    env = {line.split()[1].lstrip("$").rstrip(":"): "" for line in done.stderr.splitlines()
           if line.startswith("set ")}
    return out, {k: dummy(k) for k in env}, done.stderr


def amtool_receivers(path: Path, labels: dict[str, str]) -> list[str]:
    done = subprocess.run([amtool(), "config", "routes", "test", f"--config.file={path}",
                           *(f"{k}={v}" for k, v in labels.items())],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split(",")


def receiver_by_path(am: dict[str, Any]) -> dict[str, str]:
    """Each Alertmanager route's path (as the importer names routes) -> its receiver,
    inherited as Alertmanager inherits it."""
    out: dict[str, str] = {}

    def walk(node: dict[str, Any], path: str, receiver: str) -> None:
        receiver = node.get("receiver") or receiver
        out[path] = receiver
        for i, child in enumerate(node.get("routes") or []):
            walk(child, f"{path}.routes[{i}]", receiver)

    walk(am["route"], "route", "")
    return out


def baton_receivers(config_path: Path, env: dict[str, str], labels: dict[str, str],
                    by_path: dict[str, str]) -> list[str]:
    config = load_config(config_path, environ=env)
    # Each policy's description names its receiver: "Alertmanager receiver 'team-X'".
    written = yaml.safe_load(config_path.read_text())["policies"]
    policies = {name: ast.literal_eval(p["description"].split("receiver ", 1)[1])
                for name, p in written.items()}
    payload = {"version": "4", "status": "firing", "receiver": "baton",
               "alerts": [{"status": "firing", "labels": labels, "annotations": {},
                           "startsAt": "2026-12-07T11:59:00Z"}]}
    report = simulate(config, "alertmanager", payload, AT)
    always_muted: set[str] = set()

    def walk(routes: list[dict[str, Any]]) -> None:
        for r in routes:
            if ALWAYS in r.get("mute_time_intervals", []):
                always_muted.add(r["name"])
            walk(r.get("routes", []))

    walk(yaml.safe_load(config_path.read_text())["routes"])
    out = []
    for inc in report["alerts"][0]["incidents"]:
        if inc["route"] in always_muted:  # a receiver without integrations: no policy
            assert inc["suppressed"], inc
            out.append(by_path[inc["route"]])
        else:
            assert not inc["suppressed"], inc  # AT is inside every active interval
            out.append(policies[inc["policy"]])
    return out


@pytest.mark.parametrize("name", fixtures())
def test_fixture_is_valid_for_amtool(name: str) -> None:
    done = subprocess.run([amtool(), "check-config", str(FIXTURES / name)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_fixture_has_samples_and_secrets_listed() -> None:
    assert set(fixtures()) == set(SAMPLES) == set(SECRETS)


@pytest.mark.parametrize("name", fixtures())
def test_import_passes_check_config(tmp_path: Path, name: str) -> None:
    out, env, _ = imported(tmp_path, name)
    done = baton("check-config", str(out), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    missing = baton("check-config", str(out))  # without the variables it names them
    assert missing.returncode == 1 and all(k in missing.stdout for k in env)


@pytest.mark.parametrize("name", fixtures())
def test_no_secret_reaches_the_output(tmp_path: Path, name: str) -> None:
    out, _, report = imported(tmp_path, name)
    text = out.read_text()
    for secret in SECRETS[name]:
        assert secret not in text
        assert secret not in report

    def values(node: Any) -> list[Any]:
        if isinstance(node, dict):
            return [v for x in node.values() for v in values(x)]
        if isinstance(node, list):
            return [v for x in node for v in values(x)]
        return [node]

    assert not set(SECRET_VALUES.get(name, [])) & set(values(yaml.safe_load(text)))


def derived_samples(am: dict[str, Any]) -> list[dict[str, str]]:
    """Label sets built from the config's own matchers: every (label, value) a route
    tests, alone and in pairs, so every route and its fall-throughs are reached."""
    pairs: set[tuple[str, str]] = set()

    def literal_alternatives(regex: str) -> list[str]:
        body = regex.strip("^$").removeprefix("(").removesuffix(")")
        parts = body.split("|")
        return parts if all(re.fullmatch(r"[\w.-]+", p) for p in parts) else []

    def walk(node: dict[str, Any]) -> None:
        for k, v in (node.get("match") or {}).items():
            pairs.add((k, str(v)))
        for k, v in (node.get("match_re") or {}).items():
            pairs.update((k, alt) for alt in literal_alternatives(str(v)))
        for text in node.get("matchers") or []:
            for m in parse_matchers(text):
                values = literal_alternatives(m.value) if "~" in m.op else [m.value]
                pairs.update((m.name, v) for v in values)
        for child in node.get("routes") or []:
            walk(child)

    walk(am["route"])
    singles = sorted(pairs)
    out = [{"alertname": "A"}] + [{"alertname": "A", k: v} for k, v in singles]
    out += [{"alertname": "A", k1: v1, k2: v2}
            for (k1, v1), (k2, v2) in itertools.combinations(singles, 2) if k1 != k2]
    # A severity spelled as one of Baton's levels, so the comparison is exact (other
    # words are mapped to levels, and the report says so).
    return [s for s in out if s.get("severity", "critical") in LEVELS
            and not ("service" not in s and "job" in s)]


@pytest.mark.parametrize("name", fixtures())
def test_derived_label_sets_route_like_amtool(tmp_path: Path, name: str) -> None:
    out, env, _ = imported(tmp_path, name)
    am = yaml.safe_load((FIXTURES / name).read_text())
    by_path = receiver_by_path(am)
    samples = derived_samples(am)
    assert len(samples) >= 2
    for labels in samples:
        expected = amtool_receivers(FIXTURES / name, labels)
        got = baton_receivers(out, env, labels, by_path)
        assert got == expected, f"{name} {json.dumps(labels)}"


@pytest.mark.parametrize("name", fixtures())
def test_routes_like_amtool(tmp_path: Path, name: str) -> None:
    out, env, _ = imported(tmp_path, name)
    am = yaml.safe_load((FIXTURES / name).read_text())
    by_path = receiver_by_path(am)
    for labels in SAMPLES[name]:
        expected = amtool_receivers(FIXTURES / name, labels)
        got = baton_receivers(out, env, labels, by_path)
        assert got == expected, f"{name} {json.dumps(labels)}"


def test_dry_run_prints_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "baton.yaml"
    done = baton("import", "alertmanager", str(FIXTURES / "simple.yml"), "--dry-run",
                 "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert not out.exists()
    assert yaml.safe_load(done.stdout)["policies"]["team-X-pager"]
    assert "UNMAPPED route.group_wait" in done.stderr
    assert "check-config: ok once the variables above are set" in done.stderr


def test_the_command_says_what_check_config_would(tmp_path: Path) -> None:
    am = tmp_path / "am.yml"
    am.write_text(yaml.safe_dump({
        "route": {"receiver": "r"},
        "receivers": [{"name": "r", "msteamsv2_configs": [{"webhook_url_file": "gone"}]}]}))
    done = baton("import", "alertmanager", str(am), "--dry-run")
    assert done.returncode == 0
    assert "CHECK    connectors.r-teams.webhook_url" in done.stderr
    assert "check-config: 1 problem(s)" in done.stderr


def test_existing_output_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "baton.yaml"
    out.write_text("keep me\n")
    args = ("import", "alertmanager", str(FIXTURES / "simple.yml"), "--output", str(out))
    refused = baton(*args)
    assert refused.returncode == 1 and "exists" in refused.stderr
    assert out.read_text() == "keep me\n"
    forced = baton(*args, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "team-X-pager" in out.read_text()
    assert out.stat().st_mode & 0o777 == 0o600


def test_unreadable_input_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "am.yml"
    bad.write_text("receivers: []\n")
    done = baton("import", "alertmanager", str(bad), "--dry-run")
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    gone = baton("import", "alertmanager", str(tmp_path / "nope.yml"), "--dry-run")
    assert gone.returncode == 1 and "cannot read" in gone.stderr


def test_inhibition_carries_over(tmp_path: Path) -> None:
    """simple.yml: a critical alert mutes the warning of the same alertname, cluster and
    service, and only that one."""
    out, env, _ = imported(tmp_path, "simple.yml")
    config = load_config(out, environ=env)

    def alert(severity: str, cluster: str) -> dict[str, Any]:
        return {"status": "firing", "startsAt": "2026-12-07T11:59:00Z", "annotations": {},
                "labels": {"alertname": "Disk", "service": "files", "cluster": cluster,
                           "severity": severity}}

    payload = {"version": "4", "status": "firing", "alerts": [
        alert("critical", "a"), alert("warning", "a"), alert("warning", "b")]}
    report = simulate(config, "alertmanager", payload, AT)
    held = {a["alert"]["labels"]["severity"] + "/" + a["alert"]["labels"]["cluster"]:
            a["incidents"][0]["suppressed"] for a in report["alerts"]}
    assert held["critical/a"] is None and held["warning/b"] is None
    assert held["warning/a"] and held["warning/a"]["reason"] == "inhibited"
