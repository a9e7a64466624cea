"""Fixtures that start real processes and always stop them, pass or fail."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from procs import Alertmanager, Baton, WebhookSink, baton_config, write_yaml

ALERTMANAGER_BIN = os.environ.get("ALERTMANAGER_BIN", "/usr/bin/prometheus-alertmanager")


@pytest.fixture
def token() -> str:
    """The bearer token Baton's sources require (handed to Baton as ``$PROM_TOKEN``)."""
    return f"it-{secrets.token_urlsafe(18)}"


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    s = WebhookSink().start()
    try:
        yield s
    finally:
        s.stop()


MakeBaton = Callable[..., Baton]


@pytest.fixture
def make_baton(tmp_path: Path, token: str, sink: WebhookSink) -> Iterator[MakeBaton]:
    """``make_baton(**config_overrides)``: a Baton subprocess on its own SQLite file in
    ``tmp_path``, sending to ``sink``, started and ready. Not started again by restarts:
    call ``.start(port)`` on the returned object for that. Killed at teardown."""
    started: list[Baton] = []

    def make(**overrides: Any) -> Baton:
        n = len(started)
        workdir = tmp_path / f"baton{n}"
        workdir.mkdir()
        db = tmp_path / f"baton{n}.db"
        path = write_yaml(workdir / "baton.yaml", baton_config(db, sink.url, **overrides))
        baton = Baton(workdir, path, db, env={"PROM_TOKEN": token})
        started.append(baton)
        baton.start()
        return baton

    try:
        yield make
    finally:
        for b in started:
            b.stop(grace=5.0)


@pytest.fixture
def alertmanager_bin() -> str:
    """The Alertmanager binary; its absence fails the test (CI installs it), never skips."""
    if not (os.path.isfile(ALERTMANAGER_BIN) and os.access(ALERTMANAGER_BIN, os.X_OK)):
        pytest.fail(f"Prometheus Alertmanager is not installed at {ALERTMANAGER_BIN}: run "
                    f"scripts/install-test-deps.sh (Debian package prometheus-alertmanager) "
                    f"or point $ALERTMANAGER_BIN at an alertmanager binary", pytrace=False)
    return ALERTMANAGER_BIN


@pytest.fixture
def make_alertmanager(tmp_path: Path, alertmanager_bin: str
                      ) -> Iterator[Callable[[dict[str, Any]], Alertmanager]]:
    """``make_alertmanager(config_dict)``: a started, ready Alertmanager; killed at teardown."""
    started: list[Alertmanager] = []

    def make(config: dict[str, Any]) -> Alertmanager:
        workdir = tmp_path / f"am{len(started)}"
        workdir.mkdir()
        am = Alertmanager(workdir, alertmanager_bin, write_yaml(workdir / "am.yml", config))
        started.append(am)
        am.start()
        return am

    try:
        yield make
    finally:
        for am in started:
            am.stop(grace=5.0)
