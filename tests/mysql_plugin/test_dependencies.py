"""Writes that change tables the statement does not name: views, cascading foreign
keys and triggers, read from information_schema by the MySQL dialect."""

from __future__ import annotations

from mysql_plugin.util import connect, rows


def _count(conn, query: str) -> int:
    return rows(conn, query)[0][0]


def test_write_to_a_table_refreshes_a_view_of_it(mariadb_server, proxy, table, marker):
    query = f"SELECT COUNT(*) FROM {table}_v {marker}"
    with connect(mariadb_server, proxy) as writer:
        rows(writer, f"CREATE VIEW {table}_v AS SELECT * FROM {table}")
    with connect(mariadb_server, proxy) as reader, connect(mariadb_server, proxy) as writer:
        assert _count(reader, query) == 2
        assert _count(reader, query) == 2
        assert mariadb_server.statement_count(marker) == 1
        rows(writer, f"DELETE FROM {table} WHERE id = 1")
        assert _count(reader, query) == 1


def test_on_delete_cascade_refreshes_the_child_table(mariadb_server, proxy, table, marker):
    child = f"{table}_c"
    query = f"SELECT COUNT(*) FROM {child} {marker}"
    with connect(mariadb_server, proxy) as writer:
        rows(writer, f"CREATE TABLE {child} (pid INT, FOREIGN KEY (pid) REFERENCES {table} (id) "
                     "ON DELETE CASCADE) ENGINE=InnoDB")  # fmt: skip
        rows(writer, f"INSERT INTO {child} VALUES (1), (2)")
    with connect(mariadb_server, proxy) as reader, connect(mariadb_server, proxy) as writer:
        assert _count(reader, query) == 2
        assert _count(reader, query) == 2
        assert mariadb_server.statement_count(marker) == 1
        rows(writer, f"DELETE FROM {table} WHERE id = 1")
        assert _count(reader, query) == 1


def test_trigger_writes_refresh_the_table_they_write(mariadb_server, proxy, table, marker):
    log = f"{table}_log"
    query = f"SELECT COUNT(*) FROM {log} {marker}"
    with connect(mariadb_server, proxy) as writer:
        rows(writer, f"CREATE TABLE {log} (id INT)")
        rows(writer, f"CREATE TRIGGER {table}_t AFTER INSERT ON {table} "
                     f"FOR EACH ROW INSERT INTO {log} VALUES (NEW.id)")  # fmt: skip
    with connect(mariadb_server, proxy) as reader, connect(mariadb_server, proxy) as writer:
        assert _count(reader, query) == 0
        assert _count(reader, query) == 0
        rows(writer, f"INSERT INTO {table} VALUES (3, 'three')")
        assert _count(reader, query) == 1


def test_ddl_in_the_same_session_is_seen(mariadb_server, proxy, table, marker):
    """A view created on the reader's own session: the catalog is read again."""
    query = f"SELECT COUNT(*) FROM {table}_w {marker}"
    with connect(mariadb_server, proxy) as conn:
        rows(conn, f"CREATE VIEW {table}_w AS SELECT * FROM {table}")
        assert _count(conn, query) == 2
        assert _count(conn, query) == 2
        rows(conn, f"DELETE FROM {table}")
        assert _count(conn, query) == 0
