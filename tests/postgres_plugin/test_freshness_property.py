"""Read-your-writes under interleavings (DESIGN.md rule 3): every read issued after a
write was acknowledged, on any connection through wirecache, sees that write."""

from __future__ import annotations

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
    """One step at a time, in the order hypothesis picks, over several connections:
    every read must equal a model of the table."""
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
                conn = conns[index]
                name = op[0]
                if name == "read":
                    row = conn.execute(f"SELECT v FROM {kv} WHERE k = {op[1]} {marker}").fetchone()
                    assert (row[0] if row else None) == model.get(op[1]), (index, op)
                elif name == "read_all":
                    rows = conn.execute(f"SELECT k, v FROM {kv} ORDER BY k {marker}").fetchall()
                    assert rows == sorted(model.items()), (index, op)
                elif name == "update":
                    conn.execute(f"UPDATE {kv} SET v = {op[2]} WHERE k = {op[1]}")
                    if op[1] in model:
                        model[op[1]] = op[2]
                elif name == "upsert":
                    conn.execute(
                        f"INSERT INTO {kv} VALUES ({op[1]}, {op[2]}) "
                        f"ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
                    )
                    model[op[1]] = op[2]
                elif name == "delete":
                    conn.execute(f"DELETE FROM {kv} WHERE k = {op[1]}")
                    model.pop(op[1], None)
                elif name == "tx_update":
                    conn.execute("BEGIN")
                    conn.execute(f"UPDATE {kv} SET v = {op[2]} WHERE k = {op[1]}")
                    conn.execute("COMMIT")
                    if op[1] in model:
                        model[op[1]] = op[2]
                elif name == "multi":
                    conn.execute(
                        f"SELECT v FROM {kv} WHERE k = {op[1]}; "
                        f"UPDATE {kv} SET v = {op[2]} WHERE k = {op[1]}"
                    )
                    if op[1] in model:
                        model[op[1]] = op[2]

        check()
    finally:
        for conn in conns:
            conn.close()
    # The property is only interesting if the cache answered some of the reads.
    assert proxy.cache().stats.invalidations > 0
    assert sum(t.hits for t in proxy.cache().stats.templates.values()) > 0


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

            def run(conn: psycopg.Connection, plan) -> None:
                try:
                    barrier.wait(5)
                    for op in plan:
                        if op[0] in ("read", "read_all"):
                            issued = time.monotonic()
                            if op[0] == "read":
                                sql = f"SELECT k, v FROM {kv} WHERE k = {op[1]} {marker}"
                            else:
                                sql = f"SELECT k, v FROM {kv} ORDER BY k {marker}"
                            for k, v in conn.execute(sql).fetchall():
                                reads.append((issued, k, v))
                        else:
                            sql = f"UPDATE {kv} SET v = v + 1 WHERE k = {op[1]} RETURNING v"
                            if op[0] == "tx_bump":
                                conn.execute("BEGIN")
                                (value,) = conn.execute(sql).fetchone()
                                conn.execute("COMMIT")
                            else:
                                (value,) = conn.execute(sql).fetchone()
                            writes.append((time.monotonic(), op[1], value))
                except BaseException as e:  # reported on the main thread
                    errors.append(e)

            threads = [
                threading.Thread(target=run, args=(c, p)) for c, p in zip(conns, plans, strict=True)
            ]
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
    assert sum(t.hits for t in proxy.cache().stats.templates.values()) > 0


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
