"""Explicit transactions pass through (DESIGN.md rule 4) and invalidate at COMMIT."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from postgres_plugin.util import connect, proxy_dsn


@pytest.fixture
def table(pg_server) -> str:
    name = f"tx_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v int)")
        conn.execute(f"INSERT INTO {name} VALUES (1, 10), (2, 20)")
    return name


def _value(conn: psycopg.Connection, query: str):
    return conn.execute(query).fetchone()[0]


def test_reads_in_a_transaction_always_reach_the_origin(pg_server, proxy, marker, table):
    query = f"SELECT v FROM {table} WHERE id = 1 {marker}"
    with connect(pg_server, proxy) as conn:
        conn.execute("BEGIN")
        assert _value(conn, query) == 10
        assert _value(conn, query) == 10
        conn.execute("COMMIT")
        assert pg_server.statement_count(marker) == 2  # neither was served from the cache
        # Nor stored: the first read outside the transaction reaches the origin.
        assert _value(conn, query) == 10
        assert pg_server.statement_count(marker) == 3
        assert _value(conn, query) == 10
        assert pg_server.statement_count(marker) == 3


def test_cached_read_is_not_served_inside_a_transaction(pg_server, proxy, marker, table):
    query = f"SELECT v FROM {table} WHERE id = 1 {marker}"
    with connect(pg_server, proxy) as conn:
        assert _value(conn, query) == 10
        assert _value(conn, query) == 10
        assert pg_server.statement_count(marker) == 1
        with conn.transaction():
            assert _value(conn, query) == 10
            assert _value(conn, query) == 10
        assert pg_server.statement_count(marker) == 3


def test_driver_implicit_transaction_is_not_cached(pg_server, proxy, marker, table):
    """psycopg without autocommit opens a transaction before the first statement."""
    query = f"SELECT v FROM {table} WHERE id = 1 {marker}"
    with psycopg.connect(proxy_dsn(pg_server, proxy)) as conn:
        for _ in range(3):
            assert _value(conn, query) == 10
        conn.commit()
    assert pg_server.statement_count(marker) == 3


def test_own_uncommitted_write_is_visible_inside_the_transaction(pg_server, proxy, marker, table):
    query = f"SELECT v FROM {table} WHERE id = 1 {marker}"
    with connect(pg_server, proxy) as conn:
        assert _value(conn, query) == 10
        assert _value(conn, query) == 10  # cached
        conn.execute("BEGIN")
        conn.execute(f"UPDATE {table} SET v = 11 WHERE id = 1")
        assert _value(conn, query) == 11
        conn.execute("COMMIT")
        assert _value(conn, query) == 11


def test_write_in_a_transaction_invalidates_at_commit(pg_server, proxy, marker, table):
    """The reader caches the old value while the writer's transaction is open (that is
    still the committed value); after COMMIT the reader must see the new one."""
    query = f"SELECT v FROM {table} WHERE id = 1 {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        assert _value(reader, query) == 10
        writer.execute("BEGIN")
        writer.execute(f"UPDATE {table} SET v = 11 WHERE id = 1")
        # Uncommitted: others still see 10, and this read may fill the cache again.
        assert _value(reader, query) == 10
        assert _value(reader, query) == 10
        before_commit = pg_server.statement_count(marker)
        writer.execute("COMMIT")
        assert _value(reader, query) == 11
        assert pg_server.statement_count(marker) == before_commit + 1


# (The last two commit and leave a transaction open: the ReadyForQuery says T.)
@pytest.mark.parametrize(
    "commit", ["COMMIT", "END", "commit /* c */", "COMMIT AND CHAIN", "BEGIN; COMMIT; BEGIN"]
)
def test_commit_spellings(pg_server, proxy, marker, table, commit):
    query = f"SELECT v FROM {table} WHERE id = 2 {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        writer.execute("START TRANSACTION")
        writer.execute(f"UPDATE {table} SET v = 21 WHERE id = 2")
        assert _value(reader, query) == 20
        assert _value(reader, query) == 20
        writer.execute(commit)
        assert _value(reader, query) == 21


def test_transaction_in_one_text_invalidates(pg_server, proxy, marker, table):
    query = f"SELECT v FROM {table} WHERE id = 2 {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        assert _value(reader, query) == 20
        assert _value(reader, query) == 20
        writer.execute(f"BEGIN; UPDATE {table} SET v = 22 WHERE id = 2; COMMIT")
        assert _value(reader, query) == 22


def test_driver_transaction_commit_invalidates(pg_server, proxy, marker, table):
    query = f"SELECT v FROM {table} WHERE id = 2 {marker}"
    with connect(pg_server, proxy) as reader, psycopg.connect(proxy_dsn(pg_server, proxy)) as w:
        assert _value(reader, query) == 20
        w.execute(f"UPDATE {table} SET v = 23 WHERE id = 2")
        assert _value(reader, query) == 20
        w.commit()
        assert _value(reader, query) == 23


def test_rollback_leaves_correct_results(pg_server, proxy, marker, table):
    query = f"SELECT v FROM {table} WHERE id = 1 {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        assert _value(reader, query) == 10
        writer.execute("BEGIN")
        writer.execute(f"UPDATE {table} SET v = 99 WHERE id = 1")
        assert _value(writer, query) == 99
        assert _value(reader, query) == 10
        writer.execute("ROLLBACK")
        assert _value(reader, query) == 10
        assert _value(writer, query) == 10
        assert _value(reader, query) == 10


def test_failed_transaction_then_rollback(pg_server, proxy, marker, table):
    query = f"SELECT v FROM {table} WHERE id = 1 {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        assert _value(reader, query) == 10
        writer.execute("BEGIN")
        writer.execute(f"UPDATE {table} SET v = 12 WHERE id = 1")
        with pytest.raises(psycopg.errors.DivisionByZero):
            writer.execute("SELECT 1 / 0")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            writer.execute(query)
        writer.execute("ROLLBACK")
        assert _value(writer, query) == 10
        assert _value(reader, query) == 10


def test_savepoint_rollback_then_commit(pg_server, proxy, marker, table):
    query = f"SELECT v FROM {table} ORDER BY id {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        assert _value(reader, query) == 10
        writer.execute("BEGIN")
        writer.execute(f"UPDATE {table} SET v = 13 WHERE id = 1")
        writer.execute("SAVEPOINT s")
        writer.execute(f"UPDATE {table} SET v = 14 WHERE id = 1")
        writer.execute("ROLLBACK TO SAVEPOINT s")
        assert _value(writer, query) == 13
        assert _value(reader, query) == 10
        assert _value(reader, query) == 10
        writer.execute("RELEASE SAVEPOINT s")
        writer.execute("COMMIT")
        assert _value(reader, query) == 13
