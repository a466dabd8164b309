"""Startup details a raw client sees: protocol 3.2 negotiation, GSSENC refusal, and
wirecache's own BackendKeyData."""

from __future__ import annotations

import socket

import psycopg
from wirecache_postgres import messages as m
from wirecache_postgres.framing import MessageReader


def _session(proxy, version: tuple[int, int], *, gssenc_first: bool = False):
    """Start a raw trust_user session; returns (socket, messages up to ReadyForQuery)."""
    sock = socket.create_connection((proxy.host, proxy.port), timeout=10)
    if gssenc_first:
        sock.sendall(m.GSSENC_REQUEST)
        assert sock.recv(1) == b"N"
    sock.sendall(m.startup_message({"user": "trust_user", "database": "app"}, *version))
    reader, seen = MessageReader(), []
    while not seen or seen[-1][0] != m.Backend.READY_FOR_QUERY:
        data = sock.recv(65536)
        assert data, f"closed during startup after {seen!r}"
        reader.feed(data)
        while (msg := reader.next_message()) is not None:
            seen.append(msg[:2])
    return sock, seen


def _query(sock: socket.socket, sql: str) -> list[tuple[int, bytes]]:
    sock.sendall(m.query(sql))
    reader, seen = MessageReader(), []
    while not seen or seen[-1][0] != m.Backend.READY_FOR_QUERY:
        reader.feed(sock.recv(65536))
        while (msg := reader.next_message()) is not None:
            seen.append(msg[:2])
    return seen


def test_protocol_3_2_is_negotiated_down_by_the_origin(proxy):
    sock, seen = _session(proxy, (3, 2))
    with sock:
        kinds = [k for k, _ in seen]
        # PostgreSQL 15 answers a 3.2 request with NegotiateProtocolVersion (newest: 3.0),
        # and wirecache relays it untouched before authentication completes.
        assert kinds[0] == m.Backend.NEGOTIATE_PROTOCOL_VERSION
        newest = m.parse_negotiate_protocol_version(seen[0][1]).newest_minor
        assert newest & 0xFFFF == 0  # PostgreSQL sends the whole version code, 3.0
        assert m.parse_authentication(seen[1][1]).code == m.Auth.OK
        rows = _query(sock, "SELECT 7 * 6")
        assert m.parse_data_row(rows[1][1]).values == (b"42",)


def test_gssenc_request_is_refused_and_the_session_goes_on(proxy):
    sock, seen = _session(proxy, (3, 0), gssenc_first=True)
    with sock:
        assert m.parse_authentication(seen[0][1]).code == m.Auth.OK
        assert seen[-1][0] == m.Backend.READY_FOR_QUERY


def test_clients_get_wirecache_keys_not_the_origins(pg_server, proxy):
    sock, seen = _session(proxy, (3, 0))
    with sock:
        keys = [m.parse_backend_key_data(b) for k, b in seen if k == m.Backend.BACKEND_KEY_DATA]
        assert len(keys) == 1
        rows = _query(sock, "SELECT pg_backend_pid()")
        origin_pid = int(m.parse_data_row(rows[1][1]).values[0])
    # The origin's backend pid is not revealed: cancel requests go through wirecache's map.
    assert keys[0].pid != origin_pid


def test_cancel_with_wirecache_key_reaches_the_right_backend(pg_server, proxy):
    with psycopg.connect(pg_server.dsn(host=proxy.host, port=proxy.port, sslmode="disable"),
                         autocommit=True) as conn:  # fmt: skip
        info_pid = conn.info.backend_pid  # wirecache's key, as the client sees it
        real_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert info_pid != real_pid
        import threading

        timer = threading.Timer(0.5, conn.cancel_safe)
        timer.start()
        try:
            with __import__("pytest").raises(psycopg.errors.QueryCanceled):
                conn.execute("SELECT pg_sleep(20)")
        finally:
            timer.cancel()
        assert conn.execute("SELECT 1").fetchone() == (1,)
