"""Bad input never takes the proxy down (DESIGN.md rule 7): hostile bytes on raw sockets
get a PostgreSQL ErrorResponse (SQLSTATE 08P01) or a close, and a session opened before
the attack keeps answering."""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postgres_plugin.util import connect

PROTOCOL_3_0 = 196608
SSL_REQUEST = 80877103


@pytest.fixture
def bystander(pg_server, proxy, marker):
    """A session opened before the attack; the test checks it still answers after."""
    conn = connect(pg_server, proxy)
    assert conn.execute("SELECT 'before'").fetchone() == ("before",)
    yield conn
    assert conn.execute(f"SELECT 'after', pg_backend_pid() > 0 {marker}").fetchone() == (
        "after", True,
    )  # fmt: skip
    conn.close()
    # And new sessions are still accepted.
    with connect(pg_server, proxy) as fresh:
        assert fresh.execute("SELECT 'new'").fetchone() == ("new",)


@pytest.fixture
def no_crash() -> Iterator[None]:
    """Fail if any connection ended in the proxy's last-resort ``conn.crashed`` handler:
    bad input must be handled by the protocol code, not by luck."""
    with structlog.testing.capture_logs() as logs:
        yield
    crashed = [entry for entry in logs if entry.get("event") == "conn.crashed"]
    assert not crashed, crashed


def _raw(proxy) -> socket.socket:
    sock = socket.create_connection((proxy.host, proxy.port), timeout=5)
    sock.settimeout(5)
    return sock


def _read_until_close(sock: socket.socket, limit: float = 5.0) -> bytes:
    """Everything the proxy sends until it closes; fails if it neither closes nor stops."""
    data = b""
    deadline = time.monotonic() + limit
    while True:
        assert time.monotonic() < deadline, f"the proxy did not close the connection: {data!r}"
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def _messages(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 0
    while pos + 5 <= len(data):
        kind = data[pos : pos + 1]
        (length,) = struct.unpack_from("!i", data, pos + 1)
        out.append((kind, data[pos + 5 : pos + 1 + length]))
        pos += 1 + length
    assert pos == len(data), f"trailing bytes: {data[pos:]!r}"
    return out


def _error_fields(body: bytes) -> dict[str, str]:
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode()
    return fields


def _assert_protocol_error_or_close(data: bytes) -> None:
    if not data:
        return  # closed without a word is acceptable
    messages = _messages(data)
    kind, body = messages[-1]
    assert kind == b"E", messages
    fields = _error_fields(body)
    assert fields["C"] == "08P01", fields
    assert fields["S"] == "FATAL"


def _startup(user: str, database: str = "app") -> bytes:
    params = f"user\0{user}\0database\0{database}\0\0".encode()
    return struct.pack("!ii", 8 + len(params), PROTOCOL_3_0) + params


def _authenticated(proxy) -> socket.socket:
    """A raw session of the trust user, read up to its first ReadyForQuery."""
    sock = _raw(proxy)
    sock.sendall(_startup("trust_user"))
    data = b""
    while True:
        chunk = sock.recv(65536)
        assert chunk, f"closed during startup: {data!r}"
        data += chunk
        with contextlib.suppress(AssertionError, struct.error):
            messages = _messages(data)
            if messages and messages[-1][0] == b"Z":
                assert messages[0] == (b"R", struct.pack("!i", 0))  # AuthenticationOk
                return sock


# -- the startup packet -----------------------------------------------------------------


@pytest.mark.parametrize(
    "packet",
    [
        struct.pack("!i", 4) + b"\0\0\0\0",  # length < 8
        struct.pack("!i", 7) + b"\0\0\0\0",
        struct.pack("!i", -1) + b"\0\0\0\0",
        struct.pack("!ii", 0x7FFFFFFF, PROTOCOL_3_0),  # 2 GB
        struct.pack("!ii", 10001, PROTOCOL_3_0),  # just over PostgreSQL's own limit
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 64,  # a TLS ClientHello
    ],
    ids=["len4", "len7", "negative", "2GB", "10001", "http", "direct-tls"],
)
def test_malformed_startup_packet(proxy, bystander, no_crash, packet):
    with _raw(proxy) as sock:
        sock.sendall(packet)
        data = _read_until_close(sock)
    _assert_protocol_error_or_close(data)


def test_unsupported_protocol_version(proxy, bystander, no_crash):
    params = b"user\0trust_user\0\0"
    with _raw(proxy) as sock:
        sock.sendall(struct.pack("!ii", 8 + len(params), 2 << 16) + params)
        data = _read_until_close(sock)
    [(kind, body)] = _messages(data)
    assert kind == b"E"
    assert _error_fields(body)["C"] == "0A000"


def test_startup_without_a_user(proxy, bystander, no_crash):
    params = b"database\0app\0\0"
    with _raw(proxy) as sock:
        sock.sendall(struct.pack("!ii", 8 + len(params), PROTOCOL_3_0) + params)
        data = _read_until_close(sock)
    assert data, "expected an error message"
    kind, body = _messages(data)[-1]
    assert kind == b"E"
    assert _error_fields(body)["S"] == "FATAL"


def test_truncated_startup_then_close(proxy, bystander, no_crash):
    with _raw(proxy) as sock:
        sock.sendall(struct.pack("!ii", 100, PROTOCOL_3_0) + b"user\0tr")
        sock.shutdown(socket.SHUT_WR)
        data = _read_until_close(sock)
    _assert_protocol_error_or_close(data)


def test_silent_connection_does_not_block_others(proxy, bystander, no_crash):
    """A client that connects and sends nothing holds only its own connection."""
    with _raw(proxy), _raw(proxy), _raw(proxy):
        pass  # the bystander fixture checks the proxy answers meanwhile, at teardown


def test_bytes_after_ssl_request_before_handshake(proxy, bystander, no_crash):
    """CVE-2021-23214: bytes that follow an SSLRequest in the clear must not be read as
    if they had arrived over TLS."""
    with _raw(proxy) as sock:
        sock.sendall(struct.pack("!ii", 8, SSL_REQUEST) + _startup("trust_user"))
        data = _read_until_close(sock)
    assert data, "expected an error message"
    assert not data.startswith(b"S")
    _assert_protocol_error_or_close(data)


def test_ssl_request_then_plaintext_startup(proxy, bystander, no_crash):
    """After 'S' the client must start TLS; a plaintext StartupMessage instead is not a
    TLS handshake and gets the connection closed, never served."""
    with _raw(proxy) as sock:
        sock.sendall(struct.pack("!ii", 8, SSL_REQUEST))
        answer = sock.recv(1)
        if answer == b"S":
            sock.sendall(_startup("trust_user"))
        data = _read_until_close(sock)
    assert b"Z" not in data[:1]  # never a ReadyForQuery
    assert b"trust_user" not in data


# -- after authentication -----------------------------------------------------------------


def test_oversized_message_header_after_authentication(proxy, bystander, no_crash):
    with _authenticated(proxy) as sock:
        sock.sendall(b"Q" + struct.pack("!I", 0x80000000))  # 2 GB (negative as int32)
        data = _read_until_close(sock)
    _assert_protocol_error_or_close(data)
    assert data, "expected an ErrorResponse"


def test_message_over_the_length_limit_after_authentication(proxy, bystander, no_crash):
    with _authenticated(proxy) as sock:
        sock.sendall(b"Q" + struct.pack("!i", 0x7FFFFFF0) + b"SELECT 1")
        data = _read_until_close(sock)
    assert data, "expected an ErrorResponse"
    _assert_protocol_error_or_close(data)


def test_length_below_four_after_authentication(proxy, bystander, no_crash):
    with _authenticated(proxy) as sock:
        sock.sendall(b"Q" + struct.pack("!i", 2))
        data = _read_until_close(sock)
    assert data, "expected an ErrorResponse"
    _assert_protocol_error_or_close(data)


def test_unknown_message_type_after_authentication(proxy, bystander, no_crash):
    """An unknown type is the origin's to reject: the client gets its FATAL error."""
    with _authenticated(proxy) as sock:
        sock.sendall(b"\x01" + struct.pack("!i", 4))
        data = _read_until_close(sock)
    assert data, "expected an ErrorResponse"
    kind, body = _messages(data)[-1]
    assert kind == b"E"
    assert _error_fields(body)["C"] == "08P01"


def test_truncated_query_then_close(proxy, bystander, no_crash):
    with _authenticated(proxy) as sock:
        sock.sendall(b"Q" + struct.pack("!i", 100) + b"SELECT 1")
        sock.shutdown(socket.SHUT_WR)
        data = _read_until_close(sock)
    _assert_protocol_error_or_close(data)


def test_truncated_large_query_then_close(proxy, bystander, no_crash):
    """A message big enough to be streamed to the origin, cut short."""
    with _authenticated(proxy) as sock:
        sock.sendall(b"Q" + struct.pack("!i", 10_000_000) + b"SELECT '" + b"x" * 500_000)
        sock.shutdown(socket.SHUT_WR)
        data = _read_until_close(sock)
    _assert_protocol_error_or_close(data)


def test_garbage_after_a_valid_query(proxy, bystander, no_crash):
    with _authenticated(proxy) as sock:
        query = b"SELECT 1\0"
        sock.sendall(b"Q" + struct.pack("!i", 4 + len(query)) + query + b"\xff" * 64)
        data = _read_until_close(sock)
    assert data
    kinds = [kind for kind, _ in _messages(data)]
    assert kinds[-1] == b"E"


# -- fuzzing --------------------------------------------------------------------------------


@settings(
    max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(
    st.one_of(
        st.binary(max_size=64),
        st.builds(lambda n, code, rest: struct.pack("!ii", n, code) + rest,
                  st.integers(-(2**31), 2**31 - 1),
                  st.sampled_from([PROTOCOL_3_0, SSL_REQUEST, 80877102, 80877104, 0]),
                  st.binary(max_size=32)),
    )
)  # fmt: skip
def test_random_startup_bytes(proxy, bystander, no_crash, packet):
    with _raw(proxy) as sock:
        sock.sendall(packet)
        sock.shutdown(socket.SHUT_WR)
        data = _read_until_close(sock)
    if data[:1] in (b"S", b"N"):  # an SSLRequest/GSSENCRequest answered
        data = data[1:]
    _assert_protocol_error_or_close(data)
