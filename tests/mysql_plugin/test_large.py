"""Large packets and the commands wirecache only relays, through wirecache with real
drivers: a COM_QUERY of more than 16 MiB (split into 0xFFFFFF-byte packets), a result
row of more than 16 MiB, COM_STMT_SEND_LONG_DATA and COM_STMT_FETCH (a server-side
cursor).

The origin's ``max_allowed_packet`` is raised for these tests as root over a direct
connection (a new value applies to connections opened afterwards) and put back after.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import mysql.connector
import pymysql
import pytest
from wirecache_mysql.packets import PacketReader, build_packet

from mysql_plugin.util import connect, proxy_kwargs, rows, table_name

MAX_PACKET = 64 * 1024 * 1024
BLOB_SIZE = 17 * 1024 * 1024 + 12345  # over 0xFFFFFF: two packets each way
SEED = 20240617
ROWS = 10


def blob(size: int = BLOB_SIZE, seed: int = SEED) -> bytes:
    """Incompressible bytes, the same in the child process and here."""
    return random.Random(seed).randbytes(size)


@pytest.fixture
def big_packets(mariadb_server):
    """The origin accepts packets up to 64 MiB on the connections opened from now on."""
    admin = pymysql.connect(**mariadb_server.pymysql_kwargs(tls=False, autocommit=True))
    with admin, admin.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.max_allowed_packet")
        ((before,),) = cur.fetchall()
        cur.execute(f"SET GLOBAL max_allowed_packet = {MAX_PACKET}")
        try:
            yield
        finally:
            cur.execute(f"SET GLOBAL max_allowed_packet = {before}")


# -- one process for the big client side ------------------------------------------
#
# The proxy runs in this process; the client that sends and receives the big packets
# runs in another one, so that this process's memory is the proxy's.

_CLIENT = r"""
import hashlib, json, random, sys
import pymysql, pymysql.cursors

spec = json.loads(sys.argv[1])
conn = pymysql.connect(**spec["connect"], max_allowed_packet=64 * 1024 * 1024,
                       cursorclass=pymysql.cursors.SSCursor)
out = []
with conn, conn.cursor() as cur:
    for op, sql, arg in spec["steps"]:
        if op == "insert":  # arg: [id, size, seed]
            data = random.Random(arg[2]).randbytes(arg[1])
            cur.execute(sql, (arg[0], data))
            out.append(cur.rowcount)
        else:  # streamed: one row at a time
            cur.execute(sql)
            out.append([[len(v), hashlib.sha256(v).hexdigest()] if isinstance(v, bytes) else v
                        for row in cur for v in row])
print(json.dumps(out))
"""


def run_client(mariadb_server, proxy, steps) -> list:
    spec = {"connect": proxy_kwargs(mariadb_server, proxy), "steps": steps}
    done = subprocess.run([sys.executable, "-c", _CLIENT, json.dumps(spec)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _status_kb(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    assert match is not None
    return int(match.group(1))


def measured(fn):
    """Run ``fn``; return its result and how much the peak resident size of this process
    (the proxy's) grew meanwhile, in kB."""
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM)
    baseline = _status_kb("VmRSS")
    result = fn()
    return result, _status_kb("VmHWM") - baseline


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_16mib_query_and_result(mariadb_server, proxy, big_packets, marker):
    table = table_name()
    digest = hashlib.sha256(blob()).hexdigest()
    count = f"SELECT COUNT(*), SUM(LENGTH(b)) FROM {table} {marker}"
    big = f"SELECT id, b FROM {table} WHERE id = 1 /* big */ {marker}"
    assert proxy.cache().classify(big.encode()).cacheable  # only the size stops it
    with connect(mariadb_server, proxy) as conn:
        rows(conn, f"CREATE TABLE {table} (id INT PRIMARY KEY, b LONGBLOB)")
        rows(conn, f"INSERT INTO {table} VALUES (2, 'small')")
        for _ in range(2):
            assert rows(conn, count) == [(1, 5)]
    assert mariadb_server.statement_count(count) == 1

    # A COM_QUERY of ~2 × 17 MiB (PyMySQL escapes the bytes into the text) through
    # the proxy: split packets relayed one by one; the write invalidates.
    inserted = run_client(mariadb_server, proxy, [
        ["insert", f"INSERT INTO {table} (id, b) VALUES (%s, %s)", [1, BLOB_SIZE, SEED]],
    ])  # fmt: skip
    assert inserted == [1]
    with connect(mariadb_server, proxy) as conn:
        assert rows(conn, count) == [(2, BLOB_SIZE + 5)]
        assert rows(conn, count) == [(2, BLOB_SIZE + 5)]
    assert mariadb_server.statement_count(count) == 2  # invalidated once, cached again

    # A result row of 17 MiB: intact, every time from the origin (over max_entry_bytes).
    for _ in range(2):
        assert run_client(mariadb_server, proxy, [["select", big, None]]) == [
            [1, [BLOB_SIZE, digest]]
        ]
    assert mariadb_server.statement_count(big) == 2

    # The same row ten times over, ~170 MiB in all, streamed: the proxy holds a packet
    # or so at a time, never the result.
    copies = " UNION ALL ".join(f"SELECT {n}" for n in range(ROWS))
    many = f"SELECT t.id, t.b FROM {table} t JOIN ({copies}) n WHERE t.id = 1 {marker}"
    assert proxy.cache().classify(many.encode()).cacheable
    growth = []
    for _ in range(2):
        answer, grown = measured(
            lambda: run_client(mariadb_server, proxy, [["select", many, None]])
        )
        assert answer == [[1, [BLOB_SIZE, digest]] * ROWS]
        growth.append(grown)
    assert mariadb_server.statement_count(many) == 2

    # What the origin holds, directly.
    direct = pymysql.connect(**mariadb_server.pymysql_kwargs("native_user", tls=False),
                             max_allowed_packet=MAX_PACKET)  # fmt: skip
    with direct:
        assert rows(direct, f"SELECT SHA2(b, 256) FROM {table} WHERE id = 1") == [(digest,)]
    # A 16 MiB packet is held whole, with a few copies of it on its way (50 to 65 MB
    # measured); the result is ten times that.
    assert max(growth) < 110_000, f"peak RSS grew by {growth} kB for a 170 MiB result"


# -- COM_STMT_SEND_LONG_DATA and COM_STMT_FETCH (mysql-connector-python, pure) --------


def global_status(mariadb_server, name: str) -> int:
    """A server status counter, read directly at the origin."""
    admin = pymysql.connect(**mariadb_server.pymysql_kwargs(tls=False))
    with admin:
        ((_, value),) = rows(admin, "SHOW GLOBAL STATUS LIKE %s", (name,))
    return int(value)


def connector(mariadb_server, proxy):
    return mysql.connector.connect(
        host=proxy.host, port=proxy.port, user="native_user",
        password=mariadb_server.users["native_user"], database="app", use_pure=True,
        autocommit=True,
    )  # fmt: skip


def test_send_long_data_passes_through_and_is_not_cached(mariadb_server, proxy, table,
                                                         marker):  # fmt: skip
    """A file-like parameter of a prepared statement goes to the origin in
    COM_STMT_SEND_LONG_DATA packets (128 KiB each) before the execute, which then
    carries no value for it: such an execute is relayed and never cached; the
    statement's next executions with ordinary values are cached again."""
    data = blob(3 * 1024 * 1024 + 7)
    long_data_before = global_status(mariadb_server, "Com_stmt_send_long_data")
    blobs = table_name()
    read = f"SELECT id, v FROM {table} WHERE v = %s {marker}"
    count = f"SELECT COUNT(*), SUM(LENGTH(b)) FROM {blobs} {marker}"
    conn = connector(mariadb_server, proxy)
    try:
        cur = conn.cursor(prepared=True)
        for _ in range(2):
            cur.execute(read, (io.BytesIO(b"one"),))
            assert cur.fetchall() == [(1, "one")]
        assert mariadb_server.statement_count(read.split(" %s")[0]) == 2
        for _ in range(2):
            cur.execute(read, ("two",))
            assert cur.fetchall() == [(2, "two")]
        assert mariadb_server.statement_count(read.split(" %s")[0]) == 3

        cur.execute(f"CREATE TABLE {blobs} (id INT PRIMARY KEY, b LONGBLOB)")
        for _ in range(2):
            cur.execute(count)
            assert cur.fetchall() == [(0, None)]
        cur.execute(f"INSERT INTO {blobs} VALUES (%s, %s)", (1, io.BytesIO(data)))
        assert cur.rowcount == 1
        # 3 MiB in 128 KiB pieces (and one piece for each b"one" above).
        sent = global_status(mariadb_server, "Com_stmt_send_long_data") - long_data_before
        assert sent == 2 + -(-len(data) // 131072)
        cur.execute(count)  # the write invalidated
        assert cur.fetchall() == [(1, len(data))]
        cur.execute(f"SELECT SHA2(b, 256) FROM {blobs} WHERE id = %s", (1,))
        assert cur.fetchall() == [(hashlib.sha256(data).hexdigest(),)]
        cur.close()
    finally:
        conn.close()
    assert mariadb_server.statement_count(count) == 2


CURSOR_TYPE_READ_ONLY = 1
SERVER_STATUS_CURSOR_EXISTS = 0x40
SERVER_STATUS_LAST_ROW_SENT = 0x80


def test_stmt_fetch_through_a_cursor(mariadb_server, proxy, table, marker):
    """An execute that opens a read-only cursor answers with the columns only; the rows
    come with COM_STMT_FETCH. mysql-connector-python's prepared cursor never asks for a
    cursor (nor does any other installed Python client), so its connection-level calls
    send the commands; the responses are read by the driver."""
    sql = f"SELECT id, v FROM {table} WHERE id >= ? ORDER BY id {marker}"
    fetches_before = global_status(mariadb_server, "Com_stmt_fetch")
    conn = connector(mariadb_server, proxy)
    try:
        rows_of = []
        for _ in range(2):
            stmt = conn.cmd_stmt_prepare(sql.encode())
            stmt_id = stmt["statement_id"]
            _ncols, columns, eof = conn.cmd_stmt_execute(
                stmt_id, data=(1,), parameters=stmt["parameters"], flags=CURSOR_TYPE_READ_ONLY
            )
            assert eof["status_flag"] & SERVER_STATUS_CURSOR_EXISTS
            fetched = []
            while True:
                conn.cmd_stmt_fetch(stmt_id, 1)
                got, eof = conn.get_rows(binary=True, columns=columns)
                fetched += got
                if eof["status_flag"] & SERVER_STATUS_LAST_ROW_SENT:
                    break
            rows_of.append([tuple(r) for r in fetched])
            conn.cmd_stmt_close(stmt_id)
        assert rows_of == [[(1, "one"), (2, "two")]] * 2
        # Three fetches per cursor (a row, a row, the end), all at the origin.
        assert global_status(mariadb_server, "Com_stmt_fetch") - fetches_before == 6
        # The cursor's execute is never answered from the cache.
        assert mariadb_server.statement_count(marker) == 2

        # The session goes on as usual: the same statement without a cursor is cached,
        # and a write is seen.
        cur = conn.cursor(prepared=True)
        for _ in range(2):
            cur.execute(sql.replace("?", "%s"), (2,))
            assert cur.fetchall() == [(2, "two")]
        assert mariadb_server.statement_count(marker) == 3
        cur.execute(f"UPDATE {table} SET v = 'deux' WHERE id = 2")
        cur.execute(sql.replace("?", "%s"), (2,))
        assert cur.fetchall() == [(2, "deux")]
        assert mariadb_server.statement_count(marker) == 4
        cur.close()
    finally:
        conn.close()


# -- payloads of exactly 0xFFFFFF bytes: an empty packet ends them ----------------------


def test_payloads_of_exactly_16mib_minus_one(mariadb_server, proxy, big_packets, marker):
    """A command and a result row whose payloads are exactly 0xFFFFFF bytes long are
    followed by an empty packet; wirecache must relay it and keep its bearings."""
    head = "SELECT LENGTH('"
    tail = f"') {marker}"
    filler = 0xFFFFFF - 1 - len(head) - len(tail)  # the command byte counts
    query = head + "y" * filler + tail
    # A text row: a length-encoded string with a 4-byte prefix.
    row = f"SELECT REPEAT('z', {0xFFFFFF - 4}) {marker}"
    with connect(mariadb_server, proxy, max_allowed_packet=MAX_PACKET) as conn:
        for _ in range(2):
            assert rows(conn, query) == [(filler,)]
            ((value,),) = rows(conn, row)
            assert len(value) == 0xFFFFFF - 4
            for _ in range(2):
                assert rows(conn, f"SELECT 'after' {marker}") == [("after",)]
    assert mariadb_server.statement_count("SELECT LENGTH('yyy") == 2
    assert mariadb_server.statement_count("SELECT REPEAT('z'") == 2
    # A command of 16 MiB or more is not classified: it may have written anything, so
    # each one empties the cache of its database (the read is cached again after it).
    assert mariadb_server.statement_count(f"SELECT 'after' {marker}") == 2


@pytest.mark.parametrize("driver", ["mariadb", "mysql2"])
def test_node_big_rows_text_and_binary(mariadb_server, proxy, big_packets, marker, driver):
    """The Node mariadb connector negotiates CLIENT_DEPRECATE_EOF (mysql2 and the Python
    clients, libmariadb's mysqlclient included, do not): then the rows end with an OK
    packet whose header, 0xFE, also starts a text row over 16 MiB (its length-encoded
    prefix), told apart only by its size."""
    from mysql_plugin.test_node_drivers import config, run_node

    q = f"SELECT REPEAT('w', {BLOB_SIZE}) AS s, 7 AS n {marker}"
    small = f"SELECT 'small' {marker}"
    steps = [["query", q, []], ["query", small, []], ["execute", q, []], ["query", small, []]]
    results = run_node(driver, config(mariadb_server, proxy), steps * 2)
    for (text,), (after,), (binary,), _ in zip(*[iter(results)] * 4, strict=True):
        assert (len(text[0]), text[0][:3], text[1]) == (BLOB_SIZE, "www", 7)
        assert (len(binary[0]), binary[1]) == (BLOB_SIZE, 7)
        assert after == ["small"]
    assert mariadb_server.statement_count(q) == 4  # never cached: over max_entry_bytes
    assert mariadb_server.statement_count(small) == 1


def _exchange_with_cursor(host: str, port: int, password: str) -> list[list[bytes]]:
    """Prepare, execute with a read-only cursor, fetch, on a connection that negotiated
    CLIENT_DEPRECATE_EOF; the payloads of each response. mysql-connector does the
    handshake; its parsers do not know DEPRECATE_EOF, so the commands are raw."""
    from mysql.connector.constants import ClientFlag

    conn = mysql.connector.connect(
        host=host, port=port, user="native_user", password=password, database="app",
        use_pure=True, autocommit=True, ssl_disabled=True,
        client_flags=[ClientFlag.DEPRECATE_EOF],
    )  # fmt: skip
    sock = conn._socket.sock
    sock.settimeout(10)
    reader = PacketReader()

    def command(payload: bytes, last: Callable[[bytes], bool]) -> list[bytes]:
        sock.sendall(build_packet(0, payload))
        got: list[bytes] = []
        while not got or not last(got[-1]):
            while (message := reader.next_message()) is None:
                reader.receive_data(sock.recv(65536))
            got.append(message.payload)
        return got

    try:
        # PREPARE_OK and one column definition (no EOF under DEPRECATE_EOF).
        prepared = command(b"\x16SELECT 1 UNION SELECT 2", lambda p: p[0] == 3)
        stmt = prepared[0][1:5]
        executed = command(b"\x17" + stmt + bytes([CURSOR_TYPE_READ_ONLY, 1, 0, 0, 0]),
                           lambda p: p[0] == 0xFE)  # fmt: skip
        fetched = command(b"\x1c" + stmt + (5).to_bytes(4, "little"), lambda p: p[0] == 0xFE)
        prepared[0] = prepared[0][:1] + b"ID!!" + prepared[0][5:]  # differs per connection
        return [prepared, executed, fetched]
    finally:
        sock.close()


def test_cursor_under_deprecate_eof(mariadb_server, proxy):
    """MariaDB ends the metadata of a cursor's execute with an OK (header 0xFE) carrying
    SERVER_STATUS_CURSOR_EXISTS even under CLIENT_DEPRECATE_EOF; the rows come with
    COM_STMT_FETCH. No installed client opens a cursor on such a connection, so the
    commands are sent raw after a real driver's handshake: wirecache answers exactly
    what the origin does, and both executes reach the origin."""
    password = mariadb_server.users["native_user"]
    direct = _exchange_with_cursor(mariadb_server.host, mariadb_server.port, password)
    before = global_status(mariadb_server, "Com_stmt_fetch")
    for _ in range(2):
        assert _exchange_with_cursor(proxy.host, proxy.port, password) == direct
    assert global_status(mariadb_server, "Com_stmt_fetch") - before == 2
    _prepared, executed, fetched = direct
    assert executed[-1][0] == 0xFE and executed[-1][3] & SERVER_STATUS_CURSOR_EXISTS
    assert [p[0] for p in fetched] == [0, 0, 0xFE]  # two binary rows, then the end
    assert fetched[-1][3] & SERVER_STATUS_LAST_ROW_SENT
