"""A real PostgreSQL for the tests of the PostgreSQL engine: each test gets a schema of its
own (``?schema=`` in ``storage.url``), dropped afterwards.

The server comes from ``$BATON_TEST_POSTGRES_URL`` (default: trust auth on 127.0.0.1:5432,
database ``test``). ``scripts/test.sh`` uses the one there when it answers, and otherwise
starts a throwaway cluster (``scripts/postgres.sh``) and points the variable at it. If it
cannot be reached the tests fail, saying so: they are never skipped.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

PG_URL = os.environ.get("BATON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def admin() -> psycopg.Connection[Any]:
    """An autocommit connection of the test itself, beside Baton's."""
    try:
        return psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL}: {e}\nRun the tests through "
                    f"scripts/test.sh (it starts one when none answers), start one (trust "
                    f"auth, database 'test') or point $BATON_TEST_POSTGRES_URL at one; these "
                    f"tests need a real server and are never skipped.", pytrace=False)


def with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    name = f"baton_{secrets.token_hex(6)}"
    with admin() as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with admin() as conn:
            # Connections a test left behind would hold the schema's locks.
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE application_name = %s", (name,))
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
def pg_url(pg_schema: str) -> str:
    """``storage.url`` of a fresh, empty schema; Baton's connections are named after it."""
    return with_query(PG_URL, f"schema={pg_schema}&application_name={pg_schema}")


def rows(schema: str, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Read Baton's tables behind its back."""
    with admin() as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        cur = conn.execute(sql, params)
        cols = [c.name for c in cur.description or ()]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def kill_connections(schema: str) -> int:
    """Terminate Baton's server connections, as a database restart or failover would."""
    with admin() as conn:
        got = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE application_name = %s", (schema,)).fetchone()
    return int(got[0]) if got else 0


class Proxy:
    """A TCP proxy on loopback in front of the server, in a thread of its own: ``cut()``
    drops every connection and refuses new ones (the database is gone), ``restore()``
    takes them again on the same port. ``hang()`` keeps every connection open and accepts
    new ones but forwards nothing, either way (a stalled server: TCP alive, no answers),
    until ``resume()`` passes on what was held."""

    def __init__(self) -> None:
        params = conninfo_to_dict(PG_URL)
        self.upstream = (str(params.get("host", "127.0.0.1")), int(params.get("port", 5432)))
        self.user, self.dbname = params.get("user", "postgres"), params.get("dbname", "test")
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pg-proxy",
                                        daemon=True)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    def url(self, schema: str) -> str:
        return (f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.dbname}"
                f"?schema={schema}&application_name={schema}&connect_timeout=2")

    def __enter__(self) -> Proxy:
        self._thread.start()
        self.restore()
        return self

    def __exit__(self, *exc: object) -> None:
        self.resume()
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def restore(self) -> None:
        self._server = self._call(asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True))
        self.port = self._server.sockets[0].getsockname()[1]

    def hang(self) -> None:
        async def stop() -> None:
            self._flowing.clear()
        self._call(stop())

    def resume(self) -> None:
        async def go() -> None:
            self._flowing.set()
        self._call(go())

    def cut(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
                self._server = None
            for w in list(self._open):
                w.close()
        self._call(close())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._open |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    await self._flowing.wait()
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()
                self._open.discard(dst)

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
