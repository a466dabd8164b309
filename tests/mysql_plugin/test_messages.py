"""Typed messages and the response tracker.

Fixtures marked "captured" are bytes recorded once from MariaDB 10.11 with
PyMySQL and mysql-connector-python; the tests never open a socket.
"""

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wirecache_mysql import messages as m
from wirecache_mysql.packets import MAX_PACKET_PAYLOAD, PacketReader, ProtocolError, build_packet

# captured: server greeting (payload only)
GREETING = bytes.fromhex(
    "0a352e352e352d31302e31312e31392d4d6172696144422d302b646562313275310009000000324a"
    "61273c394a4800fef72d0200ff81150000000000001d000000695960597b21306c502d2d3b006d79"
    "73716c5f6e61746976655f70617373776f726400"
)
# captured: PyMySQL login (database "mysql", empty password, connect attrs)
PYMYSQL_LOGIN = bytes.fromhex(
    "0da23a00ffffff002d0000000000000000000000000000000000000000000000726f6f7400006d79"
    "73716c006d7973716c5f6e61746976655f70617373776f726400350c5f636c69656e745f6e616d65"
    "0770796d7973716c0f5f636c69656e745f76657273696f6e05312e322e34045f7069640437383732"
)
# captured: mysql-connector-python login (lenenc auth data, empty db)
CONNECTOR_LOGIN = bytes.fromhex(
    "0da23b00000000402d0000000000000000000000000000000000000000000000726f6f7400000072"
    "6d7973716c5f6e61746976655f70617373776f7264008d045f7069640437383737095f706c617466"
    "6f726d067838365f36340c5f736f757263655f686f737402766d0c5f636c69656e745f6e616d6516"
    "6d7973716c2d636f6e6e6563746f722d707974686f6e0f5f636c69656e745f6c6963656e73650747"
    "504c2d322e300f5f636c69656e745f76657273696f6e0732362e31302e30035f6f730944656269616e"
    "2d3132"
)
# captured: text result set for SELECT 1 AS a, NULL AS b, 'abc' AS c (framed)
TEXT_RESULT = bytes.fromhex(
    "010000010317000002036465660000000161000c3f000100000003810000000017000003036465660000"
    "000162000c3f000000000006800000000017000004036465660000000163000c2d000c000000fd010027"
    "000005000005fe00000000070000060131fb0361626305000007fe00000000"
)
# captured: COM_STMT_PREPARE response for SELECT ? + 1 AS x, NULL AS n, 'abc' AS s
PREPARE_RESPONSE = bytes.fromhex(
    "0c0000010001000000030001000000001700000203646566000000013f000c3f000000000006800000"
    "000005000003fe0000000017000004036465660000000178000c3f00110000000580000000001700000503"
    "646566000000016e000c3f000000000006800000000017000006036465660000000173000c2d000c0000"
    "00fd010027000005000007fe00000000"
)
# captured: COM_STMT_EXECUTE of that statement with 41 (TINY, unsigned)
EXECUTE = bytes.fromhex("170100000000010000000001018029")
# captured: its binary result set
BINARY_RESULT = bytes.fromhex(
    "010000010317000002036465660000000178000c3f000500000003a00000000017000003036465660000"
    "00016e000c3f000000000006800000000017000004036465660000000173000c2d000c000000fd010027"
    "000005000005fe000000000a00000600082a0000000361626305000007fe00000000"
)

CAPS41 = m.CLIENT_PROTOCOL_41 | m.CLIENT_SECURE_CONNECTION | m.CLIENT_TRANSACTIONS


def payloads(framed: bytes) -> list[bytes]:
    reader = PacketReader()
    reader.receive_data(framed)
    return [p.payload for p in iter(reader.next_packet, None)]


# --- length-encoded values -----------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (250, b"\xfa"),
        (251, b"\xfc\xfb\x00"),
        (0xFFFF, b"\xfc\xff\xff"),
        (0x10000, b"\xfd\x00\x00\x01"),
        (0xFFFFFF, b"\xfd\xff\xff\xff"),
        (0x1000000, b"\xfe\x00\x00\x00\x01\x00\x00\x00\x00"),
    ],
)
def test_lenenc_int(value, encoded):
    assert m.lenenc_int(value) == encoded
    assert m.read_lenenc_int(encoded, 0) == (value, len(encoded))


@pytest.mark.parametrize("bad", [b"", b"\xfb", b"\xff", b"\xfc\x01", b"\xfe" + b"\0" * 7])
def test_lenenc_int_rejects(bad):
    with pytest.raises(ProtocolError):
        m.read_lenenc_int(bad, 0)


def test_lenenc_bytes():
    assert m.read_lenenc_bytes(b"\x00" + m.lenenc_bytes(b"abc"), 1) == (b"abc", 5)
    with pytest.raises(ProtocolError):
        m.read_lenenc_bytes(b"\x04abc", 0)


@given(st.integers(0, 2**64 - 1))
def test_lenenc_int_round_trip(value):
    assert m.read_lenenc_int(m.lenenc_int(value), 0)[0] == value


# --- connection phase --------------------------------------------------------------------
def test_handshake_v10_captured():
    hs = m.HandshakeV10.parse(GREETING)
    assert hs.server_version == b"5.5.5-10.11.19-MariaDB-0+deb12u1"
    assert hs.connection_id == 9
    assert hs.is_mariadb
    assert hs.capabilities == 0x81FFF7FE
    assert hs.capabilities & m.CLIENT_PLUGIN_AUTH and hs.capabilities & m.CLIENT_SSL == 0
    assert hs.charset == 0x2D and hs.status_flags == m.SERVER_STATUS_AUTOCOMMIT
    assert hs.mariadb_capabilities == (
        m.MARIADB_CLIENT_PROGRESS
        | m.MARIADB_CLIENT_STMT_BULK_OPERATIONS
        | m.MARIADB_CLIENT_EXTENDED_METADATA
        | m.MARIADB_CLIENT_CACHE_METADATA
    )
    assert hs.auth_plugin == b"mysql_native_password"
    assert len(hs.nonce) == 20 and b"\0" not in hs.nonce
    assert hs.build() == GREETING


def test_handshake_v10_change_capabilities():
    hs = m.HandshakeV10.parse(GREETING)
    changed = hs.with_capabilities(hs.capabilities & ~m.CLIENT_DEPRECATE_EOF, 0)
    out = changed.build()
    assert len(out) == len(GREETING)
    again = m.HandshakeV10.parse(out)
    assert again.capabilities == hs.capabilities & ~m.CLIENT_DEPRECATE_EOF
    assert again.mariadb_capabilities == 0
    assert again.nonce == hs.nonce and again.auth_plugin == hs.auth_plugin


def test_handshake_v10_mysql8_shape():
    caps = 0xDFFFFFFF  # CLIENT_MYSQL set: the 4 bytes are plain filler
    payload = (
        b"\x0a8.0.36\0" + struct.pack("<I", 77) + b"abcdefgh" + b"\0"
        + struct.pack("<HBHHB", caps & 0xFFFF, 0xFF, 2, caps >> 16, 21) + b"\0" * 10
        + b"ijklmnopqrst\0" + b"caching_sha2_password\0"
    )
    hs = m.HandshakeV10.parse(payload)
    assert not hs.is_mariadb and hs.mariadb_capabilities == 0
    assert hs.nonce == b"abcdefghijklmnopqrst"
    assert hs.auth_plugin == b"caching_sha2_password"
    assert hs.build() == payload


def test_handshake_v10_rejects_other_versions():
    with pytest.raises(ProtocolError):
        m.HandshakeV10.parse(b"\x09" + GREETING[1:])


@given(st.binary(max_size=120))
def test_fuzz_handshake_parses_exactly_or_raises(data):
    try:
        hs = m.HandshakeV10.parse(b"\x0a" + data)
    except ProtocolError:
        return
    assert hs.build() == b"\x0a" + data


def test_pymysql_login_captured():
    resp = m.HandshakeResponse41.parse(PYMYSQL_LOGIN)
    assert resp.username == b"root" and resp.auth_response == b""
    assert resp.database == b"mysql"
    assert resp.auth_plugin == b"mysql_native_password"
    assert resp.max_packet == 0xFFFFFF and resp.charset == 0x2D
    assert dict(resp.attributes)[b"_client_name"] == b"pymysql"
    assert resp.mariadb_capabilities == 0
    assert resp.build() == PYMYSQL_LOGIN


def test_connector_login_captured():
    resp = m.HandshakeResponse41.parse(CONNECTOR_LOGIN)
    assert resp.capabilities & m.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    assert resp.database == b"" and resp.auth_response == b""
    assert dict(resp.attributes)[b"_client_name"] == b"mysql-connector-python"
    assert resp.build() == CONNECTOR_LOGIN


def test_login_rewrite_username_and_capabilities():
    resp = m.HandshakeResponse41.parse(PYMYSQL_LOGIN)
    out = resp.rewrite(
        username=b"app_user", capabilities=resp.capabilities | m.CLIENT_DEPRECATE_EOF
    ).build()
    again = m.HandshakeResponse41.parse(out)
    assert again.username == b"app_user"
    assert again.capabilities == resp.capabilities | m.CLIENT_DEPRECATE_EOF
    assert (again.database, again.auth_plugin, again.attrs_block) == (
        resp.database, resp.auth_plugin, resp.attrs_block
    )
    assert out.replace(b"app_user", b"root")[4:] == PYMYSQL_LOGIN[4:]


@pytest.mark.parametrize(
    "auth_caps",
    [m.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA, m.CLIENT_SECURE_CONNECTION, 0],
)
def test_login_auth_response_encodings(auth_caps):
    caps = m.CLIENT_PROTOCOL_41 | m.CLIENT_PLUGIN_AUTH | auth_caps | m.CLIENT_LONG_PASSWORD
    scramble = bytes(range(1, 21))
    resp = m.HandshakeResponse41(
        caps, 1 << 24, 33, b"\0" * 23, b"bob", scramble, None, b"caching_sha2_password"
    )
    out = resp.build()
    assert m.HandshakeResponse41.parse(out) == resp


def test_login_mariadb_extended_caps_in_filler():
    caps = m.CLIENT_PROTOCOL_41 | m.CLIENT_SECURE_CONNECTION  # CLIENT_MYSQL clear
    reserved = b"\0" * 19 + struct.pack("<I", m.MARIADB_CLIENT_CACHE_METADATA)
    resp = m.HandshakeResponse41(caps, 0, 8, reserved, b"u", b"")
    parsed = m.HandshakeResponse41.parse(resp.build())
    assert parsed.mariadb_capabilities == m.MARIADB_CLIENT_CACHE_METADATA
    assert parsed.rewrite(mariadb_capabilities=0).mariadb_capabilities == 0


def test_ssl_request():
    req = m.SSLRequest(CAPS41 | m.CLIENT_SSL, 1 << 24, 45)
    raw = req.build()
    assert len(raw) == 32 and m.is_ssl_request(raw)
    assert m.SSLRequest.parse(raw) == req
    assert not m.is_ssl_request(PYMYSQL_LOGIN)
    with pytest.raises(ProtocolError):
        m.SSLRequest.parse(m.SSLRequest(CAPS41, 0, 45).build())


@given(st.binary(max_size=200))
def test_fuzz_login_only_protocol_error(data):
    with contextlib.suppress(ProtocolError):
        m.HandshakeResponse41.parse(data)


def test_change_user_round_trip_and_rewrite():
    caps = CAPS41 | m.CLIENT_PLUGIN_AUTH | m.CLIENT_CONNECT_ATTRS
    payload = (
        b"\x11alice\0" + b"\x14" + bytes(range(20)) + b"shop\0" + struct.pack("<H", 45)
        + b"mysql_native_password\0" + m.lenenc_bytes(m.lenenc_bytes(b"k") + m.lenenc_bytes(b"v"))
    )
    cu = m.ComChangeUser.parse(payload, caps)
    assert (cu.username, cu.database, cu.charset) == (b"alice", b"shop", 45)
    assert cu.auth_response == bytes(range(20))
    assert cu.auth_plugin == b"mysql_native_password"
    assert cu.build(caps) == payload
    renamed = m.ComChangeUser.parse(cu.with_username(b"bob").build(caps), caps)
    assert renamed.username == b"bob" and renamed.auth_response == cu.auth_response


def test_change_user_minimal():
    payload = b"\x11bob\0\x00\0"
    cu = m.ComChangeUser.parse(payload, CAPS41)
    assert cu.charset is None and cu.build(CAPS41) == payload


def test_auth_switch_and_more_data():
    raw = b"\xfecaching_sha2_password\0" + b"n" * 20 + b"\0"
    sw = m.AuthSwitchRequest.parse(raw)
    assert sw.plugin == b"caching_sha2_password" and sw.nonce == b"n" * 20
    assert sw.build() == raw
    assert m.AuthSwitchRequest.parse(b"\xfe").plugin == b"mysql_old_password"
    assert m.AuthMoreData.parse(b"\x01\x03").data == b"\x03"
    assert m.AuthMoreData(b"\x04").build() == b"\x01\x04"
    with pytest.raises(ProtocolError):
        m.AuthMoreData.parse(b"\x00")


# --- responses ---------------------------------------------------------------------------
def test_ok_packet_captured():
    ok = m.OkPacket.parse(bytes.fromhex("00000002000000"), CAPS41)
    assert ok.status_flags == m.SERVER_STATUS_AUTOCOMMIT and ok.affected_rows == 0
    assert ok.build(CAPS41) == bytes.fromhex("00000002000000")


def test_ok_packet_with_session_track():
    caps = CAPS41 | m.CLIENT_SESSION_TRACK
    ok = m.OkPacket(
        3, 1000, m.SERVER_STATUS_IN_TRANS | m.SERVER_SESSION_STATE_CHANGED, 1, b"info",
        b"\x00\x0b\x0atime_zone\x06+00:00",
    )
    raw = ok.build(caps)
    assert m.OkPacket.parse(raw, caps) == ok
    # servers may stop after the status when there is nothing more to say
    short = m.OkPacket.parse(b"\x00\x00\x00\x02\x00\x00\x00", caps)
    assert short.info == b"" and short.session_state is None


def test_err_packet():
    raw = m.err_packet(1, 1045, "28000", "Access denied")
    assert raw[:4] == bytes((len(raw) - 4, 0, 0, 1))
    err = m.ErrPacket.parse(raw[4:])
    assert (err.code, err.sql_state, err.message) == (1045, b"28000", b"Access denied")
    assert err.build() == raw[4:]
    pre41 = m.ErrPacket.parse(b"\xff\x15\x04Host not allowed")
    assert pre41.sql_state == b"" and pre41.message == b"Host not allowed"
    with pytest.raises(ValueError):
        m.err_packet(1, 1, "HY0", "x")


def test_eof_packets():
    eof = m.EofPacket(0, m.SERVER_MORE_RESULTS_EXISTS)
    assert m.EofPacket.parse(eof.build()) == eof
    assert m.is_eof_packet(eof.build())
    assert not m.is_eof_packet(b"\xfe" + b"\0" * 8)  # a 9-byte 0xFE packet is a row
    assert m.is_ok_as_eof(b"\xfe" + b"\0" * 20)
    assert not m.is_ok_as_eof(b"\xfe" * MAX_PACKET_PAYLOAD)


def test_column_count_and_metadata_flag():
    assert m.ColumnCount.parse(b"\x03", CAPS41) == m.ColumnCount(3, True)
    assert m.ColumnCount.parse(b"\x03\x00", CAPS41, m.MARIADB_CLIENT_CACHE_METADATA) == (
        m.ColumnCount(3, False)
    )
    with pytest.raises(ProtocolError):
        m.ColumnCount.parse(b"\x03\x00", CAPS41)


def test_prepare_ok_captured():
    prep = m.StmtPrepareOk.parse(payloads(PREPARE_RESPONSE)[0])
    assert (prep.statement_id, prep.num_columns, prep.num_params, prep.warnings) == (1, 3, 1, 0)
    assert m.StmtPrepareOk.parse(prep.build()) == prep


def test_local_infile_request():
    assert m.LocalInfileRequest.parse(b"\xfb/tmp/data.csv").filename == b"/tmp/data.csv"


# --- commands ----------------------------------------------------------------------------
def test_execute_captured():
    ex = m.ComStmtExecute.parse(EXECUTE, num_params=1)
    assert (ex.statement_id, ex.flags, ex.iteration_count) == (1, 0, 1)
    assert ex.new_params_bound and ex.param_types == (m.MYSQL_TYPE_TINY | 0x8000,)
    assert ex.values == (b"\x29",)


def test_execute_all_value_kinds():
    types = [
        (m.MYSQL_TYPE_LONGLONG, struct.pack("<q", -5)),
        (m.MYSQL_TYPE_DOUBLE, struct.pack("<d", 1.5)),
        (m.MYSQL_TYPE_VAR_STRING, m.lenenc_bytes(b"x" * 300)),
        (m.MYSQL_TYPE_DATETIME, b"\x07" + struct.pack("<HBBBBB", 2024, 1, 2, 3, 4, 5)),
        (m.MYSQL_TYPE_NULL, b""),
        (m.MYSQL_TYPE_BLOB, m.lenenc_bytes(b"")),
        (m.MYSQL_TYPE_SHORT, b"\x01\x00"),
        (m.MYSQL_TYPE_LONG, b"\x01\x00\x00\x00"),
        (m.MYSQL_TYPE_STRING, None),
    ]
    bitmap = bytes([0, 0b1])  # parameter 8 (index 8) is NULL
    payload = (
        struct.pack("<BIBI", m.COM_STMT_EXECUTE, 9, 0, 1) + bitmap + b"\x01"
        + b"".join(struct.pack("<H", t) for t, _ in types)
        + b"".join(v for _, v in types if v is not None)
    )
    ex = m.ComStmtExecute.parse(payload, num_params=len(types))
    assert ex.values == tuple(v for _, v in types)
    # re-execute without types: the caller supplies the previous ones
    again = payload[:10] + bitmap + b"\x00" + b"".join(v for _, v in types if v is not None)
    ex2 = m.ComStmtExecute.parse(again, len(types), previous_types=ex.param_types)
    assert not ex2.new_params_bound and ex2.values == ex.values
    with pytest.raises(ProtocolError):
        m.ComStmtExecute.parse(again, len(types))
    with pytest.raises(ProtocolError):
        m.ComStmtExecute.parse(payload[:-1], len(types))


def test_execute_without_params_and_with_query_attributes():
    assert m.ComStmtExecute.parse(struct.pack("<BIBI", 0x17, 3, 0, 1), 0).values == ()
    caps = m.CLIENT_QUERY_ATTRIBUTES
    payload = (
        struct.pack("<BIBI", 0x17, 3, m.PARAMETER_COUNT_AVAILABLE, 1) + b"\x02" + b"\x00\x01"
        + struct.pack("<H", m.MYSQL_TYPE_TINY) + b"\x00"
        + struct.pack("<H", m.MYSQL_TYPE_VAR_STRING) + m.lenenc_bytes(b"trace")
        + b"\x07" + m.lenenc_bytes(b"abc")
    )
    ex = m.ComStmtExecute.parse(payload, 1, caps)
    assert ex.param_names == (b"", b"trace") and ex.values == (b"\x07", b"\x03abc")


def test_execute_types_put_back():
    """An execute without types, given those of the execute that last sent them,
    reads as that execute did (what the relay sends when the origin never saw them)."""
    types = struct.pack("<HH", m.MYSQL_TYPE_LONG, m.MYSQL_TYPE_VAR_STRING)
    values = struct.pack("<i", 7) + m.lenenc_bytes(b"abc")
    first = struct.pack("<BIBI", m.COM_STMT_EXECUTE, 4, 0, 1) + b"\x00\x01" + types + values
    ex = m.ComStmtExecute.parse(first, 2)
    assert ex.types_block == types and m.execute_bound_offset(first, 2) == 11
    again = struct.pack("<BIBI", m.COM_STMT_EXECUTE, 4, 0, 1) + b"\x00\x00" + values
    assert m.ComStmtExecute.parse(again, 2, previous_types=ex.param_types).types_block == b""
    assert m.execute_with_types(again, m.execute_bound_offset(again, 2), types) == first
    with pytest.raises(ValueError):
        m.execute_with_types(first, 11, types)
    # the offset needs the header only, not readable values
    assert m.execute_bound_offset(again[:12], 2) == 11
    assert m.execute_bound_offset(struct.pack("<BIBI", 0x17, 3, 0, 1), 0) is None
    with pytest.raises(ProtocolError):
        m.execute_bound_offset(again[:11], 2)
    # under CLIENT_QUERY_ATTRIBUTES: a parameter count first, names with the types
    caps = m.CLIENT_QUERY_ATTRIBUTES
    block = struct.pack("<H", m.MYSQL_TYPE_TINY) + b"\x00"
    head = struct.pack("<BIBI", 0x17, 3, m.PARAMETER_COUNT_AVAILABLE, 1) + b"\x01\x00"
    sent = head + b"\x01" + block + b"\x05"
    assert m.ComStmtExecute.parse(sent, 1, caps).types_block == block
    bare = head + b"\x00\x05"
    assert m.execute_with_types(bare, m.execute_bound_offset(bare, 1, caps), block) == sent


def test_com_query_with_attributes():
    assert m.ComQuery.parse(b"\x03SELECT 1", 0).query == b"SELECT 1"
    caps = m.CLIENT_QUERY_ATTRIBUTES
    assert m.ComQuery.parse(b"\x03\x00\x01SELECT 1", caps) == m.ComQuery(b"SELECT 1")
    q = m.ComQuery.parse(
        b"\x03\x01\x01\x00\x01" + struct.pack("<H", m.MYSQL_TYPE_VAR_STRING)
        + m.lenenc_bytes(b"a") + m.lenenc_bytes(b"v") + b"SELECT 2",
        caps,
    )
    assert q.query == b"SELECT 2" and q.attributes.names == (b"a",)


@given(st.binary(max_size=80), st.integers(0, 20), st.sampled_from([0, m.CLIENT_QUERY_ATTRIBUTES]))
def test_fuzz_execute_only_protocol_error(data, num_params, caps):
    with contextlib.suppress(ProtocolError):
        m.ComStmtExecute.parse(b"\x17" + data, num_params, caps)


def test_command_byte_and_response_expected():
    assert m.command_byte(b"\x0e") == m.COM_PING
    with pytest.raises(ProtocolError):
        m.command_byte(b"")
    assert not m.response_expected(m.COM_STMT_CLOSE)
    assert m.response_expected(m.COM_QUERY)


# --- ResultReader ------------------------------------------------------------------------
def run(reader: m.ResultReader, packets: list[bytes]) -> m.ResultReader:
    for i, p in enumerate(packets):
        done = reader.feed(p)
        assert done == (i == len(packets) - 1), f"packet {i}"
    return reader


def test_reader_text_result_captured():
    r = run(m.ResultReader(m.COM_QUERY, CAPS41), payloads(TEXT_RESULT))
    assert r.rows == 1 and r.result_sets == 1 and r.error is None
    assert not r.in_transaction


def test_reader_prepare_and_binary_result_captured():
    run(m.ResultReader(m.COM_STMT_PREPARE, CAPS41), payloads(PREPARE_RESPONSE))
    r = run(m.ResultReader(m.COM_STMT_EXECUTE, CAPS41), payloads(BINARY_RESULT))
    assert r.rows == 1


def test_reader_every_boundary_of_a_framed_response():
    for cut in range(len(TEXT_RESULT) + 1):
        reader, result = PacketReader(), m.ResultReader(m.COM_QUERY, CAPS41)
        done = False
        for part in (TEXT_RESULT[:cut], TEXT_RESULT[cut:]):
            reader.receive_data(part)
            for packet in iter(reader.next_packet, None):
                done = result.feed(packet.payload)
        assert done


def coldef(name: bytes) -> bytes:
    names = b"".join(m.lenenc_bytes(x) for x in (b"def", b"", b"", b"", name, name))
    return names + b"\x0c" + b"\0" * 12


def ok_eof(status: int, caps: int) -> bytes:
    return m.OkPacket(status_flags=status, header=m.EOF_HEADER).build(caps)


def test_reader_deprecate_eof_and_multi_results():
    caps = CAPS41 | m.CLIENT_DEPRECATE_EOF | m.CLIENT_MULTI_RESULTS
    more = m.SERVER_MORE_RESULTS_EXISTS | m.SERVER_STATUS_IN_TRANS
    packets = [
        b"\x01", coldef(b"a"), b"\x011", ok_eof(more, caps),
        m.OkPacket(affected_rows=2, status_flags=more).build(caps),
        b"\x02", coldef(b"a"), coldef(b"b"), b"\x011\xfb", b"\x012\xfb",
        ok_eof(m.SERVER_STATUS_IN_TRANS, caps),
    ]
    r = run(m.ResultReader(m.COM_QUERY, caps), packets)
    assert r.result_sets == 3 and r.rows == 3 and r.in_transaction
    assert r.ok_packets[1].affected_rows == 2


def test_reader_text_row_starting_with_fe():
    # a text row whose first value is >= 0xFFFFFF bytes begins with 0xFE; it is
    # split, so its first physical packet is exactly 0xFFFFFF bytes long
    value = b"v" * (MAX_PACKET_PAYLOAD + 1)
    row = m.lenenc_bytes(value)
    assert row[0] == 0xFE
    framed = (
        build_packet(1, b"\x01") + build_packet(2, coldef(b"big"))
        + build_packet(3, m.EofPacket().build()) + build_packet(4, row)
    )
    for caps in (CAPS41, CAPS41 | m.CLIENT_DEPRECATE_EOF):
        stream = framed if caps == CAPS41 else framed.replace(
            build_packet(3, m.EofPacket().build()), b""
        )
        reader = PacketReader(max_message=64 << 20)
        reader.receive_data(stream)
        result = m.ResultReader(m.COM_QUERY, caps)
        for packet in iter(reader.next_packet, None):
            assert not result.feed(packet.payload)
        end = m.EofPacket().build() if caps == CAPS41 else ok_eof(2, caps)
        assert result.feed(end) and result.rows == 1


def test_reader_errors_and_progress():
    r = m.ResultReader(m.COM_QUERY, CAPS41)
    assert not r.feed(b"\xff\xff\xff\x01\x00\x00\x01\x00")  # MariaDB progress report
    assert r.feed(m.ErrPacket(1064, b"42000", b"syntax").build())
    assert r.error.code == 1064
    r = m.ResultReader(m.COM_QUERY, CAPS41)
    run(r, [b"\x01", coldef(b"a"), m.EofPacket().build(), b"\x011",
            m.ErrPacket(1317, b"70100", b"interrupted").build()])
    assert r.error.code == 1317 and r.rows == 1
    with pytest.raises(ProtocolError):
        r.feed(b"\x00\x00\x00\x02\x00\x00\x00")


def test_reader_local_infile():
    r = m.ResultReader(m.COM_QUERY, CAPS41)
    assert not r.feed(b"\xfbdata.csv") and r.local_infile
    assert r.feed(m.OkPacket(affected_rows=10).build(CAPS41))


def test_reader_prepare_deprecate_eof_and_no_columns():
    caps = CAPS41 | m.CLIENT_DEPRECATE_EOF
    prep = m.StmtPrepareOk(5, 1, 2).build()
    run(m.ResultReader(m.COM_STMT_PREPARE, caps), [prep, coldef(b"?"), coldef(b"?"), coldef(b"c")])
    run(m.ResultReader(m.COM_STMT_PREPARE, CAPS41), [m.StmtPrepareOk(6, 0, 0).build()])
    run(
        m.ResultReader(m.COM_STMT_PREPARE, CAPS41),
        [m.StmtPrepareOk(7, 0, 1).build(), coldef(b"?"), m.EofPacket().build()],
    )


def test_reader_cursor_fetch_field_list_statistics_ping():
    cursor_eof = m.EofPacket(0, m.SERVER_STATUS_CURSOR_EXISTS | 2).build()
    r = run(m.ResultReader(m.COM_STMT_EXECUTE, CAPS41), [b"\x01", coldef(b"a"), cursor_eof])
    assert r.cursor_opened
    last = m.EofPacket(0, m.SERVER_STATUS_LAST_ROW_SENT | 2).build()
    r = run(m.ResultReader(m.COM_STMT_FETCH, CAPS41), [b"\x00\x00\x01", b"\x00\x00\x02", last])
    assert r.rows == 2 and r.status_flags & m.SERVER_STATUS_LAST_ROW_SENT
    run(
        m.ResultReader(m.COM_FIELD_LIST, CAPS41),
        [coldef(b"a"), coldef(b"b"), m.EofPacket().build()],
    )
    run(m.ResultReader(m.COM_STATISTICS, CAPS41), [b"Uptime: 5  Threads: 1"])
    run(m.ResultReader(m.COM_PING, CAPS41), [m.OkPacket().build(CAPS41)])
    run(m.ResultReader(m.COM_SET_OPTION, CAPS41), [m.EofPacket().build()])
    with pytest.raises(ValueError):
        m.ResultReader(m.COM_QUIT, CAPS41)


def test_reader_cached_metadata_skips_definitions():
    r = m.ResultReader(m.COM_STMT_EXECUTE, CAPS41, m.MARIADB_CLIENT_CACHE_METADATA)
    run(r, [b"\x02\x00", m.EofPacket().build(), b"\x00\x00\x01\x02", m.EofPacket().build()])


@given(
    st.lists(st.binary(max_size=20), max_size=12),
    st.sampled_from([m.COM_QUERY, m.COM_STMT_EXECUTE, m.COM_STMT_PREPARE, m.COM_FIELD_LIST,
                     m.COM_STMT_FETCH, m.COM_PING]),
    st.sampled_from([CAPS41, CAPS41 | m.CLIENT_DEPRECATE_EOF | m.CLIENT_SESSION_TRACK]),
)
def test_fuzz_reader_only_protocol_error(packets, command, caps):
    reader = m.ResultReader(command, caps, m.MARIADB_CLIENT_CACHE_METADATA)
    try:
        for p in packets:
            reader.feed(p)
    except ProtocolError:
        pass
