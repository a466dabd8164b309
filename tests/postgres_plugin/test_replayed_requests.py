"""A request wirecache answered wholly from the cache is answered from memory when the
same bytes come again (Relay._replay): that shortcut must never outlive what the
answer depended on — the statements the client prepared, the session's settings,
the data, the TTL."""

from __future__ import annotations

import time

import psycopg
import pytest
from wirecache_postgres import messages as m

from postgres_plugin.rawpg import RawConnection, rows
from postgres_plugin.util import trust_user_table

INT4 = 23


@pytest.fixture
def table(pg_server) -> str:
    return trust_user_table(
        pg_server, "replay", "id int PRIMARY KEY, name text, size int",
        "INSERT INTO {t} VALUES (1, 'one', 10), (2, 'two', 20)", "SELECT, UPDATE",
    )  # fmt: skip


def _execute_s1(value: int) -> list[bytes]:
    """Bind the named statement s1, Describe the portal, Execute, Sync: the same bytes
    every time, as a driver re-running a prepared statement sends them."""
    return [m.bind("", "s1", [0], [str(value).encode()], [0]), m.describe("P", ""),
            m.execute("", 0), m.SYNC]  # fmt: skip


def test_a_statement_prepared_again_under_the_same_name_is_not_answered_from_memory(proxy, table):
    with RawConnection(proxy.host, proxy.port) as conn:
        conn.run(m.prepare("s1", f"SELECT name FROM {table} WHERE id = $1", [INT4]), m.SYNC)
        for _ in range(4):  # a miss, then hits: the later ones from memory
            assert rows(conn.run(*_execute_s1(1))) == [["one"]]
        conn.run(m.close("S", "s1"),
                 m.prepare("s1", f"SELECT size FROM {table} WHERE id = $1", [INT4]),
                 m.SYNC)  # fmt: skip
        for _ in range(3):
            assert rows(conn.run(*_execute_s1(1))) == [["10"]]


def test_a_write_is_seen_by_the_next_identical_request(proxy, pg_server, table):
    parse = m.prepare("", f"SELECT name FROM {table} WHERE id = $1", [INT4])
    request = [
        parse,
        m.bind("", "", [0], [b"2"], [0]),
        m.describe("P", ""),
        m.execute("", 0),
        m.SYNC,
    ]
    query = m.query(f"SELECT name, size FROM {table} WHERE id = 2")
    with RawConnection(proxy.host, proxy.port) as conn:
        for _ in range(4):
            assert rows(conn.run(*request)) == [["two"]]
            assert rows(conn.run(query)) == [["two", "20"]]
        dsn = pg_server.dsn("trust_user", host=proxy.host, port=proxy.port, sslmode="disable")
        with psycopg.connect(dsn, autocommit=True) as other:
            other.execute(f"UPDATE {table} SET name = 'TWO', size = 21 WHERE id = 2")
        assert rows(conn.run(*request)) == [["TWO"]]
        assert rows(conn.run(query)) == [["TWO", "21"]]
        # and on this session's own write
        conn.run(m.query(f"UPDATE {table} SET name = 'deux', size = 22 WHERE id = 2"))
        assert rows(conn.run(*request)) == [["deux"]]
        assert rows(conn.run(query)) == [["deux", "22"]]


def test_changed_session_settings_are_not_answered_from_memory(proxy, pg_server, table):
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS replay_other")
        conn.execute(f"CREATE TABLE IF NOT EXISTS replay_other.{table} (id int, name text)")
        conn.execute(f"INSERT INTO replay_other.{table} VALUES (1, 'other one')")
        conn.execute("GRANT USAGE ON SCHEMA replay_other TO trust_user")
        conn.execute(f"GRANT SELECT ON replay_other.{table} TO trust_user")
    query = m.query(f"SELECT name FROM {table} WHERE id = 1")
    with RawConnection(proxy.host, proxy.port) as conn:
        for _ in range(3):
            assert rows(conn.run(query)) == [["one"]]
        conn.run(m.query("SET search_path = replay_other"))
        for _ in range(3):
            assert rows(conn.run(query)) == [["other one"]]
        conn.run(m.query("SET search_path = public"))
        assert rows(conn.run(query)) == [["one"]]


def test_an_expired_answer_is_not_answered_from_memory(make_proxy, pg_server, table):
    proxy = make_proxy(default_ttl=1)
    query = m.query(f"SELECT name FROM {table} WHERE id = 1")
    with RawConnection(proxy.host, proxy.port) as conn:
        for _ in range(3):
            assert rows(conn.run(query)) == [["one"]]
        # A write that bypasses wirecache is bounded by the TTL only.
        with psycopg.connect(pg_server.dsn(), autocommit=True) as direct:
            direct.execute(f"UPDATE {table} SET name = 'uno' WHERE id = 1")
        assert rows(conn.run(query)) == [["one"]]
        time.sleep(1.2)
        assert rows(conn.run(query)) == [["uno"]]
