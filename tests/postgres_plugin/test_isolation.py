"""Isolation: a cached answer is only ever given to a session that would get the same
answer from the origin (DESIGN.md rule 2)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from postgres_plugin.util import connect

USERS = ("scram_user", "md5_user")


@pytest.fixture
def admin(pg_server):
    """A direct superuser connection to the origin, for setting up objects."""
    with psycopg.connect(pg_server.dsn(sslmode="disable"), autocommit=True) as conn:
        yield conn


@pytest.fixture
def name() -> str:
    """A fresh identifier for the objects of one test (the cluster is shared)."""
    return f"iso_{uuid.uuid4().hex[:10]}"


def test_two_users_current_user(pg_server, proxy, marker):
    query = f"SELECT current_user {marker}"
    for _ in range(2):
        for user in USERS:
            with connect(pg_server, proxy, user) as conn:
                assert conn.execute(query).fetchone() == (user,)
    # Each user's answer reached the origin once, then came from the cache.
    assert pg_server.statement_count(marker) == 2


def test_two_users_row_level_security(pg_server, proxy, admin, name, marker):
    admin.execute(f"CREATE TABLE {name} (owner name, secret text)")
    admin.execute(f"INSERT INTO {name} VALUES ('scram_user', 's1'), ('md5_user', 'm1')")
    admin.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
    admin.execute(f"CREATE POLICY mine ON {name} USING (owner = current_user)")
    admin.execute(f"GRANT SELECT ON {name} TO scram_user, md5_user")
    query = f"SELECT secret FROM {name} ORDER BY secret {marker}"
    with connect(pg_server, proxy, "scram_user") as a, connect(pg_server, proxy, "md5_user") as b:
        for _ in range(2):
            assert a.execute(query).fetchall() == [("s1",)]
            assert b.execute(query).fetchall() == [("m1",)]
    assert pg_server.statement_count(marker) == 2


@pytest.fixture
def two_schemas(admin, name):
    """Schemas NAME_a and NAME_b, each with a table ``items`` holding its own letter."""
    for letter in "ab":
        schema = f"{name}_{letter}"
        admin.execute(f"CREATE SCHEMA {schema}")
        admin.execute(f"CREATE TABLE {schema}.items (v text)")
        admin.execute(f"INSERT INTO {schema}.items VALUES ('{letter}')")
        admin.execute(f"GRANT USAGE ON SCHEMA {schema} TO PUBLIC")
        admin.execute(f"GRANT SELECT ON {schema}.items TO PUBLIC")
    return f"{name}_a", f"{name}_b"


def test_two_search_paths_set(pg_server, proxy, two_schemas, marker):
    query = f"SELECT v FROM items {marker}"
    with connect(pg_server, proxy) as a, connect(pg_server, proxy) as b:
        a.execute(f"SET search_path TO {two_schemas[0]}")
        b.execute(f"SET search_path TO {two_schemas[1]}")
        for _ in range(2):
            assert a.execute(query).fetchall() == [("a",)]
            assert b.execute(query).fetchall() == [("b",)]
        # Switching back mid-session is seen too.
        b.execute(f"SET search_path TO {two_schemas[0]}")
        assert b.execute(query).fetchall() == [("a",)]
    # One miss per search_path history; the repeats were hits.
    assert pg_server.statement_count(marker) == 3


def test_two_search_paths_set_config(pg_server, proxy, two_schemas, marker):
    """The function form of SET changes the session just the same."""
    query = f"SELECT v FROM items {marker}"
    with connect(pg_server, proxy) as a, connect(pg_server, proxy) as b:
        a.execute(f"SELECT set_config('search_path', '{two_schemas[0]}', false)")
        b.execute(f"SELECT set_config('search_path', '{two_schemas[1]}', false)")
        assert a.execute(query).fetchall() == [("a",)]
        assert b.execute(query).fetchall() == [("b",)]


def test_two_search_paths_at_startup(pg_server, proxy, two_schemas, marker):
    """search_path given in the startup packet (libpq ``options``), which PostgreSQL 15
    never reports back with ParameterStatus."""
    query = f"SELECT v FROM items {marker}"
    for _ in range(2):
        for schema, letter in zip(two_schemas, "ab", strict=True):
            with connect(pg_server, proxy, options=f"-c search_path={schema}") as conn:
                assert conn.execute(query).fetchall() == [(letter,)]
    assert pg_server.statement_count(marker) == 2


def test_two_time_zones(pg_server, proxy, marker):
    query = f"SELECT '2024-01-01 00:00:00+00'::timestamptz::text {marker}"
    with connect(pg_server, proxy) as a, connect(pg_server, proxy) as b:
        a.execute("SET TimeZone = 'UTC'")
        b.execute("SET TimeZone = 'Asia/Tokyo'")
        for _ in range(2):
            assert a.execute(query).fetchone() == ("2024-01-01 00:00:00+00",)
            assert b.execute(query).fetchone() == ("2024-01-01 09:00:00+09",)
    assert pg_server.statement_count(marker) == 2


def test_time_zone_at_startup(pg_server, proxy, marker):
    query = f"SELECT '2024-01-01 00:00:00+00'::timestamptz::text {marker}"
    with connect(pg_server, proxy, options="-c TimeZone=UTC") as a:
        assert a.execute(query).fetchone() == ("2024-01-01 00:00:00+00",)
    with connect(pg_server, proxy, options="-c TimeZone=America/New_York") as b:
        assert b.execute(query).fetchone() == ("2023-12-31 19:00:00-05",)


def test_date_style(pg_server, proxy, marker):
    query = f"SELECT '2024-03-04'::date::text {marker}"
    with connect(pg_server, proxy) as a, connect(pg_server, proxy) as b:
        a.execute("SET DateStyle = 'ISO, MDY'")
        b.execute("SET DateStyle = 'German, DMY'")
        assert a.execute(query).fetchone() == ("2024-03-04",)
        assert b.execute(query).fetchone() == ("04.03.2024",)


@pytest.fixture
def secret_table(admin, name):
    admin.execute(f"CREATE TABLE {name} (v text)")
    admin.execute(f"INSERT INTO {name} VALUES ('classified')")
    admin.execute(f"REVOKE ALL ON {name} FROM PUBLIC")
    return name


def test_no_privilege_never_gets_cached_rows(pg_server, proxy, secret_table, marker):
    query = f"SELECT v FROM {secret_table} {marker}"
    with connect(pg_server, proxy) as su:
        assert su.execute(query).fetchall() == [("classified",)]
        assert su.execute(query).fetchall() == [("classified",)]
    for _ in range(2):
        with connect(pg_server, proxy, "scram_user") as conn, pytest.raises(
            psycopg.errors.InsufficientPrivilege, match="permission denied"
        ):
            conn.execute(query)
    # The superuser's second read was a hit; each denied read went to the origin.
    assert pg_server.statement_count(marker) == 3


def test_set_role_never_gets_cached_rows(pg_server, proxy, secret_table, marker):
    """SET ROLE changes privileges within a session; the cache must follow."""
    query = f"SELECT v FROM {secret_table} {marker}"
    with connect(pg_server, proxy) as su:
        assert su.execute(query).fetchall() == [("classified",)]
        su.execute("SET ROLE scram_user")
        assert su.execute("SELECT current_user").fetchone() == ("scram_user",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            su.execute(query)
        su.execute("RESET ROLE")


def test_granted_user_sees_rows_after_grant(pg_server, proxy, admin, secret_table, marker):
    """A cached denial is not a thing: once granted, the user reads the rows."""
    query = f"SELECT v FROM {secret_table} {marker}"
    with connect(pg_server, proxy, "scram_user") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(query)
        admin.execute(f"GRANT SELECT ON {secret_table} TO scram_user")
        assert conn.execute(query).fetchall() == [("classified",)]
