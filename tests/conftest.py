"""Session-wide fixtures for the real origin servers (see tests/servers/).

Each server starts lazily, the first time a test asks for it, and is stopped
at the end of the session even when tests fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from servers.mariadb import MariaDBServer, start_mariadb
from servers.postgres import PostgresServer, start_postgres
from servers.tls import TLSFiles, make_tls_files


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A test CA and a server certificate for localhost, 127.0.0.1 and ::1."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def pg_server(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TLSFiles
) -> Iterator[PostgresServer]:
    """A PostgreSQL 15 cluster with one role per auth method; see PostgresServer."""
    with start_postgres(tmp_path_factory.mktemp("postgres"), tls_files) as server:
        yield server


@pytest.fixture(scope="session")
def mariadb_server(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TLSFiles
) -> Iterator[MariaDBServer]:
    """A MariaDB server with native and ed25519 users; see MariaDBServer."""
    with start_mariadb(tmp_path_factory.mktemp("mariadb"), tls_files) as server:
        yield server
