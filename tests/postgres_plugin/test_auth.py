"""Authentication passes through wirecache to the origin, for every method the origin uses.

wirecache never knows a password: the origin decides, and a client sees the
origin's own verdict. Each role of the test cluster uses one method (see
tests/servers/postgres.py: scram_user → scram-sha-256, md5_user → md5,
plain_user → password, trust_user → trust).
"""

from __future__ import annotations

import asyncio

import asyncpg
import pg8000.native
import psycopg
import pytest

from postgres_plugin.util import connect

PASSWORD_USERS = ["scram_user", "md5_user", "plain_user"]
ALL_USERS = [*PASSWORD_USERS, "trust_user"]
WRONG = "not-the-password"


def origin_error(pg_server, user: str, password: str) -> str:
    """The message the origin itself gives for these credentials (connected directly)."""
    with pytest.raises(psycopg.OperationalError) as direct:
        psycopg.connect(pg_server.dsn(user, password=password, sslmode="disable"))
    return str(direct.value).rsplit("FATAL:", 1)[1].strip()


# -- psycopg (libpq) ---------------------------------------------------------


@pytest.mark.parametrize("user", ALL_USERS)
def test_right_password_psycopg(pg_server, proxy, user):
    with connect(pg_server, proxy, user) as conn:
        assert conn.execute("SELECT current_user, session_user").fetchone() == (user, user)


@pytest.mark.parametrize("user", PASSWORD_USERS)
def test_wrong_password_psycopg(pg_server, proxy, user):
    with pytest.raises(psycopg.OperationalError) as excinfo:
        connect(pg_server, proxy, user, password=WRONG)
    message = str(excinfo.value)
    assert f'password authentication failed for user "{user}"' in message
    # Word for word what the origin says to a direct client.
    assert origin_error(pg_server, user, WRONG) in message


def test_trust_needs_no_password(pg_server, proxy):
    """trust: the origin never asks, whatever the client holds (as directly)."""
    dsn = pg_server.dsn("trust_user", host=proxy.host, port=proxy.port, sslmode="disable")
    dsn = dsn.replace(f"password={pg_server.users['trust_user']}", "")
    assert "password" not in dsn
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("trust_user",)
    with connect(pg_server, proxy, "trust_user", password=WRONG) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("trust_user",)


def test_missing_password_is_reported_by_client(pg_server, proxy):
    """The origin's password request reaches the client, which has nothing to send."""
    dsn = pg_server.dsn("scram_user", host=proxy.host, port=proxy.port, sslmode="disable")
    dsn = dsn.replace(f"password={pg_server.users['scram_user']}", "")
    assert "password" not in dsn
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        psycopg.connect(dsn, connect_timeout=10)


@pytest.mark.parametrize("user", ["scram_user", "plain_user", "trust_user"])
def test_prefix_routing_authenticates(pg_server, proxy, user):
    """``default-USER``: the prefix is the cache id; the origin authenticates USER."""
    with connect(pg_server, proxy, f"default-{user}",
                 password=pg_server.users[user]) as conn:  # fmt: skip
        assert conn.execute("SELECT current_user").fetchone() == (user,)
    if user != "trust_user":
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            connect(pg_server, proxy, f"default-{user}", password=WRONG)


def test_md5_with_user_prefix_explains_application_name(pg_server, proxy):
    with pytest.raises(psycopg.OperationalError) as excinfo:
        connect(pg_server, proxy, "default-md5_user", password=pg_server.users["md5_user"])
    message = str(excinfo.value)
    assert "FATAL" in message
    assert "md5" in message
    assert "application_name" in message


def test_md5_routed_by_application_name(pg_server, proxy):
    with connect(pg_server, proxy, "md5_user", application_name="default") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("md5_user",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(pg_server, proxy, "md5_user", application_name="default", password=WRONG)


# -- asyncpg -------------------------------------------------------------------


def _asyncpg_user(pg_server, proxy, user: str, password: str) -> str:
    async def main() -> str:
        conn = await asyncpg.connect(
            host=proxy.host, port=proxy.port, user=user, password=password,
            database="app", ssl=False, timeout=10,
        )  # fmt: skip
        try:
            return await conn.fetchval("SELECT current_user")
        finally:
            await conn.close()

    return asyncio.run(main())


@pytest.mark.parametrize("user", ALL_USERS)
def test_right_password_asyncpg(pg_server, proxy, user):
    assert _asyncpg_user(pg_server, proxy, user, pg_server.users[user]) == user


@pytest.mark.parametrize("user", PASSWORD_USERS)
def test_wrong_password_asyncpg(pg_server, proxy, user):
    with pytest.raises(asyncpg.InvalidPasswordError,
                       match=f'password authentication failed for user "{user}"'):  # fmt: skip
        _asyncpg_user(pg_server, proxy, user, WRONG)


# -- pg8000 ----------------------------------------------------------------------


def _pg8000_user(pg_server, proxy, user: str, password: str) -> str:
    conn = pg8000.native.Connection(
        user, host=proxy.host, port=proxy.port, password=password, database="app", timeout=10
    )
    try:
        return conn.run("SELECT current_user")[0][0]
    finally:
        conn.close()


@pytest.mark.parametrize("user", ALL_USERS)
def test_right_password_pg8000(pg_server, proxy, user):
    assert _pg8000_user(pg_server, proxy, user, pg_server.users[user]) == user


@pytest.mark.parametrize("user", PASSWORD_USERS)
def test_wrong_password_pg8000(pg_server, proxy, user):
    with pytest.raises(pg8000.native.DatabaseError) as excinfo:
        _pg8000_user(pg_server, proxy, user, WRONG)
    error = excinfo.value.args[0]
    assert error["C"] == "28P01"
    assert error["M"] == f'password authentication failed for user "{user}"'


def test_failed_login_leaves_proxy_serving(pg_server, proxy):
    """A refused login ends only that connection."""
    with connect(pg_server, proxy, "scram_user") as survivor:
        for _ in range(3):
            with pytest.raises(psycopg.OperationalError):
                connect(pg_server, proxy, "scram_user", password=WRONG)
        assert survivor.execute("SELECT 1").fetchone() == (1,)
