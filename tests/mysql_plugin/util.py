"""Helpers for the MySQL end-to-end tests: driver connections through wirecache."""

from __future__ import annotations

import uuid
from typing import Any

import pymysql
from servers.mariadb import MariaDBServer
from servers.proxy import RunningProxy


def proxy_kwargs(
    server: MariaDBServer, proxy: RunningProxy, user: str = "native_user",
    database: str = "app", *, tls: bool = False, prefix: str = "", **overrides: Any,
) -> dict[str, Any]:  # fmt: skip
    """PyMySQL keyword arguments reaching ``server`` through ``proxy``."""
    kwargs = server.pymysql_kwargs(user, database, tls=tls, host=proxy.host, port=proxy.port)
    kwargs["user"] = prefix + user
    if not tls:
        kwargs["ssl_disabled"] = True  # PyMySQL 2 tries TLS unless told not to
    kwargs.setdefault("autocommit", True)
    kwargs.update(overrides)
    return kwargs


def connect(server: MariaDBServer, proxy: RunningProxy, user: str = "native_user",
            database: str = "app", **kwargs: Any) -> pymysql.Connection:  # fmt: skip
    """An autocommit PyMySQL connection through ``proxy``."""
    return pymysql.connect(**proxy_kwargs(server, proxy, user, database, **kwargs))


def rows(conn: pymysql.Connection, sql: str, args: Any = None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def table_name() -> str:
    """A table name no other test uses."""
    return f"t_{uuid.uuid4().hex[:12]}"
