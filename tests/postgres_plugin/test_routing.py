"""Routing by cache id: one listener, several caches, chosen by the client.

The two caches here share one listener (same listen address, so
``ServerConfig.caches_by_listener`` puts them in one group) and differ in
their origin leg: ``alpha`` talks to the origin in the clear, ``beta`` over
TLS. The origin's ``pg_stat_ssl`` then tells which cache carried a session —
what a user would see, not wirecache's own bookkeeping.
"""

from __future__ import annotations

import socket
import uuid

import psycopg
import pytest
from psycopg import sql
from servers.proxy import cache_config
from wirecache.config import Address

from postgres_plugin.util import connect

ORIGIN_SSL = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


@pytest.fixture
def two_caches(pg_server, make_proxy):
    """``alpha`` (the default, plain origin leg) and ``beta`` (TLS origin leg) on one port."""
    beta = cache_config(pg_server.host, pg_server.port, id="beta", origin_tls="require",
                        default=False)  # fmt: skip
    proxy = make_proxy(beta, id="alpha")
    assert len(proxy.addresses) == 1, "both caches must share one listener"
    return proxy


def password(pg_server, user="scram_user"):
    return pg_server.users[user]


def test_user_prefix_picks_cache_and_is_removed(pg_server, two_caches):
    with connect(pg_server, two_caches, "beta-scram_user", password=password(pg_server)) as conn:
        assert conn.execute(ORIGIN_SSL).fetchone() == (True,)
        # The origin saw the real user name, without the cache id.
        assert conn.execute("SELECT current_user, session_user").fetchone() == (
            "scram_user", "scram_user",
        )  # fmt: skip
    with connect(pg_server, two_caches, "alpha-scram_user", password=password(pg_server)) as conn:
        assert conn.execute(ORIGIN_SSL).fetchone() == (False,)
        assert conn.execute("SELECT current_user").fetchone() == ("scram_user",)


def test_user_prefix_is_case_insensitive(pg_server, two_caches):
    with connect(pg_server, two_caches, "BETA-scram_user", password=password(pg_server)) as conn:
        assert conn.execute(ORIGIN_SSL).fetchone() == (True,)


def test_application_name_picks_cache(pg_server, two_caches):
    with connect(pg_server, two_caches, "scram_user", application_name="beta") as conn:
        assert conn.execute(ORIGIN_SSL).fetchone() == (True,)
        assert conn.execute("SELECT current_user").fetchone() == ("scram_user",)
    with connect(pg_server, two_caches, "scram_user", application_name="alpha") as conn:
        assert conn.execute(ORIGIN_SSL).fetchone() == (False,)


def test_default_cache_without_id(pg_server, two_caches):
    """No id, or an application_name that names no cache (psql sends "psql"): the default."""
    with connect(pg_server, two_caches, "scram_user") as conn:
        assert conn.execute(ORIGIN_SSL).fetchone() == (False,)
    with connect(pg_server, two_caches, "scram_user", application_name="psql") as conn:
        assert conn.execute(ORIGIN_SSL).fetchone() == (False,)
        # application_name is passed through untouched.
        assert conn.execute("SHOW application_name").fetchone() == ("psql",)


def test_caches_are_separate(pg_server, two_caches, marker):
    """A result cached in alpha is not an answer in beta; each answers its own repeats."""
    query = f"SELECT 'routed' {marker}"
    for cache_id in ("alpha", "beta", "alpha", "beta"):
        with connect(pg_server, two_caches, "scram_user", application_name=cache_id) as conn:
            assert conn.execute(query).fetchone() == ("routed",)
    assert pg_server.statement_count(marker) == 2


def test_prefix_and_application_name_share_a_cache(pg_server, two_caches, marker):
    query = f"SELECT 'shared' {marker}"
    with connect(pg_server, two_caches, "beta-scram_user", password=password(pg_server)) as conn:
        assert conn.execute(query).fetchone() == ("shared",)
    with connect(pg_server, two_caches, "scram_user", application_name="beta") as conn:
        assert conn.execute(query).fetchone() == ("shared",)
    assert pg_server.statement_count(marker) == 1


def test_user_name_with_dash_reaches_default(pg_server, two_caches):
    """A real user name containing a dash whose first part names no cache is left alone."""
    role = f"dash-{uuid.uuid4().hex[:8]}"
    secret = uuid.uuid4().hex
    with psycopg.connect(pg_server.dsn(sslmode="disable"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(secret)))  # fmt: skip
    try:
        with connect(pg_server, two_caches, role, password=secret) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (role,)
            assert conn.execute(ORIGIN_SSL).fetchone() == (False,)
    finally:
        with psycopg.connect(pg_server.dsn(sslmode="disable"), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def no_default(pg_server, make_proxy):
    beta = cache_config(pg_server.host, pg_server.port, id="beta", default=False)
    proxy = make_proxy(beta, id="alpha", default=False)
    assert len(proxy.addresses) == 1
    return proxy


@pytest.mark.parametrize(
    ("user", "params", "asked"),
    [
        ("gamma-scram_user", {}, "gamma"),
        ("scram_user", {"application_name": "gamma"}, "gamma"),
        ("scram_user", {}, ""),
    ],
)
def test_unknown_cache_id_without_default(pg_server, no_default, user, params, asked):
    with pytest.raises(psycopg.OperationalError) as excinfo:
        connect(pg_server, no_default, user, password=password(pg_server), **params)
    message = str(excinfo.value)
    assert "FATAL" in message
    assert f'unknown cache id "{asked}"' in message
    assert "alpha, beta" in message
    assert "application_name" in message


def test_known_ids_work_without_default(pg_server, no_default):
    for cache_id in ("alpha", "beta"):
        with connect(pg_server, no_default, "scram_user", application_name=cache_id) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("scram_user",)


# -- an origin that is down ---------------------------------------------------------


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_origin_down_names_cache_and_origin(pg_server, make_proxy):
    port = _unused_port()
    proxy = make_proxy(id="orders", origin=Address("127.0.0.1", port))
    with pytest.raises(psycopg.OperationalError) as excinfo:
        connect(pg_server, proxy, "scram_user", connect_timeout=10)
    message = str(excinfo.value)
    assert "FATAL" in message
    assert '"orders"' in message
    assert f"127.0.0.1:{port}" in message
    assert "cannot reach its origin" in message
    assert "Connection refused" in message


def test_origin_down_leaves_other_caches_working(pg_server, make_proxy):
    down = cache_config("127.0.0.1", _unused_port(), id="down", default=False)
    proxy = make_proxy(down, id="up")
    with pytest.raises(psycopg.OperationalError, match='cache "down"'):
        connect(pg_server, proxy, "scram_user", application_name="down", connect_timeout=10)
    with connect(pg_server, proxy, "scram_user", application_name="up") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
