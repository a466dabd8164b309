"""The MySQL/MariaDB dialect plugin for wirecache (``wirecache-mysql``)."""

from __future__ import annotations

from wirecache.api import Dialect, hookimpl

from wirecache_mysql.dialect import MySQLDialect

__all__ = ["MySQLDialect", "wirecache_dialects"]


@hookimpl
def wirecache_dialects() -> list[Dialect]:
    return [MySQLDialect()]
