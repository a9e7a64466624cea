"""PostgreSQL storage: a few connections in worker threads, shared by any number of replicas.

Each operation runs in its own transaction on one of the writer connections (PostgreSQL
orders concurrent transactions itself, and commits of concurrent transactions share a WAL
flush, so there is no group commit here). Reads run on separate connections in a
repeatable-read, read-only transaction, so a document is built from one snapshot and a
slow write never holds up a read. Claims use ``FOR UPDATE SKIP LOCKED`` (``skip_locked``).

Transient conflicts between replicas (a deadlock, a serialization failure, two replicas
opening the same incident key at once, which the UNIQUE ``open_key`` refuses to the
second) roll the transaction back and run the operation again, a bounded number of times:
the second run sees what the first replica committed. A lost connection is not retried
once the transaction has begun (a commit may or may not have happened): the caller gets
StorageUnavailable, the API a 503 with Retry-After, and the sender retries.

``storage.url``: ``postgresql://user@host:5432/dbname`` (``postgres://`` too), any libpq
parameters as query arguments, plus ``?schema=NAME`` to keep Baton's tables in that schema
(created when missing). Passwords belong in ``PGPASSWORD`` or a ``.pgpass`` file.
"""

from __future__ import annotations

import math
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import structlog
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ..errors import ConfigError, PayloadError, StorageUnavailable
from ._queued import QueuedEngine, settle
from .ddl import prepare
from .tx import Tx

T = TypeVar("T")
log = structlog.get_logger("baton.store")
_STOP = object()
# Replicas starting together must not create the tables at the same time (two CREATE
# TABLE IF NOT EXISTS can both decide to create): one advisory lock orders them.
_PREPARE_LOCK = 0x6261746F6E  # "baton"
# Deadlock, serialization failure, unique violation (a concurrent insert of the same key).
_RETRYABLE = {"40P01", "40001", "23505"}
# DB-API class names, for errors that name the kind of failure but not the statement.
_KINDS = ("IntegrityError", "DataError", "OperationalError", "ProgrammingError",
          "InternalError", "NotSupportedError", "InterfaceError", "DatabaseError")


def parse_url(url: str) -> tuple[dict[str, Any], str | None]:
    """libpq connection parameters and the schema named by ``?schema=``, if any."""
    try:
        parts = urlsplit(url)
    except ValueError as e:  # "[::1" and the like; the message never quotes the URL
        raise ConfigError([f"storage.url: not a PostgreSQL connection URL: {e}"]) from None
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query
                                                      if k != "schema"])))
    try:
        params = conninfo_to_dict(rest)
    except psycopg.ProgrammingError as e:
        raise ConfigError([f"storage.url: not a PostgreSQL connection URL: {e}"]) from None
    if schema is not None and not schema:
        raise ConfigError(["storage.url: ?schema= needs a schema name"])
    return params, schema


def _kind(e: BaseException) -> str:
    return next((c.__name__ for c in type(e).__mro__ if c.__name__ in _KINDS),
                type(e).__name__)




class _Stale(Exception):
    """The connection failed before the transaction began: nothing was done, so the
    operation may run again on a new connection (a server restart closes idle ones)."""


class PostgresEngine(QueuedEngine):
    """Runs operations on PostgreSQL connections in background threads."""

    paramstyle = "pyformat"
    skip_locked = True

    def __init__(self, url: str, busy_timeout: float = 5.0, max_pending: int = 10000,
                 writers: int = 4, readers: int = 2, retries: int = 3,
                 timeout: float = 10.0, max_queue_age: float = 2.0,
                 max_pending_bytes: int = 64 * 1024 * 1024) -> None:
        params, self._schema = parse_url(url)
        params.setdefault("application_name", "baton")
        params.setdefault("connect_timeout", str(max(2, math.ceil(busy_timeout))))
        # A peer that vanishes without closing the connection (a network partition) is
        # noticed in seconds, not after the kernel's two hours.
        for key, value in (("keepalives", "1"), ("keepalives_idle", "10"),
                           ("keepalives_interval", "5"), ("keepalives_count", "3")):
            params.setdefault(key, value)
        self._params = params
        self._lock_timeout_ms = max(1, int(busy_timeout * 1000))
        self._max_pending = max_pending
        self.timeout, self.max_queue_age = timeout, max_queue_age
        self.max_pending_bytes = max_pending_bytes
        self._init_backlogs()
        self._writers, self._readers, self._retries = writers, readers, retries
        self._writes: queue.Queue[Any] = queue.Queue()
        # The dispatcher's writes (claims, outcomes, timers) on a connection of their own,
        # so paging goes on while request writes occupy every other writer.
        self._priority: queue.Queue[Any] = queue.Queue()
        self._reads: queue.Queue[Any] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._running = False

    # --- connections -----------------------------------------------------------------
    def _connect(self, deadline: bool = True) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(**self._params, autocommit=True)
        except psycopg.Error as e:
            raise StorageUnavailable(f"cannot connect to PostgreSQL: {e}") from None
        try:
            # busy_timeout's meaning here: how long a statement waits for a row lock
            # before the operation fails with a 503 instead of queueing up requests.
            conn.execute(sql.SQL("SET lock_timeout = {}").format(
                sql.Literal(self._lock_timeout_ms)))
            if deadline:
                # The server gives up on a statement, and on a transaction its client left
                # idle (a client that hung mid-transaction), by the callers' deadline:
                # their locks go, and the operation fails instead of holding a writer.
                ms = sql.Literal(max(1, int(self.timeout * 1000)))
                conn.execute(sql.SQL("SET statement_timeout = {}").format(ms))
                conn.execute(sql.SQL("SET idle_in_transaction_session_timeout = {}")
                             .format(ms))
            if self._schema is not None:
                conn.execute(sql.SQL("SET search_path TO {}").format(
                    sql.Identifier(self._schema)))
        except BaseException:
            conn.close()
            raise
        return conn

    def start(self) -> None:
        conn = self._connect(deadline=False)  # creating tables may take its time
        try:
            if self._schema is not None and conn.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s",
                    (self._schema,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(self._schema)))
            conn.execute("BEGIN")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PREPARE_LOCK,))
            prepare(Tx(conn, self.paramstyle))
            conn.execute("COMMIT")
        except psycopg.Error as e:
            raise StorageUnavailable(f"cannot prepare PostgreSQL storage: {e}") from None
        finally:
            conn.close()  # closing rolls back what did not commit
        self._threads = [
            threading.Thread(target=self._worker, args=(self._writes, True),
                             name=f"baton-pg-writer-{n}", daemon=True)
            for n in range(self._writers)] + [
            threading.Thread(target=self._worker, args=(self._reads, False),
                             name=f"baton-pg-reader-{n}", daemon=True)
            for n in range(self._readers)] + [
            threading.Thread(target=self._worker, args=(self._priority, True),
                             name="baton-pg-dispatcher", daemon=True)]
        for t in self._threads:
            t.start()
        self._running = True

    def stop(self) -> None:
        # Refuse new work first; then every thread finishes what is queued before its stop.
        self._running = False
        for _ in range(self._writers):
            self._writes.put(_STOP)
        for _ in range(self._readers):
            self._reads.put(_STOP)
        self._priority.put(_STOP)
        for t in self._threads:
            t.join(timeout=10)
        self._threads = []
        # A write that passed the check in ``write`` while this ran must not wait forever.
        for jobs in (self._writes, self._reads, self._priority):
            while not jobs.empty():
                item = jobs.get_nowait()
                if item is not _STOP:
                    settle(item[1], item[2], None, StorageUnavailable("storage is not open"))

    # --- worker threads --------------------------------------------------------------
    def _worker(self, jobs: queue.Queue[Any], write: bool) -> None:
        conn: list[psycopg.Connection[Any] | None] = [None]  # this thread's connection
        while True:
            item = jobs.get()
            if item is _STOP:
                break
            fn, loop, fut = item
            try:
                result = self._run(conn, fn, write)
            except BaseException as e:  # the operation's error goes to its caller
                settle(loop, fut, None, e)
            else:
                settle(loop, fut, result if write else result[0], None)
        if conn[0] is not None:
            conn[0].close()

    def _run(self, holder: list[psycopg.Connection[Any] | None], fn: Callable[[Tx], Any],
             write: bool) -> tuple[Any, int]:
        begin = "BEGIN" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        stale_retried = False
        attempt = 0
        while True:
            conn = holder[0]
            if conn is None or conn.closed:
                conn = holder[0] = self._connect()
            try:
                return self._transaction(conn, fn, begin)
            except _Stale:
                conn.close()
                holder[0] = None
                if stale_retried:
                    raise StorageUnavailable("storage unavailable: connection lost") from None
                stale_retried = True
            except psycopg.Error as e:
                if conn.broken or conn.closed:
                    conn.close()
                    holder[0] = None
                    log.error("postgresql connection lost", error=str(e))
                    raise StorageUnavailable("storage unavailable: connection lost") from None
                if e.sqlstate in _RETRYABLE and attempt < self._retries:
                    attempt += 1
                    log.info("postgresql transaction conflict; running it again",
                             sqlstate=e.sqlstate, attempt=attempt)
                    # Full jitter, so two replicas that collided do not collide again.
                    time.sleep(random.uniform(0, 0.005 * 2 ** attempt))  # noqa: S311
                    continue
                if isinstance(e, psycopg.DataError) or (e.sqlstate or "").startswith("22"):
                    # Class 22 "data exception" (or psycopg refusing a value before it is
                    # sent, as NUL in text): the request's data, not the store, is at fault,
                    # and retrying it would fail forever. A 400, not a 503.
                    log.warning("postgresql refused the data", error=str(e)[:200],
                                sqlstate=e.sqlstate)
                    raise PayloadError(f"the store refused a value of this request: "
                                       f"{str(e)[:200]}") from None
                log.error("postgresql operation failed", error=str(e), sqlstate=e.sqlstate)
                raise StorageUnavailable(f"storage error: {_kind(e)}") from None

    def _transaction(self, conn: psycopg.Connection[Any], fn: Callable[[Tx], Any],
                     begin: str) -> tuple[Any, int]:
        try:
            conn.execute(begin)
        except psycopg.OperationalError as e:
            if conn.broken or conn.closed:
                raise _Stale() from e
            raise
        tx = Tx(conn, self.paramstyle)
        try:
            result = fn(tx)
            conn.execute("COMMIT")
        except BaseException:
            if not (conn.broken or conn.closed):
                try:
                    conn.execute("ROLLBACK")
                except psycopg.Error:
                    conn.close()
            raise
        return result, tx.enqueued

    def _submit(self, item: tuple[Any, ...], background: bool, priority: bool) -> None:
        (self._priority if priority else self._writes).put(item)

    # --- the Engine interface --------------------------------------------------------
