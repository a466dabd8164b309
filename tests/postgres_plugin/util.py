"""Helpers for the PostgreSQL end-to-end tests."""

from __future__ import annotations

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
