"""Typed PostgreSQL protocol messages: parsers and builders, sans-IO.

Parsers take a message *body* (what :mod:`.framing` hands out after the
5-byte header, or the payload after a startup packet's code) and return a
small immutable :class:`~typing.NamedTuple`; builders take field values and
return complete wire bytes. Both follow the "Message Formats" chapter of the
PostgreSQL protocol documentation (protocol 3.0 and 3.2).

Rules every parser keeps, so that hostile input can only ever produce a
:class:`~.framing.ProtocolError` (which the proxy turns into an ErrorResponse
and a closed connection, never a crash):

* every fixed-size read, string terminator and count is checked against the
  body before it is used, and trailing bytes are an error, as in the
  server's own ``pq_getmsgend()``;
* a length of -1 means NULL; any other negative length is an error;
* text is decoded with ``encoding`` (default UTF-8; the session passes the
  Python codec for the connection's ``client_encoding``) and bytes that do not
  decode are reported as a protocol error naming the field.

Builders raise :class:`ValueError` for arguments that cannot be framed (a NUL
inside a string, a count over 65535): that is a bug in the caller, not in the
peer. Messages without a body, and the three ReadyForQuery variants, are
prebuilt ``bytes`` constants, since the hot path sends them on every request.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple

from .framing import ProtocolError, frame

__all__ = [
    # type bytes and codes
    "Frontend", "Backend", "Auth",
    "PROTOCOL_3_0", "PROTOCOL_3_2",
    "SSL_REQUEST_CODE", "GSSENC_REQUEST_CODE", "CANCEL_REQUEST_CODE",
    # startup
    "StartupMessage", "SSLRequest", "GSSENCRequest", "CancelRequest",
    "parse_startup_packet", "startup_message", "SSL_REQUEST", "GSSENC_REQUEST",
    "cancel_request",
    # backend
    "Authentication", "ParameterStatus", "BackendKeyData", "ReadyForQuery",
    "ErrorResponse", "NoticeResponse", "NegotiateProtocolVersion",
    "CommandComplete", "FieldDescription", "RowDescription", "DataRow",
    "ParameterDescription", "CopyResponse", "CopyData",
    "NotificationResponse", "FunctionCallResponse",
    "parse_authentication", "parse_parameter_status", "parse_backend_key_data",
    "parse_ready_for_query", "parse_error_response", "parse_notice_response",
    "parse_negotiate_protocol_version", "parse_command_complete",
    "parse_row_description", "parse_data_row", "parse_parameter_description",
    "parse_copy_response", "parse_copy_data", "parse_notification_response",
    "parse_function_call_response", "parse_empty",
    "auth_ok", "auth_cleartext_password", "auth_md5_password", "auth_sasl",
    "auth_sasl_continue", "auth_sasl_final", "parameter_status",
    "backend_key_data", "ready_for_query", "error_response", "notice_response",
    "negotiate_protocol_version", "command_complete", "row_description",
    "data_row", "parameter_description", "copy_in_response",
    "copy_out_response", "copy_both_response", "copy_data",
    "notification_response", "function_call_response",
    "EMPTY_QUERY_RESPONSE", "PARSE_COMPLETE", "BIND_COMPLETE",
    "CLOSE_COMPLETE", "NO_DATA", "PORTAL_SUSPENDED", "COPY_DONE",
    "READY_FOR_QUERY_IDLE", "READY_FOR_QUERY_IN_TRANSACTION",
    "READY_FOR_QUERY_FAILED",
    # frontend
    "Query", "Parse", "Bind", "Describe", "Execute", "Close",
    "PasswordMessage", "SASLInitialResponse", "SASLResponse", "Gs2Header",
    "CopyFail", "FunctionCall",
    "parse_query", "parse_parse", "parse_bind", "parse_describe",
    "parse_execute", "parse_close", "parse_password_message",
    "parse_sasl_initial_response", "parse_sasl_response", "parse_gs2_header",
    "parse_copy_fail", "parse_function_call",
    "query", "prepare", "bind", "describe", "execute", "close",
    "password_message", "sasl_initial_response", "sasl_response", "copy_fail",
    "function_call", "SYNC", "FLUSH", "TERMINATE",
    # dispatch
    "parse_frontend", "parse_backend",
]  # fmt: skip


# ---------------------------------------------------------------------------
# Type bytes and codes
# ---------------------------------------------------------------------------


class Frontend:
    """Type bytes of messages sent by the client, as ints (``body[0]`` style).

    Several letters mean something else in the other direction ('D' is
    Describe here but DataRow from the server), hence two namespaces.
    """

    BIND: Final = ord("B")
    CLOSE: Final = ord("C")
    COPY_DATA: Final = ord("d")
    COPY_DONE: Final = ord("c")
    COPY_FAIL: Final = ord("f")
    DESCRIBE: Final = ord("D")
    EXECUTE: Final = ord("E")
    FLUSH: Final = ord("H")
    FUNCTION_CALL: Final = ord("F")
    PARSE: Final = ord("P")
    #: PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse all
    #: use 'p'; which one it is depends on the authentication request.
    PASSWORD: Final = ord("p")
    QUERY: Final = ord("Q")
    SYNC: Final = ord("S")
    TERMINATE: Final = ord("X")


class Backend:
    """Type bytes of messages sent by the server, as ints."""

    AUTHENTICATION: Final = ord("R")
    BACKEND_KEY_DATA: Final = ord("K")
    BIND_COMPLETE: Final = ord("2")
    CLOSE_COMPLETE: Final = ord("3")
    COMMAND_COMPLETE: Final = ord("C")
    COPY_BOTH_RESPONSE: Final = ord("W")
    COPY_DATA: Final = ord("d")
    COPY_DONE: Final = ord("c")
    COPY_IN_RESPONSE: Final = ord("G")
    COPY_OUT_RESPONSE: Final = ord("H")
    DATA_ROW: Final = ord("D")
    EMPTY_QUERY_RESPONSE: Final = ord("I")
    ERROR_RESPONSE: Final = ord("E")
    FUNCTION_CALL_RESPONSE: Final = ord("V")
    NEGOTIATE_PROTOCOL_VERSION: Final = ord("v")
    NO_DATA: Final = ord("n")
    NOTICE_RESPONSE: Final = ord("N")
    NOTIFICATION_RESPONSE: Final = ord("A")
    PARAMETER_DESCRIPTION: Final = ord("t")
    PARAMETER_STATUS: Final = ord("S")
    PARSE_COMPLETE: Final = ord("1")
    PORTAL_SUSPENDED: Final = ord("s")
    READY_FOR_QUERY: Final = ord("Z")
    ROW_DESCRIPTION: Final = ord("T")


class Auth:
    """Codes of the AuthenticationRequest ('R') variants."""

    OK: Final = 0
    KERBEROS_V5: Final = 2
    CLEARTEXT_PASSWORD: Final = 3
    MD5_PASSWORD: Final = 5
    GSS: Final = 7
    GSS_CONTINUE: Final = 8
    SSPI: Final = 9
    SASL: Final = 10
    SASL_CONTINUE: Final = 11
    SASL_FINAL: Final = 12


#: StartupMessage codes: major << 16 | minor.
PROTOCOL_3_0: Final = 3 << 16
PROTOCOL_3_2: Final = 3 << 16 | 2
#: Codes of the special startup packets (major 1234, "impossible" versions).
CANCEL_REQUEST_CODE: Final = 1234 << 16 | 5678
SSL_REQUEST_CODE: Final = 1234 << 16 | 5679
GSSENC_REQUEST_CODE: Final = 1234 << 16 | 5680

_MIN_CANCEL_KEY: Final = 4
_MAX_CANCEL_KEY: Final = 256

_i16 = struct.Struct("!h")
_u16 = struct.Struct("!H")
_i32 = struct.Struct("!i")
_u32 = struct.Struct("!I")
_FIELD = struct.Struct("!IhIhih")  # RowDescription entry after the name
_pack_i16 = _i16.pack
_pack_u16 = _u16.pack
_pack_i32 = _i32.pack
_pack_u32 = _u32.pack
_NULL_LEN = _pack_i32(-1)


# ---------------------------------------------------------------------------
# Parsing helpers
# ---------------------------------------------------------------------------


class _Cursor:
    """Bounds-checked reader over one message body.

    ``what`` names the message in every error so the client learns which of
    its messages was rejected.
    """

    __slots__ = ("buf", "pos", "what", "encoding")

    def __init__(self, body: bytes | bytearray | memoryview, what: str, encoding: str) -> None:
        self.buf = body if type(body) is bytes else bytes(body)
        self.pos = 0
        self.what = what
        self.encoding = encoding

    def fail(self, problem: str) -> ProtocolError:
        return ProtocolError(f"invalid {self.what} message: {problem}")

    def _fixed(self, st: struct.Struct, field: str) -> int:
        pos = self.pos
        if pos + st.size > len(self.buf):
            raise self.fail(f"truncated {field}")
        self.pos = pos + st.size
        return st.unpack_from(self.buf, pos)[0]

    def int16(self, field: str) -> int:
        return self._fixed(_i16, field)

    def uint16(self, field: str) -> int:
        return self._fixed(_u16, field)

    def int32(self, field: str) -> int:
        return self._fixed(_i32, field)

    def uint32(self, field: str) -> int:
        return self._fixed(_u32, field)

    def byte(self, field: str) -> int:
        if self.pos >= len(self.buf):
            raise self.fail(f"truncated {field}")
        self.pos += 1
        return self.buf[self.pos - 1]

    def take(self, n: int, field: str) -> bytes:
        pos = self.pos
        if n > len(self.buf) - pos:
            raise self.fail(f"{field} of {n} bytes overruns the message")
        self.pos = pos + n
        return self.buf[pos : pos + n]

    def cstring_bytes(self, field: str) -> bytes:
        pos = self.pos
        end = self.buf.find(b"\0", pos)
        if end < 0:
            raise self.fail(f"{field} is not NUL-terminated")
        self.pos = end + 1
        return self.buf[pos:end]

    def cstring(self, field: str) -> str:
        return self.decode(self.cstring_bytes(field), field)

    def decode(self, raw: bytes, field: str) -> str:
        try:
            return raw.decode(self.encoding)
        except UnicodeDecodeError as exc:
            raise self.fail(f"{field} is not valid {self.encoding}: {exc.reason}") from None

    def value(self, field: str) -> bytes | None:
        """An int32 length (-1 for NULL) followed by that many bytes."""
        n = self.int32(f"{field} length")
        if n == -1:
            return None
        if n < 0:
            raise self.fail(f"negative {field} length {n}")
        return self.take(n, field)

    def count(self, per_item: int, field: str) -> int:
        """An int16 count, checked against the bytes left so that a hostile
        count cannot make the caller loop or allocate beyond the body."""
        n = self.uint16(field)
        if n * per_item > len(self.buf) - self.pos:
            raise self.fail(f"{field} {n} is larger than the message")
        return n

    def int16s(self, n: int, field: str) -> tuple[int, ...]:
        return struct.unpack(f"!{n}h", self.take(2 * n, field))

    def rest(self) -> bytes:
        pos = self.pos
        self.pos = len(self.buf)
        return self.buf[pos:]

    def end(self) -> None:
        if self.pos != len(self.buf):
            raise self.fail(f"{len(self.buf) - self.pos} unexpected trailing bytes")


def _cstr(text: str, encoding: str) -> bytes:
    raw = text.encode(encoding)
    if b"\0" in raw:
        raise ValueError(f"string contains a NUL byte: {text!r}")
    return raw + b"\0"


def _count(n: int, what: str) -> bytes:
    if n > 0xFFFF:
        raise ValueError(f"too many {what}: {n} (at most 65535)")
    return _pack_u16(n)


def _value(value: bytes | None) -> bytes:
    return _NULL_LEN if value is None else _pack_i32(len(value)) + value


def _values(values: Sequence[bytes | None]) -> list[bytes]:
    return [_count(len(values), "values"), *map(_value, values)]


def _int16s(values: Sequence[int]) -> bytes:
    return _count(len(values), "codes") + struct.pack(f"!{len(values)}h", *values)


# ---------------------------------------------------------------------------
# Startup phase (untyped packets)
# ---------------------------------------------------------------------------


class StartupMessage(NamedTuple):
    """The first packet of a normal connection."""

    major: int
    minor: int
    #: Every parameter as sent, in order: user, database, options,
    #: application_name, GUCs, and ``_pq_.`` protocol options.
    params: dict[str, str]

    @property
    def protocol_options(self) -> dict[str, str]:
        """The ``_pq_.*`` protocol extension options (the server answers
        unknown ones with NegotiateProtocolVersion)."""
        return {k: v for k, v in self.params.items() if k.startswith("_pq_.")}


class SSLRequest(NamedTuple):
    """Client asks to switch to TLS; answer one byte, b"S" or b"N"."""


class GSSENCRequest(NamedTuple):
    """Client asks for GSSAPI encryption; answer b"G" or b"N"."""


class CancelRequest(NamedTuple):
    """Sent on a fresh connection to cancel the query of another one."""

    pid: int
    #: 4 bytes with protocol 3.0, 4 to 256 with 3.2.
    secret_key: bytes


def parse_startup_packet(
    code: int, payload: bytes, encoding: str = "utf-8"
) -> StartupMessage | SSLRequest | GSSENCRequest | CancelRequest:
    """Parse a packet from :meth:`MessageReader.next_startup`.

    The major version is not checked here (the session decides what it
    supports); unknown special request codes (major 1234) are rejected.
    """
    if code in (SSL_REQUEST_CODE, GSSENC_REQUEST_CODE):
        if payload:
            raise ProtocolError("invalid length of startup packet")
        return SSLRequest() if code == SSL_REQUEST_CODE else GSSENCRequest()
    if code == CANCEL_REQUEST_CODE:
        key_len = len(payload) - 4
        if not _MIN_CANCEL_KEY <= key_len <= _MAX_CANCEL_KEY:
            raise ProtocolError("invalid length of cancel request packet")
        return CancelRequest(_i32.unpack_from(payload)[0], bytes(payload[4:]))
    major, minor = code >> 16, code & 0xFFFF
    if major == 1234:
        raise ProtocolError(f"unsupported special startup request code {minor}")
    cur = _Cursor(payload, "startup packet", encoding)
    params: dict[str, str] = {}
    while True:
        name = cur.cstring("parameter name")
        if not name:
            break
        if name in params:
            # The server would keep the last one; refusing keeps what the
            # proxy sees and what the server acts on from ever differing.
            raise cur.fail(f"parameter {name!r} given twice")
        params[name] = cur.cstring(f"value of parameter {name!r}")
    cur.end()
    return StartupMessage(major, minor, params)


def startup_message(
    params: Mapping[str, str], major: int = 3, minor: int = 0, encoding: str = "utf-8"
) -> bytes:
    """Build a StartupMessage for protocol ``major.minor``."""
    body = b"".join(_cstr(k, encoding) + _cstr(v, encoding) for k, v in params.items())
    return _pack_i32(len(body) + 9) + _pack_u32(major << 16 | minor) + body + b"\0"


#: The whole SSLRequest and GSSENCRequest packets.
SSL_REQUEST: Final = _pack_i32(8) + _pack_u32(SSL_REQUEST_CODE)
GSSENC_REQUEST: Final = _pack_i32(8) + _pack_u32(GSSENC_REQUEST_CODE)


def cancel_request(pid: int, secret_key: bytes) -> bytes:
    """Build a CancelRequest packet."""
    if not _MIN_CANCEL_KEY <= len(secret_key) <= _MAX_CANCEL_KEY:
        raise ValueError("a cancel key is 4 to 256 bytes")
    return (
        _pack_i32(12 + len(secret_key)) + _pack_u32(CANCEL_REQUEST_CODE)
        + _pack_i32(pid) + secret_key
    )  # fmt: skip


# ---------------------------------------------------------------------------
# Backend messages
# ---------------------------------------------------------------------------


class Authentication(NamedTuple):
    """An AuthenticationRequest ('R'); ``code`` is one of :class:`Auth`."""

    code: int
    #: The 4-byte salt of MD5Password.
    salt: bytes = b""
    #: The mechanisms offered by SASL, in server order.
    mechanisms: tuple[str, ...] = ()
    #: The payload of SASLContinue, SASLFinal and GSSContinue.
    data: bytes = b""


_AUTH_BARE = frozenset({Auth.OK, Auth.KERBEROS_V5, Auth.CLEARTEXT_PASSWORD, Auth.GSS, Auth.SSPI})
_AUTH_DATA = frozenset({Auth.GSS_CONTINUE, Auth.SASL_CONTINUE, Auth.SASL_FINAL})


def parse_authentication(body: bytes, encoding: str = "utf-8") -> Authentication:
    """Parse an AuthenticationRequest of any variant."""
    cur = _Cursor(body, "authentication request", encoding)
    code = cur.int32("code")
    if code in _AUTH_BARE:
        cur.end()
        return Authentication(code)
    if code == Auth.MD5_PASSWORD:
        salt = cur.take(4, "salt")
        cur.end()
        return Authentication(code, salt=salt)
    if code == Auth.SASL:
        mechanisms = []
        while name := cur.cstring("mechanism name"):
            mechanisms.append(name)
        cur.end()
        if not mechanisms:
            raise cur.fail("no SASL mechanism offered")
        return Authentication(code, mechanisms=tuple(mechanisms))
    if code in _AUTH_DATA:
        return Authentication(code, data=cur.rest())
    raise cur.fail(f"unknown authentication request code {code}")


def _auth(code: int, payload: bytes = b"") -> bytes:
    return frame(Backend.AUTHENTICATION, _pack_i32(code) + payload)


def auth_ok() -> bytes:
    """AuthenticationOk."""
    return _auth(Auth.OK)


def auth_cleartext_password() -> bytes:
    """AuthenticationCleartextPassword."""
    return _auth(Auth.CLEARTEXT_PASSWORD)


def auth_md5_password(salt: bytes) -> bytes:
    """AuthenticationMD5Password with its 4-byte salt."""
    if len(salt) != 4:
        raise ValueError("the MD5 salt is 4 bytes")
    return _auth(Auth.MD5_PASSWORD, salt)


def auth_sasl(mechanisms: Iterable[str]) -> bytes:
    """AuthenticationSASL offering ``mechanisms`` (e.g. SCRAM-SHA-256)."""
    names = b"".join(_cstr(m, "utf-8") for m in mechanisms)
    if not names:
        raise ValueError("at least one SASL mechanism is needed")
    return _auth(Auth.SASL, names + b"\0")


def auth_sasl_continue(data: bytes) -> bytes:
    """AuthenticationSASLContinue carrying a server SASL message."""
    return _auth(Auth.SASL_CONTINUE, data)


def auth_sasl_final(data: bytes) -> bytes:
    """AuthenticationSASLFinal carrying the server's final SASL message."""
    return _auth(Auth.SASL_FINAL, data)


class ParameterStatus(NamedTuple):
    """A run-time parameter the server reports ('S'), e.g. TimeZone."""

    name: str
    value: str


def parse_parameter_status(body: bytes, encoding: str = "utf-8") -> ParameterStatus:
    """Parse ParameterStatus."""
    cur = _Cursor(body, "parameter status", encoding)
    name = cur.cstring("name")
    value = cur.cstring("value")
    cur.end()
    return ParameterStatus(name, value)


def parameter_status(name: str, value: str, encoding: str = "utf-8") -> bytes:
    """Build ParameterStatus."""
    return frame(Backend.PARAMETER_STATUS, _cstr(name, encoding) + _cstr(value, encoding))


class BackendKeyData(NamedTuple):
    """Cancellation key of a session ('K')."""

    pid: int
    #: 4 bytes with protocol 3.0, 4 to 256 with 3.2.
    secret_key: bytes


def parse_backend_key_data(body: bytes) -> BackendKeyData:
    """Parse BackendKeyData."""
    cur = _Cursor(body, "backend key data", "ascii")
    pid = cur.int32("process id")
    key = cur.rest()
    if not _MIN_CANCEL_KEY <= len(key) <= _MAX_CANCEL_KEY:
        raise cur.fail(f"secret key of {len(key)} bytes (expected 4 to 256)")
    return BackendKeyData(pid, key)


def backend_key_data(pid: int, secret_key: bytes) -> bytes:
    """Build BackendKeyData."""
    if not _MIN_CANCEL_KEY <= len(secret_key) <= _MAX_CANCEL_KEY:
        raise ValueError("a cancel key is 4 to 256 bytes")
    return frame(Backend.BACKEND_KEY_DATA, _pack_i32(pid) + secret_key)


class ReadyForQuery(NamedTuple):
    """End of a request cycle ('Z') with the transaction status."""

    #: 'I' idle, 'T' in a transaction block, 'E' in a failed transaction.
    status: str


READY_FOR_QUERY_IDLE: Final = frame(Backend.READY_FOR_QUERY, b"I")
READY_FOR_QUERY_IN_TRANSACTION: Final = frame(Backend.READY_FOR_QUERY, b"T")
READY_FOR_QUERY_FAILED: Final = frame(Backend.READY_FOR_QUERY, b"E")
_READY = {
    "I": READY_FOR_QUERY_IDLE,
    "T": READY_FOR_QUERY_IN_TRANSACTION,
    "E": READY_FOR_QUERY_FAILED,
}
_READY_STATUS = {ord(k): ReadyForQuery(k) for k in _READY}


def parse_ready_for_query(body: bytes) -> ReadyForQuery:
    """Parse ReadyForQuery."""
    msg = _READY_STATUS.get(body[0]) if len(body) == 1 else None
    if msg is None:
        raise ProtocolError(f"invalid ready for query message: {bytes(body)!r}")
    return msg


def ready_for_query(status: str) -> bytes:
    """Return the prebuilt ReadyForQuery for ``status`` ('I', 'T' or 'E')."""
    try:
        return _READY[status]
    except KeyError:
        raise ValueError(f"invalid transaction status {status!r}") from None


class ErrorResponse(NamedTuple):
    """ErrorResponse ('E'); fields are keyed by their one-letter code."""

    fields: dict[str, str]

    @property
    def severity(self) -> str | None:
        """The non-localized severity (V) if sent, else the localized one (S)."""
        return self.fields.get("V") or self.fields.get("S")

    @property
    def code(self) -> str | None:
        """The SQLSTATE (C)."""
        return self.fields.get("C")

    @property
    def message(self) -> str | None:
        """The primary message (M)."""
        return self.fields.get("M")

    @property
    def detail(self) -> str | None:
        """The detail (D)."""
        return self.fields.get("D")

    @property
    def hint(self) -> str | None:
        """The hint (H)."""
        return self.fields.get("H")


class NoticeResponse(ErrorResponse):
    """NoticeResponse ('N'): same fields as ErrorResponse, not fatal."""

    __slots__ = ()


def _parse_fields(cur: _Cursor) -> dict[str, str]:
    fields: dict[str, str] = {}
    while code := cur.byte("field type"):
        key = chr(code)
        fields[key] = cur.cstring(f"field {key!r}")
    cur.end()
    return fields


def parse_error_response(body: bytes, encoding: str = "utf-8") -> ErrorResponse:
    """Parse ErrorResponse."""
    return ErrorResponse(_parse_fields(_Cursor(body, "error response", encoding)))


def parse_notice_response(body: bytes, encoding: str = "utf-8") -> NoticeResponse:
    """Parse NoticeResponse."""
    return NoticeResponse(_parse_fields(_Cursor(body, "notice response", encoding)))


def _fields_message(
    type_byte: int,
    severity: str,
    code: str,
    message: str,
    detail: str | None,
    hint: str | None,
    encoding: str,
) -> bytes:
    # Messages the proxy writes are not localized, so S and V are the same.
    parts = [b"S", _cstr(severity, encoding), b"V", _cstr(severity, encoding)]
    parts += [b"C", _cstr(code, encoding), b"M", _cstr(message, encoding)]
    if detail is not None:
        parts += [b"D", _cstr(detail, encoding)]
    if hint is not None:
        parts += [b"H", _cstr(hint, encoding)]
    parts.append(b"\0")
    return frame(type_byte, b"".join(parts))


def error_response(
    severity: str,
    code: str,
    message: str,
    detail: str | None = None,
    hint: str | None = None,
    encoding: str = "utf-8",
) -> bytes:
    """Build ErrorResponse, e.g. ``error_response("FATAL", "08P01", "...")``."""
    return _fields_message(Backend.ERROR_RESPONSE, severity, code, message, detail, hint, encoding)


def notice_response(
    severity: str,
    code: str,
    message: str,
    detail: str | None = None,
    hint: str | None = None,
    encoding: str = "utf-8",
) -> bytes:
    """Build NoticeResponse, e.g. ``notice_response("WARNING", "01000", "...")``."""
    return _fields_message(Backend.NOTICE_RESPONSE, severity, code, message, detail, hint, encoding)


class NegotiateProtocolVersion(NamedTuple):
    """The server's answer ('v') to a newer minor version or unknown
    ``_pq_.`` options in the StartupMessage."""

    newest_minor: int
    unsupported_options: tuple[str, ...]


def parse_negotiate_protocol_version(
    body: bytes, encoding: str = "utf-8"
) -> NegotiateProtocolVersion:
    """Parse NegotiateProtocolVersion."""
    cur = _Cursor(body, "negotiate protocol version", encoding)
    minor = cur.int32("minor version")
    n = cur.int32("option count")
    if n < 0 or n > len(cur.buf) - cur.pos:  # every name takes at least its NUL
        raise cur.fail(f"option count {n} does not fit the message")
    options = tuple(cur.cstring("option name") for _ in range(n))
    cur.end()
    return NegotiateProtocolVersion(minor, options)


def negotiate_protocol_version(
    newest_minor: int, unsupported_options: Sequence[str] = (), encoding: str = "utf-8"
) -> bytes:
    """Build NegotiateProtocolVersion."""
    names = b"".join(_cstr(o, encoding) for o in unsupported_options)
    return frame(
        Backend.NEGOTIATE_PROTOCOL_VERSION,
        _pack_i32(newest_minor) + _pack_i32(len(unsupported_options)) + names,
    )


class CommandComplete(NamedTuple):
    """CommandComplete ('C'): the command tag, e.g. "SELECT 1", "INSERT 0 3"."""

    tag: str


def parse_command_complete(body: bytes, encoding: str = "utf-8") -> CommandComplete:
    """Parse CommandComplete."""
    cur = _Cursor(body, "command complete", encoding)
    tag = cur.cstring("tag")
    cur.end()
    return CommandComplete(tag)


def command_complete(tag: str) -> bytes:
    """Build CommandComplete (tags are ASCII)."""
    return frame(Backend.COMMAND_COMPLETE, _cstr(tag, "ascii"))


class FieldDescription(NamedTuple):
    """One column of a RowDescription."""

    name: str
    table_oid: int
    column_number: int
    type_oid: int
    type_size: int
    type_modifier: int
    format: int


class RowDescription(NamedTuple):
    """RowDescription ('T')."""

    fields: tuple[FieldDescription, ...]


def parse_row_description(body: bytes, encoding: str = "utf-8") -> RowDescription:
    """Parse RowDescription."""
    cur = _Cursor(body, "row description", encoding)
    n = cur.count(1 + _FIELD.size, "field count")
    unpack = _FIELD.unpack
    fields = tuple(
        FieldDescription(cur.cstring("field name"), *unpack(cur.take(_FIELD.size, "field")))
        for _ in range(n)
    )
    cur.end()
    return RowDescription(fields)


def row_description(fields: Sequence[FieldDescription], encoding: str = "utf-8") -> bytes:
    """Build RowDescription."""
    parts = [_count(len(fields), "fields")]
    for f in fields:
        parts.append(_cstr(f.name, encoding))
        parts.append(_FIELD.pack(*f[1:]))
    return frame(Backend.ROW_DESCRIPTION, b"".join(parts))


class DataRow(NamedTuple):
    """DataRow ('D'): one row's column values, None for NULL."""

    values: tuple[bytes | None, ...]


def parse_data_row(body: bytes) -> DataRow:
    """Parse DataRow."""
    cur = _Cursor(body, "data row", "ascii")
    n = cur.count(4, "column count")
    values = tuple(cur.value("column value") for _ in range(n))
    cur.end()
    return DataRow(values)


def data_row(values: Sequence[bytes | None]) -> bytes:
    """Build DataRow."""
    return frame(Backend.DATA_ROW, b"".join(_values(values)))


class ParameterDescription(NamedTuple):
    """ParameterDescription ('t'): the type OIDs of a statement's parameters."""

    type_oids: tuple[int, ...]


def parse_parameter_description(body: bytes) -> ParameterDescription:
    """Parse ParameterDescription."""
    cur = _Cursor(body, "parameter description", "ascii")
    n = cur.count(4, "parameter count")
    oids = struct.unpack(f"!{n}I", cur.take(4 * n, "type OIDs"))
    cur.end()
    return ParameterDescription(oids)


def parameter_description(type_oids: Sequence[int]) -> bytes:
    """Build ParameterDescription."""
    n = len(type_oids)
    return frame(
        Backend.PARAMETER_DESCRIPTION,
        _count(n, "parameters") + struct.pack(f"!{n}I", *type_oids),
    )


class CopyResponse(NamedTuple):
    """CopyInResponse ('G'), CopyOutResponse ('H') or CopyBothResponse ('W')."""

    #: 0 text, 1 binary.
    overall_format: int
    column_formats: tuple[int, ...]


def parse_copy_response(body: bytes) -> CopyResponse:
    """Parse any of the three Copy*Response messages (same layout)."""
    cur = _Cursor(body, "copy response", "ascii")
    overall = cur.byte("overall format")
    n = cur.count(2, "column count")
    formats = cur.int16s(n, "column formats")
    cur.end()
    return CopyResponse(overall, formats)


def _copy_response(type_byte: int, overall_format: int, column_formats: Sequence[int]) -> bytes:
    return frame(type_byte, bytes((overall_format,)) + _int16s(column_formats))


def copy_in_response(overall_format: int, column_formats: Sequence[int]) -> bytes:
    """Build CopyInResponse."""
    return _copy_response(Backend.COPY_IN_RESPONSE, overall_format, column_formats)


def copy_out_response(overall_format: int, column_formats: Sequence[int]) -> bytes:
    """Build CopyOutResponse."""
    return _copy_response(Backend.COPY_OUT_RESPONSE, overall_format, column_formats)


def copy_both_response(overall_format: int, column_formats: Sequence[int]) -> bytes:
    """Build CopyBothResponse."""
    return _copy_response(Backend.COPY_BOTH_RESPONSE, overall_format, column_formats)


class CopyData(NamedTuple):
    """CopyData ('d', either direction): an opaque slice of the COPY stream."""

    data: bytes


def parse_copy_data(body: bytes) -> CopyData:
    """Parse CopyData (the whole body is data)."""
    return CopyData(bytes(body))


def copy_data(data: bytes) -> bytes:
    """Build CopyData (same type byte in both directions)."""
    return frame(Backend.COPY_DATA, data)


class NotificationResponse(NamedTuple):
    """NotificationResponse ('A'): a NOTIFY delivered to this session."""

    pid: int
    channel: str
    payload: str


def parse_notification_response(body: bytes, encoding: str = "utf-8") -> NotificationResponse:
    """Parse NotificationResponse."""
    cur = _Cursor(body, "notification response", encoding)
    pid = cur.int32("process id")
    channel = cur.cstring("channel")
    payload = cur.cstring("payload")
    cur.end()
    return NotificationResponse(pid, channel, payload)


def notification_response(pid: int, channel: str, payload: str, encoding: str = "utf-8") -> bytes:
    """Build NotificationResponse."""
    return frame(
        Backend.NOTIFICATION_RESPONSE,
        _pack_i32(pid) + _cstr(channel, encoding) + _cstr(payload, encoding),
    )


class FunctionCallResponse(NamedTuple):
    """FunctionCallResponse ('V'): the result of a FunctionCall, None for NULL."""

    result: bytes | None


def parse_function_call_response(body: bytes) -> FunctionCallResponse:
    """Parse FunctionCallResponse."""
    cur = _Cursor(body, "function call response", "ascii")
    result = cur.value("result")
    cur.end()
    return FunctionCallResponse(result)


def function_call_response(result: bytes | None) -> bytes:
    """Build FunctionCallResponse."""
    return frame(Backend.FUNCTION_CALL_RESPONSE, _value(result))


def parse_empty(body: bytes) -> None:
    """Check the body of a message that has none (ParseComplete, Sync, …)."""
    if body:
        raise ProtocolError(f"invalid message: {len(body)} unexpected bytes in an empty message")


EMPTY_QUERY_RESPONSE: Final = frame(Backend.EMPTY_QUERY_RESPONSE, b"")
PARSE_COMPLETE: Final = frame(Backend.PARSE_COMPLETE, b"")
BIND_COMPLETE: Final = frame(Backend.BIND_COMPLETE, b"")
CLOSE_COMPLETE: Final = frame(Backend.CLOSE_COMPLETE, b"")
NO_DATA: Final = frame(Backend.NO_DATA, b"")
PORTAL_SUSPENDED: Final = frame(Backend.PORTAL_SUSPENDED, b"")
#: CopyDone, identical in both directions.
COPY_DONE: Final = frame(Backend.COPY_DONE, b"")


# ---------------------------------------------------------------------------
# Frontend messages
# ---------------------------------------------------------------------------


class Query(NamedTuple):
    """Simple query ('Q'): one or more SQL statements as text."""

    sql: str


def parse_query(body: bytes, encoding: str = "utf-8") -> Query:
    """Parse Query (the body is exactly one NUL-terminated string)."""
    # Fast path: a cache hit starts here, so skip the cursor when well formed.
    if type(body) is bytes and body.find(b"\0") == len(body) - 1 >= 0:
        try:
            return Query(body[:-1].decode(encoding))
        except UnicodeDecodeError:
            pass  # the cursor below reports it
    cur = _Cursor(body, "query", encoding)
    sql = cur.cstring("query string")
    cur.end()
    return Query(sql)


def query(sql: str, encoding: str = "utf-8") -> bytes:
    """Build Query."""
    return frame(Frontend.QUERY, _cstr(sql, encoding))


class Parse(NamedTuple):
    """Parse ('P'): prepare ``query`` as statement ``name`` ("" is unnamed)."""

    name: str
    query: str
    #: Parameter type OIDs the client fixes (0 = let the server infer).
    param_types: tuple[int, ...]


def parse_parse(body: bytes, encoding: str = "utf-8") -> Parse:
    """Parse a Parse message."""
    cur = _Cursor(body, "parse", encoding)
    name = cur.cstring("statement name")
    sql = cur.cstring("query string")
    n = cur.count(4, "parameter type count")
    oids = struct.unpack(f"!{n}I", cur.take(4 * n, "parameter types"))
    cur.end()
    return Parse(name, sql, oids)


def prepare(name: str, sql: str, param_types: Sequence[int] = (), encoding: str = "utf-8") -> bytes:
    """Build a Parse ('P') message, which prepares statement ``name``."""
    n = len(param_types)
    return frame(
        Frontend.PARSE,
        _cstr(name, encoding) + _cstr(sql, encoding)
        + _count(n, "parameter types") + struct.pack(f"!{n}I", *param_types),
    )  # fmt: skip


class Bind(NamedTuple):
    """Bind ('B'): make a portal from a prepared statement and values."""

    portal: str
    statement: str
    #: Empty (all text), one code (for all) or one per parameter; 0 text, 1 binary.
    param_formats: tuple[int, ...]
    #: Parameter values as sent, None for NULL.
    params: tuple[bytes | None, ...]
    #: Same convention as param_formats, for the result columns.
    result_formats: tuple[int, ...]


def parse_bind(body: bytes, encoding: str = "utf-8") -> Bind:
    """Parse Bind."""
    cur = _Cursor(body, "bind", encoding)
    portal = cur.cstring("portal name")
    statement = cur.cstring("statement name")
    param_formats = cur.int16s(cur.count(2, "parameter format count"), "parameter formats")
    params = tuple(cur.value("parameter") for _ in range(cur.count(4, "parameter count")))
    result_formats = cur.int16s(cur.count(2, "result format count"), "result formats")
    cur.end()
    if len(param_formats) > 1 and len(param_formats) != len(params):
        raise cur.fail(f"{len(param_formats)} parameter formats for {len(params)} parameters")
    return Bind(portal, statement, param_formats, params, result_formats)


def bind(
    portal: str,
    statement: str,
    param_formats: Sequence[int],
    params: Sequence[bytes | None],
    result_formats: Sequence[int],
    encoding: str = "utf-8",
) -> bytes:
    """Build Bind."""
    parts = [_cstr(portal, encoding), _cstr(statement, encoding), _int16s(param_formats)]
    parts += _values(params)
    parts.append(_int16s(result_formats))
    return frame(Frontend.BIND, b"".join(parts))


class Describe(NamedTuple):
    """Describe ('D') a prepared statement ('S') or a portal ('P')."""

    target: str
    name: str


class Close(NamedTuple):
    """Close ('C') a prepared statement ('S') or a portal ('P')."""

    target: str
    name: str


def _parse_target(cur: _Cursor) -> tuple[str, str]:
    target = cur.byte("target")
    if target not in (0x53, 0x50):  # 'S', 'P'
        raise cur.fail(f"target {chr(target)!r} is neither 'S' nor 'P'")
    name = cur.cstring("name")
    cur.end()
    return chr(target), name


def parse_describe(body: bytes, encoding: str = "utf-8") -> Describe:
    """Parse Describe."""
    return Describe(*_parse_target(_Cursor(body, "describe", encoding)))


def parse_close(body: bytes, encoding: str = "utf-8") -> Close:
    """Parse Close."""
    return Close(*_parse_target(_Cursor(body, "close", encoding)))


def _target(type_byte: int, target: str, name: str, encoding: str) -> bytes:
    if target not in ("S", "P"):
        raise ValueError(f"target must be 'S' or 'P', not {target!r}")
    return frame(type_byte, target.encode() + _cstr(name, encoding))


def describe(target: str, name: str, encoding: str = "utf-8") -> bytes:
    """Build Describe; ``target`` is 'S' (statement) or 'P' (portal)."""
    return _target(Frontend.DESCRIBE, target, name, encoding)


def close(target: str, name: str, encoding: str = "utf-8") -> bytes:
    """Build Close; ``target`` is 'S' (statement) or 'P' (portal)."""
    return _target(Frontend.CLOSE, target, name, encoding)


class Execute(NamedTuple):
    """Execute ('E') a portal, returning at most ``max_rows`` (0 = all)."""

    portal: str
    max_rows: int


def parse_execute(body: bytes, encoding: str = "utf-8") -> Execute:
    """Parse Execute."""
    cur = _Cursor(body, "execute", encoding)
    portal = cur.cstring("portal name")
    max_rows = cur.int32("row limit")
    cur.end()
    return Execute(portal, max_rows)


def execute(portal: str = "", max_rows: int = 0, encoding: str = "utf-8") -> bytes:
    """Build Execute."""
    return frame(Frontend.EXECUTE, _cstr(portal, encoding) + _pack_i32(max_rows))


class PasswordMessage(NamedTuple):
    """PasswordMessage ('p') answering a cleartext or MD5 request.

    Kept as bytes: the proxy only passes it on, and the server compares
    bytes, whatever the client's encoding.
    """

    password: bytes


def parse_password_message(body: bytes) -> PasswordMessage:
    """Parse PasswordMessage."""
    cur = _Cursor(body, "password", "ascii")
    password = cur.cstring_bytes("password")
    cur.end()
    return PasswordMessage(password)


def password_message(password: bytes) -> bytes:
    """Build PasswordMessage."""
    if b"\0" in password:
        raise ValueError("a password cannot contain a NUL byte")
    return frame(Frontend.PASSWORD, password + b"\0")


class SASLInitialResponse(NamedTuple):
    """SASLInitialResponse ('p'): the chosen mechanism and first message."""

    mechanism: str
    #: The client-first-message; None if the client sent none (length -1).
    data: bytes | None


def parse_sasl_initial_response(body: bytes) -> SASLInitialResponse:
    """Parse SASLInitialResponse."""
    cur = _Cursor(body, "SASL initial response", "ascii")
    mechanism = cur.cstring("mechanism")
    data = cur.value("initial response")
    cur.end()
    return SASLInitialResponse(mechanism, data)


def sasl_initial_response(mechanism: str, data: bytes | None) -> bytes:
    """Build SASLInitialResponse."""
    return frame(Frontend.PASSWORD, _cstr(mechanism, "ascii") + _value(data))


class SASLResponse(NamedTuple):
    """SASLResponse ('p'): a later SASL message, e.g. SCRAM client-final."""

    data: bytes


def parse_sasl_response(body: bytes) -> SASLResponse:
    """Parse SASLResponse (the whole body is data)."""
    return SASLResponse(bytes(body))


def sasl_response(data: bytes) -> bytes:
    """Build SASLResponse."""
    return frame(Frontend.PASSWORD, data)


class Gs2Header(NamedTuple):
    """The GS2 header that starts a SCRAM client-first-message (RFC 5802).

    The proxy needs ``flag``: with 'p' the client binds the exchange to the
    TLS channel it sees (which ends at the proxy), so SCRAM cannot simply be
    passed through to the origin.
    """

    #: 'n' no channel binding, 'y' client supports it but thinks the server
    #: does not, 'p' channel binding required.
    flag: str
    #: The channel binding type with 'p' (e.g. "tls-server-end-point").
    channel_binding: str | None
    #: The authorization identity ("a=..."), None when absent.
    authzid: str | None
    #: Everything after the header ("n=user,r=nonce…").
    client_first_bare: bytes


def parse_gs2_header(client_first: bytes) -> Gs2Header:
    """Split a SCRAM client-first-message into its GS2 header and the rest."""
    first = client_first.find(b",")
    second = client_first.find(b",", first + 1) if first >= 0 else -1
    if second < 0:
        raise ProtocolError("malformed SCRAM client-first-message: no GS2 header")
    try:
        cbind = client_first[:first].decode("ascii")
        authzid = client_first[first + 1 : second].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("malformed SCRAM client-first-message: bad GS2 header") from None
    if cbind in ("n", "y"):
        flag, cb_name = cbind, None
    elif cbind.startswith("p=") and len(cbind) > 2:
        flag, cb_name = "p", cbind[2:]
    else:
        raise ProtocolError(f"malformed SCRAM client-first-message: channel binding {cbind!r}")
    if authzid and not authzid.startswith("a="):
        raise ProtocolError("malformed SCRAM client-first-message: bad authorization identity")
    return Gs2Header(flag, cb_name, authzid[2:] if authzid else None, client_first[second + 1 :])


class CopyFail(NamedTuple):
    """CopyFail ('f'): the client aborts COPY FROM STDIN with a message."""

    message: str


def parse_copy_fail(body: bytes, encoding: str = "utf-8") -> CopyFail:
    """Parse CopyFail."""
    cur = _Cursor(body, "copy fail", encoding)
    message = cur.cstring("error message")
    cur.end()
    return CopyFail(message)


def copy_fail(message: str, encoding: str = "utf-8") -> bytes:
    """Build CopyFail."""
    return frame(Frontend.COPY_FAIL, _cstr(message, encoding))


class FunctionCall(NamedTuple):
    """FunctionCall ('F'): the legacy fast-path call of a function by OID."""

    function_oid: int
    arg_formats: tuple[int, ...]
    args: tuple[bytes | None, ...]
    result_format: int


def parse_function_call(body: bytes) -> FunctionCall:
    """Parse FunctionCall."""
    cur = _Cursor(body, "function call", "ascii")
    oid = cur.uint32("function OID")
    arg_formats = cur.int16s(cur.count(2, "argument format count"), "argument formats")
    args = tuple(cur.value("argument") for _ in range(cur.count(4, "argument count")))
    result_format = cur.int16("result format")
    cur.end()
    return FunctionCall(oid, arg_formats, args, result_format)


def function_call(
    function_oid: int,
    arg_formats: Sequence[int],
    args: Sequence[bytes | None],
    result_format: int,
) -> bytes:
    """Build FunctionCall."""
    parts = [_pack_u32(function_oid), _int16s(arg_formats), *_values(args)]
    parts.append(_pack_i16(result_format))
    return frame(Frontend.FUNCTION_CALL, b"".join(parts))


SYNC: Final = frame(Frontend.SYNC, b"")
FLUSH: Final = frame(Frontend.FLUSH, b"")
TERMINATE: Final = frame(Frontend.TERMINATE, b"")


# ---------------------------------------------------------------------------
# Dispatch by type byte
# ---------------------------------------------------------------------------

_Parser = Callable[[bytes, str], Any]


def _no_text(parser: Callable[[bytes], Any]) -> _Parser:
    return lambda body, _encoding: parser(body)


_FRONTEND: dict[int, _Parser] = {
    Frontend.BIND: parse_bind,
    Frontend.CLOSE: parse_close,
    Frontend.COPY_DATA: _no_text(parse_copy_data),
    Frontend.COPY_DONE: _no_text(parse_empty),
    Frontend.COPY_FAIL: parse_copy_fail,
    Frontend.DESCRIBE: parse_describe,
    Frontend.EXECUTE: parse_execute,
    Frontend.FLUSH: _no_text(parse_empty),
    Frontend.FUNCTION_CALL: _no_text(parse_function_call),
    Frontend.PARSE: parse_parse,
    Frontend.QUERY: parse_query,
    Frontend.SYNC: _no_text(parse_empty),
    Frontend.TERMINATE: _no_text(parse_empty),
}

_BACKEND: dict[int, _Parser] = {
    Backend.AUTHENTICATION: parse_authentication,
    Backend.BACKEND_KEY_DATA: _no_text(parse_backend_key_data),
    Backend.BIND_COMPLETE: _no_text(parse_empty),
    Backend.CLOSE_COMPLETE: _no_text(parse_empty),
    Backend.COMMAND_COMPLETE: parse_command_complete,
    Backend.COPY_BOTH_RESPONSE: _no_text(parse_copy_response),
    Backend.COPY_DATA: _no_text(parse_copy_data),
    Backend.COPY_DONE: _no_text(parse_empty),
    Backend.COPY_IN_RESPONSE: _no_text(parse_copy_response),
    Backend.COPY_OUT_RESPONSE: _no_text(parse_copy_response),
    Backend.DATA_ROW: _no_text(parse_data_row),
    Backend.EMPTY_QUERY_RESPONSE: _no_text(parse_empty),
    Backend.ERROR_RESPONSE: parse_error_response,
    Backend.FUNCTION_CALL_RESPONSE: _no_text(parse_function_call_response),
    Backend.NEGOTIATE_PROTOCOL_VERSION: parse_negotiate_protocol_version,
    Backend.NO_DATA: _no_text(parse_empty),
    Backend.NOTICE_RESPONSE: parse_notice_response,
    Backend.NOTIFICATION_RESPONSE: parse_notification_response,
    Backend.PARAMETER_DESCRIPTION: _no_text(parse_parameter_description),
    Backend.PARAMETER_STATUS: parse_parameter_status,
    Backend.PARSE_COMPLETE: _no_text(parse_empty),
    Backend.PORTAL_SUSPENDED: _no_text(parse_empty),
    Backend.READY_FOR_QUERY: _no_text(parse_ready_for_query),
    Backend.ROW_DESCRIPTION: parse_row_description,
}


def parse_frontend(type_byte: int, body: bytes, encoding: str = "utf-8") -> Any:
    """Parse any client message after startup; None for body-less ones.

    'p' is not accepted: whether it is a PasswordMessage or a SASL message
    depends on the authentication request it answers, so the auth code calls
    the specific parser, and a 'p' anywhere else is a protocol violation.
    """
    parser = _FRONTEND.get(type_byte)
    if parser is None:
        raise ProtocolError(f"invalid frontend message type {type_byte}")
    return parser(body, encoding)


def parse_backend(type_byte: int, body: bytes, encoding: str = "utf-8") -> Any:
    """Parse any server message after startup; None for body-less ones."""
    parser = _BACKEND.get(type_byte)
    if parser is None:
        raise ProtocolError(f"invalid backend message type {type_byte}")
    return parser(body, encoding)
