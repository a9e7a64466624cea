"""SQLite storage: WAL, fsync on every commit, one writer thread with group commit.

Writes from concurrent requests are queued to a single writer thread, which runs every
queued operation in one transaction (each under its own SAVEPOINT, so one failing
operation does not undo its neighbours) and commits once. One fsync then covers many
requests: durable *and* fast. Reads use their own connection in another thread, which WAL
lets run beside the writer.
"""

from __future__ import annotations

import fcntl
import os
import queue
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import structlog

from ..errors import StorageUnavailable
from ._queued import QueuedEngine, settle
from .ddl import prepare
from .tx import Tx

T = TypeVar("T")
log = structlog.get_logger("baton.store")
_STOP = object()
_WAKE = object()  # a background write was queued
# Free bytes below which the database's file system counts as full for readiness: the
# WAL grows by whole pages per commit, and a commit that cannot grow it fails.
MIN_FREE_BYTES = 16 * 1024 * 1024
# Longest a background write waits behind foreground writes before it runs between two
# of their groups anyway.
BACKGROUND_MAX_WAIT = 1.0


def path_from_url(url: str) -> str:
    """``sqlite:///rel.db`` (relative to the working directory), ``sqlite:////abs.db``,
    ``sqlite://:memory:``."""
    rest = url.removeprefix("sqlite://")
    if rest in (":memory:", "/:memory:"):
        return ":memory:"
    return rest[1:] if rest.startswith("/") else rest


class DatabaseInUse(StorageUnavailable):
    """Another process owns this SQLite database (a second ``baton serve`` on one file)."""


class OwnerLock:
    """An exclusive ``flock`` on ``<db>.lock`` beside the database, held by the one process
    that runs the dispatcher (``baton serve``): one owner per SQLite file.

    The kernel drops an flock when its holder exits, however it exits (``kill -9``
    included), so a lock left by a dead process is free by construction and holding it
    proves that whoever claimed deliveries before is gone. The file holds the owner's pid
    only for the refusal message; it is never deleted (deleting it while another process
    waits to open it would let two processes lock two different files).
    """

    def __init__(self, db_path: str) -> None:
        self.path = f"{db_path}.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            db = os.path.abspath(self.path.removesuffix(".lock"))
            raise DatabaseInUse(
                f"database {db} is in use by another baton serve (pid {holder}): a SQLite "
                "database has one owner; stop that process or give this one another "
                "storage.url") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None


class SQLiteEngine(QueuedEngine):
    """Runs operations on SQLite connections in background threads."""

    paramstyle = "qmark"
    skip_locked = False

    def __init__(self, url: str, busy_timeout: float = 5.0, max_pending: int = 10000,
                 max_batch: int = 256, create: bool = True, timeout: float = 10.0,
                 max_queue_age: float = 2.0,
                 max_pending_bytes: int = 64 * 1024 * 1024) -> None:
        path = path_from_url(url)
        self._create = create
        if path == ":memory:":
            # Both connections must see the same database: a named shared-cache memory db.
            self._target = f"file:baton-{uuid.uuid4().hex}?mode=memory&cache=shared"
            self._uri = True
        elif not create:
            # mode=rw: SQLite fails instead of creating a missing file (CLI readers).
            self._target, self._uri = f"file:{quote(path)}?mode=rw", True
        else:
            self._target, self._uri = path, False
        self._busy = busy_timeout
        self._max_pending = max_pending
        self._max_batch = max_batch
        self.timeout, self.max_queue_age = timeout, max_queue_age
        self.max_pending_bytes = max_pending_bytes
        self._init_backlogs()
        self._writes: queue.Queue[Any] = queue.Queue()
        # The dispatcher's writes (claims, outcomes, timers): taken before any request
        # write still queued, so paging goes on while an ingest storm fills ``_writes``.
        self._priority: queue.Queue[Any] = queue.Queue()
        # Background writes (pruning) run alone, when no foreground write waits: never in
        # a group with requests' writes, which would wait for them to commit.
        self._background: queue.Queue[Any] = queue.Queue()
        self._reads: queue.Queue[Any] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._keepalive: sqlite3.Connection | None = None
        self._running = False  # between start() and stop(): work queued now gets done

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._target, uri=self._uri, timeout=self._busy,
                               isolation_level=None, check_same_thread=False)
        # Lets retention hand freed pages back to the file system (PRAGMA
        # incremental_vacuum). Only an empty database takes it, before WAL mode is written
        # to its header (README: Retention, VACUUM); on one in use, setting it even to its
        # own value waits for the write lock, so a reader would wait for the writer.
        if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: every commit is fsynced, so a 202 survives power loss, not only a crash.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def start(self) -> None:
        if not self._uri:
            Path(self._target).parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        if self._uri and self._create:
            self._keepalive = conn  # a shared memory db lives while one connection does
        try:
            conn.execute("BEGIN IMMEDIATE")
            prepare(Tx(conn))
            conn.execute("COMMIT")
        except BaseException:
            conn.rollback()
            conn.close()
            raise
        if self._keepalive is None:
            conn.close()
        self._threads = [
            threading.Thread(target=self._writer, name="baton-sqlite-writer", daemon=True),
            threading.Thread(target=self._reader, name="baton-sqlite-reader", daemon=True),
        ]
        for t in self._threads:
            t.start()
        self._running = True

    def stop(self) -> None:
        # Refuse new work first: nothing would take it off the queues after _STOP, and
        # its caller (a request, the readiness probe) would wait forever.
        self._running = False
        self._writes.put(_STOP)
        self._reads.put(_STOP)
        for t in self._threads:
            t.join(timeout=10)
        if self._keepalive is not None:
            self._keepalive.close()

    def check_space(self) -> None:
        if self._uri and self._create:
            return  # in memory
        try:
            st = os.statvfs(Path(self._target).resolve().parent)
        except OSError as e:
            raise StorageUnavailable(f"cannot inspect the database's disk: {e}") from None
        free = st.f_bavail * st.f_frsize
        if free < MIN_FREE_BYTES:
            raise StorageUnavailable(f"the database's disk is full ({free} bytes free)")

    def _submit(self, item: tuple[Any, ...], background: bool, priority: bool) -> None:
        if priority:
            self._priority.put(item)
            self._writes.put(_WAKE)  # a writer blocked on an empty queue looks again
            return
        if not background:
            self._writes.put(item)
            return
        self._background.put((*item, time.monotonic()))
        self._writes.put(_WAKE)  # a writer blocked on an empty queue looks again

    def _next_background(self, starved: bool) -> list[Any] | None:
        """The waiting background write, as a batch of its own, if it may run now: when
        nothing else waits, or when it has waited BACKGROUND_MAX_WAIT behind a stream of
        foreground writes (so pruning still progresses under sustained load)."""
        try:
            fn, loop, fut, since = self._background.queue[0]
        except IndexError:
            return None
        if not starved and time.monotonic() - since < BACKGROUND_MAX_WAIT:
            return None
        self._background.get_nowait()
        return [(fn, loop, fut)]

    def _writer(self) -> None:
        conn = self._connect()
        tx = Tx(conn)
        while True:
            urgent = self._drain(self._priority)
            if urgent:
                self._run_batch(conn, tx, urgent)
                continue
            try:
                first = self._writes.get_nowait()
            except queue.Empty:
                alone = self._next_background(starved=True)
                if alone is not None:
                    self._run_background(conn, tx, alone)
                    continue
                first = self._writes.get()
            if first is _WAKE:
                continue
            if first is _STOP:
                break
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._writes.get_nowait()
                except queue.Empty:
                    break
                if item is _WAKE:
                    continue
                if item is _STOP:
                    self._writes.put(_STOP)
                    break
                batch.append(item)
            self._run_batch(conn, tx, batch)
            overdue = self._next_background(starved=False)
            if overdue is not None:
                self._run_background(conn, tx, overdue)
        # Work still queued gets an answer: its caller must not wait forever.
        for item in self._drain(self._priority):
            settle(item[1], item[2], None, StorageUnavailable("storage is closing"))
        while True:
            try:
                _fn, loop, fut, _since = self._background.get_nowait()
            except queue.Empty:
                break
            settle(loop, fut, None, StorageUnavailable("storage is closing"))
        conn.close()

    def _drain(self, lane: queue.Queue[Any]) -> list[Any]:
        batch: list[Any] = []
        while len(batch) < self._max_batch:
            try:
                batch.append(lane.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run_background(self, conn: sqlite3.Connection, tx: Tx, batch: list[Any]) -> None:
        """Background work (deleting what retention lets go) commits without its own fsync:
        losing it to a power cut only means doing it again, and the next request's commit
        (synchronous=FULL) makes the WAL durable up to and including it."""
        conn.execute("PRAGMA synchronous=NORMAL")
        try:
            self._run_batch(conn, tx, batch)
        finally:
            # The safety level cannot change inside a transaction: one left open by a
            # failed COMMIT and ROLLBACK is ended first, or this raise would end the writer
            # thread, and every later write would time out.
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                conn.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as e:
                log.error("sqlite: could not restore synchronous=FULL", error=str(e))

    def _run_batch(self, conn: sqlite3.Connection, tx: Tx, batch: list[Any]) -> None:
        results: list[tuple[Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, _loop, _fut in batch:
                conn.execute("SAVEPOINT op")
                tx.enqueued = 0
                try:
                    results.append(((fn(tx), tx.enqueued), None))
                    conn.execute("RELEASE op")
                except Exception as e:  # the operation's own error goes to its caller
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    if isinstance(e, sqlite3.Error):
                        log.error("sqlite operation failed", error=str(e))
                        e = StorageUnavailable(f"storage error: {e.__class__.__name__}")
                    results.append((None, e))
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            log.error("sqlite commit failed", error=str(e), batch=len(batch))
            err = StorageUnavailable(f"storage error: {e.__class__.__name__}")
            results = [(None, err) for _ in batch]
        for (_fn, loop, fut), (res, exc) in zip(batch, results, strict=True):
            settle(loop, fut, res, exc)

    def _reader(self) -> None:
        conn = self._connect()
        tx = Tx(conn)
        while True:
            item = self._reads.get()
            if item is _STOP:
                break
            fn, loop, fut = item
            try:
                conn.execute("BEGIN")
                res = fn(tx)
                conn.execute("COMMIT")
                settle(loop, fut, res, None)
            except Exception as e:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                if isinstance(e, sqlite3.Error):
                    e = StorageUnavailable(f"storage error: {e.__class__.__name__}")
                settle(loop, fut, None, e)
        conn.close()
