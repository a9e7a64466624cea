"""Real processes for the integration tests: Baton, Alertmanager and a webhook sink.

Everything listens on 127.0.0.1 only. Every wait here is bounded by a deadline and polls
(nothing sleeps for a fixed time hoping a process got there), and every process started
here is killed by ``stop()``, which the fixtures in ``conftest.py`` call at teardown.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

HOST = "127.0.0.1"
T = TypeVar("T")

# How long a process gets to answer its readiness probe after it was started. Generous:
# the CI runners and this 2-core box are noisy, and the wait ends as soon as it is ready.
READY_TIMEOUT = 30.0
LOG_TAIL_CHARS = 4000


def free_port() -> int:
    """A loopback port free right now (bound, then released: a process started with it
    can still lose a race for it, which ``start()`` notices and retries)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def wait_until(probe: Callable[[], T | None], timeout: float, what: str,
               interval: float = 0.05, detail: Callable[[], str] | None = None) -> T:
    """Poll ``probe`` until it returns something truthy (that value is returned) or
    ``timeout`` seconds pass (AssertionError naming ``what``, plus ``detail()``)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            extra = f"\n{detail()}" if detail is not None else ""
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what} "
                                 f"(last: {last!r}){extra}")
        time.sleep(interval)


# --- plain HTTP from the test's own thread ----------------------------------------------

@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


def http(method: str, url: str, body: Any = None, token: str | None = None,
         timeout: float = 10.0) -> Answer:
    """One JSON request with the standard library; HTTP errors are answers, not raises.
    Connection errors (refused, reset) do raise: callers that expect them catch OSError."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode("utf-8", "replace")
    return Answer(status, parsed)


def _ok(url: str) -> bool:
    try:
        return http("GET", url, timeout=2.0).status == 200
    except OSError:
        return False


# --- subprocesses ------------------------------------------------------------------------

class Proc:
    """A child process with its output in a log file, started and stopped with deadlines."""

    name = "process"

    def __init__(self, workdir: Path, env: Mapping[str, str] | None = None) -> None:
        self.workdir = workdir
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.log_path = workdir / f"{self.name}.log"
        self.port = 0
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} is not running"
        return self.popen.pid

    def argv(self) -> list[str]:
        raise NotImplementedError

    def ready_url(self) -> str:
        raise NotImplementedError

    def start(self, port: int | None = None, attempts: int = 3) -> None:
        """Start and wait until ready. Keeps ``port`` when given (a restart on the same
        address); otherwise, or when the port turns out taken, picks a free one."""
        for attempt in range(attempts):
            self.port = port if (port and attempt == 0) else free_port()
            mark = self.log_path.stat().st_size if self.log_path.exists() else 0
            with self.log_path.open("ab") as log:
                log.write(f"\n--- start {self.name} on port {self.port}\n".encode())
                log.flush()
                self.popen = subprocess.Popen(
                    self.argv(), stdout=log, stderr=subprocess.STDOUT, env=self.env,
                    cwd=self.workdir, start_new_session=True)
            if self._wait_ready():
                return
            text = self.log_path.read_bytes()[mark:].decode("utf-8", "replace").lower()
            self.stop()
            if "address already in use" not in text:
                break
        raise AssertionError(f"{self.name} did not become ready on {self.ready_url()} within "
                             f"{READY_TIMEOUT:g}s\n{self.log_tail()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.popen is None or self.popen.poll() is not None:
                return False  # it died: the log says why
            if _ok(self.ready_url()):
                return True
            time.sleep(0.05)
        return False

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        assert self.popen is not None, f"{self.name} is not running"
        self.popen.send_signal(sig)

    def kill(self) -> int:
        """SIGKILL, as a crash or the OOM killer would; returns the exit status."""
        self.signal(signal.SIGKILL)
        return self.wait(10.0)

    def wait(self, timeout: float) -> int:
        assert self.popen is not None, f"{self.name} is not running"
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not exit within {timeout:g}s\n"
                                 f"{self.log_tail()}") from None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds. Safe to call at any time."""
        p = self.popen
        if p is None or p.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            p.terminate()
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            p.wait(timeout=10.0)

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        try:
            text = self.log_path.read_text("utf-8", "replace")
        except OSError:
            return f"[{self.name}: no log]"
        return f"--- last of {self.log_path}:\n{text[-chars:]}"


class Baton(Proc):
    """``python -m baton serve`` on a config file (the interpreter running the tests, so
    CI's virtualenv is the one under test)."""

    name = "baton"

    def __init__(self, workdir: Path, config_path: Path, db_path: Path,
                 env: Mapping[str, str] | None = None) -> None:
        super().__init__(workdir, env)
        self.config_path = config_path
        self.db_path = db_path

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "baton", "serve", "--config", str(self.config_path),
                "--listen", f"{HOST}:{self.port}"]

    def ready_url(self) -> str:
        return f"{self.base_url}/readyz"

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def get(self, path: str) -> Any:
        answer = http("GET", self.url(path))
        assert answer.status == 200, f"GET {path}: {answer.status} {answer.body}"
        return answer.body

    def incidents(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every incident, newest first, paging with the cursor."""
        out: list[dict[str, Any]] = []
        cursor = None
        for _ in range(1000):  # 500 a page: bounded far above any test's volume
            query = "limit=500" + (f"&status={status}" if status else "")
            query += f"&cursor={cursor}" if cursor else ""
            page = self.get(f"/v1/incidents?{query}")
            out += page["incidents"]
            cursor = page["next_cursor"]
            if not cursor:
                return out
        raise AssertionError("too many pages of incidents")

    def deliveries(self, state: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = None
        for _ in range(1000):
            query = "limit=500" + (f"&state={state}" if state else "")
            query += f"&cursor={cursor}" if cursor else ""
            page = self.get(f"/v1/deliveries?{query}")
            out += page["deliveries"]
            cursor = page["next_cursor"]
            if not cursor:
                return out
        raise AssertionError("too many pages of deliveries")


class Alertmanager(Proc):
    """The real Prometheus Alertmanager, alone: no cluster gossip, its own data dir."""

    name = "alertmanager"

    def __init__(self, workdir: Path, binary: str, config_path: Path) -> None:
        super().__init__(workdir)
        self.binary = binary
        self.config_path = config_path

    def argv(self) -> list[str]:
        return [self.binary, f"--config.file={self.config_path}",
                f"--storage.path={self.workdir / 'am-data'}",
                f"--web.listen-address={HOST}:{self.port}",
                "--cluster.listen-address=",  # empty: gossip off, no port 9094
                "--log.level=debug"]

    def ready_url(self) -> str:
        return f"{self.base_url}/-/ready"


# --- configs -----------------------------------------------------------------------------

def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), "utf-8")
    return path


def baton_config(db_path: Path, sink_url: str, *, shutdown_grace: str = "5s",
                 connector: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A config with source ``prom`` (Alertmanager) and ``gen`` (generic), both behind a
    bearer token from ``$PROM_TOKEN``, and connector ``sink`` (webhook) to ``sink_url``.

    Critical alerts are grouped per service; everything else opens one incident per alert.
    Each route's only level notifies ``sink`` at once, with no escalation timer.
    """
    auth = {"type": "bearer", "token": {"env": "PROM_TOKEN"}}
    return {
        "server": {"shutdown_grace": shutdown_grace},
        "storage": {"url": f"sqlite:///{db_path}"},
        "sources": {
            "prom": {"type": "alertmanager", "auth": auth},
            "gen": {"type": "generic", "auth": auth},
        },
        "connectors": {
            "sink": {"type": "webhook", "url": sink_url, "timeout": "10s",
                     "backoff": {"initial": "200ms", "max": "2s"}, **(connector or {})},
        },
        "routes": [
            {"name": "critical", "matchers": ['severity="critical"'], "policy": "page",
             "group_by": ["service"]},
            {"name": "default", "policy": "notify"},
        ],
        "policies": {
            "page": {"levels": [{"notify": ["sink"]}]},
            "notify": {"levels": [{"notify": ["sink"]}]},
        },
        "dispatch": {"poll_interval": 0.2},
        "logging": {"level": "info"},
    }


# --- the database, read behind Baton's back ---------------------------------------------

def query(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read-only rows from Baton's SQLite file (WAL lets this run beside the server)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10.0)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# --- the webhook sink --------------------------------------------------------------------

@dataclass(frozen=True)
class Received:
    """One POST as the sink saw it."""

    at: float  # time.monotonic() on arrival, before any scripted delay
    path: str
    headers: Mapping[str, str]
    body: Any  # parsed JSON, or the text when it was not JSON

    @property
    def note(self) -> Mapping[str, Any]:
        """The ``notification`` object a Baton webhook carries ({} when absent)."""
        return self.body.get("notification", {}) if isinstance(self.body, dict) else {}


class WebhookSink:
    """An HTTP receiver on 127.0.0.1 with its own event loop in a background thread, so
    sync and async tests alike can use it while Baton runs in another process.

    It records every POST on arrival and answers 200, or what ``script()`` queued (one
    ``(status, delay)`` per request, in order), after ``delay`` seconds (default: the
    sink's ``delay``). ``stop()`` cuts pending delays short.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._script: collections.deque[tuple[int, float | None]] = collections.deque()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="webhook-sink",
                                        daemon=True)
        self._runner: web.AppRunner | None = None
        self._release: asyncio.Event | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/hook"

    def script(self, *replies: tuple[int, float | None]) -> None:
        with self._lock:
            self._script.extend(replies)

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def start(self) -> WebhookSink:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        self.port = fut.result(timeout=10.0)
        return self

    async def _serve(self) -> int:
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind((HOST, 0))  # bound here and handed over: no free-port race
        site = web.SockSite(self._runner, sock)
        await site.start()
        port: int = sock.getsockname()[1]
        return port

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            self._received.append(Received(time.monotonic(), request.path,
                                           dict(request.headers), body))
            status, delay = self._script.popleft() if self._script else (200, None)
        delay = self.delay if delay is None else delay
        if delay > 0 and self._release is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), delay)
        return web.json_response({"ok": 200 <= status < 300}, status=status)

    def let_go(self) -> None:
        """End every delay now, held requests and later ones alike: a test holds
        deliveries in flight with a long ``delay`` and lets them finish when it is done."""
        if self._release is not None:
            self._loop.call_soon_threadsafe(self._release.set)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def shutdown() -> None:
            if self._release is not None:
                self._release.set()
            if self._runner is not None:
                await self._runner.cleanup()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=10.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10.0)
        if not self._thread.is_alive():
            self._loop.close()
