"""Real drivers with their default settings through ``wirecache serve`` (a subprocess),
with and without TLS toward wirecache (``sslmode=require``: encrypted, not verified,
which wirecache's self-signed certificate satisfies).

Drivers that use the simple query protocol for a statement without parameters
(psql, psycopg, node-postgres) must see a repeated read answered by wirecache;
asyncpg and pg8000 always use the extended protocol, which must relay correctly.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import subprocess
from pathlib import Path

import asyncpg
import pg8000.native
import psycopg
import pytest

from postgres_plugin.cli import serve

NODE = shutil.which("node") or "/usr/bin/node"
NODE_DIR = Path(__file__).resolve().parents[1] / "node"
USER = "scram_user"


@pytest.fixture(scope="module")
def served(pg_server, tmp_path_factory):
    with serve(pg_server.host, pg_server.port, tmp_path_factory.mktemp("drivers")) as s:
        yield s


def require_context() -> ssl.SSLContext:
    """What libpq's sslmode=require means: encrypt, do not verify."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# -- psql ---------------------------------------------------------------------------


@pytest.mark.parametrize("sslmode", [None, "require"])
def test_psql(pg_server, served, marker, sslmode):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGPASSWORD"] = pg_server.users[USER]
    conninfo = f"host={served.host} port={served.port} user={USER} dbname=app"
    if sslmode:
        conninfo += f" sslmode={sslmode}"
    query = f"SELECT 'psql', current_user {marker}"
    result = subprocess.run(
        ["/usr/bin/psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", conninfo,
         "-c", query, "-c", query, "-c", "\\conninfo"],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["psql|scram_user", "psql|scram_user"]
    # libpq's default sslmode=prefer encrypts too.
    assert "SSL connection" in result.stdout
    assert pg_server.statement_count(marker) == 1


# -- psycopg ------------------------------------------------------------------------


@pytest.mark.parametrize("sslmode", [None, "require"])
def test_psycopg(pg_server, served, marker, sslmode):
    params = {"sslmode": sslmode} if sslmode else {}
    dsn = pg_server.dsn(USER, host=served.host, port=served.port, **params)
    query = f"SELECT 'psycopg', current_user {marker}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute(query).fetchone() == ("psycopg", USER)
        assert conn.execute(query).fetchone() == ("psycopg", USER)
        # The extended protocol (a parameter) relays too.
        assert conn.execute("SELECT %s::int + 1", [41]).fetchone() == (42,)
    assert pg_server.statement_count(marker) == 1


# -- asyncpg ------------------------------------------------------------------------


@pytest.mark.parametrize("ssl_mode", [None, "require"])
def test_asyncpg(pg_server, served, marker, ssl_mode):
    async def main():
        kwargs = {"ssl": ssl_mode} if ssl_mode else {}
        conn = await asyncpg.connect(
            host=served.host, port=served.port, user=USER, password=pg_server.users[USER],
            database="app", timeout=10, **kwargs,
        )  # fmt: skip
        try:
            encrypted = conn._transport.get_extra_info("ssl_object") is not None
            rows = [await conn.fetchrow(f"SELECT 'asyncpg' AS d, current_user AS u {marker}")
                    for _ in range(2)]  # fmt: skip
            value = await conn.fetchval("SELECT $1::int + 1", 41)
            status = await conn.execute(f"SELECT 1 {marker}")  # simple protocol
            return encrypted, [tuple(r) for r in rows], value, status
        finally:
            await conn.close()

    encrypted, rows, value, status = asyncio.run(main())
    # asyncpg's default ssl='prefer' encrypts when the server offers TLS.
    assert encrypted
    assert rows == [("asyncpg", USER)] * 2
    assert value == 42
    assert status == "SELECT 1"


# -- pg8000 -------------------------------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["default", "ssl_context"])
def test_pg8000(pg_server, served, marker, tls):
    kwargs = {"ssl_context": require_context()} if tls else {}
    conn = pg8000.native.Connection(
        USER, host=served.host, port=served.port, password=pg_server.users[USER],
        database="app", timeout=10, **kwargs,
    )  # fmt: skip
    try:
        # pg8000 asks for TLS by default too (without verifying), like libpq's prefer.
        assert isinstance(conn._usock, ssl.SSLSocket)
        query = f"SELECT 'pg8000', current_user {marker}"
        assert conn.run(query) == [["pg8000", USER]]
        assert conn.run(query) == [["pg8000", USER]]
        assert conn.run("SELECT CAST(:n AS int) + 1", n=41) == [[42]]
    finally:
        conn.close()


# -- node-postgres --------------------------------------------------------------------


def run_node(config: dict, queries: list[str]) -> dict:
    if not (NODE_DIR / "node_modules" / "pg").is_dir():
        pytest.skip(f"node-postgres is not installed: run `npm install --prefix {NODE_DIR}`")
    if not Path(NODE).exists():
        pytest.skip("node is not installed")
    payload = json.dumps({"config": config, "queries": queries})
    result = subprocess.run([NODE, str(NODE_DIR / "query.js"), payload],
                            capture_output=True, text=True, timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("tls", [False, True], ids=["default", "ssl"])
def test_node_pg(pg_server, served, marker, tls):
    config = {"host": served.host, "port": served.port, "user": USER,
              "password": pg_server.users[USER], "database": "app"}  # fmt: skip
    if tls:
        # node-postgres's equivalent of sslmode=require.
        config["ssl"] = {"rejectUnauthorized": False}
    query = f"SELECT 'node', current_user {marker}"
    out = run_node(config, [query, query])
    assert out["encrypted"] is tls
    assert out["results"] == [[["node", USER]], [["node", USER]]]
    assert pg_server.statement_count(marker) == 1


def test_node_pg_connection_string(pg_server, served, marker):
    """A Prisma-style DATABASE_URL with the cache id in front of the user name."""
    url = (f"postgresql://default-{USER}:{pg_server.users[USER]}@{served.host}:{served.port}"
           "/app?sslmode=no-verify")  # fmt: skip
    out = run_node({"connectionString": url}, ["SELECT current_user"])
    assert out["encrypted"] is True
    assert out["results"] == [[[USER]]]
