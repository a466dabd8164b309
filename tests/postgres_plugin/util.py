"""Helpers for the PostgreSQL end-to-end tests."""

from __future__ import annotations

import uuid

import psycopg
from servers.postgres import PostgresServer
from servers.proxy import RunningProxy


def proxy_dsn(pg_server: PostgresServer, proxy: RunningProxy, user: str = "postgres",
              **params) -> str:  # fmt: skip
    """A libpq connection string that reaches the origin through ``proxy``."""
    params.setdefault("sslmode", "disable")
    return pg_server.dsn(user, host=proxy.host, port=proxy.port, **params)


def connect(pg_server: PostgresServer, proxy: RunningProxy, user: str = "postgres",
            **params) -> psycopg.Connection:  # fmt: skip
    """An autocommit psycopg connection through ``proxy``."""
    return psycopg.connect(proxy_dsn(pg_server, proxy, user, **params), autocommit=True)


def trust_user_table(pg_server: PostgresServer, prefix: str, columns: str, fill: str,
                     grant: str = "SELECT") -> str:  # fmt: skip
    """A new table named ``prefix_…`` with ``columns``, filled by ``fill`` ({t} is the
    table), on which trust_user (the raw-protocol tests' user) has ``grant``."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} ({columns})")
        conn.execute(fill.format(t=name))
        conn.execute(f"GRANT {grant} ON {name} TO trust_user")
    return name
