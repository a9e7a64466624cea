"""Secure by default: no open management API off loopback unless the config says so, a
``--listen`` checked like ``server.listen``, and settings meant for tests refused unless
the environment opts in. ``baton serve`` and ``check-config`` run as subprocesses; no
test here makes Baton listen on anything but loopback (a refusal never binds).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import build, minimal

from baton.config import config_warnings, open_api_refusal
from baton.errors import ConfigError

OPT_IN = "BATON_ALLOW_TEST_SETTINGS"


def baton(cwd: Path, *argv: str, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("BATON_CONFIG", OPT_IN)}
    return subprocess.run([sys.executable, "-m", "baton", *argv], cwd=cwd,
                          env={**environ, "API_TOKEN": "t" * 24, **(env or {})},
                          capture_output=True, text=True, timeout=60)


def write(tmp_path: Path, **sections: Any) -> Path:
    path = tmp_path / "baton.yaml"
    data = minimal(storage={"url": "sqlite:///data/b.db"}, **sections)
    path.write_text(yaml.safe_dump(data), "utf-8")
    return path


REFUSAL = ("error: refusing to start: api: no api.tokens while listening on {listen}: "
           "anyone who can reach it could read, acknowledge and resolve every incident; add "
           "api.tokens, listen on a loopback address, or set api: {{open: true}} to allow "
           "it\n")


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "[::]:8080", "10.1.2.3:8080",
                                    "gateway.example:8080"])
@pytest.mark.parametrize("how", ["config", "flag"])
def test_serve_refuses_an_open_api_off_loopback(tmp_path: Path, listen: str,
                                                how: str) -> None:
    config = write(tmp_path, server={"listen": listen}) if how == "config" else write(
        tmp_path)
    flag = ["--listen", listen] if how == "flag" else []
    done = baton(tmp_path, "serve", "--config", str(config), *flag)
    assert (done.returncode, done.stderr) == (1, REFUSAL.format(listen=listen))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baton.yaml"]  # touched nothing


def test_tokens_or_api_open_or_loopback_let_it_start(tmp_path: Path) -> None:
    tokens = {"tokens": [{"name": "ops", "token": {"env": "T"}}]}
    env = {"T": "x" * 24}

    def refusal(**sections: Any) -> str | None:
        return open_api_refusal(build(minimal(**sections), tmp_path, env))

    assert refusal(server={"listen": "0.0.0.0:80"}) is not None
    assert refusal(server={"listen": "0.0.0.0:80"}, api=tokens) is None
    assert refusal(server={"listen": "0.0.0.0:80"}, api={"open": True}) is None
    for loopback in ("127.0.0.1:80", "[::1]:80", "localhost:80", "127.8.9.10:80"):
        assert refusal(server={"listen": loopback}) is None
    assert refusal(server={"listen": "0.0.0.0:80"}, api={"open": False}) is not None


def test_check_config_warns_about_the_refusal_and_about_api_open(tmp_path: Path) -> None:
    done = baton(tmp_path, "check-config", str(write(tmp_path,
                                                     server={"listen": "0.0.0.0:8080"})))
    assert done.returncode == 0
    assert ("warning: api: no api.tokens while listening on 0.0.0.0:8080" in done.stderr
            and "(baton serve refuses to start)" in done.stderr), done.stderr
    done = baton(tmp_path, "check-config", str(write(
        tmp_path, server={"listen": "0.0.0.0:8080"}, api={"open": True})))
    assert done.returncode == 0
    assert ("warning: api.open: true without api.tokens while listening on 0.0.0.0:8080: "
            "the management API and console are open") in done.stderr, done.stderr
    loopback = build(minimal(api={"open": True}), tmp_path)
    assert config_warnings(loopback) == []


@pytest.mark.parametrize(("listen", "why"), [
    ("127.0.0.1:70000", "port 70000 is out of range (0-65535)"),
    ("127.0.0.1:http", "port 'http' is not a number"),
    ("127.0.0.1:-1", "port '-1' is not a number"),
    ("8080", "expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080"),
    (":8080", "no host: write 127.0.0.1:PORT for this machine only, or 0.0.0.0:PORT for "
              "every address"),
    ("[zz]:8080", "[zz] is not an IPv6 address"),
    ("::1:8080", "write an IPv6 address in brackets: [::1]:8080"),
    ("300.1.1.1:8080", "300.1.1.1 is not an IPv4 address"),
    ("bad host:8080", "'bad host' is not a host name or address"),
])
def test_listen_is_checked_in_one_line(tmp_path: Path, listen: str, why: str) -> None:
    done = baton(tmp_path, "serve", "--config", str(write(tmp_path)), "--listen", listen)
    assert (done.returncode, done.stderr) == (1, f"error: --listen {listen}: {why}\n")
    # The config's server.listen: one problem, ours unless the schema's pattern spoke.
    with pytest.raises(ConfigError) as err:
        build(minimal(server={"listen": listen}), tmp_path)
    [problem] = [p for p in err.value.problems if p.startswith("server.listen: ")]
    if "does not match" not in problem:
        assert problem == f"server.listen: {why}"


ALLOW_HTTP = {"aws": {"type": "cloudwatch", "auth": {"type": "none"}, "allow_http": True}}


@pytest.mark.parametrize(("sections", "problem"), [
    ({"sources": ALLOW_HTTP}, "sources.aws.allow_http: a setting for tests only; refused "
                              f"unless the environment has {OPT_IN}=1"),
    ({"storage": {"url": "sqlite://:memory:"}},
     "storage.url: an in-memory database is lost on exit, for tests only; refused unless "
     f"the environment has {OPT_IN}=1"),
], ids=["allow_http", "memory"])
def test_settings_for_tests_are_refused_unless_opted_in(
        tmp_path: Path, sections: dict[str, Any], problem: str) -> None:
    path = tmp_path / "baton.yaml"
    data = minimal(storage={"url": "sqlite:///data/b.db"})
    data.update(sections)
    path.write_text(yaml.safe_dump(data), "utf-8")
    done = baton(tmp_path, "check-config", str(path))
    assert (done.returncode, done.stdout) == (1, f"{problem}\n"), done.stderr
    done = baton(tmp_path, "serve", "--config", str(path), "--listen", "127.0.0.1:1")
    assert (done.returncode, done.stderr) == (1, f"config error: {problem}\n")
    done = baton(tmp_path, "check-config", str(path), env={OPT_IN: "1"})
    assert (done.returncode, done.stdout) == (0, f"{path}: ok\n"), done.stdout
    assert not (tmp_path / "data").exists()


def test_a_test_setting_at_its_default_is_not_refused(tmp_path: Path) -> None:
    build(minimal(sources={"aws": {**ALLOW_HTTP["aws"], "allow_http": False}}), tmp_path)
