"""How the relay moves between the hot loop's handlers and its task, seen from clients.

With both legs plain TCP the session is served by synchronous handlers in the
core's hot loop; with TLS on a leg it reads one side at a time through trio.
Each test runs both ways: commands pipelined past what wirecache reads ahead,
draining with a statement in flight, and an origin that vanishes mid-query.
"""

from __future__ import annotations

import threading
import time

import pymysql
import pytest

from mysql_plugin.util import connect, rows

LEGS = pytest.mark.parametrize("tls", [False, True], ids=["plain", "client-tls"])


def _read_response(sock, reader, command: int, caps: int) -> list[bytes]:
    from wirecache_mysql import messages as m

    tracker = m.ResultReader(command, caps)
    payloads = []
    while True:
        packet = reader.next_packet()
        if packet is None:
            data = sock.recv(65536)
            assert data, "wirecache closed the connection"
            reader.receive_data(data)
            continue
        payloads.append(packet.payload)
        if tracker.feed(packet.payload):
            assert tracker.error is None, payloads[-1]
            return payloads


def _wait_until_sent(mariadb_server, marker: str) -> None:
    """Until the origin has the statement tagged ``marker`` (it is then in flight)."""
    deadline = time.monotonic() + 10
    while mariadb_server.statement_count(marker) == 0:
        assert time.monotonic() < deadline, "the slow statement never reached the origin"
        time.sleep(0.02)


@LEGS
def test_commands_pipelined_behind_a_large_result(mariadb_server, proxy, tls, marker):
    """A client that sends its next commands without waiting, more of them than
    wirecache reads ahead while a large result is in flight (HOLD_BYTES): every
    answer arrives, in order, with the right sequence ids."""
    from wirecache_mysql import messages as m
    from wirecache_mysql.packets import PacketReader, build_packet

    with connect(mariadb_server, proxy, tls=tls) as conn:
        sock = conn._sock
        sock.settimeout(20)
        caps = conn.server_capabilities & conn.client_flag
        big = f"SELECT REPEAT('x', 3000000) {marker}".encode()
        pad = b"/*" + b"p" * 8000 + b"*/"
        sets = [f"SET @n = {i} ".encode() + pad for i in range(100)]  # ~800 KB
        sock.sendall(b"".join(build_packet(0, bytes([m.COM_QUERY]) + q) for q in [big, *sets]))
        reader = PacketReader(64 * 1024 * 1024)
        result = _read_response(sock, reader, m.COM_QUERY, caps)
        assert sum(len(p) for p in result) > 3_000_000
        for _ in sets:
            (ok,) = _read_response(sock, reader, m.COM_QUERY, caps)
            assert ok[0] == m.OK_HEADER
        assert reader.buffered == 0
        assert rows(conn, "SELECT @n") == [(99,)]


@LEGS
def test_draining_lets_the_statement_in_flight_finish(mariadb_server, proxy, tls, marker):
    with connect(mariadb_server, proxy, tls=tls) as idle, \
            connect(mariadb_server, proxy, tls=tls) as busy:  # fmt: skip
        assert rows(idle, "SELECT 1") == [(1,)]
        got: list[object] = []

        def slow() -> None:
            try:
                got.append(rows(busy, f"SELECT SLEEP(1), 'finished' {marker}"))
            except Exception as e:  # reported below
                got.append(e)

        thread = threading.Thread(target=slow)
        thread.start()
        _wait_until_sent(mariadb_server, marker)
        proxy.call(proxy.server.shutdown)
        thread.join(20)
        assert got == [[(0, "finished")]]
        # The idle session was ended, and the busy one once it was answered.
        for conn in (idle, busy):
            with pytest.raises(pymysql.err.OperationalError):
                rows(conn, "SELECT 2")


@LEGS
def test_origin_gone_mid_query(mariadb_server, proxy, tls, marker):
    """The origin connection is killed while a statement runs: the client hears of it,
    and the proxy (and any other session) goes on."""
    with connect(mariadb_server, proxy) as bystander, \
            connect(mariadb_server, proxy, tls=tls) as victim:  # fmt: skip
        ((origin_id,),) = rows(victim, "SELECT CONNECTION_ID()")
        failed: list[BaseException] = []

        def slow() -> None:
            try:
                rows(victim, f"SELECT SLEEP(5) {marker}")
            except pymysql.err.MySQLError as e:
                failed.append(e)

        thread = threading.Thread(target=slow)
        thread.start()
        _wait_until_sent(mariadb_server, marker)
        admin = pymysql.connect(**mariadb_server.pymysql_kwargs(tls=False, ssl_disabled=True))
        with admin:
            rows(admin, f"KILL CONNECTION {origin_id}")
        thread.join(20)
        assert not thread.is_alive()
        if not failed:  # MariaDB may answer the killed statement before it closes
            with pytest.raises(pymysql.err.MySQLError) as info:
                rows(victim, "SELECT 3")
            failed.append(info.value)
        assert failed
        assert rows(bystander, "SELECT 4") == [(4,)]
