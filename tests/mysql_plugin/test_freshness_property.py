"""Read-your-writes under interleavings (DESIGN.md rule 3) for the MySQL dialect: every
read issued after a write was acknowledged, on any connection through wirecache, sees
that write. Several PyMySQL connections (text protocol) and one mysql-connector-python
connection with prepared statements (binary protocol)."""

from __future__ import annotations

import threading
import time
import uuid

import mysql.connector
import pymysql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymysql.constants import CLIENT

from mysql_plugin.util import connect

KEYS = (1, 2, 3)
CONNECTIONS = 3
#: This connection uses prepared statements (binary protocol); the others COM_QUERY.
BINARY = 2

_settings = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Conn:
    """One connection through wirecache: PyMySQL (text, values inlined by the driver,
    multi-statements allowed) or mysql-connector-python with a prepared cursor."""

    def __init__(self, mariadb_server, proxy, binary: bool) -> None:
        self.binary = binary
        if binary:
            self.conn = mysql.connector.connect(
                host=proxy.host, port=proxy.port, user="native_user",
                password=mariadb_server.users["native_user"], database="app", use_pure=True,
                autocommit=True,
            )  # fmt: skip
            self.cur = self.conn.cursor(prepared=True)
        else:
            self.conn = connect(mariadb_server, proxy, client_flag=CLIENT.MULTI_STATEMENTS)
            self.cur = self.conn.cursor()

    def run(self, sql: str, *args: int) -> list[tuple]:
        """Run ``sql`` (``%s`` placeholders) and return the rows of its last result."""
        if self.binary and not args and not sql.lstrip().upper().startswith("SELECT"):
            # BEGIN/COMMIT cannot all be prepared: send them as text.
            with self.conn.cursor() as text:
                text.execute(sql)
            return []
        self.cur.execute(sql, args or None)
        found = list(self.cur.fetchall()) if self.cur.description else []
        if not self.binary:
            while self.cur.nextset():
                found = list(self.cur.fetchall()) if self.cur.description else []
        return [tuple(r) for r in found]

    def close(self) -> None:
        self.cur.close()
        self.conn.close()


@pytest.fixture
def kv(mariadb_server, proxy) -> str:
    name = f"kv_{uuid.uuid4().hex[:12]}"
    with pymysql.connect(**mariadb_server.pymysql_kwargs(autocommit=True)) as conn:
        conn.cursor().execute(f"CREATE TABLE {name} (k INT PRIMARY KEY, v INT NOT NULL)")
    return name


@pytest.fixture
def conns(mariadb_server, proxy):
    opened = [Conn(mariadb_server, proxy, i == BINARY) for i in range(CONNECTIONS)]
    yield opened
    for c in opened:
        c.close()


def _reset(conn: Conn, kv: str) -> None:
    conn.run(f"DELETE FROM {kv}")
    conn.run(f"INSERT INTO {kv} VALUES " + ", ".join(f"({k}, 0)" for k in KEYS))


def _assert_reads_are_cached(mariadb_server, proxy, marker: str, kv: str) -> None:
    """The properties only mean something if the cache answers these reads: repeated
    with no write between, on either protocol, they reach the origin at most once each."""
    since = mariadb_server.log_position()
    text, binary = Conn(mariadb_server, proxy, False), Conn(mariadb_server, proxy, True)
    try:
        for conn in (text, binary, text, binary):
            conn.run(f"SELECT k, v FROM {kv} ORDER BY k {marker}")
    finally:
        text.close()
        binary.close()
    assert mariadb_server.statement_count(marker, since=since) <= 2  # once per protocol


_key = st.sampled_from(KEYS)
_value = st.integers(0, 1000)
_op = st.one_of(
    st.tuples(st.just("read"), _key),
    st.tuples(st.just("read_all")),
    st.tuples(st.just("update"), _key, _value),
    st.tuples(st.just("upsert"), _key, _value),
    st.tuples(st.just("replace"), _key, _value),
    st.tuples(st.just("delete"), _key),
    st.tuples(st.just("tx_update"), _key, _value),
    st.tuples(st.just("tx_rollback"), _key, _value),
    st.tuples(st.just("multi"), _key, _value),
)
_schedule = st.lists(st.tuples(st.integers(0, CONNECTIONS - 1), _op), min_size=1, max_size=40)


def test_sequential_interleavings(mariadb_server, proxy, marker, kv, conns):
    """One step at a time, in the order hypothesis picks, over several connections (one
    of them on the binary protocol): every read must equal a model of the table."""

    @_settings
    @given(_schedule)
    def check(schedule):
        model = {k: 0 for k in KEYS}
        _reset(conns[0], kv)
        for index, op in schedule:
            conn = conns[index]
            name = op[0]
            if name == "read":
                found = conn.run(f"SELECT v FROM {kv} WHERE k = %s {marker}", op[1])
                assert (found[0][0] if found else None) == model.get(op[1]), (index, op)
            elif name == "read_all":
                found = conn.run(f"SELECT k, v FROM {kv} ORDER BY k {marker}")
                assert found == sorted(model.items()), (index, op)
            elif name == "update":
                conn.run(f"UPDATE {kv} SET v = %s WHERE k = %s", op[2], op[1])
                if op[1] in model:
                    model[op[1]] = op[2]
            elif name == "upsert":
                conn.run(f"INSERT INTO {kv} VALUES (%s, %s) ON DUPLICATE KEY UPDATE v = %s",
                         op[1], op[2], op[2])  # fmt: skip
                model[op[1]] = op[2]
            elif name == "replace":
                conn.run(f"REPLACE INTO {kv} VALUES (%s, %s)", op[1], op[2])
                model[op[1]] = op[2]
            elif name == "delete":
                conn.run(f"DELETE FROM {kv} WHERE k = %s", op[1])
                model.pop(op[1], None)
            elif name in ("tx_update", "tx_rollback"):
                conn.run("BEGIN")
                conn.run(f"UPDATE {kv} SET v = %s WHERE k = %s", op[2], op[1])
                found = conn.run(f"SELECT v FROM {kv} WHERE k = %s {marker}", op[1])
                assert found == ([(op[2],)] if op[1] in model else []), (index, op)
                if name == "tx_update":
                    conn.run("COMMIT")
                    if op[1] in model:
                        model[op[1]] = op[2]
                else:
                    conn.run("ROLLBACK")
            elif name == "multi":
                text = conns[0 if index == BINARY else index]  # multi-statements: text only
                text.run(f"SELECT v FROM {kv} WHERE k = {op[1]}; "
                         f"UPDATE {kv} SET v = {op[2]} WHERE k = {op[1]}")  # fmt: skip
                if op[1] in model:
                    model[op[1]] = op[2]

    check()
    _assert_reads_are_cached(mariadb_server, proxy, marker, kv)


_thread_op = st.one_of(
    st.tuples(st.just("read"), _key),
    st.tuples(st.just("read_all")),
    st.tuples(st.just("bump"), _key),
    st.tuples(st.just("tx_bump"), _key),
)


def test_concurrent_interleavings(mariadb_server, proxy, marker, kv, conns):
    """Threads run their own operations at the same time. Values only grow (each write
    adds one), so a read must return at least the value of every write acknowledged on
    any connection before the read was issued."""

    @_settings
    @given(st.lists(st.lists(_thread_op, min_size=1, max_size=15), min_size=CONNECTIONS,
                    max_size=CONNECTIONS))  # fmt: skip
    def check(plans):
        _reset(conns[0], kv)
        writes: list[tuple[float, int, int]] = []  # (acknowledged at, key, value)
        reads: list[tuple[float, int, int]] = []  # (issued at, key, value seen)
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(plans))

        def worker(index: int, plan) -> None:
            conn = conns[index]
            try:
                barrier.wait(5)
                for op in plan:
                    if op[0] in ("read", "read_all"):
                        issued = time.monotonic()
                        if op[0] == "read":
                            found = conn.run(f"SELECT k, v FROM {kv} WHERE k = %s {marker}",
                                             op[1])  # fmt: skip
                        else:
                            found = conn.run(f"SELECT k, v FROM {kv} ORDER BY k {marker}")
                        reads.extend((issued, k, v) for k, v in found)
                    else:
                        # LAST_INSERT_ID(expr) hands the new value back to this connection.
                        bump = f"UPDATE {kv} SET v = LAST_INSERT_ID(v + 1) WHERE k = %s"
                        if op[0] == "tx_bump":
                            conn.run("BEGIN")
                        conn.run(bump, op[1])
                        ((value,),) = conn.run("SELECT LAST_INSERT_ID()")
                        if op[0] == "tx_bump":
                            conn.run("COMMIT")
                        writes.append((time.monotonic(), op[1], value))
            except BaseException as e:  # reported on the main thread
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i, p)) for i, p in enumerate(plans)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors
        for issued, key, seen in reads:
            acknowledged = [v for at, k, v in writes if k == key and at < issued]
            assert seen >= max(acknowledged, default=0), (key, seen, acknowledged)

    check()
    _assert_reads_are_cached(mariadb_server, proxy, marker, kv)
