"""Fixtures for end-to-end tests of the MySQL dialect: wirecache in front of the suite's
MariaDB (never the machine's shared server), and driver connections through it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from servers.mariadb import MariaDBServer
from servers.proxy import RunningProxy, proxy_factory
from servers.tls import TLSFiles

from mysql_plugin.util import connect, rows, table_name


@pytest.fixture
def make_proxy(
    mariadb_server: MariaDBServer, tls_files: TLSFiles, tmp_path
) -> Iterator[Callable[..., RunningProxy]]:
    """Start a wirecache in front of the suite's MariaDB; keyword arguments override
    fields of the cache's CacheConfig (``origin_tls="verify-full"``…). The client leg
    serves the test CA's certificate, so clients can verify wirecache."""
    with proxy_factory(
        mariadb_server.host, mariadb_server.port, tmp_path, dialect="mysql",
        client_tls_cert=tls_files.cert_chain_path, client_tls_key=tls_files.key_path,
    ) as start:  # fmt: skip
        yield start


@pytest.fixture
def proxy(make_proxy) -> RunningProxy:
    """A wirecache with default settings in front of the suite's MariaDB."""
    return make_proxy()


@pytest.fixture
def marker() -> str:
    """A comment unique to the test, to find its statements in the origin's log."""
    return f"/* t{uuid.uuid4().hex} */"


@pytest.fixture
def table(mariadb_server: MariaDBServer, proxy: RunningProxy) -> str:
    """A fresh table ``(id int primary key, v varchar)`` in ``app`` with two rows."""
    name = table_name()
    with connect(mariadb_server, proxy) as conn:
        rows(conn, f"CREATE TABLE {name} (id INT PRIMARY KEY, v VARCHAR(20))")
        rows(conn, f"INSERT INTO {name} VALUES (1, 'one'), (2, 'two')")
    return name
