"""``baton silence add|list|expire`` against the configured store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from baton import cli
from baton.store import open_store


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "baton.yaml"
    path.write_text(yaml.safe_dump({
        "storage": {"url": f"sqlite:///{tmp_path}/b.db"},
        "sources": {"app": {"type": "generic", "auth": {"type": "none"}}},
        "connectors": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
        "routes": [{"policy": "p"}], "policies": {"p": {"levels": [{"notify": ["hook"]}]}},
    }))
    store = open_store(f"sqlite:///{tmp_path}/b.db")  # as baton serve leaves it
    store.open(owner=True)
    store.close()
    return str(path)


def listed(config: str, capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict]:  # type: ignore[type-arg]
    assert cli.main(["silence", "--config", config, "list", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_add_list_expire(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["silence", "--config", config, "add", 'service="db"', 'env=~"prod.*"',
                     "--duration", "2h", "--comment", "upgrade", "--by", "alice"]) == 0
    capsys.readouterr()
    [s] = listed(config, capsys, "--state", "active")
    assert (s["matchers"], s["created_by"], s["comment"]) == (
        ['service="db"', 'env=~"prod.*"'], "alice", "upgrade")
    assert cli.main(["silence", "--config", config, "expire", s["id"], "--by", "bob"]) == 0
    capsys.readouterr()
    assert listed(config, capsys, "--state", "active") == []
    [gone] = listed(config, capsys, "--state", "expired")
    assert (gone["id"], gone["expired_by"]) == (s["id"], "bob")
    assert cli.main(["silence", "--config", config, "expire", s["id"]]) == 1
    assert "already expired" in capsys.readouterr().err


def test_a_silence_matching_everything_is_refused(config: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["silence", "--config", config, "add", 'x=~".*"']) == 1
    assert "would mute every alert" in capsys.readouterr().err
    assert listed(config, capsys) == []


def test_config_silences_are_listed_and_cannot_be_expired_here(
        config: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = yaml.safe_load(Path(config).read_text())
    data["silences"] = [{"matchers": ['service="db"'], "ends": "2099-01-01T00:00:00Z",
                         "comment": "freeze", "created_by": "ops"}]
    Path(config).write_text(yaml.safe_dump(data))
    [s] = listed(config, capsys)
    assert (s["origin"], s["comment"], s["created_by"], s["state"]) == (
        "config", "freeze", "ops", "active")
    assert cli.main(["silence", "--config", config, "expire", s["id"]]) == 1
    assert "defined in the config file" in capsys.readouterr().err
