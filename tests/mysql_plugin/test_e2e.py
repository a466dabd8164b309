"""End to end through wirecache in front of the suite's MariaDB, with real drivers."""

from __future__ import annotations

from mysql_plugin.util import connect, rows


def test_login_and_repeated_read(mariadb_server, proxy, marker):
    with connect(mariadb_server, proxy) as conn:
        q = f"SELECT 40 + 2 AS answer {marker}"
        assert rows(conn, q) == [(42,)]
        assert rows(conn, q) == [(42,)]
    assert mariadb_server.statement_count(marker) == 1
