"""Fixtures for end-to-end tests of the PostgreSQL dialect: wirecache in front of the
suite's PostgreSQL, and psycopg connections through it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from servers.postgres import PostgresServer
from servers.proxy import RunningProxy, proxy_factory


@pytest.fixture
def make_proxy(pg_server: PostgresServer, tmp_path) -> Iterator[Callable[..., RunningProxy]]:
    """Start a wirecache in front of the suite's PostgreSQL; keyword arguments override
    fields of the cache's CacheConfig (``origin_tls="require"``…)."""
    with proxy_factory(pg_server.host, pg_server.port, tmp_path) as start:
        yield start


@pytest.fixture
def proxy(make_proxy) -> RunningProxy:
    """A wirecache with default settings in front of the suite's PostgreSQL."""
    return make_proxy()


@pytest.fixture
def marker() -> str:
    """A comment unique to the test, to find its statements in the origin's log."""
    return f"/* t{uuid.uuid4().hex} */"
