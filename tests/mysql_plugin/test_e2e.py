"""End to end through wirecache in front of the suite's MariaDB, with real drivers.

Whether a statement reached the origin is read from MariaDB's general log
(``statement_count``), never inferred from wirecache's own counters.
"""

from __future__ import annotations

import socket
import ssl
import struct

import mysql.connector
import MySQLdb
import pymysql
import pytest
from pymysql.constants import CLIENT
from servers.proxy import cache_config

from mysql_plugin.util import connect, rows, table_name

# -- login, TLS, routing ----------------------------------------------------------


@pytest.mark.parametrize("user", ["native_user", "ed25519_user"])
def test_login(mariadb_server, proxy, user):
    with connect(mariadb_server, proxy, user) as conn:
        assert rows(conn, "SELECT CURRENT_USER()")[0][0].startswith(f"{user}@")
        assert rows(conn, "SELECT DATABASE()") == [("app",)]


@pytest.mark.parametrize("user", ["native_user", "ed25519_user"])
def test_wrong_password_fails(mariadb_server, proxy, user):
    with pytest.raises(pymysql.err.OperationalError) as info:
        connect(mariadb_server, proxy, user, password="wrong")
    assert info.value.args[0] == 1045


def test_client_tls_verified(mariadb_server, proxy):
    """The client verifies wirecache's certificate against the test CA, host name included."""
    with connect(mariadb_server, proxy, "ed25519_user", tls=True) as conn:
        assert isinstance(conn._sock, ssl.SSLSocket)
        assert rows(conn, "SELECT 1") == [(1,)]


def test_origin_tls(mariadb_server, make_proxy):
    proxy = make_proxy(origin_tls="verify-full", origin_ca=mariadb_server.ca_path)
    with connect(mariadb_server, proxy) as conn:
        assert not isinstance(conn._sock, ssl.SSLSocket)
        (name, version), = rows(conn, "SHOW SESSION STATUS LIKE 'Ssl_version'")
        assert version.startswith("TLS")
    with connect(mariadb_server, proxy, "ed25519_user", tls=True) as conn:
        assert rows(conn, "SHOW SESSION STATUS LIKE 'Ssl_version'")[0][1].startswith("TLS")


def test_plain_origin_leg_has_no_tls(mariadb_server, proxy):
    with connect(mariadb_server, proxy, tls=True) as conn:
        assert rows(conn, "SHOW SESSION STATUS LIKE 'Ssl_version'")[0][1] == ""


def test_user_prefix_routes_to_cache(mariadb_server, make_proxy, marker):
    second = cache_config(mariadb_server.host, mariadb_server.port, id="second",
                          dialect="mysql", default=False)  # fmt: skip
    proxy = make_proxy(second, default=False)
    q = f"SELECT 'routed' {marker}"
    for _ in range(2):
        with connect(mariadb_server, proxy, prefix="second-") as conn:
            assert rows(conn, q) == [("routed",)]
    assert mariadb_server.statement_count(marker) == 1
    with connect(mariadb_server, proxy, prefix="default-") as conn:  # another cache
        assert rows(conn, q) == [("routed",)]
    assert mariadb_server.statement_count(marker) == 2


def test_unknown_cache_id_is_an_error(mariadb_server, make_proxy):
    second = cache_config(mariadb_server.host, mariadb_server.port, id="second",
                          dialect="mysql", default=False)  # fmt: skip
    proxy = make_proxy(second, default=False)
    with pytest.raises(pymysql.err.OperationalError) as info:
        connect(mariadb_server, proxy, prefix="nope-")
    message = info.value.args[1]
    assert 'unknown cache id "nope"' in message and "second" in message


def test_unknown_prefix_falls_back_to_default_cache(mariadb_server, proxy):
    """With a single cache a dash in the name is just part of the user name."""
    with pytest.raises(pymysql.err.OperationalError) as info:
        connect(mariadb_server, proxy, prefix="nope-")
    assert info.value.args[0] == 1045  # the origin rejects user "nope-native_user"
    with connect(mariadb_server, proxy, prefix="default-") as conn:
        assert rows(conn, "SELECT 1") == [(1,)]


def test_unreachable_origin(mariadb_server, make_proxy):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proxy = make_proxy(origin=cache_config("127.0.0.1", port).origin)
    with pytest.raises(pymysql.err.OperationalError) as info:
        connect(mariadb_server, proxy)
    assert "cannot reach its origin" in info.value.args[1]


# -- caching ------------------------------------------------------------------------


def test_repeated_read_served_by_wirecache(mariadb_server, proxy, table, marker):
    q = f"SELECT id, v FROM {table} ORDER BY id {marker}"
    with connect(mariadb_server, proxy) as a:
        assert rows(a, q) == [(1, "one"), (2, "two")]
        assert rows(a, q) == [(1, "one"), (2, "two")]
    with connect(mariadb_server, proxy, "ed25519_user") as b:  # another user: own entry
        assert rows(b, q) == [(1, "one"), (2, "two")]
    # the same user over TLS: a hit, with the column names intact
    with connect(mariadb_server, proxy, tls=True) as c, c.cursor() as cur:
        cur.execute(q)
        assert [d[0] for d in cur.description] == ["id", "v"]
        assert cur.fetchall() == ((1, "one"), (2, "two"))
    assert mariadb_server.statement_count(marker) == 2


def test_databases_are_isolated(mariadb_server, proxy, marker):
    name = table_name()
    for db in ("app", "other"):
        with connect(mariadb_server, proxy, database=db) as conn:
            rows(conn, f"CREATE TABLE {name} (v VARCHAR(10))")
            rows(conn, f"INSERT INTO {name} VALUES ('{db}')")
    q = f"SELECT v FROM {name} {marker}"
    with connect(mariadb_server, proxy, database="app") as conn:
        assert rows(conn, q) == [("app",)]
        rows(conn, "USE other")
        assert rows(conn, q) == [("other",)]
        conn.select_db("app")  # COM_INIT_DB
        assert rows(conn, q) == [("app",)]
    with connect(mariadb_server, proxy, database="other") as conn:
        assert rows(conn, q) == [("other",)]


WRITES = {
    "insert": "INSERT INTO {t} VALUES (3, 'three')",
    "update": "UPDATE {t} SET v = 'uno' WHERE id = 1",
    "delete": "DELETE FROM {t} WHERE id = 2",
    "replace": "REPLACE INTO {t} VALUES (1, 'eins')",
    "upsert": "INSERT INTO {t} VALUES (1, 'x') ON DUPLICATE KEY UPDATE v = 'dup'",
    "truncate": "TRUNCATE TABLE {t}",
    "alter": "ALTER TABLE {t} ADD COLUMN extra INT DEFAULT 7",
    "qualified": "UPDATE app.{t} SET v = 'q' WHERE id = 2",
    "multi_table": "UPDATE {t} a JOIN {t} b ON a.id = b.id SET a.v = 'mt'",
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_write_on_another_connection_invalidates(mariadb_server, proxy, table, marker, write):
    q = f"SELECT * FROM {table} ORDER BY id {marker}"
    with connect(mariadb_server, proxy) as reader, connect(mariadb_server, proxy) as writer:
        before = rows(reader, q)
        assert rows(reader, q) == before
        rows(writer, WRITES[write].format(t=table))
        after = rows(reader, q)
    with connect(mariadb_server, proxy, tls=False, database="other") as direct:
        truth = rows(direct, f"SELECT * FROM app.{table} ORDER BY id")
    assert after == truth != before
    assert mariadb_server.statement_count(marker) == 2


@pytest.mark.parametrize(
    "statement",
    ["ANALYZE DELETE FROM {t} WHERE id = 2",
     "analyze format=json delete from {t} where id = 2",
     "ANALYZE UPDATE {t} SET v = 'gone' WHERE id = 2"],
)  # fmt: skip
def test_analyze_of_a_write_invalidates(mariadb_server, proxy, table, marker, statement):
    """MariaDB's ANALYZE <stmt> (MySQL 8: EXPLAIN ANALYZE) runs the statement it
    explains: its write is real and must invalidate. MariaDB 10.11 rejects MySQL's
    EXPLAIN ANALYZE syntax, so that form is covered by test_classify only."""
    q = f"SELECT id, v FROM {table} WHERE v <> 'gone' ORDER BY id {marker}"
    with connect(mariadb_server, proxy) as reader, connect(mariadb_server, proxy) as writer:
        assert rows(reader, q) == [(1, "one"), (2, "two")]
        assert rows(reader, q) == [(1, "one"), (2, "two")]
        rows(writer, statement.format(t=table))
        assert rows(reader, q) == [(1, "one")]
    assert mariadb_server.statement_count(marker) == 2


def test_plain_explain_does_not_invalidate(mariadb_server, proxy, table, marker):
    q = f"SELECT id, v FROM {table} ORDER BY id {marker}"
    with connect(mariadb_server, proxy) as reader, connect(mariadb_server, proxy) as writer:
        assert rows(reader, q) == [(1, "one"), (2, "two")]
        rows(writer, f"EXPLAIN DELETE FROM {table} WHERE id = 2")
        rows(writer, f"EXPLAIN SELECT * FROM {table}")
        rows(writer, f"DESCRIBE {table}")
        assert rows(reader, q) == [(1, "one"), (2, "two")]
    assert mariadb_server.statement_count(marker) == 1


def test_write_from_other_database_invalidates(mariadb_server, proxy, table, marker):
    q = f"SELECT v FROM {table} WHERE id = 1 {marker}"
    with connect(mariadb_server, proxy) as reader:
        assert rows(reader, q) == [("one",)]
        with connect(mariadb_server, proxy, database="other") as writer:
            rows(writer, f"UPDATE app.{table} SET v = 'changed' WHERE id = 1")
        assert rows(reader, q) == [("changed",)]


def test_transaction_not_cached_and_invalidated_at_commit(mariadb_server, proxy, table, marker):
    q = f"SELECT v FROM {table} WHERE id = 1 {marker}"
    with connect(mariadb_server, proxy) as reader, connect(mariadb_server, proxy) as tx:
        assert rows(reader, q) == [("one",)]
        rows(tx, "BEGIN")
        assert rows(tx, q) == [("one",)]  # inside a transaction: to the origin
        assert rows(tx, q) == [("one",)]
        rows(tx, f"UPDATE {table} SET v = 'tx' WHERE id = 1")
        assert rows(tx, q) == [("tx",)]
        # Not committed (the UPDATE's OK says the transaction is open, and bumps
        # nothing): the committed value, still from the cache.
        assert rows(reader, q) == [("one",)]
        assert rows(reader, q) == [("one",)]
        rows(tx, "COMMIT")
        assert rows(reader, q) == [("tx",)]
    # The reader's first and last reads, and the three inside the transaction.
    assert mariadb_server.statement_count(marker) == 5


def test_a_write_committed_implicitly_invalidates(mariadb_server, proxy, table, marker):
    """A write inside a transaction is bumped when the transaction ends, not at its OK
    (which says the transaction is open): here by the implicit commit of DDL."""
    q = f"SELECT v FROM {table} WHERE id = 2 {marker}"
    with connect(mariadb_server, proxy) as reader, connect(mariadb_server, proxy) as tx:
        assert rows(reader, q) == [("two",)]
        rows(tx, "BEGIN")
        rows(tx, f"UPDATE {table} SET v = 'implicit' WHERE id = 2")
        assert rows(reader, q) == [("two",)]  # not committed: the cached answer holds
        rows(tx, f"CREATE TABLE {table}_x (id INT)")  # commits the UPDATE first
        assert rows(reader, q) == [("implicit",)]


def test_autocommit_off_writes_invalidate_at_commit(mariadb_server, proxy, table, marker):
    q = f"SELECT v FROM {table} WHERE id = 1 {marker}"
    with (
        connect(mariadb_server, proxy) as reader,
        connect(mariadb_server, proxy, autocommit=False) as writer,
    ):
        assert rows(reader, q) == [("one",)]
        rows(writer, f"UPDATE {table} SET v = 'later' WHERE id = 1")
        assert rows(reader, q) == [("one",)]
        writer.commit()
        assert rows(reader, q) == [("later",)]


def test_autocommit_off_is_not_cached(mariadb_server, proxy, table, marker):
    q = f"SELECT v FROM {table} WHERE id = 2 {marker}"
    with connect(mariadb_server, proxy, autocommit=False) as conn:
        assert rows(conn, q) == [("two",)]
        assert rows(conn, q) == [("two",)]
        conn.rollback()
    assert mariadb_server.statement_count(marker) == 2


@pytest.mark.parametrize(
    "sql", ["SELECT NOW(6)", "SELECT RAND()", "SELECT UUID()", "SELECT @wc_var",
            "SELECT CONNECTION_ID()", "SELECT @@session.time_zone", "SELECT LAST_INSERT_ID()"],
)  # fmt: skip
def test_volatile_not_cached(mariadb_server, proxy, marker, sql):
    with connect(mariadb_server, proxy) as conn:
        rows(conn, f"{sql} {marker}")
        rows(conn, f"{sql} {marker}")
    assert mariadb_server.statement_count(marker) == 2


def test_session_settings_are_in_the_key(mariadb_server, proxy, marker):
    q = f"SELECT CONVERT('ä' USING latin1) = 'ä', 1 {marker}"
    with connect(mariadb_server, proxy) as a:
        first = rows(a, q)
        rows(a, "SET NAMES latin1")
        rows(a, q)
    with connect(mariadb_server, proxy) as b:
        assert rows(b, q) == first
    assert mariadb_server.statement_count(marker) == 2


def test_multi_statements_and_results(mariadb_server, proxy, table, marker):
    q = f"SELECT 1 AS a {marker}; SELECT v FROM {table} ORDER BY id"
    for _ in range(2):
        with connect(mariadb_server, proxy, client_flag=CLIENT.MULTI_STATEMENTS) as conn, \
                conn.cursor() as cur:  # fmt: skip
            cur.execute(q)
            assert cur.fetchall() == ((1,),)
            assert cur.nextset()
            assert cur.fetchall() == (("one",), ("two",))
            assert not cur.nextset()
    assert mariadb_server.statement_count(marker) == 1
    with connect(mariadb_server, proxy, client_flag=CLIENT.MULTI_STATEMENTS) as conn, \
            conn.cursor() as cur:  # fmt: skip
        cur.execute(f"INSERT INTO {table} VALUES (5, 'five'); SELECT COUNT(*) FROM {table}")
        assert cur.nextset()
        assert cur.fetchall() == ((3,),)
        cur.execute(q)
        cur.nextset()
        assert cur.fetchall() == (("one",), ("two",), ("five",))


def test_large_result_streams_and_is_not_stored(mariadb_server, proxy, marker):
    q = f"SELECT REPEAT('x', 5000000) AS big, 2 {marker}"
    with connect(mariadb_server, proxy) as conn:
        for _ in range(2):
            ((big, two),) = rows(conn, q)
            assert len(big) == 5_000_000 and two == 2
    assert mariadb_server.statement_count(marker) == 2


def test_load_data_local_infile(mariadb_server, proxy, table, tmp_path, marker):
    path = tmp_path / "rows.tsv"
    path.write_text("10\tten\n11\televen\n")
    q = f"SELECT COUNT(*) FROM {table} {marker}"
    with connect(mariadb_server, proxy, local_infile=True) as conn:
        assert rows(conn, q) == [(2,)]
        rows(conn, f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {table}")
        assert rows(conn, q) == [(4,)]


# -- other drivers, prepared statements, other commands -----------------------------


def connector(mariadb_server, proxy, user="native_user", **kwargs):
    return mysql.connector.connect(
        host=proxy.host, port=proxy.port, user=user, password=mariadb_server.users[user],
        database="app", use_pure=True, autocommit=True, **kwargs,
    )  # fmt: skip


def test_connector_python_prepared(mariadb_server, proxy, table, marker):
    q = f"SELECT v FROM {table} WHERE id = %s {marker}"
    conn = connector(mariadb_server, proxy)
    try:
        cur = conn.cursor(prepared=True)
        for _ in range(2):
            cur.execute(q, (1,))
            assert cur.fetchall() == [("one",)]
        cur.execute(q, (2,))
        assert cur.fetchall() == [("two",)]
        cur.execute(f"UPDATE {table} SET v = %s WHERE id = %s", ("prep", 1))
        cur.execute(q, (1,))
        assert cur.fetchall() == [("prep",)]
        cur.close()
        text = conn.cursor()
        text.execute(f"SELECT v FROM {table} WHERE id = 2 {marker}")
        assert text.fetchall() == [("two",)]
    finally:
        conn.close()
    executed = [s for s in mariadb_server.statements() if marker in s]
    assert sum("WHERE id = 1" in s for s in executed) == 2  # miss, then after the write
    assert sum("WHERE id = 2" in s for s in executed) == 2  # binary and text


def test_connector_python_tls_and_commands(mariadb_server, proxy, marker):
    conn = connector(mariadb_server, proxy, "native_user", ssl_ca=str(mariadb_server.ca_path),
                     ssl_verify_identity=True)  # fmt: skip
    try:
        assert conn.is_connected()
        conn.ping()
        assert "Uptime" in conn.cmd_statistics() or conn.cmd_statistics()
        cur = conn.cursor()
        cur.execute("SET @wc_x = 5")
        cur.execute("SELECT @wc_x")
        assert cur.fetchall() == [(5,)]
        conn.cmd_reset_connection()
        cur = conn.cursor()
        cur.execute("SELECT @wc_x")
        assert cur.fetchall() == [(None,)]
        # mysql-connector-python has no client_ed25519: change to the same user,
        # with the cache-id prefix that wirecache removes again.
        conn.cmd_change_user(username="default-native_user",
                             password=mariadb_server.users["native_user"], database="other")
        cur = conn.cursor()
        cur.execute("SELECT DATABASE(), CURRENT_USER()")
        ((database, user),) = cur.fetchall()
        assert database == "other" and user.startswith("native_user@")
    finally:
        conn.close()


def test_mysqlclient(mariadb_server, proxy, table, marker):
    q = f"SELECT v FROM {table} ORDER BY id {marker}"
    for _ in range(2):
        conn = MySQLdb.connect(host=proxy.host, port=proxy.port, user="native_user",
                               password=mariadb_server.users["native_user"], database="app",
                               autocommit=True)
        try:
            cur = conn.cursor()
            cur.execute(q)
            assert cur.fetchall() == (("one",), ("two",))
        finally:
            conn.close()
    assert mariadb_server.statement_count(marker) == 1


# -- bad input ------------------------------------------------------------------------


def read_packet(sock: socket.socket) -> tuple[int, bytes]:
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            raise EOFError
        head += chunk
    length = int.from_bytes(head[:3], "little")
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            raise EOFError
        body += chunk
    return head[3], body


def test_malformed_handshake_gets_error_and_only_that_connection_closes(mariadb_server, proxy):
    with connect(mariadb_server, proxy) as bystander:
        with socket.create_connection((proxy.host, proxy.port), timeout=10) as sock:
            seq, greeting = read_packet(sock)
            assert seq == 0 and greeting[0] == 10
            sock.sendall(struct.pack("<I", 40)[:3] + b"\x01" + b"\xff" * 40)
            seq, err = read_packet(sock)
            assert err[0] == 0xFF
            assert sock.recv(10) == b""
        assert rows(bystander, "SELECT 1") == [(1,)]


def test_malformed_command_gets_error(mariadb_server, proxy):
    with connect(mariadb_server, proxy) as bystander, connect(mariadb_server, proxy) as victim:
        sock = victim._sock
        sock.sendall(b"\x00\x00\x00\x00")  # an empty command packet
        seq, err = read_packet(sock)
        assert err[0] == 0xFF and b"malformed" in err
        assert sock.recv(10) == b""
        assert rows(bystander, "SELECT 2") == [(2,)]


@pytest.mark.parametrize("user", ["native_user", "ed25519_user"])
def test_cache_behind_another_origin_address(mariadb_server, make_proxy, user, marker):
    """The greeting came from the default cache's origin; a cache behind another address
    makes wirecache greet that origin and ask the client for a new answer (auth switch)."""
    elsewhere = cache_config("localhost", mariadb_server.port, id="elsewhere", dialect="mysql",
                             default=False)  # fmt: skip
    proxy = make_proxy(elsewhere)
    q = f"SELECT 'switched' {marker}"
    for _ in range(2):
        with connect(mariadb_server, proxy, user, prefix="elsewhere-") as conn:
            assert rows(conn, q) == [("switched",)]
    assert mariadb_server.statement_count(marker) == 1
    with pytest.raises(pymysql.err.OperationalError) as info:
        connect(mariadb_server, proxy, user, prefix="elsewhere-", password="wrong")
    assert info.value.args[0] == 1045


def test_mariadb_direct_execute(mariadb_server, proxy, table):
    """PREPARE and EXECUTE with statement id 0xFFFFFFFF sent back to back, as the
    MariaDB connectors do; the answers come back in order and the second run is a hit."""
    from wirecache_mysql import messages as m
    from wirecache_mysql.packets import PacketReader, build_packet

    with connect(mariadb_server, proxy) as conn:
        sock = conn._sock
        caps = conn.server_capabilities & conn.client_flag
        sql = f"SELECT v FROM {table} WHERE id = ?".encode()
        # statement 0xFFFFFFFF (the last prepared), no cursor, one iteration; one
        # non-NULL parameter, types sent: LONG 2
        execute = (bytes([m.COM_STMT_EXECUTE]) + struct.pack("<IBI", 0xFFFFFFFF, 0, 1)
                   + b"\x00" + b"\x01" + struct.pack("<H", m.MYSQL_TYPE_LONG)
                   + struct.pack("<i", 2))  # fmt: skip
        for _ in range(2):
            sock.sendall(build_packet(0, bytes([m.COM_STMT_PREPARE]) + sql)
                         + build_packet(0, execute))  # fmt: skip
            reader = PacketReader()
            answers = []
            for command in (m.COM_STMT_PREPARE, m.COM_STMT_EXECUTE):
                tracker = m.ResultReader(command, caps)
                payloads = []
                while True:
                    packet = reader.next_packet()
                    if packet is None:
                        reader.receive_data(sock.recv(65536))
                        continue
                    payloads.append(packet.payload)
                    if tracker.feed(packet.payload):
                        break
                assert tracker.error is None
                answers.append(payloads)
            assert answers[1][-2].endswith(b"two")  # the binary row holds 'two'
            stmt_id = m.StmtPrepareOk.parse(answers[0][0]).statement_id
            sock.sendall(build_packet(0, bytes([m.COM_STMT_CLOSE]) + struct.pack("<I", stmt_id)))
        assert rows(conn, "SELECT 3") == [(3,)]
    executed = [s for s in mariadb_server.statements() if table in s and "id = 2" in s]
    assert len(executed) == 1
