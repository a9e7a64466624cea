"""Slowloris against ``baton serve``: a client that trickles a request's head or body is
closed after ``server.read_timeout``; beyond ``server.max_connections`` a new connection
is closed at once and counted; failed accepts are logged at most once per interval."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from procs import HOST, Baton, WebhookSink, baton_config, http, write_yaml

from baton._serve import AcceptErrorLog

pytestmark = pytest.mark.integration

DEADLINE = 1.0  # server.read_timeout below


def closed_within(sock: socket.socket, limit: float) -> tuple[float, bytes]:
    """Seconds until the server closed ``sock``, and what it sent first."""
    started = time.monotonic()
    sock.settimeout(limit)
    got = b""
    while chunk := sock.recv(4096):
        got += chunk
    return time.monotonic() - started, got


def test_slow_clients_are_closed_after_the_read_deadline(
        tmp_path: Path, token: str, sink: WebhookSink) -> None:
    workdir = tmp_path / "w"
    workdir.mkdir()
    db = tmp_path / "baton.db"
    data = baton_config(db, sink.url)
    data["server"].update({"read_timeout": "1s", "max_connections": 8})
    baton = Baton(workdir, write_yaml(workdir / "baton.yaml", data), db,
                  env={"PROM_TOKEN": token})
    baton.start()
    try:
        head = socket.create_connection((HOST, baton.port))
        head.sendall(b"GET /healthz HTTP/1.1\r\nHost: baton\r\n")  # the head never ends
        body = socket.create_connection((HOST, baton.port))
        body.sendall(b"POST /v1/ingest/gen HTTP/1.1\r\nHost: baton\r\n"
                     b"Authorization: Bearer " + token.encode() + b"\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        took, _ = closed_within(head, DEADLINE + 10)
        assert took < DEADLINE + 3, f"{took:.1f}s"  # loose: the deadline plus slack
        took, answer = closed_within(body, DEADLINE + 10)
        assert took < DEADLINE + 3, f"{took:.1f}s"
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        for s in (head, body):
            s.close()

        idle = [socket.create_connection((HOST, baton.port)) for _ in range(8)]
        time.sleep(0.3)  # all eight accepted before the ninth
        extra = socket.create_connection((HOST, baton.port))
        took, _ = closed_within(extra, 5)
        assert took < 1.0, f"{took:.1f}s"  # refused at once, not after the deadline
        for s in (*idle, extra):
            s.close()
        answer = None
        for _ in range(50):  # until the server has let the eight go (bounded: 5 s)
            try:
                answer = http("GET", baton.url("/metrics"))
            except OSError:  # still at the cap: this one was refused, with a reset
                answer = None
            if answer is not None and answer.status == 200:
                break
            time.sleep(0.1)
        assert answer is not None and answer.status == 200
        refused = re.search(r"^baton_connections_refused_total (\S+)$", str(answer.body),
                            re.MULTILINE)
        assert refused is not None and float(refused[1]) >= 1  # the ninth, maybe probes
        assert http("GET", baton.url("/healthz")).status == 200
        assert baton.alive()
    finally:
        baton.stop(grace=5.0)


def test_failed_accepts_are_logged_at_most_once_per_interval(
        capsys: pytest.CaptureFixture[str]) -> None:
    ticks = [0.0]
    handler = AcceptErrorLog(interval=10.0, clock=lambda: ticks[0])
    loop = asyncio.new_event_loop()
    try:
        context: dict[str, Any] = {"message": "socket.accept() out of system resource",
                                   "exception": OSError(24, "Too many open files")}
        for _ in range(1000):
            handler(loop, context)
        assert handler.suppressed == 999
        ticks[0] = 10.0
        handler(loop, context)
        assert handler.suppressed == 0
    finally:
        loop.close()
    logged = capsys.readouterr()
    assert (logged.out + logged.err).count("cannot accept connections") == 2
