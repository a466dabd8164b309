"""What wirecache only relays: cancel, LISTEN/NOTIFY, COPY both ways, and large results
that stream through without being held in memory or cached."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import asyncpg
import psycopg
import pytest

from postgres_plugin.util import connect, proxy_dsn


def _asyncpg_connect(pg_server, proxy, user: str = "postgres"):
    return asyncpg.connect(
        host=proxy.host, port=proxy.port, user=user, password=pg_server.users[user],
        database="app", ssl=False,
    )  # fmt: skip


def _active_on_origin(pg_server, marker: str) -> int:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s",
            (f"%{marker}%",),
        ).fetchone()[0]


# -- cancel -----------------------------------------------------------------------
#
# psycopg's legacy ``cancel()`` calls libpq's blocking PQcancel while holding the GIL,
# which would freeze the in-process proxy thread that must answer it; ``cancel_safe()``
# (libpq 17+) waits in Python.


def _cancel_soon(conn: psycopg.Connection, delay: float = 0.3) -> threading.Timer:
    timer = threading.Timer(delay, conn.cancel_safe, kwargs={"timeout": 5})
    timer.start()
    return timer


def test_psycopg_cancel(pg_server, proxy, marker):
    with connect(pg_server, proxy) as conn:
        started = time.monotonic()
        timer = _cancel_soon(conn)
        try:
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute(f"SELECT pg_sleep(10) {marker}")
        finally:
            timer.join()
        assert time.monotonic() - started < 5
        assert _active_on_origin(pg_server, marker) == 0  # cancelled at the origin too
        assert conn.execute("SELECT 1 + 1").fetchone() == (2,)


def test_cancel_inside_a_transaction_then_rollback(pg_server, proxy, marker):
    with connect(pg_server, proxy) as conn:
        conn.execute("BEGIN")
        timer = _cancel_soon(conn)
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(f"SELECT pg_sleep(10) {marker}")
        timer.join()
        conn.execute("ROLLBACK")
        assert conn.execute("SELECT 'alive'").fetchone() == ("alive",)


def test_cancel_with_a_wrong_key_does_nothing(pg_server, proxy, marker):
    """A CancelRequest with a made-up key is ignored (as PostgreSQL does)."""
    import socket
    import struct

    with connect(pg_server, proxy) as conn:
        with socket.create_connection((proxy.host, proxy.port), timeout=5) as sock:
            sock.sendall(struct.pack("!iiii", 16, 80877102, 12345, 67890))
            assert sock.recv(100) == b""  # closed without an answer
        assert conn.execute(f"SELECT pg_sleep(0.2), 'not cancelled' {marker}").fetchone()[1] == (
            "not cancelled"
        )


def test_asyncpg_timeout_cancels(pg_server, proxy, marker):
    async def main() -> tuple[float, int]:
        conn = await _asyncpg_connect(pg_server, proxy)
        try:
            started = time.monotonic()
            with pytest.raises(asyncio.TimeoutError):
                await conn.fetchval(f"SELECT pg_sleep(10) {marker}", timeout=0.5)
            elapsed = time.monotonic() - started
            return elapsed, await conn.fetchval("SELECT 41 + 1")
        finally:
            await conn.close()

    elapsed, value = asyncio.run(main())
    assert elapsed < 5
    assert value == 42
    deadline = time.monotonic() + 5
    while _active_on_origin(pg_server, marker):
        assert time.monotonic() < deadline, "the origin is still running the cancelled query"
        time.sleep(0.05)


# -- LISTEN / NOTIFY ---------------------------------------------------------------


def test_listen_notify_psycopg(pg_server, proxy):
    channel = f"ch_{uuid.uuid4().hex[:8]}"
    with connect(pg_server, proxy) as listener, connect(pg_server, proxy) as notifier:
        listener.execute(f"LISTEN {channel}")
        notifier.execute(f"NOTIFY {channel}, 'first'")
        notifier.execute("SELECT pg_notify(%s, %s)", (channel, "second"))
        got = list(listener.notifies(timeout=5, stop_after=2))
        assert [(n.channel, n.payload) for n in got] == [(channel, "first"), (channel, "second")]
        listener.execute(f"UNLISTEN {channel}")
        notifier.execute(f"NOTIFY {channel}, 'unheard'")
        assert list(listener.notifies(timeout=0.3)) == []
        assert listener.execute("SELECT 'still fine'").fetchone() == ("still fine",)


def test_notification_during_cached_reads(pg_server, proxy, marker):
    """A notification arriving between cached reads reaches the listener, and the
    reads stay correct."""
    channel = f"ch_{uuid.uuid4().hex[:8]}"
    query = f"SELECT 'cached' {marker}"
    with connect(pg_server, proxy) as listener, connect(pg_server, proxy) as notifier:
        listener.execute(f"LISTEN {channel}")
        assert listener.execute(query).fetchone() == ("cached",)
        notifier.execute(f"NOTIFY {channel}, 'ping'")
        time.sleep(0.1)
        assert listener.execute(query).fetchone() == ("cached",)
        got = list(listener.notifies(timeout=5, stop_after=1))
        assert [n.payload for n in got] == ["ping"]


def test_listen_notify_asyncpg(pg_server, proxy):
    channel = f"ch_{uuid.uuid4().hex[:8]}"

    async def main() -> list[tuple[str, str]]:
        listener = await _asyncpg_connect(pg_server, proxy)
        notifier = await _asyncpg_connect(pg_server, proxy, "scram_user")
        got: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        try:
            await listener.add_listener(channel, lambda _c, _pid, ch, payload: got.put_nowait(
                (ch, payload)))  # fmt: skip
            await notifier.execute(f"NOTIFY {channel}, 'hello'")
            await notifier.execute(f"NOTIFY {channel}, 'again'")
            return [await asyncio.wait_for(got.get(), 5) for _ in range(2)]
        finally:
            await listener.close()
            await notifier.close()

    assert asyncio.run(main()) == [(channel, "hello"), (channel, "again")]


# -- COPY --------------------------------------------------------------------------


@pytest.fixture
def copy_table(pg_server) -> str:
    name = f"copy_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (id int, body text)")
    return name


def test_copy_to_stdout(pg_server, proxy, marker, copy_table):
    with psycopg.connect(pg_server.dsn(), autocommit=True) as direct:
        direct.execute(
            f"INSERT INTO {copy_table} SELECT i, repeat(md5(i::text), 20) "
            f"FROM generate_series(1, 5000) i"
        )
    expected = b"".join(
        b"%d\t%s\n" % (i, __import__("hashlib").md5(str(i).encode()).hexdigest().encode() * 20)
        for i in range(1, 5001)
    )
    sql = f"COPY (SELECT * FROM {copy_table} ORDER BY id) TO STDOUT {marker}"
    with connect(pg_server, proxy) as conn:
        for _ in range(2):
            with conn.cursor().copy(sql) as copy:
                data = b"".join(bytes(chunk) for chunk in copy)
            assert data == expected
        assert conn.execute("SELECT 'after copy'").fetchone() == ("after copy",)
    assert pg_server.statement_count(marker) == 2  # COPY is never answered from the cache


def test_copy_from_stdin(pg_server, proxy, copy_table):
    rows = [(i, f"line {i}\twith tab") for i in range(20000)]
    with connect(pg_server, proxy) as conn:
        with conn.cursor().copy(f"COPY {copy_table} (id, body) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        assert conn.execute(f"SELECT count(*) FROM {copy_table}").fetchone() == (20000,)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as direct:
        got = direct.execute(f"SELECT id, body FROM {copy_table} ORDER BY id").fetchall()
    assert got == rows


def test_copy_from_stdin_bad_data_keeps_the_session(pg_server, proxy, copy_table):
    with connect(pg_server, proxy) as conn:
        copy_sql = f"COPY {copy_table} (id, body) FROM STDIN"
        with (
            pytest.raises(psycopg.errors.InvalidTextRepresentation),
            conn.cursor().copy(copy_sql) as copy,
        ):
            copy.write(b"1\tok\nnot-a-number\tbad\n")
        assert conn.execute(f"SELECT count(*) FROM {copy_table}").fetchone() == (0,)


# -- large results -------------------------------------------------------------------

_CLIENT = """
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    rows = total = 0
    with conn.cursor() as cur:
        for (value,) in cur.stream(sys.argv[2]):
            rows += 1
            total += len(value)
    print(rows, total)
"""


def _status_kb(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    assert match is not None
    return int(match.group(1))


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_large_result_streams_and_is_not_cached(pg_server, proxy, marker):
    """200 MB through the in-process proxy (the client is another process): the peak
    resident size of this process grows by far less than the result, and the result,
    over max_entry_bytes, reaches the origin every time."""
    rows, size = 200, 1_000_000
    query = f"SELECT repeat('x', {size}) FROM generate_series(1, {rows}) {marker}"
    assert proxy.cache().classify(query.encode()).cacheable  # only the size stops it
    dsn = proxy_dsn(pg_server, proxy)
    growth = []
    for _ in range(2):
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM)
        baseline = _status_kb("VmRSS")
        out = subprocess.run(
            [sys.executable, "-c", _CLIENT, dsn, query], capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [str(rows), str(rows * size)]
        growth.append(_status_kb("VmHWM") - baseline)
    assert max(growth) < 30_000, f"peak RSS grew by {growth} kB for a 200 MB result"
    assert pg_server.statement_count(marker) == 2
