"""The command line's common ground: ``--config`` before or after the command (or
``$BATON_CONFIG``), and commands that read the store never create one.

Subprocesses, as a user runs them: the exit code, stderr and the files left behind are
what is checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from baton.store import open_store

CONFIG = {
    "sources": {"app": {"type": "generic", "auth": {"type": "none"}}},
    "connectors": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
    "routes": [{"policy": "p"}], "policies": {"p": {"levels": [{"notify": ["hook"]}]}},
}
# Each command that reads (or writes to) the store, as argv after "baton".
STORE_COMMANDS = [["dlq", "list"], ["dlq", "replay", "--all"], ["silence", "list"],
                  ["silence", "add", 'service="db"'], ["silence", "expire", "x"],
                  ["report"]]


def baton(cwd: Path, *argv: str, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "BATON_CONFIG"}
    return subprocess.run([sys.executable, "-m", "baton", *argv], cwd=cwd, env={
        **environ, **(env or {})}, capture_output=True, text=True, timeout=60)


def write_config(tmp_path: Path, db: str = "data/b.db") -> Path:
    path = tmp_path / "baton.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, "storage": {"url": f"sqlite:///{db}"}}))
    return path


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("argv", STORE_COMMANDS, ids=" ".join)
def test_a_missing_database_is_named_and_never_created(tmp_path: Path,
                                                       argv: list[str]) -> None:
    config = write_config(tmp_path)
    before = files(tmp_path)
    done = baton(tmp_path, *argv, "--config", str(config))
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        f"error: no database at {tmp_path}/data/b.db (storage.url of config {config}); "
        "this command only reads the database baton serve keeps, and never creates one\n")
    assert files(tmp_path) == before  # no file, no data/ directory


def test_the_demo_config_is_named_when_no_config_is_given(tmp_path: Path) -> None:
    done = baton(tmp_path, "dlq", "list")
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: no database at {tmp_path}/baton-data/baton.db "
                                  "(storage.url of the built-in demo config)")
    assert files(tmp_path) == set()


@pytest.mark.parametrize("where", ["before", "after", "env"])
@pytest.mark.parametrize("argv", [["dlq", "list"], ["silence", "list"], ["report"]],
                         ids=" ".join)
def test_config_goes_before_or_after_the_command_or_in_the_env(
        tmp_path: Path, argv: list[str], where: str) -> None:
    config = write_config(tmp_path)
    store = open_store(f"sqlite:///{tmp_path}/data/b.db")  # as baton serve leaves it
    store.open(owner=True)
    store.close()
    if where == "before":
        done = baton(tmp_path, "--config", str(config), *argv)
    elif where == "after":
        done = baton(tmp_path, *argv, "--config", str(config))
    else:
        done = baton(tmp_path, *argv, env={"BATON_CONFIG": str(config)})
    assert (done.returncode, done.stderr) == (0, ""), done.stderr


@pytest.mark.parametrize("argv", [["check-config", "{c}"], ["check-config", "--config", "{c}"],
                                  ["--config", "{c}", "check-config"], ["check-config"]],
                         ids=" ".join)
def test_check_config_takes_its_file_every_way(tmp_path: Path, argv: list[str]) -> None:
    config = write_config(tmp_path)
    env = {"BATON_CONFIG": str(config)} if argv == ["check-config"] else None
    done = baton(tmp_path, *(a.format(c=config) for a in argv), env=env)
    assert (done.returncode, done.stdout) == (0, f"{config}: ok\n"), done.stderr


def test_check_config_without_a_config_or_with_two_says_so(tmp_path: Path) -> None:
    done = baton(tmp_path, "check-config")
    assert (done.returncode, done.stderr) == (
        2, "error: no config to check: give FILE or --config FILE, or set BATON_CONFIG\n")
    done = baton(tmp_path, "check-config", "a.yaml", "--config", "b.yaml")
    assert (done.returncode, done.stderr) == (
        2, "error: two configs given: a.yaml and --config b.yaml\n")


def test_oncall_and_simulate_take_config_after_the_command_too(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    done = baton(tmp_path, "oncall", "nobody", "--config", str(config))
    assert done.returncode == 1 and 'unknown schedule "nobody"' in done.stderr
    done = baton(tmp_path, "--config", str(config), "oncall", "nobody")
    assert done.returncode == 1 and 'unknown schedule "nobody"' in done.stderr
    assert files(tmp_path) == {"baton.yaml"}
