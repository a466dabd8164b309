"""Sans-IO tests of the PostgreSQL framing and message layer.

Byte literals are written from the "Message Formats" chapter of the
protocol documentation, laid out the way they appear in a capture.
"""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wirecache_postgres import messages as m
from wirecache_postgres.framing import (
    MAX_STARTUP_LENGTH,
    MessageReader,
    ProtocolError,
    frame,
)

# --- a simple-query exchange, as captured -----------------------------------

STARTUP = b"\x00\x00\x00\x22\x00\x03\x00\x00user\x00alice\x00database\x00shop\x00\x00"
SSL_REQUEST = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"
AUTH_OK = b"R\x00\x00\x00\x08\x00\x00\x00\x00"
AUTH_MD5 = b"R\x00\x00\x00\x0c\x00\x00\x00\x05\x9a\x3b\x01\xfe"
AUTH_SASL = b"R\x00\x00\x00\x2a\x00\x00\x00\x0aSCRAM-SHA-256-PLUS\x00SCRAM-SHA-256\x00\x00"
PARAM_STATUS = b"S\x00\x00\x00\x19client_encoding\x00UTF8\x00"
KEY_DATA = b"K\x00\x00\x00\x0c\x00\x00\x27\xc6\x89\x52\xc5\x2b"
READY_IDLE = b"Z\x00\x00\x00\x05I"
QUERY = b"Q\x00\x00\x00\x0dSELECT 1\x00"
ROW_DESC = (
    b"T\x00\x00\x00\x21\x00\x01?column?\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x17\x00\x04\xff\xff\xff\xff\x00\x00"
)
DATA_ROW = b"D\x00\x00\x00\x0b\x00\x01\x00\x00\x00\x011"
COMMAND_COMPLETE = b"C\x00\x00\x00\x0dSELECT 1\x00"
ERROR = (
    b'E\x00\x00\x00\x3eSERROR\x00VERROR\x00C42P01\x00Mrelation "nope" does not exist\x00P15\x00\x00'
)
RESPONSE = ROW_DESC + DATA_ROW + COMMAND_COMPLETE + READY_IDLE
# psycopg-style extended query: Parse, Bind, Describe portal, Execute, Sync.
EXTENDED = (
    b"P\x00\x00\x00\x1a\x00SELECT $1::int\x00\x00\x01\x00\x00\x00\x17"
    b"B\x00\x00\x00\x12\x00\x00\x00\x00\x00\x01\x00\x00\x00\x0242\x00\x00"
    b"D\x00\x00\x00\x06P\x00"
    b"E\x00\x00\x00\x09\x00\x00\x00\x00\x00"
    b"S\x00\x00\x00\x04"
)


def messages_of(reader: MessageReader) -> list[tuple[int, bytes, bytes]]:
    return list(reader)


# --- captured bytes ---------------------------------------------------------


def test_captured_backend_messages_parse() -> None:
    stream = AUTH_OK + PARAM_STATUS + KEY_DATA + READY_IDLE + RESPONSE + ERROR
    parsed = [m.parse_backend(t, body) for t, body, _ in _read_all(stream)]
    assert parsed == [
        m.Authentication(m.Auth.OK),
        m.ParameterStatus("client_encoding", "UTF8"),
        m.BackendKeyData(10182, b"\x89\x52\xc5\x2b"),
        m.ReadyForQuery("I"),
        m.RowDescription((m.FieldDescription("?column?", 0, 0, 23, 4, -1, 0),)),
        m.DataRow((b"1",)),
        m.CommandComplete("SELECT 1"),
        m.ReadyForQuery("I"),
        m.ErrorResponse(
            {"S": "ERROR", "V": "ERROR", "C": "42P01",
             "M": 'relation "nope" does not exist', "P": "15"}
        ),
    ]  # fmt: skip
    err = parsed[-1]
    assert (err.severity, err.code, err.message, err.detail) == (
        "ERROR", "42P01", 'relation "nope" does not exist', None
    )  # fmt: skip


def test_captured_messages_equal_builders() -> None:
    assert m.auth_ok() == AUTH_OK
    assert m.auth_md5_password(b"\x9a\x3b\x01\xfe") == AUTH_MD5
    assert m.auth_sasl(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]) == AUTH_SASL
    assert m.parameter_status("client_encoding", "UTF8") == PARAM_STATUS
    assert m.backend_key_data(10182, b"\x89\x52\xc5\x2b") == KEY_DATA
    assert m.ready_for_query("I") == READY_IDLE == m.READY_FOR_QUERY_IDLE
    assert m.query("SELECT 1") == QUERY
    assert m.row_description([m.FieldDescription("?column?", 0, 0, 23, 4, -1, 0)]) == ROW_DESC
    assert m.data_row([b"1"]) == DATA_ROW
    assert m.command_complete("SELECT 1") == COMMAND_COMPLETE
    assert m.startup_message({"user": "alice", "database": "shop"}) == STARTUP
    assert m.SSL_REQUEST == SSL_REQUEST
    assert (
        m.prepare("", "SELECT $1::int", [23])
        + m.bind("", "", [], [b"42"], [])
        + m.describe("P", "")
        + m.execute()
        + m.SYNC
        == EXTENDED
    )


def test_captured_extended_query_parses() -> None:
    parsed = [m.parse_frontend(t, body) for t, body, _ in _read_all(EXTENDED)]
    assert parsed == [
        m.Parse("", "SELECT $1::int", (23,)),
        m.Bind("", "", (), (b"42",), ()),
        m.Describe("P", ""),
        m.Execute("", 0),
        None,
    ]
    assert m.parse_query(QUERY[5:]) == m.Query("SELECT 1")


def test_auth_variants() -> None:
    assert m.parse_authentication(AUTH_MD5[5:]) == m.Authentication(5, salt=b"\x9a\x3b\x01\xfe")
    assert m.parse_authentication(AUTH_SASL[5:]).mechanisms == (
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-256",
    )
    assert m.parse_authentication(m.auth_cleartext_password()[5:]) == m.Authentication(3)
    server_first = b"r=abc,s=c2FsdA==,i=4096"
    assert m.parse_authentication(m.auth_sasl_continue(server_first)[5:]) == m.Authentication(
        11, data=server_first
    )
    assert m.parse_authentication(m.auth_sasl_final(b"v=xyz")[5:]).data == b"v=xyz"
    bad_bodies = [
        b"", b"\x00\x00", b"\x00\x00\x00\x63", b"\x00\x00\x00\x00x",
        b"\x00\x00\x00\x05ab", b"\x00\x00\x00\x0a\x00", b"\x00\x00\x00\x0aSCRAM",
    ]  # fmt: skip
    for bad in bad_bodies:
        with pytest.raises(ProtocolError):
            m.parse_authentication(bad)


# --- startup packets --------------------------------------------------------


def _startup(data: bytes) -> object:
    reader = MessageReader()
    reader.feed(data)
    packet = reader.next_startup()
    assert packet is not None and reader.buffered == 0
    code, payload, raw = packet
    assert raw == data
    return m.parse_startup_packet(code, payload)


def test_startup_message() -> None:
    msg = _startup(STARTUP)
    assert msg == m.StartupMessage(3, 0, {"user": "alice", "database": "shop"})


def test_startup_protocol_3_2_with_options() -> None:
    params = {"user": "bob", "_pq_.command_compression": "on", "application_name": "ünï"}
    msg = _startup(m.startup_message(params, 3, 2))
    assert isinstance(msg, m.StartupMessage)
    assert (msg.major << 16 | msg.minor) == m.PROTOCOL_3_2 == 196610
    assert msg.params == params
    assert msg.protocol_options == {"_pq_.command_compression": "on"}


def test_special_requests() -> None:
    assert _startup(SSL_REQUEST) == m.SSLRequest()
    assert _startup(m.GSSENC_REQUEST) == m.GSSENCRequest()
    classic = b"\x00\x00\x00\x10\x04\xd2\x16\x2e\x00\x00\x27\xc6\x89\x52\xc5\x2b"
    assert _startup(classic) == m.CancelRequest(10182, b"\x89\x52\xc5\x2b")
    assert m.cancel_request(10182, b"\x89\x52\xc5\x2b") == classic
    long_key = bytes(range(32))
    assert _startup(m.cancel_request(7, long_key)) == m.CancelRequest(7, long_key)
    assert _startup(m.cancel_request(7, b"k" * 256)) == m.CancelRequest(7, b"k" * 256)


@pytest.mark.parametrize(
    "code, payload",
    [
        (m.SSL_REQUEST_CODE, b"x"),
        (m.CANCEL_REQUEST_CODE, b"\x00\x00\x00\x01abc"),  # key too short
        (m.CANCEL_REQUEST_CODE, b"\x00\x00\x00\x01" + b"k" * 257),  # key too long
        (1234 << 16 | 5681, b""),  # unknown special request
        (m.PROTOCOL_3_0, b""),  # no terminator
        (m.PROTOCOL_3_0, b"user\x00"),  # name without value
        (m.PROTOCOL_3_0, b"user\x00bob"),  # value not terminated
        (m.PROTOCOL_3_0, b"user\x00bob\x00"),  # list not terminated
        (m.PROTOCOL_3_0, b"user\x00bob\x00\x00junk"),  # trailing bytes
        (m.PROTOCOL_3_0, b"user\x00a\x00user\x00b\x00\x00"),  # duplicate
        (m.PROTOCOL_3_0, b"user\x00\xff\xfe\x00\x00"),  # not UTF-8
    ],
)
def test_bad_startup_payloads(code: int, payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        m.parse_startup_packet(code, payload)


def test_startup_utf8_error_names_the_field() -> None:
    with pytest.raises(ProtocolError, match="user.*not valid utf-8"):
        m.parse_startup_packet(m.PROTOCOL_3_0, b"user\x00\xff\x00\x00")


@pytest.mark.parametrize("length", [-1, 0, 4, 7, MAX_STARTUP_LENGTH + 1, 0x16030100])
def test_bad_startup_lengths(length: int) -> None:
    reader = MessageReader()
    reader.feed(struct.pack("!i", length) + b"\x00" * 8)
    with pytest.raises(ProtocolError, match="startup packet"):
        reader.next_startup()


def test_startup_then_regular_messages_and_peek() -> None:
    reader = MessageReader()
    reader.feed(STARTUP[:3])
    assert reader.next_startup() is None
    assert reader.peek(1) == b"\x00"
    reader.feed(STARTUP[3:] + b"p\x00\x00\x00\x0bsecret\x00")
    assert reader.next_startup() is not None
    typ, body, _ = reader.next_message()
    assert typ == m.Frontend.PASSWORD
    assert m.parse_password_message(body) == m.PasswordMessage(b"secret")


# --- framing ----------------------------------------------------------------


def _read_all(data: bytes) -> list[tuple[int, bytes, bytes]]:
    reader = MessageReader()
    reader.feed(data)
    out = messages_of(reader)
    assert reader.buffered == 0
    return out


def test_byte_at_a_time_equals_one_shot() -> None:
    stream = AUTH_OK + PARAM_STATUS + KEY_DATA + RESPONSE + ERROR + EXTENDED
    expected = _read_all(stream)
    reader = MessageReader()
    got = []
    for i in range(len(stream)):
        reader.feed(stream[i : i + 1])
        got += messages_of(reader)
    assert got == expected
    assert b"".join(raw for _, _, raw in got) == stream


def test_every_split_point_of_every_message() -> None:
    stream = RESPONSE + EXTENDED
    for cut in range(len(stream) + 1):
        reader = MessageReader()
        reader.feed(stream[:cut])
        got = messages_of(reader)
        reader.feed(stream[cut:])
        got += messages_of(reader)
        assert b"".join(raw for _, _, raw in got) == stream, cut


def test_batch_of_whole_read_is_zero_copy() -> None:
    reader = MessageReader()
    stream = RESPONSE * 50
    reader.feed(stream)
    data, offsets = reader.next_batch()
    assert data is stream  # the fed object itself, no copy
    assert len(offsets) == 200
    assert [data[o] for o in offsets[:4]] == [ord(c) for c in "TDCZ"]
    assert reader.next_batch() is None and reader.buffered == 0


def test_batch_stops_at_incomplete_message_and_resumes() -> None:
    reader = MessageReader()
    reader.feed(RESPONSE + DATA_ROW[:3])
    data, offsets = reader.next_batch()
    assert data == RESPONSE and offsets == [0, 34, 46, 60]
    assert reader.next_batch() is None
    reader.feed(DATA_ROW[3:] + READY_IDLE)
    data, offsets = reader.next_batch()
    assert data == DATA_ROW + READY_IDLE and offsets == [0, len(DATA_ROW)]


def test_batch_delivers_valid_messages_before_a_bad_frame() -> None:
    reader = MessageReader()
    reader.feed(READY_IDLE + b"Z\x00\x00\x00\x02")
    assert reader.next_batch() == (READY_IDLE, [0])
    with pytest.raises(ProtocolError, match="invalid message length: 2"):
        reader.next_batch()


@pytest.mark.parametrize("length", [-1, 0, 3, -(2**31)])
def test_length_below_four_is_rejected(length: int) -> None:
    reader = MessageReader()
    reader.feed(b"D" + struct.pack("!i", length))
    with pytest.raises(ProtocolError):
        reader.next_message()


def test_length_above_limit_is_rejected_before_buffering() -> None:
    reader = MessageReader(max_message_length=1000)
    reader.feed(b"Q" + struct.pack("!i", 1001))
    for method in (reader.next_message, reader.next_batch, reader.next_header):
        with pytest.raises(ProtocolError, match="exceeds the limit"):
            method()
    default = MessageReader()
    default.feed(b"d\x7f\xff\xff\xff")
    with pytest.raises(ProtocolError):
        default.next_header()


def test_frame() -> None:
    assert frame(ord("C"), b"SELECT 1\x00") == COMMAND_COMPLETE
    assert frame(ord("S"), b"") == m.SYNC == b"S\x00\x00\x00\x04"


# --- streaming relay --------------------------------------------------------


def relay(reader: MessageReader, sink: list[bytes], threshold: int) -> None:
    """The relay loop a proxy runs after each socket read."""
    while True:
        if reader.stream_remaining:
            chunk = reader.next_chunk()
            if chunk is None:
                return
            sink.append(chunk)
            continue
        batch = reader.next_batch()
        if batch is not None:
            sink.append(batch[0])
            continue
        header = reader.next_header(min_length=threshold)
        if header is None:
            return
        sink.append(header[2])


def test_streaming_relay_of_huge_message_is_bounded() -> None:
    big_value = bytes(range(256)) * (100 * 1024 * 1024 // 256)  # 100 MiB
    huge = m.data_row([big_value])
    stream = ROW_DESC + huge + COMMAND_COMPLETE + READY_IDLE
    piece = 256 * 1024
    reader = MessageReader()
    sink: list[bytes] = []
    peak = 0
    view = memoryview(stream)
    for start in range(0, len(stream), piece):
        reader.feed(view[start : start + piece])
        peak = max(peak, reader.buffered)
        relay(reader, sink, threshold=64 * 1024)
        # Whatever was fed is handed on before the next read.
        assert reader.buffered <= 5
    assert peak <= piece + 5
    assert max(map(len, sink)) <= piece + 5
    assert b"".join(sink) == stream


def test_streaming_header_and_chunks() -> None:
    body = m.data_row([b"x" * 1000])[5:]
    reader = MessageReader()
    reader.feed(b"D" + struct.pack("!i", len(body) + 4) + body[:10])
    assert reader.next_header(min_length=2000) is None  # below threshold: not streamed
    typ, length, header = reader.next_header(min_length=100)
    assert (typ, length, header) == (ord("D"), len(body), b"D" + struct.pack("!i", len(body) + 4))
    with pytest.raises(RuntimeError):
        reader.next_message()
    assert reader.next_chunk() == body[:10]
    assert reader.next_chunk() is None and reader.stream_remaining == len(body) - 10
    reader.feed(body[10:500])
    reader.feed(body[500:] + READY_IDLE)
    assert reader.next_chunk() == body[10:500]
    assert reader.next_chunk() == body[500:]
    assert reader.stream_remaining == 0 and reader.next_chunk() is None
    assert reader.next_message() == (ord("Z"), b"I", READY_IDLE)


def test_slowly_arriving_message_is_joined_once() -> None:
    # Many tiny reads of one message must not be re-joined on every feed.
    msg = m.copy_data(b"y" * 100_000)
    reader = MessageReader()
    for i in range(0, len(msg), 100):
        reader.feed(msg[i : i + 100])
        if i + 100 < len(msg):
            assert reader.next_message() is None
            assert len(reader._buf) < 200  # still unjoined pieces
    assert reader.next_message()[2] == msg


# --- builder → parser round trips -------------------------------------------

ROUND_TRIPS = [
    (m.auth_ok(), m.Authentication(0)),
    (m.auth_md5_password(b"salt"), m.Authentication(5, salt=b"salt")),
    (m.auth_sasl(["SCRAM-SHA-256"]), m.Authentication(10, mechanisms=("SCRAM-SHA-256",))),
    (m.parameter_status("TimeZone", "Europe/Paris"), m.ParameterStatus("TimeZone", "Europe/Paris")),
    (m.backend_key_data(-5, b"k" * 32), m.BackendKeyData(-5, b"k" * 32)),
    (m.READY_FOR_QUERY_IN_TRANSACTION, m.ReadyForQuery("T")),
    (m.READY_FOR_QUERY_FAILED, m.ReadyForQuery("E")),
    (
        m.error_response("FATAL", "28P01", "password authentication failed", "d", "h"),
        m.ErrorResponse({"S": "FATAL", "V": "FATAL", "C": "28P01",
                         "M": "password authentication failed", "D": "d", "H": "h"}),
    ),
    (
        m.notice_response("WARNING", "01000", "careful"),
        m.NoticeResponse({"S": "WARNING", "V": "WARNING", "C": "01000", "M": "careful"}),
    ),
    (m.negotiate_protocol_version(0, ["_pq_.x"]), m.NegotiateProtocolVersion(0, ("_pq_.x",))),
    (m.command_complete("INSERT 0 3"), m.CommandComplete("INSERT 0 3")),
    (m.data_row([None, b"", b"abc"]), m.DataRow((None, b"", b"abc"))),
    (m.parameter_description([23, 25, 4294967295]), m.ParameterDescription((23, 25, 4294967295))),
    (m.copy_in_response(0, [0, 0]), m.CopyResponse(0, (0, 0))),
    (m.copy_out_response(1, [1]), m.CopyResponse(1, (1,))),
    (m.copy_both_response(0, []), m.CopyResponse(0, ())),
    (m.copy_data(b"1\tfoo\n"), m.CopyData(b"1\tfoo\n")),
    (m.notification_response(42, "jobs", "{}"), m.NotificationResponse(42, "jobs", "{}")),
    (m.function_call_response(None), m.FunctionCallResponse(None)),
    (m.function_call_response(b"\x00\x01"), m.FunctionCallResponse(b"\x00\x01")),
    (m.EMPTY_QUERY_RESPONSE, None),
    (m.PARSE_COMPLETE, None),
    (m.BIND_COMPLETE, None),
    (m.CLOSE_COMPLETE, None),
    (m.NO_DATA, None),
    (m.PORTAL_SUSPENDED, None),
    (m.COPY_DONE, None),
]  # fmt: skip

FRONTEND_ROUND_TRIPS = [
    (m.query("SELECT 'é'"), m.Query("SELECT 'é'")),
    (m.prepare("s1", "SELECT $1, $2", [0, 25]), m.Parse("s1", "SELECT $1, $2", (0, 25))),
    (
        m.bind("p1", "s1", [1], [b"\x00\x00\x00\x01", None], [1, 0]),
        m.Bind("p1", "s1", (1,), (b"\x00\x00\x00\x01", None), (1, 0)),
    ),
    (m.describe("S", "s1"), m.Describe("S", "s1")),
    (m.close("P", "p1"), m.Close("P", "p1")),
    (m.execute("p1", 100), m.Execute("p1", 100)),
    (m.copy_fail("oops"), m.CopyFail("oops")),
    (
        m.function_call(1598, [1], [b"\x00\x00\x00\x07", None], 1),
        m.FunctionCall(1598, (1,), (b"\x00\x00\x00\x07", None), 1),
    ),
    (m.SYNC, None),
    (m.FLUSH, None),
    (m.TERMINATE, None),
]

# Messages whose bodies end in opaque data, so a prefix can be valid too.
OPAQUE_TAIL = {ord("d"), ord("R"), ord("K")}


@pytest.mark.parametrize("wire, expected", ROUND_TRIPS)
def test_backend_round_trip(wire: bytes, expected: object) -> None:
    ((typ, body, raw),) = _read_all(wire)
    assert m.parse_backend(typ, body) == expected


@pytest.mark.parametrize("wire, expected", FRONTEND_ROUND_TRIPS)
def test_frontend_round_trip(wire: bytes, expected: object) -> None:
    ((typ, body, raw),) = _read_all(wire)
    assert m.parse_frontend(typ, body) == expected


@pytest.mark.parametrize(
    "wire, parse",
    [(w, m.parse_backend) for w, _ in ROUND_TRIPS]
    + [(w, m.parse_frontend) for w, _ in FRONTEND_ROUND_TRIPS],
)
def test_truncated_and_padded_bodies_are_rejected(wire: bytes, parse) -> None:
    typ, body = wire[0], wire[5:]
    if typ not in OPAQUE_TAIL:
        for cut in range(len(body)):
            with pytest.raises(ProtocolError):
                parse(typ, body[:cut])
        with pytest.raises(ProtocolError):
            parse(typ, body + b"\x00")


def test_password_family() -> None:
    client_first = b"n,,n=,r=fyko+d2lbbFgONRv9qkxdawL"
    wire = m.sasl_initial_response("SCRAM-SHA-256", client_first)
    assert wire == (b"p\x00\x00\x00\x36SCRAM-SHA-256\x00\x00\x00\x00\x20" + client_first)
    msg = m.parse_sasl_initial_response(wire[5:])
    assert msg == m.SASLInitialResponse("SCRAM-SHA-256", client_first)
    assert m.parse_sasl_initial_response(m.sasl_initial_response("X", None)[5:]).data is None
    assert m.parse_sasl_response(m.sasl_response(b"c=biws,r=x,p=y")[5:]).data == b"c=biws,r=x,p=y"
    assert m.parse_password_message(m.password_message(b"md5abc")[5:]).password == b"md5abc"
    for bad in [b"SCRAM", b"SCRAM\x00\x00\x00", b"SCRAM\x00\x00\x00\x00\x05abc",
                b"SCRAM\x00\xff\xff\xff\xfe"]:  # fmt: skip
        with pytest.raises(ProtocolError):
            m.parse_sasl_initial_response(bad)
    with pytest.raises(ProtocolError):
        m.parse_frontend(m.Frontend.PASSWORD, wire[5:])


@pytest.mark.parametrize(
    "client_first, expected",
    [
        (b"n,,n=,r=abc", m.Gs2Header("n", None, None, b"n=,r=abc")),
        (b"y,,n=,r=abc", m.Gs2Header("y", None, None, b"n=,r=abc")),
        (
            b"p=tls-server-end-point,,n=,r=abc",
            m.Gs2Header("p", "tls-server-end-point", None, b"n=,r=abc"),
        ),
        (b"n,a=admin,n=,r=abc", m.Gs2Header("n", None, "admin", b"n=,r=abc")),
    ],
)
def test_gs2_header(client_first: bytes, expected: m.Gs2Header) -> None:
    assert m.parse_gs2_header(client_first) == expected


@pytest.mark.parametrize("bad", [b"", b"n", b"n,", b"x,,n=", b"p=,,n=", b"n,b=x,n=", b"\xff,,"])
def test_bad_gs2_header(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        m.parse_gs2_header(bad)


@pytest.mark.parametrize(
    "typ, body",
    [
        (ord("D"), b"\x00\x01\xff\xff\xff\xfe"),  # negative length other than -1
        (ord("D"), b"\xff\xff"),  # 65535 columns in a 2-byte body
        (ord("T"), b"\x00\x02a\x00" + b"\x00" * 18),  # count larger than the body
        (ord("t"), b"\x00\x01\x00\x00"),
        (ord("Z"), b"X"),
        (ord("Z"), b""),
        (ord("C"), b"SELECT 1"),  # missing NUL
        (ord("E"), b"SERROR\x00"),  # missing final terminator
        (ord("v"), b"\x00\x00\x00\x00\xff\xff\xff\xff"),
        (ord("v"), b"\x00\x00\x00\x00\x00\x00\x00\x09a\x00"),
        (ord("K"), b"\x00\x00\x00\x01ab"),  # key too short
        (ord("?"), b""),
    ],
)
def test_malformed_backend_bodies(typ: int, body: bytes) -> None:
    with pytest.raises(ProtocolError):
        m.parse_backend(typ, body)


@pytest.mark.parametrize(
    "typ, body",
    [
        (ord("Q"), b"SELECT 1\x00\x00"),  # embedded/extra NUL
        (ord("Q"), b"SELECT \xff\x00"),  # not UTF-8
        (ord("D"), b"X\x00"),  # neither S nor P
        (ord("B"), b"\x00\x00\x00\x02\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"),
        (ord("P"), b"\x00SELECT 1\x00\x00\x05\x00\x00\x00\x17"),
        (ord("E"), b"\x00\x00\x00"),
        (ord("S"), b"x"),
        (ord("Z"), b""),
    ],
)
def test_malformed_frontend_bodies(typ: int, body: bytes) -> None:
    with pytest.raises(ProtocolError):
        m.parse_frontend(typ, body)


def test_query_with_other_encoding() -> None:
    wire = m.query("SELECT 'Ä'", encoding="latin-1")
    assert wire[5:] == b"SELECT '\xc4'\x00"
    assert m.parse_query(wire[5:], encoding="latin-1").sql == "SELECT 'Ä'"
    with pytest.raises(ProtocolError, match="not valid utf-8"):
        m.parse_query(wire[5:])


def test_builders_refuse_unframeable_values() -> None:
    with pytest.raises(ValueError):
        m.query("SELECT 1\0")
    with pytest.raises(ValueError):
        m.data_row([b""] * 70000)
    with pytest.raises(ValueError):
        m.ready_for_query("X")
    with pytest.raises(ValueError):
        m.backend_key_data(1, b"abc")
    with pytest.raises(ValueError):
        m.describe("X", "")


# --- property tests ---------------------------------------------------------

texts = st.text(st.characters(exclude_characters="\0", exclude_categories=("Cs",)), max_size=40)
values = st.one_of(st.none(), st.binary(max_size=40))
int16 = st.integers(-(2**15), 2**15 - 1)
uint32 = st.integers(0, 2**32 - 1)
int32 = st.integers(-(2**31), 2**31 - 1)


@given(st.binary(max_size=300), st.lists(st.integers(1, 50), max_size=20), st.booleans())
def test_arbitrary_bytes_only_raise_protocol_error(
    data: bytes, cuts: list[int], startup: bool
) -> None:
    reader = MessageReader(max_message_length=10_000)
    pos = 0
    try:
        for n in [*cuts, len(data)]:
            reader.feed(data[pos : pos + n])
            pos += n
            if startup and reader.next_startup() is not None:
                startup = False
            while not startup and reader.next_batch() is not None:
                pass
    except ProtocolError:
        pass


@given(st.integers(0, 255), st.binary(max_size=200))
def test_arbitrary_bodies_only_raise_protocol_error(typ: int, body: bytes) -> None:
    for parse in (m.parse_backend, m.parse_frontend):
        with contextlib.suppress(ProtocolError):
            parse(typ, body)
    for parse_p in (m.parse_password_message, m.parse_sasl_initial_response, m.parse_gs2_header):
        with contextlib.suppress(ProtocolError):
            parse_p(body)


@given(st.sampled_from([m.PROTOCOL_3_0, m.PROTOCOL_3_2, m.CANCEL_REQUEST_CODE,
                        m.SSL_REQUEST_CODE, 1234 << 16 | 9999]) | uint32,
       st.binary(max_size=300))  # fmt: skip
def test_arbitrary_startup_payloads_only_raise_protocol_error(code: int, payload: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        m.parse_startup_packet(code, payload)


@given(
    st.dictionaries(texts.filter(bool), texts, max_size=8),
    st.sampled_from([(3, 0), (3, 2)]),
)
def test_startup_round_trip(params: dict[str, str], version: tuple[int, int]) -> None:
    wire = m.startup_message(params, *version)
    assert _startup(wire) == m.StartupMessage(*version, params)


@given(texts, texts, st.lists(int16, max_size=5), st.lists(values, max_size=5),
       st.lists(int16, max_size=5))  # fmt: skip
def test_bind_round_trip(portal, statement, formats, params, result_formats) -> None:
    formats = formats[:1] if len(formats) != len(params) else formats
    wire = m.bind(portal, statement, formats, params, result_formats)
    expected = m.Bind(portal, statement, tuple(formats), tuple(params), tuple(result_formats))
    assert m.parse_bind(wire[5:]) == expected


@given(texts, texts, st.lists(uint32, max_size=5))
def test_parse_round_trip(name: str, sql: str, oids: list[int]) -> None:
    assert m.parse_parse(m.prepare(name, sql, oids)[5:]) == m.Parse(name, sql, tuple(oids))


@given(st.lists(st.builds(m.FieldDescription, texts, uint32, int16, uint32, int16, int32, int16),
                max_size=5))  # fmt: skip
def test_row_description_round_trip(fields: list[m.FieldDescription]) -> None:
    assert m.parse_row_description(m.row_description(fields)[5:]).fields == tuple(fields)


@given(st.lists(values, max_size=10))
def test_data_row_round_trip(row: list[bytes | None]) -> None:
    assert m.parse_data_row(m.data_row(row)[5:]).values == tuple(row)


@given(texts, texts, texts, st.none() | texts, st.none() | texts)
def test_error_response_round_trip(severity, code, message, detail, hint) -> None:
    err = m.parse_error_response(m.error_response(severity, code, message, detail, hint)[5:])
    assert (err.fields["S"], err.code, err.message, err.detail, err.hint) == (
        severity, code, message, detail, hint
    )  # fmt: skip


@given(uint32, st.lists(int16, max_size=4), st.lists(values, max_size=4), int16)
def test_function_call_round_trip(oid, formats, args, result_format) -> None:
    wire = m.function_call(oid, formats, args, result_format)
    expected = m.FunctionCall(oid, tuple(formats), tuple(args), result_format)
    assert m.parse_function_call(wire[5:]) == expected


@given(int32, texts, texts, int32, st.lists(texts, max_size=4))
def test_misc_round_trips(pid, channel, payload, minor, options) -> None:
    wire = m.notification_response(pid, channel, payload)
    assert m.parse_notification_response(wire[5:]) == m.NotificationResponse(pid, channel, payload)
    wire = m.negotiate_protocol_version(minor, options)
    assert m.parse_negotiate_protocol_version(wire[5:]) == m.NegotiateProtocolVersion(
        minor, tuple(options)
    )


@settings(max_examples=50)
@given(st.lists(st.sampled_from([w for w, _ in ROUND_TRIPS]), max_size=20),
       st.lists(st.integers(1, 64), max_size=30))  # fmt: skip
def test_any_split_yields_the_same_messages(stream_parts: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(stream_parts)
    reader = MessageReader()
    got: list[bytes] = []
    pos = 0
    for n in [*cuts, len(stream)]:
        reader.feed(stream[pos : pos + n])
        pos += n
        while (batch := reader.next_batch()) is not None:
            data, offsets = batch
            got += [data[a:b] for a, b in zip(offsets, [*offsets[1:], len(data)], strict=True)]
    assert got == stream_parts
