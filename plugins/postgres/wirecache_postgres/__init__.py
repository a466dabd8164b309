"""The PostgreSQL dialect plugin for wirecache (``wirecache-postgres``)."""

from __future__ import annotations

from wirecache.api import Dialect, hookimpl

from wirecache_postgres.dialect import PostgresDialect

__all__ = ["PostgresDialect", "wirecache_dialects"]


@hookimpl
def wirecache_dialects() -> list[Dialect]:
    return [PostgresDialect()]
