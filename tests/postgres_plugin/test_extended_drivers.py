"""Real drivers over the extended query protocol through wirecache: hits proven from the
origin's statement log (a unique marker comment per test), results equal to what the
origin returns directly, writes seen by the next read, partial results never cached,
errors inside pipelines, DEALLOCATE/DISCARD ALL, and asyncpg's type introspection.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import decimal
import json
import uuid

import asyncpg
import pg8000.native
import psycopg
import pytest
import sqlalchemy as sa
from psycopg import errors
from sqlalchemy import orm
from wirecache_postgres import messages as m

from postgres_plugin.rawpg import RawConnection, kinds, rows
from postgres_plugin.util import connect, proxy_dsn, trust_user_table

USER = "postgres"


@pytest.fixture
def table(pg_server) -> str:
    """A fresh table (id, name) with rows 1..3, made directly on the origin."""
    return trust_user_table(
        pg_server, "ext", "id int PRIMARY KEY, name text",
        "INSERT INTO {t} VALUES (1, 'one'), (2, 'two'), (3, 'three')",
    )  # fmt: skip


def pconnect(pg_server, proxy, **kwargs) -> psycopg.Connection:
    """An autocommit psycopg connection through ``proxy`` with connection options."""
    return psycopg.connect(proxy_dsn(pg_server, proxy), autocommit=True, **kwargs)


def asyncpg_connect(pg_server, proxy=None, **kwargs):
    host, port = (proxy.host, proxy.port) if proxy else (pg_server.host, pg_server.port)
    return asyncpg.connect(host=host, port=port, user=USER, database="app",
                           password=pg_server.users[USER], ssl=False, **kwargs)  # fmt: skip


# -- psycopg 3 ------------------------------------------------------------------------


def test_psycopg_default_prepare_threshold(pg_server, proxy, marker, table):
    """psycopg sends unnamed statements first and prepares a named one from the
    5th execution; both are answered from the cache, per parameter value."""
    query = f"SELECT name FROM {table} WHERE id = %s {marker}"
    with connect(pg_server, proxy) as conn:
        assert conn.prepare_threshold == 5
        for _ in range(8):
            assert conn.execute(query, (1,)).fetchall() == [("one",)]
        assert pg_server.statement_count(marker) == 1
        for _ in range(8):
            assert conn.execute(query, (2,)).fetchall() == [("two",)]
        assert conn.execute(query, (1,)).fetchall() == [("one",)]
    assert pg_server.statement_count(marker) == 2


def test_psycopg_prepare_threshold_zero(pg_server, proxy, marker, table):
    query = f"SELECT id, name FROM {table} WHERE id >= %s ORDER BY id {marker}"
    with pconnect(pg_server, proxy, prepare_threshold=0) as conn:
        for _ in range(3):
            assert conn.execute(query, (2,)).fetchall() == [(2, "two"), (3, "three")]
            assert conn.execute(query, (3,)).fetchall() == [(3, "three")]
    # Another connection prepares the same statement under the same name.
    with pconnect(pg_server, proxy, prepare_threshold=0) as conn:
        assert conn.execute(query, (2,)).fetchall() == [(2, "two"), (3, "three")]
    assert pg_server.statement_count(marker) == 2


def test_psycopg_binary_cursor(pg_server, proxy, marker, table):
    """Binary and text results are different entries; each is right and each is cached."""
    query = f"SELECT id, name, id::numeric / 4 AS q FROM {table} WHERE id < %s ORDER BY id {marker}"
    expected = [(1, "one", decimal.Decimal("0.25")), (2, "two", decimal.Decimal("0.5"))]
    with connect(pg_server, proxy) as conn:
        for _ in range(3):
            assert conn.cursor(binary=True).execute(query, (3,)).fetchall() == expected
            assert conn.cursor().execute(query, (3,)).fetchall() == expected
        assert conn.cursor(binary=True).execute(query, (3,)).pgresult.fformat(0) == 1
    assert pg_server.statement_count(marker) == 2


def test_psycopg_pipeline_mixes_hits_misses_and_a_write(pg_server, proxy, marker, table):
    by_id = f"SELECT name FROM {table} WHERE id = %s {marker}"
    count = f"SELECT count(*) FROM {table} {marker}"
    with connect(pg_server, proxy) as conn:
        with conn.pipeline():  # a pipeline uses the extended protocol throughout
            warm = [conn.execute(by_id, (1,)), conn.execute(count)]
        assert [c.fetchall() for c in warm] == [[("one",)], [(3,)]]
        before = pg_server.statement_count(marker)
        with conn.pipeline():
            curs = [conn.cursor() for _ in range(7)]
            curs[0].execute(by_id, (1,))  # hit
            curs[1].execute(f"SELECT now() IS NOT NULL {marker}")  # never cached
            curs[2].execute(count)  # hit
            curs[3].execute(f"INSERT INTO {table} VALUES (%s, %s) {marker}", (4, "four"))
            curs[4].execute(count)  # must see the insert
            curs[5].execute(by_id, (4,))
            curs[6].execute(by_id, (2,))
        results = (
            [c.fetchall() for c in curs[:3]] + [curs[3].rowcount] + [c.fetchall() for c in curs[4:]]
        )
    assert results == [[("one",)], [(True,)], [(3,)], 1, [(4,)], [("four",)], [("two",)]]
    # now(), the insert and the reads after it reached the origin; the first hits did not.
    assert pg_server.statement_count(marker) - before == 5
    with connect(pg_server, proxy) as conn:
        assert conn.execute(count).fetchone() == (4,)


def test_psycopg_executemany_then_cached_read(pg_server, proxy, marker, table):
    query = f"SELECT id, name FROM {table} ORDER BY id {marker}"
    with connect(pg_server, proxy) as conn:
        assert len(conn.execute(query).fetchall()) == 3
        assert len(conn.execute(query).fetchall()) == 3
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)",
                            [(i, f"n{i}") for i in range(10, 20)])  # fmt: skip
        seen = conn.execute(query).fetchall()
        assert conn.execute(query).fetchall() == seen
    assert [r[0] for r in seen] == [1, 2, 3, *range(10, 20)]
    assert pg_server.statement_count(marker) == 2


# -- asyncpg ----------------------------------------------------------------------------


def test_asyncpg_prepared_statements_and_fetch(pg_server, proxy, marker, table):
    query = f"SELECT id, name FROM {table} WHERE id <= $1 ORDER BY id {marker}"

    async def main():
        out = []
        conn = await asyncpg_connect(pg_server, proxy)
        try:
            stmt = await conn.prepare(query)
            for _ in range(3):
                out.append([tuple(r) for r in await stmt.fetch(2)])
            out.append([tuple(r) for r in await conn.fetch(query, 2)])
            out.append(await conn.fetchval(query, 1, column=1))
        finally:
            await conn.close()
        conn = await asyncpg_connect(pg_server, proxy)
        try:
            out.append([tuple(r) for r in await conn.fetch(query, 2)])
        finally:
            await conn.close()
        return out

    two = [(1, "one"), (2, "two")]
    assert asyncio.run(main()) == [two, two, two, two, "one", two]
    assert pg_server.statement_count(marker) == 2  # $1 = 2 and $1 = 1


BINARY_VALUES = {
    "numeric": decimal.Decimal("12345678901234567890.000000000123"),
    "timestamptz": datetime.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=datetime.UTC),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "jsonb": '{"a": [1, 2.5, null], "b": {"c": "\\u00e9"}}',
    "int[]": [[1, 2], [3, None]],
    "bytea": bytes(range(256)),
    "text[]": ["a", "", None, "with space", "quote\"'"],
}


def test_asyncpg_binary_types_round_trip_through_the_cache(pg_server, proxy, marker):
    name = f"types_{uuid.uuid4().hex[:10]}"
    columns = ", ".join(f"c{i} {t}" for i, t in enumerate(BINARY_VALUES))
    placeholders = ", ".join(f"${i + 1}" for i in range(len(BINARY_VALUES)))
    query = f"SELECT * FROM {name} WHERE id = $1 {marker}"

    async def main():
        direct = await asyncpg_connect(pg_server)
        try:
            await direct.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, {columns})")
            await direct.execute(f"INSERT INTO {name} VALUES (1, {placeholders})",
                                 *BINARY_VALUES.values())  # fmt: skip
            expected = dict((await direct.fetch(query, 1))[0])
        finally:
            await direct.close()
        seen = []
        conn = await asyncpg_connect(pg_server, proxy)
        try:
            seen += [dict((await conn.fetch(query, 1))[0]) for _ in range(3)]
        finally:
            await conn.close()
        misses = pg_server.statement_count(marker) - 1
        # A second connection introspects the same types again; see
        # test_asyncpg_enum_introspection_is_cached for why that is not a hit.
        conn = await asyncpg_connect(pg_server, proxy)
        try:
            seen += [dict((await conn.fetch(query, 1))[0]) for _ in range(2)]
        finally:
            await conn.close()
        return expected, seen, misses

    expected, seen, misses = asyncio.run(main())
    values = list(expected.values())[1:]
    for (kind, sent), got in zip(BINARY_VALUES.items(), values, strict=True):
        assert (json.loads(got) if kind == "jsonb" else got) == (
            json.loads(sent) if kind == "jsonb" else sent)  # fmt: skip
    assert seen == [expected] * 5
    assert misses == 1  # then two hits on the first connection


# -- pg8000 -------------------------------------------------------------------------------


def test_pg8000_native_with_params(pg_server, proxy, marker, table):
    query = f"SELECT id, name FROM {table} WHERE id = :id {marker}"
    conn = pg8000.native.Connection(USER, host=proxy.host, port=proxy.port, database="app",
                                    password=pg_server.users[USER])  # fmt: skip
    try:
        for _ in range(3):
            assert conn.run(query, id=1) == [[1, "one"]]
            assert conn.run(query, id=3) == [[3, "three"]]
    finally:
        conn.close()
    assert pg_server.statement_count(marker) == 2


# -- SQLAlchemy 2 over psycopg -------------------------------------------------------------


def sa_engine(pg_server, proxy, **kwargs) -> sa.Engine:
    url = sa.URL.create("postgresql+psycopg", username=USER, password=pg_server.users[USER],
                        host=proxy.host, port=proxy.port, database="app",
                        query={"sslmode": "disable"})  # fmt: skip
    return sa.create_engine(url, **kwargs)


def test_sqlalchemy_core_and_orm(pg_server, proxy, marker, table):
    """With autocommit, SQLAlchemy's reads are cached; in its default mode every
    statement runs inside a transaction, which wirecache passes through (rule 4)."""
    items = sa.Table(table, sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("name", sa.Text))  # fmt: skip

    class Base(orm.DeclarativeBase):
        pass

    class Item(Base):
        __table__ = items

    core = sa.select(items.c.name).where(items.c.id == sa.bindparam("id")).suffix_with(marker)
    orm_query = sa.select(Item).where(Item.id >= 2).order_by(Item.id).suffix_with(marker)

    engine = sa_engine(pg_server, proxy, isolation_level="AUTOCOMMIT")
    try:
        for _ in range(3):
            with engine.connect() as conn:
                assert conn.execute(core, {"id": 2}).scalar_one() == "two"
            with orm.Session(engine) as session:
                assert [(i.id, i.name) for i in session.scalars(orm_query)] == [
                    (2, "two"), (3, "three")]  # fmt: skip
    finally:
        engine.dispose()
    assert pg_server.statement_count(marker) == 2

    engine = sa_engine(pg_server, proxy)  # default: BEGIN … ROLLBACK around each use
    try:
        for _ in range(2):
            with engine.connect() as conn:
                assert conn.execute(core, {"id": 2}).scalar_one() == "two"
    finally:
        engine.dispose()
    assert pg_server.statement_count(marker) == 4


# -- invalidation and read-your-writes, per driver ----------------------------------------


def test_psycopg_writes_are_seen(pg_server, proxy, marker, table):
    query = f"SELECT name FROM {table} WHERE id = %s {marker}"
    for threshold in (5, 0):
        with pconnect(pg_server, proxy, prepare_threshold=threshold) as reader, \
                pconnect(pg_server, proxy, prepare_threshold=threshold) as writer:  # fmt: skip
            reader.execute(f"UPDATE {table} SET name = 'one' WHERE id = 1")
            start = pg_server.statement_count(marker)
            assert reader.execute(query, (1,)).fetchone() == ("one",)
            assert reader.execute(query, (1,)).fetchone() == ("one",)
            writer.execute(f"UPDATE {table} SET name = %s WHERE id = %s", ("uno", 1))
            assert reader.execute(query, (1,)).fetchone() == ("uno",)
            reader.execute(f"UPDATE {table} SET name = %s WHERE id = %s", ("eins", 1))
            assert reader.execute(query, (1,)).fetchone() == ("eins",)
            assert reader.execute(query, (1,)).fetchone() == ("eins",)
            assert pg_server.statement_count(marker) - start == 3


def test_asyncpg_writes_are_seen(pg_server, proxy, marker, table):
    query = f"SELECT name FROM {table} WHERE id = $1 {marker}"

    async def main():
        reader = await asyncpg_connect(pg_server, proxy)
        writer = await asyncpg_connect(pg_server, proxy)

        async def name(source) -> str:
            return (await source.fetch(1))[0][0] if source is stmt else (
                await reader.fetch(query, 1))[0][0]  # fmt: skip

        try:
            stmt = await reader.prepare(query)
            seen = [await name(stmt), await name(stmt)]
            await writer.execute(f"UPDATE {table} SET name = $1 WHERE id = $2", "uno", 1)
            seen.append(await name(stmt))
            await reader.execute(f"UPDATE {table} SET name = $1 WHERE id = $2", "eins", 1)
            seen += [await name(stmt), await name(reader)]
            await writer.executemany(f"UPDATE {table} SET name = $1 WHERE id = $2",
                                     [("ichi", 1), ("ni", 2)])  # fmt: skip
            seen.append(await name(reader))
            # fetchval/fetchrow: an Execute with a row limit of 1, answered from the
            # complete result the fetch just before stored (one row, PortalSuspended).
            seen.append(await reader.fetchval(query, 1))
        finally:
            await reader.close()
            await writer.close()
        return seen

    assert asyncio.run(main()) == ["one", "one", "uno", "eins", "eins", "ichi", "ichi"]
    assert pg_server.statement_count(marker) == 4


def test_pg8000_writes_are_seen(pg_server, proxy, marker, table):
    query = f"SELECT name FROM {table} WHERE id = :id {marker}"

    def conn():
        return pg8000.native.Connection(USER, host=proxy.host, port=proxy.port,
                                        database="app", password=pg_server.users[USER])  # fmt: skip

    reader, writer = conn(), conn()
    try:
        seen = [reader.run(query, id=1), reader.run(query, id=1)]
        writer.run(f"UPDATE {table} SET name = :n WHERE id = :id", n="uno", id=1)
        seen.append(reader.run(query, id=1))
        reader.run(f"UPDATE {table} SET name = :n WHERE id = :id", n="eins", id=1)
        seen += [reader.run(query, id=1), reader.run(query, id=1)]
    finally:
        reader.close()
        writer.close()
    assert seen == [[["one"]], [["one"]], [["uno"]], [["eins"]], [["eins"]]]
    assert pg_server.statement_count(marker) == 3


def test_sqlalchemy_writes_are_seen(pg_server, proxy, marker, table):
    items = sa.Table(table, sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("name", sa.Text))  # fmt: skip
    read = sa.select(items.c.name).where(items.c.id == 1).suffix_with(marker)
    reader_engine = sa_engine(pg_server, proxy, isolation_level="AUTOCOMMIT")
    writer_engine = sa_engine(pg_server, proxy)  # a transaction, committed
    try:
        with reader_engine.connect() as reader:
            seen = [reader.execute(read).scalar_one(), reader.execute(read).scalar_one()]
            with writer_engine.begin() as writer:
                writer.execute(items.update().where(items.c.id == 1).values(name="uno"))
            seen.append(reader.execute(read).scalar_one())
            reader.execute(items.update().where(items.c.id == 1).values(name="eins"))
            seen += [reader.execute(read).scalar_one(), reader.execute(read).scalar_one()]
    finally:
        reader_engine.dispose()
        writer_engine.dispose()
    assert seen == ["one", "one", "uno", "eins", "eins"]
    assert pg_server.statement_count(marker) == 3


# -- partial results are never cached -------------------------------------------------------


def test_psycopg_server_side_cursor(pg_server, proxy, marker, table):
    query = f"SELECT id FROM {table} ORDER BY id {marker}"
    with connect(pg_server, proxy) as conn:
        conn.execute(f"INSERT INTO {table} SELECT i, 'n' || i FROM generate_series(4, 10) i")
        for withhold in (False, True):  # inside a transaction, and WITH HOLD outside one
            for _ in range(2):
                tx = conn.transaction() if not withhold else contextlib.nullcontext()
                with tx, conn.cursor(name="c", withhold=withhold) as cur:
                    cur.itersize = 3
                    cur.execute(query)
                    assert cur.fetchmany(2) == [(1,), (2,)]
                    assert cur.fetchmany(2) == [(3,), (4,)]
                    assert [r[0] for r in cur] == list(range(5, 11))
                full = conn.execute(query).fetchall()
                assert [r[0] for r in full] == list(range(1, 11))


def test_asyncpg_cursor_in_a_transaction(pg_server, proxy, marker, table):
    query = f"SELECT id FROM {table} ORDER BY id {marker}"

    async def main():
        conn = await asyncpg_connect(pg_server, proxy)
        out = []
        try:
            await conn.execute(f"INSERT INTO {table} SELECT i, 'n' || i "
                               "FROM generate_series(4, 10) i")  # fmt: skip
            for _ in range(2):
                async with conn.transaction():
                    cur = await conn.cursor(query)  # Execute with a row limit
                    out.append([r[0] for r in await cur.fetch(3)])
                    out.append([r[0] for r in await cur.fetch(4)])
                    out.append([r[0] async for r in conn.cursor(query, prefetch=4)])
                out.append([r[0] for r in await conn.fetch(query)])
                out.append([r[0] for r in await conn.fetch(query)])
        finally:
            await conn.close()
        return out

    everything = list(range(1, 11))
    assert asyncio.run(main()) == [[1, 2, 3], [4, 5, 6, 7], everything, everything,
                                   everything] * 2  # fmt: skip
    # Full reads outside the transaction: one miss, then hits.
    full_reads = pg_server.statement_count(marker) - 4  # minus the 2 x 2 cursors
    assert full_reads == 1


def test_execute_with_a_row_limit_is_answered_from_a_complete_result(pg_server, proxy, table):
    """Raw Execute with max_rows: PortalSuspended, the rest on a further Execute, and
    a later complete read of the same statement and parameters is not truncated. A
    partial result is never stored; once a complete one is, limited Executes are cut
    from it exactly as the origin cuts them."""
    tag = uuid.uuid4().hex
    sql = f"SELECT id, name FROM {table} WHERE id >= $1 ORDER BY id /* {tag} */"
    bind = m.bind("", "", [], [b"1"], [])
    limited = [m.prepare("", sql), bind, m.execute("", 2), m.execute("", 0), m.SYNC]
    complete = [m.prepare("", sql), bind, m.execute("", 0), m.execute("", 0), m.SYNC]
    every = [["1", "one"], ["2", "two"], ["3", "three"]]
    with RawConnection(pg_server.host, pg_server.port) as direct:
        expect_limited, expect_complete = direct.run(*limited), direct.run(*complete)
    assert kinds(expect_limited) == "12DDsDCZ"
    assert kinds(expect_complete) == "12DDDCCZ"  # re-executing a finished portal: no rows
    with RawConnection(proxy.host, proxy.port) as conn:
        for _ in range(2):
            assert conn.run(*limited) == expect_limited
            assert conn.run(*complete) == expect_complete
            assert rows(conn.run(*complete)) == every
    with RawConnection(proxy.host, proxy.port) as conn:
        assert conn.run(*limited) == expect_limited
        assert conn.run(*complete) == expect_complete
    # The first limited run (two Executes) and the first complete run (two) reached
    # the origin; everything after was cut from the stored complete result.
    assert pg_server.statement_count(tag) == 2 + 2


# -- errors inside a pipeline ------------------------------------------------------------------


@pytest.mark.parametrize("failing", ["SELECT 1 / (id - id) FROM {t} WHERE id = 1",
                                     "INSERT INTO {t} VALUES (1, 'dup')"])  # fmt: skip
def test_error_inside_a_psycopg_pipeline(pg_server, proxy, marker, table, failing):
    by_id = f"SELECT name FROM {table} WHERE id = %s {marker}"
    with connect(pg_server, proxy) as conn:
        assert conn.execute(by_id, (1,)).fetchone() == ("one",)
        assert conn.execute(by_id, (2,)).fetchone() == ("two",)
        before = pg_server.statement_count(marker)
        first, bad, after = conn.cursor(), conn.cursor(), conn.cursor()
        with pytest.raises(errors.Error) as info, conn.pipeline():
            first.execute(f"SELECT count(*) FROM {table} {marker}")
            bad.execute(failing.format(t=table) + f" {marker}")
            after.execute(by_id, (2,))  # cached, but skipped like the origin does
        assert isinstance(info.value, errors.DivisionByZero | errors.UniqueViolation)
        assert first.fetchall() == [(3,)]
        with pytest.raises(psycopg.Error):
            after.fetchall()
        # count(*) and the failing statement reached the origin; the cached one
        # was neither answered nor sent.
        assert pg_server.statement_count(marker) - before == 2
        # The session is usable and answers from the cache again.
        assert conn.execute(by_id, (2,)).fetchone() == ("two",)
        with conn.pipeline():
            ok = conn.execute(by_id, (1,))
        assert ok.fetchall() == [("one",)]
        assert pg_server.statement_count(marker) - before == 2
    with psycopg.connect(pg_server.dsn(), autocommit=True) as direct:
        assert direct.execute(f"SELECT count(*) FROM {table}").fetchone() == (3,)


def test_error_inside_a_raw_pipeline_matches_the_origin(pg_server, proxy, table):
    """Parse/Bind/Execute of a hit after a failing Execute, before the same Sync:
    skipped; after the Sync, answered."""
    tag = uuid.uuid4().hex
    cached = f"SELECT name FROM {table} WHERE id = $1 /* {tag} */"
    seq = [
        m.prepare("", cached), m.bind("", "", [], [b"1"], []), m.execute(),
        m.prepare("", "SELECT 1/$1::int"), m.bind("", "", [], [b"0"], []), m.execute(),
        m.prepare("", cached), m.bind("", "", [], [b"2"], []), m.execute(), m.SYNC,
        m.prepare("", cached), m.bind("", "", [], [b"2"], []), m.execute(), m.SYNC,
    ]  # fmt: skip
    with RawConnection(pg_server.host, pg_server.port) as direct:
        expected = direct.run(*seq)
    # The division fails when the unnamed statement is planned, at Bind.
    assert kinds(expected) == "12DC1EZ12DCZ"
    with RawConnection(proxy.host, proxy.port) as conn:
        assert conn.run(m.prepare("", cached), m.bind("", "", [], [b"2"], []), m.execute(),
                        m.SYNC)[-3:] == expected[-3:]  # fmt: skip
        for _ in range(2):
            assert conn.run(*seq) == expected


# -- Close, DEALLOCATE, DISCARD ALL ------------------------------------------------------------


@pytest.mark.parametrize(("reset", "origin_reads"), [("DEALLOCATE ALL", 5), ("DISCARD ALL", 6)])
def test_psycopg_after_deallocate_or_discard(pg_server, proxy, marker, table, reset,
                                             origin_reads):  # fmt: skip
    query = f"SELECT name FROM {table} WHERE id = %s {marker}"
    other = f"SELECT id FROM {table} WHERE name = %s {marker}"
    with pconnect(pg_server, proxy, prepare_threshold=0) as conn:
        assert conn.execute(query, (1,)).fetchone() == ("one",)
        assert conn.execute(query, (1,)).fetchone() == ("one",)
        conn.execute(reset)
        for _ in range(2):
            assert conn.execute(query, (1,)).fetchone() == ("one",)
            assert conn.execute(query, (3,)).fetchone() == ("three",)
            assert conn.execute(other, ("two",)).fetchone() == (2,)
        conn.execute(reset)
        # A miss after the reset needs its statement at the origin again.
        assert conn.execute(query, (2,)).fetchone() == ("two",)
        assert conn.execute(other, ("three",)).fetchone() == (3,)
        prepared = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
    assert prepared[0] >= 2
    # query(1), query(3), other(two), query(2), other(three); after DISCARD ALL
    # the session's key starts afresh and query(1) is read once more.
    assert pg_server.statement_count(marker) == origin_reads


def test_asyncpg_after_reload_schema_state(pg_server, proxy, marker, table):
    query = f"SELECT name FROM {table} WHERE id = $1 {marker}"

    async def main():
        conn = await asyncpg_connect(pg_server, proxy)

        async def name(i: int) -> str:
            return (await conn.fetch(query, i))[0][0]

        try:
            seen = [await name(1), await name(1)]
            await conn.reload_schema_state()
            seen += [await name(1), await name(2)]
            await conn.execute("DEALLOCATE ALL")
            await conn.reload_schema_state()
            seen += [await name(2), await name(3), await name(3)]
        finally:
            await conn.close()
        return seen

    assert asyncio.run(main()) == ["one", "one", "one", "two", "two", "three", "three"]
    assert pg_server.statement_count(marker) == 3


# -- asyncpg's type introspection ------------------------------------------------------------


ENUM_INTROSPECTION = "WITH RECURSIVE typeinfo_tree("  # asyncpg's INTRO_LOOKUP_TYPES
TYPE_BY_NAME = "FROM\n    pg_catalog.pg_type AS t"  # asyncpg's TYPE_BY_NAME (set_type_codec)


@pytest.fixture
def enum_type(pg_server) -> str:
    name = f"mood_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE TYPE {name} AS ENUM ('sad', 'ok', 'happy')")
    return name


def asyncpg_session(pg_server, proxy, enum: str):
    """A new asyncpg connection that sets a jsonb codec and decodes an enum."""

    async def main():
        conn = await asyncpg_connect(pg_server, proxy)
        try:
            await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads,
                                      schema="pg_catalog")  # fmt: skip
            return (await conn.fetch(f"SELECT 'happy'::{enum} AS m, '{{\"a\": 1}}'::jsonb AS j"))[0]
        finally:
            await conn.close()

    return tuple(asyncio.run(main()))


def test_asyncpg_type_introspection_is_relayed(pg_server, proxy, enum_type):
    """Whatever wirecache caches of it, introspection gives asyncpg the right codecs."""
    for _ in range(3):
        assert asyncpg_session(pg_server, proxy, enum_type) == ("happy", {"a": 1})


def test_asyncpg_type_by_name_is_cached(pg_server, proxy, enum_type):
    """set_type_codec's pg_type lookup on a second connection is answered by wirecache."""
    asyncpg_session(pg_server, proxy, enum_type)
    since = pg_server.log_position()
    assert asyncpg_session(pg_server, proxy, enum_type) == ("happy", {"a": 1})
    assert pg_server.statement_count(TYPE_BY_NAME, since=since) == 0


def test_asyncpg_enum_introspection_is_cached(pg_server, proxy, enum_type):
    since = pg_server.log_position()
    asyncpg_session(pg_server, proxy, enum_type)
    texts = [t for t in pg_server.statements(since) if ENUM_INTROSPECTION in t]
    assert texts, "asyncpg sent no introspection query"
    stmt = proxy.call(proxy.cache().classify, texts[0].encode())
    since = pg_server.log_position()
    asyncpg_session(pg_server, proxy, enum_type)
    assert pg_server.statement_count(ENUM_INTROSPECTION, since=since) == 0, stmt.reason


def test_asyncpg_fetchrow_and_fetchval_are_cached(pg_server, proxy, marker, table):
    """fetchrow/fetchval send Execute with a row limit of 1; a one-row result is
    stored and later ones are answered without the origin, until a write."""
    query = f"SELECT id, name FROM {table} WHERE id = $1 {marker}"

    async def main():
        conn = await asyncpg_connect(pg_server, proxy)
        try:
            rows = [tuple(await conn.fetchrow(query, 1)) for _ in range(3)]
            values = [await conn.fetchval(query, 2, column=1) for _ in range(2)]
            many = await conn.fetchrow(f"SELECT id FROM {table} ORDER BY id {marker}")
            await conn.execute(f"UPDATE {table} SET name = 'uno' WHERE id = 1")
            after = tuple(await conn.fetchrow(query, 1))
            return rows, values, many[0], after
        finally:
            await conn.close()

    rows, values, first_id, after = asyncio.run(main())
    assert rows == [(1, "one")] * 3
    assert values == ["two", "two"]
    assert first_id == 1  # several rows: the first, as the origin gives it
    assert after == (1, "uno")
    # id=1 once, id=2 once, the many-row query once, id=1 again after the write.
    assert pg_server.statement_count(marker) == 4
