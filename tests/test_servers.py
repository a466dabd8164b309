"""Smoke tests for the test origin servers themselves.

Every proxy test trusts these fixtures: that each user really authenticates
with its advertised method, that TLS verifies against the test CA, and that
statement_count sees statements from every protocol path. If one of those
were silently wrong, cache tests would pass for the wrong reason.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pymysql
import pytest
import trustme
from servers.mariadb import MariaDBServer
from servers.postgres import PostgresServer


def _marker() -> str:
    """A comment unique to one test, so counts ignore other tests' statements."""
    return f"/* t{uuid.uuid4().hex} */"


# --- PostgreSQL -------------------------------------------------------------


def _verified(server: PostgresServer) -> dict[str, str]:
    return {"sslmode": "verify-full", "sslrootcert": str(server.ca_path)}


@pytest.mark.parametrize(
    ("user", "method"),
    [
        ("postgres", "scram-sha-256"),
        ("scram_user", "scram-sha-256"),
        ("md5_user", "md5"),
        ("plain_user", "password"),
    ],
)
def test_pg_password_users(pg_server: PostgresServer, user: str, method: str) -> None:
    since = pg_server.log_position()
    with psycopg.connect(pg_server.dsn(user, **_verified(pg_server))) as conn:
        row = conn.execute(
            "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchone()
    assert row == (user, True)
    # The server says which pg_hba method authenticated the connection.
    log = pg_server.log_path.read_bytes()[since:].decode()
    assert f'identity="{user}" method={method}' in log

    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(pg_server.dsn(user, password="wrong", **_verified(pg_server)))


def test_pg_trust_user_ignores_password(pg_server: PostgresServer) -> None:
    dsn = pg_server.dsn("trust_user", password="wrong", **_verified(pg_server))
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("trust_user",)


def test_pg_md5_user_has_md5_hash(pg_server: PostgresServer) -> None:
    """md5 auth only works against an md5-hashed password, so check how it is stored."""
    with psycopg.connect(pg_server.dsn(dbname="postgres")) as conn:
        rows = dict(conn.execute("SELECT rolname, left(rolpassword, 6) FROM pg_authid").fetchall())
    assert rows["md5_user"].startswith("md5")
    assert rows["scram_user"].startswith("SCRAM-")


def test_pg_tls_rejects_unknown_ca(pg_server: PostgresServer, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(pg_server.dsn(sslmode="verify-full", sslrootcert=str(other_ca)))


@pytest.mark.parametrize("dbname", ["app", "other"])
def test_pg_users_can_create_tables(pg_server: PostgresServer, dbname: str) -> None:
    table = f"t_{uuid.uuid4().hex}"
    for user in ("scram_user", "md5_user", "plain_user", "trust_user"):
        with psycopg.connect(pg_server.dsn(user, dbname=dbname)) as conn:
            conn.execute(f"CREATE TABLE {table}_{user} (id int)")


def test_pg_server_settings(pg_server: PostgresServer) -> None:
    with psycopg.connect(pg_server.dsn()) as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('max_connections', 'pg_stat_statements.track', 'log_statement', 'ssl')"
            ).fetchall()
        )
        extensions = [r[0] for r in conn.execute("SELECT extname FROM pg_extension").fetchall()]
    assert settings == {
        "max_connections": "200",
        "pg_stat_statements.track": "all",
        "log_statement": "all",
        "ssl": "on",
    }
    assert "pg_stat_statements" in extensions
    assert pg_server.port != 5432


def test_pg_statement_count_both_protocols(pg_server: PostgresServer) -> None:
    marker = _marker()
    with psycopg.connect(pg_server.dsn("scram_user")) as conn:
        conn.execute(f"SELECT 1 {marker}")  # no parameters: simple protocol
        conn.execute(f"SELECT %s::int {marker}", (2,))  # unnamed extended statement
        for _ in range(2):  # named prepared statement, executed twice
            conn.execute(f"SELECT %s::text {marker}", ("x",), prepare=True)
        conn.execute(f"SELECT\n  3\n  {marker}")  # multi-line
    assert pg_server.statement_count(marker) == 5
    assert pg_server.statement_count(f"SELECT $1::int {marker}") == 1
    assert pg_server.statement_count(f"SELECT\n  3\n  {marker}") == 1
    assert pg_server.statement_count(marker, since=pg_server.log_position()) == 0


# --- MariaDB ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "plugin"),
    [
        ("root", "mysql_native_password"),
        ("native_user", "mysql_native_password"),
        ("ed25519_user", "ed25519"),
    ],
)
def test_mariadb_users(mariadb_server: MariaDBServer, user: str, plugin: str) -> None:
    conn = pymysql.connect(**mariadb_server.pymysql_kwargs(user))
    with conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER(), @@port")
        current_user, port = cur.fetchone()
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        _, cipher = cur.fetchone()
    assert current_user.split("@")[0] == user
    assert port == mariadb_server.port != 3306
    assert cipher, "connection is not encrypted"

    admin = pymysql.connect(**mariadb_server.pymysql_kwargs())
    with admin, admin.cursor() as cur:
        cur.execute(
            "SELECT plugin FROM mysql.user WHERE user = %s AND host = %s",
            tuple(current_user.split("@")),
        )
        assert cur.fetchall() == ((plugin,),)

    with pytest.raises(pymysql.err.OperationalError) as excinfo:
        pymysql.connect(**mariadb_server.pymysql_kwargs(user, password="wrong"))
    assert excinfo.value.args[0] == 1045  # ER_ACCESS_DENIED_ERROR


def test_mariadb_tls_verification(mariadb_server: MariaDBServer, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    kwargs = mariadb_server.pymysql_kwargs(ssl={"ca": str(other_ca)})
    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connect(**kwargs)


def test_mariadb_server_settings(mariadb_server: MariaDBServer) -> None:
    conn = pymysql.connect(**mariadb_server.pymysql_kwargs())
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT @@performance_schema, @@general_log, @@max_connections, "
            "@@character_set_server, @@have_ssl"
        )
        assert cur.fetchone() == (1, 1, 200, "utf8mb4", "YES")
        cur.execute("SHOW DATABASES")
        assert {"app", "other"} <= {r[0] for r in cur.fetchall()}


def test_mariadb_statement_count(mariadb_server: MariaDBServer) -> None:
    marker = _marker()
    conn = pymysql.connect(**mariadb_server.pymysql_kwargs("native_user"))
    with conn, conn.cursor() as cur:
        cur.execute(f"SELECT 1 {marker}")
        cur.execute(f"SELECT %s {marker}", ("x",))
        cur.execute(f"SELECT\n  2\n  {marker}")
    assert mariadb_server.statement_count(marker) == 3
    assert mariadb_server.statement_count(f"SELECT 'x' {marker}") == 1
    assert mariadb_server.statement_count(f"SELECT\n  2\n  {marker}") == 1


def test_mariadb_statement_count_binary_protocol(mariadb_server: MariaDBServer) -> None:
    """COM_STMT_PREPARE is not counted; each COM_STMT_EXECUTE is, with its values."""
    try:
        import mysql.connector
    except ModuleNotFoundError:
        import mysql

        pytest.skip(
            f"mysql-connector-python is shadowed by {mysql.__file__}: a tests/mysql "
            "package hides the real 'mysql' package while tests/ is on sys.path"
        )
    marker = _marker()
    since = mariadb_server.log_position()
    kwargs = mariadb_server.pymysql_kwargs("native_user", tls=False)
    cnx = mysql.connector.connect(
        host=kwargs["host"], port=kwargs["port"], user=kwargs["user"],
        password=kwargs["password"], database=kwargs["database"],
        ssl_ca=str(mariadb_server.ca_path), ssl_verify_identity=True,
    )
    try:
        cur = cnx.cursor(prepared=True)
        for value in (5, 6):
            cur.execute(f"SELECT %s {marker}", (value,))
            cur.fetchall()
        cur.close()
    finally:
        cnx.close()
    assert mariadb_server.statement_count(marker, since=since) == 2
    assert mariadb_server.statement_count(f"SELECT 6 {marker}", since=since) == 1
