"""Invalidation end to end: a write through wirecache on one connection refreshes what
another connection reads (DESIGN.md rule 3), proven from the origin's statement log."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from postgres_plugin.util import connect


@pytest.fixture
def table(pg_server) -> str:
    """A fresh table (id, name) with rows 1 and 2, made directly on the origin."""
    name = f"inv_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, name text)")
        conn.execute(f"INSERT INTO {name} VALUES (1, 'one'), (2, 'two')")
    return name


def _rows(conn: psycopg.Connection, query: str) -> list[tuple]:
    return conn.execute(query).fetchall()


WRITES = {
    "insert": ("INSERT INTO {t} VALUES (3, 'three')", [(1, "one"), (2, "two"), (3, "three")]),
    "update": ("UPDATE {t} SET name = 'uno' WHERE id = 1", [(1, "uno"), (2, "two")]),
    "delete": ("DELETE FROM {t} WHERE id = 2", [(1, "one")]),
    "truncate": ("TRUNCATE {t}", []),
    "multi-statement": (
        "SELECT 1; UPDATE {t} SET name = 'dos' WHERE id = 2",
        [(1, "one"), (2, "dos")],
    ),
    "data-modifying CTE": (
        "WITH gone AS (DELETE FROM {t} WHERE id = 1 RETURNING id) SELECT count(*) FROM gone",
        [(2, "two")],
    ),
    "schema-qualified": ("UPDATE public.{t} SET name = 'x' WHERE id = 2", [(1, "one"), (2, "x")]),
    "do block (unknown target)": (
        "DO $$ BEGIN UPDATE {t} SET name = 'done' WHERE id = 1; END $$",
        [(1, "done"), (2, "two")],
    ),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=list(WRITES))
def test_write_on_another_connection_refreshes_a_cached_read(
    pg_server, proxy, marker, table, write
):
    statement, expected = write
    query = f"SELECT id, name FROM {table} ORDER BY id {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        assert _rows(reader, query) == [(1, "one"), (2, "two")]
        assert _rows(reader, query) == [(1, "one"), (2, "two")]
        assert pg_server.statement_count(marker) == 1  # the second read was a hit
        writer.execute(statement.format(t=table))
        assert _rows(reader, query) == expected
        assert pg_server.statement_count(marker) == 2  # the read went to the origin again
        assert _rows(reader, query) == expected  # and the fresh result is cached again
        assert pg_server.statement_count(marker) == 2
    with connect(pg_server, proxy) as third:
        assert _rows(third, query) == expected


def test_alter_table_refreshes_select_star(pg_server, proxy, marker, table):
    query = f"SELECT * FROM {table} ORDER BY id {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        cur = reader.execute(query)
        assert [d.name for d in cur.description] == ["id", "name"]
        reader.execute(query)
        assert pg_server.statement_count(marker) == 1
        writer.execute(f"ALTER TABLE {table} ADD COLUMN extra int DEFAULT 7")
        cur = reader.execute(query)
        assert [d.name for d in cur.description] == ["id", "name", "extra"]
        assert cur.fetchall() == [(1, "one", 7), (2, "two", 7)]
        assert pg_server.statement_count(marker) == 2


def test_drop_and_recreate_refreshes(pg_server, proxy, marker, table):
    query = f"SELECT id, name FROM {table} ORDER BY id {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        assert _rows(reader, query) == [(1, "one"), (2, "two")]
        assert _rows(reader, query) == [(1, "one"), (2, "two")]
        writer.execute(f"DROP TABLE {table}")
        with pytest.raises(psycopg.errors.UndefinedTable):
            reader.execute(query)
        writer.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, name text)")
        writer.execute(f"INSERT INTO {table} VALUES (9, 'nine')")
        assert _rows(reader, query) == [(9, "nine")]
        assert pg_server.statement_count(marker) == 3
        # The errored read was not cached, the new result is.
        assert _rows(reader, query) == [(9, "nine")]
        assert pg_server.statement_count(marker) == 3


def test_drop_and_recreate_in_one_text(pg_server, proxy, marker, table):
    query = f"SELECT id, name FROM {table} ORDER BY id {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        assert _rows(reader, query) == [(1, "one"), (2, "two")]
        writer.execute(
            f"DROP TABLE {table}; CREATE TABLE {table} (id int, name text); "
            f"INSERT INTO {table} VALUES (5, 'five')"
        )
        assert _rows(reader, query) == [(5, "five")]


def test_copy_from_stdin_invalidates(pg_server, proxy, marker, table):
    query = f"SELECT count(*) FROM {table} {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        assert _rows(reader, query) == [(2,)]
        assert _rows(reader, query) == [(2,)]
        assert pg_server.statement_count(marker) == 1
        with writer.cursor().copy(f"COPY {table} (id, name) FROM STDIN") as copy:
            for i in range(10, 20):
                copy.write_row((i, f"row {i}"))
        assert _rows(reader, query) == [(12,)]
        assert pg_server.statement_count(marker) == 2


def test_write_to_either_side_of_a_join_refreshes(pg_server, proxy, marker, table):
    """A write to a table refreshes reads of a join that includes it."""
    other = f"{table}_b"
    query = f"SELECT a.name, b.v FROM {table} a JOIN {other} b ON a.id = b.id {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        writer.execute(f"CREATE TABLE {other} (id int, v int)")
        writer.execute(f"INSERT INTO {other} VALUES (1, 10)")
        assert _rows(reader, query) == [("one", 10)]
        assert _rows(reader, query) == [("one", 10)]
        writer.execute(f"UPDATE {other} SET v = 11")
        assert _rows(reader, query) == [("one", 11)]
        writer.execute(f"UPDATE {table} SET name = 'uno' WHERE id = 1")
        assert _rows(reader, query) == [("uno", 11)]
        assert pg_server.statement_count(marker) == 3


def test_failed_write_still_invalidates(pg_server, proxy, marker, table):
    """A multi-statement text that errors half way has committed nothing, but a write
    that fails is conservatively treated as done; the read is still correct."""
    query = f"SELECT id, name FROM {table} ORDER BY id {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        assert _rows(reader, query) == [(1, "one"), (2, "two")]
        with pytest.raises(psycopg.errors.UniqueViolation):
            writer.execute(f"INSERT INTO {table} VALUES (3, 'three'), (1, 'dup')")
        assert _rows(reader, query) == [(1, "one"), (2, "two")]


# Writes that change tables the statement does not name: wirecache reads the
# edges (views, cascading foreign keys, triggers) from the origin's catalog.


def test_write_to_a_table_refreshes_a_view_of_it(pg_server, proxy, marker, table):
    query = f"SELECT count(*) FROM {table}_v {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        writer.execute(f"CREATE VIEW {table}_v AS SELECT * FROM {table}")
        assert _rows(reader, query) == [(2,)]
        writer.execute(f"DELETE FROM {table}")
        assert _rows(reader, query) == [(0,)]


def test_on_delete_cascade_refreshes_the_child_table(pg_server, proxy, marker, table):
    query = f"SELECT count(*) FROM {table}_c {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        writer.execute(
            f"CREATE TABLE {table}_c (pid int REFERENCES {table} (id) ON DELETE CASCADE)"
        )
        writer.execute(f"INSERT INTO {table}_c VALUES (1), (2)")
        assert _rows(reader, query) == [(2,)]
        writer.execute(f"DELETE FROM {table} WHERE id = 1")
        assert _rows(reader, query) == [(1,)]


def test_trigger_writes_refresh_the_table_they_write(pg_server, proxy, marker, table):
    query = f"SELECT count(*) FROM {table}_log {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        writer.execute(f"CREATE TABLE {table}_log (id int)")
        writer.execute(
            f"CREATE FUNCTION {table}_f() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN INSERT INTO {table}_log VALUES (NEW.id); RETURN NEW; END $$"
        )
        writer.execute(
            f"CREATE TRIGGER {table}_t AFTER INSERT ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_f()"
        )
        assert _rows(reader, query) == [(0,)]
        writer.execute(f"INSERT INTO {table} VALUES (3, 'three')")
        assert _rows(reader, query) == [(1,)]


# -- writes and reads over the extended query protocol ------------------------------


def test_extended_protocol_write_refreshes_a_simple_protocol_read(pg_server, proxy, marker, table):
    query = f"SELECT id, name FROM {table} ORDER BY id {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        assert _rows(reader, query) == [(1, "one"), (2, "two")]
        assert _rows(reader, query) == [(1, "one"), (2, "two")]
        writer.execute(f"UPDATE {table} SET name = %s WHERE id = %s", ("uno", 1))
        assert _rows(reader, query) == [(1, "uno"), (2, "two")]
        writer.execute(f"INSERT INTO {table} VALUES (%s, %s)", (3, "three"), prepare=True)
        assert _rows(reader, query) == [(1, "uno"), (2, "two"), (3, "three")]


def test_simple_protocol_write_refreshes_an_extended_protocol_read(pg_server, proxy, marker, table):
    query = f"SELECT name FROM {table} WHERE id = %s {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        assert reader.execute(query, (1,)).fetchall() == [("one",)]
        assert reader.execute(query, (1,)).fetchall() == [("one",)]
        assert pg_server.statement_count(marker) == 1  # extended reads are cached too
        writer.execute(f"UPDATE {table} SET name = 'eins' WHERE id = 1")
        assert reader.execute(query, (1,)).fetchall() == [("eins",)]
        assert pg_server.statement_count(marker) == 2
        writer.execute(f"UPDATE {table} SET name = %s WHERE id = %s", ("ichi", 1))
        assert reader.execute(query, (1,)).fetchall() == [("ichi",)]


def test_asyncpg_writes_refresh_asyncpg_reads(pg_server, proxy, marker, table):
    import asyncio

    import asyncpg

    async def main() -> list:
        def conn():
            return asyncpg.connect(
                host=proxy.host, port=proxy.port, user="postgres", database="app",
                password=pg_server.users["postgres"], ssl=False,
            )  # fmt: skip

        reader, writer = await conn(), await conn()
        query = f"SELECT name FROM {table} WHERE id = $1 {marker}"
        try:
            seen = [await reader.fetchval(query, 1), await reader.fetchval(query, 1)]
            await writer.execute(f"UPDATE {table} SET name = 'neo' WHERE id = $1", 1)
            seen.append(await reader.fetchval(query, 1))
            async with writer.transaction():
                await writer.execute(f"UPDATE {table} SET name = $1 WHERE id = 1", "oen")
            seen.append(await reader.fetchval(query, 1))
        finally:
            await reader.close()
            await writer.close()
        return seen

    assert asyncio.run(main()) == ["one", "one", "neo", "oen"]


@pytest.mark.parametrize(
    "statement",
    [
        "EXPLAIN ANALYZE DELETE FROM {t} WHERE id = 2",
        "EXPLAIN (ANALYZE, COSTS OFF) DELETE FROM {t} WHERE id = 2",
        "explain analyse delete from {t} where id = 2",
    ],
)
def test_explain_analyze_of_a_write_invalidates(pg_server, proxy, marker, table, statement):
    """EXPLAIN ANALYZE runs the statement it explains: its write is real."""
    query = f"SELECT id, name FROM {table} ORDER BY id {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        assert _rows(reader, query) == [(1, "one"), (2, "two")]
        assert _rows(reader, query) == [(1, "one"), (2, "two")]
        writer.execute(statement.format(t=table))
        assert _rows(reader, query) == [(1, "one")]


def test_plain_explain_does_not_invalidate(pg_server, proxy, marker, table):
    query = f"SELECT id, name FROM {table} ORDER BY id {marker}"
    with connect(pg_server, proxy) as reader, connect(pg_server, proxy) as writer:
        assert _rows(reader, query) == [(1, "one"), (2, "two")]
        writer.execute(f"EXPLAIN DELETE FROM {table} WHERE id = 2")
        assert _rows(reader, query) == [(1, "one"), (2, "two")]
        assert pg_server.statement_count(marker) == 1
