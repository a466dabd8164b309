"""Read-your-writes under interleavings (DESIGN.md rule 3): every read issued after a
write was acknowledged, on any connection through wirecache, sees that write."""

from __future__ import annotations

import functools
import threading
import time
import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postgres_plugin.util import connect

KEYS = (1, 2, 3)
CONNECTIONS = 3
#: This connection uses the extended query protocol (parameters); the others the simple.
EXTENDED = 2

_settings = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def kv(pg_server) -> str:
    name = f"kv_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (k int PRIMARY KEY, v int NOT NULL)")
    return name


def _run(conn: psycopg.Connection, extended: bool, sql: str, *args: int) -> psycopg.Cursor:
    """Run ``sql`` (``%s`` placeholders for ints) over the extended protocol with
    parameters, or over the simple protocol with the values inlined."""
    if extended:
        return conn.execute(sql, args)
    return conn.execute(sql % args)


def _assert_reads_are_cached(pg_server, proxy, marker: str, kv: str) -> None:
    """The properties only mean something if the cache answers these reads: repeated
    with no write between, on either protocol, they reach the origin at most once."""
    since = pg_server.log_position()
    with connect(pg_server, proxy) as conn:
        for extended in (False, True, False, True):
            _run(conn, extended, f"SELECT k, v FROM {kv} ORDER BY k {marker}")
    assert pg_server.statement_count(marker, since=since) <= 2  # once per protocol


_key = st.sampled_from(KEYS)
_value = st.integers(0, 1000)
_op = st.one_of(
    st.tuples(st.just("read"), _key),
    st.tuples(st.just("read_all")),
    st.tuples(st.just("update"), _key, _value),
    st.tuples(st.just("upsert"), _key, _value),
    st.tuples(st.just("delete"), _key),
    st.tuples(st.just("tx_update"), _key, _value),
    st.tuples(st.just("multi"), _key, _value),
)
_schedule = st.lists(st.tuples(st.integers(0, CONNECTIONS - 1), _op), min_size=1, max_size=40)


def test_sequential_interleavings(pg_server, proxy, marker, kv):
    """One step at a time, in the order hypothesis picks, over several connections (one
    of them on the extended protocol): every read must equal a model of the table."""
    conns = [connect(pg_server, proxy) for _ in range(CONNECTIONS)]
    try:

        @_settings
        @given(_schedule)
        def check(schedule):
            model = {k: 0 for k in KEYS}
            conns[0].execute(
                f"TRUNCATE {kv}; INSERT INTO {kv} VALUES " + ", ".join(f"({k}, 0)" for k in KEYS)
            )
            for index, op in schedule:
                run = functools.partial(_run, conns[index], index == EXTENDED)
                name = op[0]
                if name == "read":
                    row = run(f"SELECT v FROM {kv} WHERE k = %s {marker}", op[1]).fetchone()
                    assert (row[0] if row else None) == model.get(op[1]), (index, op)
                elif name == "read_all":
                    rows = run(f"SELECT k, v FROM {kv} ORDER BY k {marker}").fetchall()
                    assert rows == sorted(model.items()), (index, op)
                elif name == "update":
                    run(f"UPDATE {kv} SET v = %s WHERE k = %s", op[2], op[1])
                    if op[1] in model:
                        model[op[1]] = op[2]
                elif name == "upsert":
                    run(
                        f"INSERT INTO {kv} VALUES (%s, %s) "
                        f"ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v", op[1], op[2],
                    )  # fmt: skip
                    model[op[1]] = op[2]
                elif name == "delete":
                    run(f"DELETE FROM {kv} WHERE k = %s", op[1])
                    model.pop(op[1], None)
                elif name == "tx_update":
                    run("BEGIN")
                    run(f"UPDATE {kv} SET v = %s WHERE k = %s", op[2], op[1])
                    run("COMMIT")
                    if op[1] in model:
                        model[op[1]] = op[2]
                elif name == "multi":  # the simple protocol only
                    conns[index].execute(
                        f"SELECT v FROM {kv} WHERE k = {op[1]}; "
                        f"UPDATE {kv} SET v = {op[2]} WHERE k = {op[1]}"
                    )
                    if op[1] in model:
                        model[op[1]] = op[2]

        check()
    finally:
        for conn in conns:
            conn.close()
    _assert_reads_are_cached(pg_server, proxy, marker, kv)


_thread_op = st.one_of(
    st.tuples(st.just("read"), _key),
    st.tuples(st.just("read_all")),
    st.tuples(st.just("bump"), _key),
    st.tuples(st.just("tx_bump"), _key),
)


def test_concurrent_interleavings(pg_server, proxy, marker, kv):
    """Threads run their own operations at the same time. Values only grow (each write
    adds one), so a read must return at least the value of every write acknowledged on
    any connection before the read was issued."""
    conns = [connect(pg_server, proxy) for _ in range(CONNECTIONS)]
    try:

        @_settings
        @given(st.lists(st.lists(_thread_op, min_size=1, max_size=15), min_size=CONNECTIONS,
                        max_size=CONNECTIONS))  # fmt: skip
        def check(plans):
            conns[0].execute(
                f"TRUNCATE {kv}; INSERT INTO {kv} VALUES " + ", ".join(f"({k}, 0)" for k in KEYS)
            )
            writes: list[tuple[float, int, int]] = []  # (acknowledged at, key, value)
            reads: list[tuple[float, int, int]] = []  # (issued at, key, value seen)
            errors: list[BaseException] = []
            barrier = threading.Barrier(len(plans))

            def worker(index: int, plan) -> None:
                run = functools.partial(_run, conns[index], index == EXTENDED)
                try:
                    barrier.wait(5)
                    for op in plan:
                        if op[0] in ("read", "read_all"):
                            issued = time.monotonic()
                            if op[0] == "read":
                                cur = run(f"SELECT k, v FROM {kv} WHERE k = %s {marker}", op[1])
                            else:
                                cur = run(f"SELECT k, v FROM {kv} ORDER BY k {marker}")
                            for k, v in cur.fetchall():
                                reads.append((issued, k, v))
                        else:
                            sql = f"UPDATE {kv} SET v = v + 1 WHERE k = %s RETURNING v"
                            if op[0] == "tx_bump":
                                run("BEGIN")
                                (value,) = run(sql, op[1]).fetchone()
                                run("COMMIT")
                            else:
                                (value,) = run(sql, op[1]).fetchone()
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
    finally:
        for conn in conns:
            conn.close()
    _assert_reads_are_cached(pg_server, proxy, marker, kv)


SLOW = "(SELECT count(*) FROM generate_series(1, 3000000))"


def test_miss_in_flight_during_a_write_is_not_served_after_it(pg_server, proxy, marker, kv):
    """A slow cacheable read starts, a write on another connection is acknowledged while
    it runs, then the read completes with the old value (its snapshot predates the
    write). What that miss stored must not be served to a read issued after the write."""
    query = f"SELECT v, {SLOW} AS n FROM {kv} WHERE k = 1 {marker}"
    with connect(pg_server, proxy) as setup:
        setup.execute(f"INSERT INTO {kv} VALUES (1, 0)")
    assert proxy.cache().classify(query.encode()).cacheable

    result: dict[str, object] = {}

    def slow_read() -> None:
        with connect(pg_server, proxy) as conn:
            result["row"] = conn.execute(query).fetchone()

    with connect(pg_server, proxy) as writer, connect(pg_server, proxy) as reader:
        thread = threading.Thread(target=slow_read)
        thread.start()
        deadline = time.monotonic() + 10
        while pg_server.statement_count(marker) < 1:  # the read reached the origin
            assert time.monotonic() < deadline
            time.sleep(0.005)
        writer.execute(f"UPDATE {kv} SET v = 1 WHERE k = 1")
        # Otherwise this test proves nothing: make the query slower.
        assert thread.is_alive(), "the slow read finished before the write"
        thread.join(30)
        assert result["row"] == (0, 3000000)  # it started before the write
        assert reader.execute(query).fetchone() == (1, 3000000)
        assert pg_server.statement_count(marker) == 2
        # The fresh result is cached normally.
        assert reader.execute(query).fetchone() == (1, 3000000)
        assert pg_server.statement_count(marker) == 2


def test_write_in_flight_during_a_miss(pg_server, proxy, marker, kv):
    """The other order: a slow write is running when a read misses; the read sees the
    old value (the write has not committed). Once the write is acknowledged, a new read
    sees the new value."""
    query = f"SELECT v FROM {kv} WHERE k = 1 {marker}"
    with connect(pg_server, proxy) as setup:
        setup.execute(f"INSERT INTO {kv} VALUES (1, 0)")
    done = threading.Event()

    def slow_write() -> None:
        with connect(pg_server, proxy) as conn:
            conn.execute(f"UPDATE {kv} SET v = 1 + 0 * {SLOW} WHERE k = 1")
        done.set()

    with connect(pg_server, proxy) as reader:
        thread = threading.Thread(target=slow_write)
        thread.start()
        time.sleep(0.05)
        assert reader.execute(query).fetchone() == (0,)
        assert not done.is_set(), "the slow write finished before the read"
        thread.join(30)
        assert reader.execute(query).fetchone() == (1,)
