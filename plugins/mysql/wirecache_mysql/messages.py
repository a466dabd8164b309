"""Typed MySQL/MariaDB protocol messages: parse payloads, build payloads.

Everything here works on logical payloads (see `packets`) and never touches a
socket.  Parsers raise `ProtocolError` on any malformed input, so a relay can
answer a hostile client with an ERR packet and close only that connection.

Builders of the connection-phase messages re-emit the origin's bytes exactly
when no field was changed: the proxy rewrites capability flags and user names
and must not disturb anything it does not understand.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

from .packets import MAX_PACKET_PAYLOAD, ProtocolError, build_packet

# --- capability flags (HandshakeV10 / HandshakeResponse41) -------------------
CLIENT_LONG_PASSWORD = 1 << 0  # MariaDB calls this CLIENT_MYSQL
CLIENT_MYSQL = CLIENT_LONG_PASSWORD
CLIENT_FOUND_ROWS = 1 << 1
CLIENT_LONG_FLAG = 1 << 2
CLIENT_CONNECT_WITH_DB = 1 << 3
CLIENT_NO_SCHEMA = 1 << 4
CLIENT_COMPRESS = 1 << 5
CLIENT_ODBC = 1 << 6
CLIENT_LOCAL_FILES = 1 << 7
CLIENT_IGNORE_SPACE = 1 << 8
CLIENT_PROTOCOL_41 = 1 << 9
CLIENT_INTERACTIVE = 1 << 10
CLIENT_SSL = 1 << 11
CLIENT_IGNORE_SIGPIPE = 1 << 12
CLIENT_TRANSACTIONS = 1 << 13
CLIENT_RESERVED = 1 << 14
CLIENT_SECURE_CONNECTION = 1 << 15
CLIENT_MULTI_STATEMENTS = 1 << 16
CLIENT_MULTI_RESULTS = 1 << 17
CLIENT_PS_MULTI_RESULTS = 1 << 18
CLIENT_PLUGIN_AUTH = 1 << 19
CLIENT_CONNECT_ATTRS = 1 << 20
CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 1 << 21
CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS = 1 << 22
CLIENT_SESSION_TRACK = 1 << 23
CLIENT_DEPRECATE_EOF = 1 << 24
CLIENT_OPTIONAL_RESULTSET_METADATA = 1 << 25
CLIENT_ZSTD_COMPRESSION_ALGORITHM = 1 << 26
CLIENT_QUERY_ATTRIBUTES = 1 << 27
CLIENT_MULTI_FACTOR_AUTHENTICATION = 1 << 28
CLIENT_CAPABILITY_EXTENSION = 1 << 29
CLIENT_SSL_VERIFY_SERVER_CERT = 1 << 30
CLIENT_REMEMBER_OPTIONS = 1 << 31

# MariaDB extended capabilities: the 4 bytes at the end of the handshake filler,
# present only when the CLIENT_MYSQL bit is clear.  The values are the bits of
# that 4-byte field as on the wire (MariaDB's sources number them from bit 32).
MARIADB_CLIENT_PROGRESS = 1 << 0
MARIADB_CLIENT_COM_MULTI = 1 << 1
MARIADB_CLIENT_STMT_BULK_OPERATIONS = 1 << 2
MARIADB_CLIENT_EXTENDED_METADATA = 1 << 3
MARIADB_CLIENT_CACHE_METADATA = 1 << 4
MARIADB_CLIENT_BULK_UNIT_RESULTS = 1 << 5

# --- server status flags -----------------------------------------------------
SERVER_STATUS_IN_TRANS = 0x0001
SERVER_STATUS_AUTOCOMMIT = 0x0002
SERVER_MORE_RESULTS_EXISTS = 0x0008
SERVER_QUERY_NO_GOOD_INDEX_USED = 0x0010
SERVER_QUERY_NO_INDEX_USED = 0x0020
SERVER_STATUS_CURSOR_EXISTS = 0x0040
SERVER_STATUS_LAST_ROW_SENT = 0x0080
SERVER_STATUS_DB_DROPPED = 0x0100
SERVER_STATUS_NO_BACKSLASH_ESCAPES = 0x0200
SERVER_STATUS_METADATA_CHANGED = 0x0400
SERVER_QUERY_WAS_SLOW = 0x0800
SERVER_PS_OUT_PARAMS = 0x1000
SERVER_STATUS_IN_TRANS_READONLY = 0x2000
SERVER_SESSION_STATE_CHANGED = 0x4000

# --- command bytes -----------------------------------------------------------
COM_SLEEP = 0x00
COM_QUIT = 0x01
COM_INIT_DB = 0x02
COM_QUERY = 0x03
COM_FIELD_LIST = 0x04
COM_STATISTICS = 0x09
COM_PROCESS_KILL = 0x0C
COM_DEBUG = 0x0D
COM_PING = 0x0E
COM_CHANGE_USER = 0x11
COM_BINLOG_DUMP = 0x12
COM_STMT_PREPARE = 0x16
COM_STMT_EXECUTE = 0x17
COM_STMT_SEND_LONG_DATA = 0x18
COM_STMT_CLOSE = 0x19
COM_STMT_RESET = 0x1A
COM_SET_OPTION = 0x1B
COM_STMT_FETCH = 0x1C
COM_RESET_CONNECTION = 0x1F
COM_STMT_BULK_EXECUTE = 0xFA  # MariaDB

#: Commands after which the server sends nothing at all.
NO_RESPONSE_COMMANDS = frozenset({COM_QUIT, COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE})

# --- response headers --------------------------------------------------------
OK_HEADER = 0x00
AUTH_MORE_DATA_HEADER = 0x01
LOCAL_INFILE_HEADER = 0xFB
EOF_HEADER = 0xFE
AUTH_SWITCH_HEADER = 0xFE
ERR_HEADER = 0xFF

#: An ERR packet with this code is a MariaDB progress report, not an error.
MARIADB_PROGRESS_ERRNO = 0xFFFF

CURSOR_TYPE_READ_ONLY = 0x01
PARAMETER_COUNT_AVAILABLE = 0x08

# --- binary protocol column types (those a client may send as parameters) ----
MYSQL_TYPE_DECIMAL = 0
MYSQL_TYPE_TINY = 1
MYSQL_TYPE_SHORT = 2
MYSQL_TYPE_LONG = 3
MYSQL_TYPE_FLOAT = 4
MYSQL_TYPE_DOUBLE = 5
MYSQL_TYPE_NULL = 6
MYSQL_TYPE_TIMESTAMP = 7
MYSQL_TYPE_LONGLONG = 8
MYSQL_TYPE_INT24 = 9
MYSQL_TYPE_DATE = 10
MYSQL_TYPE_TIME = 11
MYSQL_TYPE_DATETIME = 12
MYSQL_TYPE_YEAR = 13
MYSQL_TYPE_NEWDATE = 14
MYSQL_TYPE_VARCHAR = 15
MYSQL_TYPE_BIT = 16
MYSQL_TYPE_VECTOR = 242
MYSQL_TYPE_JSON = 245
MYSQL_TYPE_NEWDECIMAL = 246
MYSQL_TYPE_ENUM = 247
MYSQL_TYPE_SET = 248
MYSQL_TYPE_TINY_BLOB = 249
MYSQL_TYPE_MEDIUM_BLOB = 250
MYSQL_TYPE_LONG_BLOB = 251
MYSQL_TYPE_BLOB = 252
MYSQL_TYPE_VAR_STRING = 253
MYSQL_TYPE_STRING = 254
MYSQL_TYPE_GEOMETRY = 255

_FIXED_WIDTH = {
    MYSQL_TYPE_NULL: 0,
    MYSQL_TYPE_TINY: 1,
    MYSQL_TYPE_SHORT: 2,
    MYSQL_TYPE_YEAR: 2,
    MYSQL_TYPE_LONG: 4,
    MYSQL_TYPE_INT24: 4,
    MYSQL_TYPE_FLOAT: 4,
    MYSQL_TYPE_LONGLONG: 8,
    MYSQL_TYPE_DOUBLE: 8,
}
_LENGTH_PREFIXED = frozenset(
    {MYSQL_TYPE_DATE, MYSQL_TYPE_DATETIME, MYSQL_TYPE_TIMESTAMP, MYSQL_TYPE_TIME}
)
_LENENC_TYPES = frozenset(
    {
        MYSQL_TYPE_DECIMAL,
        MYSQL_TYPE_NEWDATE,
        MYSQL_TYPE_VARCHAR,
        MYSQL_TYPE_BIT,
        MYSQL_TYPE_VECTOR,
        MYSQL_TYPE_JSON,
        *range(MYSQL_TYPE_NEWDECIMAL, MYSQL_TYPE_GEOMETRY + 1),
    }
)


# --- length-encoded integers and strings -------------------------------------
def read_lenenc_int(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Read a length-encoded integer at `pos`; return (value, position after it).

    0xFB (NULL in a text row) and 0xFF are not integers here and are rejected.
    """
    try:
        first = buf[pos]
        if first < 0xFB:
            return first, pos + 1
        if first == 0xFC:
            size = 2
        elif first == 0xFD:
            size = 3
        elif first == 0xFE:
            size = 8
        else:
            raise ProtocolError(f"0x{first:02X} is not a length-encoded integer")
    except IndexError:
        raise ProtocolError("truncated length-encoded integer") from None
    end = pos + 1 + size
    if end > len(buf):
        raise ProtocolError("truncated length-encoded integer")
    return int.from_bytes(buf[pos + 1 : end], "little"), end


def read_lenenc_bytes(buf: bytes | memoryview, pos: int) -> tuple[bytes, int]:
    """Read a length-encoded string at `pos`; return (bytes, position after it)."""
    length, pos = read_lenenc_int(buf, pos)
    end = pos + length
    if end > len(buf):
        raise ProtocolError("truncated length-encoded string")
    return bytes(buf[pos:end]), end


def lenenc_int(value: int) -> bytes:
    """Encode `value` as a length-encoded integer (shortest form)."""
    if value < 0:
        raise ValueError("length-encoded integers are unsigned")
    if value < 0xFB:
        return bytes((value,))
    if value < 1 << 16:
        return b"\xfc" + value.to_bytes(2, "little")
    if value < 1 << 24:
        return b"\xfd" + value.to_bytes(3, "little")
    return b"\xfe" + value.to_bytes(8, "little")


def lenenc_bytes(value: bytes) -> bytes:
    """Encode `value` as a length-encoded string."""
    return lenenc_int(len(value)) + value


class _Cursor:
    """Bounds-checked reader over one payload; every overrun is a ProtocolError."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    def remaining(self) -> int:
        return len(self.buf) - self.pos

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.buf):
            raise ProtocolError("truncated message")
        out = self.buf[self.pos : end]
        self.pos = end
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "little")

    def lenenc_int(self) -> int:
        value, self.pos = read_lenenc_int(self.buf, self.pos)
        return value

    def lenenc_bytes(self) -> bytes:
        value, self.pos = read_lenenc_bytes(self.buf, self.pos)
        return value

    def nul_bytes(self) -> bytes:
        end = self.buf.find(b"\0", self.pos)
        if end < 0:
            raise ProtocolError("missing NUL terminator")
        out = self.buf[self.pos : end]
        self.pos = end + 1
        return out

    def rest(self) -> bytes:
        out = self.buf[self.pos :]
        self.pos = len(self.buf)
        return out


def _parse_attrs(block: bytes) -> tuple[tuple[bytes, bytes], ...]:
    cur = _Cursor(block)
    pairs = []
    while cur.remaining():
        pairs.append((cur.lenenc_bytes(), cur.lenenc_bytes()))
    return tuple(pairs)


# --- connection phase ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HandshakeV10:
    """The server greeting.  Fields keep their wire form so `build` is exact."""

    protocol_version: int
    server_version: bytes
    connection_id: int
    auth_data_1: bytes
    filler: int
    capabilities: int
    charset: int | None = None
    status_flags: int | None = None
    auth_data_len: int = 0
    reserved: bytes = b"\0" * 6
    mariadb_capabilities: int = 0
    auth_data_2: bytes = b""
    auth_plugin: bytes | None = None
    plugin_nul: bool = True
    trailing: bytes = b""

    @property
    def is_mariadb(self) -> bool:
        """MariaDB servers clear CLIENT_MYSQL to announce extended capabilities."""
        return not self.capabilities & CLIENT_MYSQL

    @property
    def nonce(self) -> bytes:
        """The auth scramble (usually 20 bytes) without part 2's trailing NUL."""
        part2 = self.auth_data_2
        if part2.endswith(b"\0"):
            part2 = part2[:-1]
        return self.auth_data_1 + part2

    def with_capabilities(
        self, capabilities: int, mariadb_capabilities: int | None = None
    ) -> HandshakeV10:
        """Return a copy announcing other capabilities (e.g. without CLIENT_SSL)."""
        return replace(
            self,
            capabilities=capabilities,
            mariadb_capabilities=(
                self.mariadb_capabilities if mariadb_capabilities is None else mariadb_capabilities
            ),
        )

    @classmethod
    def parse(cls, payload: bytes) -> HandshakeV10:
        cur = _Cursor(bytes(payload))
        version = cur.uint(1)
        if version != 10:
            raise ProtocolError(f"unsupported handshake protocol version {version}")
        server_version = cur.nul_bytes()
        connection_id = cur.uint(4)
        auth_data_1 = cur.take(8)
        filler = cur.uint(1)
        caps = cur.uint(2)
        if not cur.remaining():
            return cls(version, server_version, connection_id, auth_data_1, filler, caps)
        charset = cur.uint(1)
        status = cur.uint(2)
        caps |= cur.uint(2) << 16
        auth_data_len = cur.uint(1)
        reserved = cur.take(6)
        ext = cur.take(4)
        mariadb_caps = 0
        if not caps & CLIENT_MYSQL:
            mariadb_caps = int.from_bytes(ext, "little")
        elif ext != b"\0\0\0\0":
            reserved += ext  # not MariaDB: keep whatever the filler held
        auth_data_2 = b""
        if caps & CLIENT_SECURE_CONNECTION:
            auth_data_2 = cur.take(min(max(13, auth_data_len - 8), cur.remaining()))
        plugin = None
        plugin_nul = True
        if caps & CLIENT_PLUGIN_AUTH and cur.remaining():
            if b"\0" in cur.buf[cur.pos :]:
                plugin = cur.nul_bytes()
            else:  # some old servers omit the terminator
                plugin, plugin_nul = cur.rest(), False
        return cls(
            version,
            server_version,
            connection_id,
            auth_data_1,
            filler,
            caps,
            charset,
            status,
            auth_data_len,
            reserved,
            mariadb_caps,
            auth_data_2,
            plugin,
            plugin_nul,
            cur.rest(),
        )

    def build(self) -> bytes:
        out = bytearray((self.protocol_version,))
        out += self.server_version + b"\0"
        out += struct.pack("<I", self.connection_id)
        out += self.auth_data_1
        out.append(self.filler)
        out += struct.pack("<H", self.capabilities & 0xFFFF)
        if self.charset is None or self.status_flags is None:
            return bytes(out)
        out.append(self.charset)
        out += struct.pack("<HHB", self.status_flags, self.capabilities >> 16, self.auth_data_len)
        out += self.reserved[:6]
        if not self.capabilities & CLIENT_MYSQL:
            out += struct.pack("<I", self.mariadb_capabilities)
        else:
            out += self.reserved[6:10].ljust(4, b"\0")
        out += self.auth_data_2
        if self.auth_plugin is not None:
            out += self.auth_plugin
            if self.plugin_nul:
                out.append(0)
        out += self.trailing
        return bytes(out)


_RESPONSE_FIXED = struct.Struct("<IIB23s")


@dataclass(frozen=True, slots=True)
class SSLRequest:
    """The 32-byte prefix of HandshakeResponse41 a client sends before TLS."""

    capabilities: int
    max_packet: int
    charset: int
    reserved: bytes = b"\0" * 23

    @classmethod
    def parse(cls, payload: bytes) -> SSLRequest:
        if len(payload) != 32:
            raise ProtocolError("an SSLRequest is exactly 32 bytes")
        caps, max_packet, charset, reserved = _RESPONSE_FIXED.unpack(payload)
        if not caps & CLIENT_SSL:
            raise ProtocolError("SSLRequest without CLIENT_SSL")
        return cls(caps, max_packet, charset, reserved)

    def build(self) -> bytes:
        return _RESPONSE_FIXED.pack(self.capabilities, self.max_packet, self.charset, self.reserved)


def is_ssl_request(payload: bytes) -> bool:
    """A 32-byte HandshakeResponse41 with CLIENT_SSL asks to start TLS first."""
    return len(payload) == 32 and bool(payload[1] & (CLIENT_SSL >> 8))


def _mariadb_ext(capabilities: int, reserved: bytes) -> int:
    if capabilities & CLIENT_MYSQL:
        return 0
    return int.from_bytes(reserved[19:23], "little")


@dataclass(frozen=True, slots=True)
class HandshakeResponse41:
    """The client's login packet (after TLS, if any)."""

    capabilities: int
    max_packet: int
    charset: int
    reserved: bytes
    username: bytes
    auth_response: bytes
    database: bytes | None = None
    auth_plugin: bytes | None = None
    plugin_nul: bool = True
    attrs_block: bytes | None = None
    trailing: bytes = b""

    @property
    def mariadb_capabilities(self) -> int:
        """MariaDB extended capabilities (0 when the client speaks plain MySQL)."""
        return _mariadb_ext(self.capabilities, self.reserved)

    @property
    def attributes(self) -> tuple[tuple[bytes, bytes], ...]:
        """Connection attributes as (key, value) pairs, in wire order."""
        return _parse_attrs(self.attrs_block or b"")

    def rewrite(
        self,
        *,
        username: bytes | None = None,
        capabilities: int | None = None,
        mariadb_capabilities: int | None = None,
    ) -> HandshakeResponse41:
        """Return a copy with another user name and/or capabilities."""
        reserved = self.reserved
        if mariadb_capabilities is not None:
            reserved = reserved[:19] + struct.pack("<I", mariadb_capabilities)
        return replace(
            self,
            username=self.username if username is None else username,
            capabilities=self.capabilities if capabilities is None else capabilities,
            reserved=reserved,
        )

    @classmethod
    def parse(cls, payload: bytes) -> HandshakeResponse41:
        payload = bytes(payload)
        if len(payload) < 32:
            raise ProtocolError("HandshakeResponse41 shorter than 32 bytes")
        caps, max_packet, charset, reserved = _RESPONSE_FIXED.unpack_from(payload)
        if not caps & CLIENT_PROTOCOL_41:
            raise ProtocolError("client does not speak protocol 4.1")
        cur = _Cursor(payload, 32)
        username = cur.nul_bytes()
        if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
            auth = cur.lenenc_bytes()
        elif caps & CLIENT_SECURE_CONNECTION:
            auth = cur.take(cur.uint(1))
        else:
            auth = cur.nul_bytes()
        database = None
        if caps & CLIENT_CONNECT_WITH_DB and cur.remaining():
            database = cur.nul_bytes()
        plugin = None
        plugin_nul = True
        if caps & CLIENT_PLUGIN_AUTH and cur.remaining():
            if b"\0" in payload[cur.pos :]:
                plugin = cur.nul_bytes()
            else:
                plugin, plugin_nul = cur.rest(), False
        attrs = None
        if caps & CLIENT_CONNECT_ATTRS and cur.remaining():
            attrs = cur.lenenc_bytes()
            _parse_attrs(attrs)
        return cls(
            caps,
            max_packet,
            charset,
            reserved,
            username,
            auth,
            database,
            plugin,
            plugin_nul,
            attrs,
            cur.rest(),
        )

    def build(self) -> bytes:
        caps = self.capabilities
        out = bytearray(_RESPONSE_FIXED.pack(caps, self.max_packet, self.charset, self.reserved))
        out += self.username + b"\0"
        if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
            out += lenenc_bytes(self.auth_response)
        elif caps & CLIENT_SECURE_CONNECTION:
            if len(self.auth_response) > 255:
                raise ValueError("auth response too long for a 1-byte length")
            out.append(len(self.auth_response))
            out += self.auth_response
        else:
            out += self.auth_response + b"\0"
        if self.database is not None:
            out += self.database + b"\0"
        if self.auth_plugin is not None:
            out += self.auth_plugin
            if self.plugin_nul:
                out.append(0)
        if self.attrs_block is not None:
            out += lenenc_bytes(self.attrs_block)
        out += self.trailing
        return bytes(out)


@dataclass(frozen=True, slots=True)
class ComChangeUser:
    """COM_CHANGE_USER: re-authenticate on an open connection."""

    username: bytes
    auth_response: bytes
    database: bytes
    charset: int | None = None
    auth_plugin: bytes | None = None
    attrs_block: bytes | None = None
    trailing: bytes = b""

    @classmethod
    def parse(cls, payload: bytes, capabilities: int) -> ComChangeUser:
        payload = bytes(payload)
        if not payload or payload[0] != COM_CHANGE_USER:
            raise ProtocolError("not a COM_CHANGE_USER")
        cur = _Cursor(payload, 1)
        username = cur.nul_bytes()
        secure = capabilities & CLIENT_SECURE_CONNECTION
        auth = cur.take(cur.uint(1)) if secure else cur.nul_bytes()
        database = cur.nul_bytes()
        charset = plugin = attrs = None
        if cur.remaining():
            charset = cur.uint(2)
            if capabilities & CLIENT_PLUGIN_AUTH and cur.remaining():
                plugin = cur.nul_bytes()
            if capabilities & CLIENT_CONNECT_ATTRS and cur.remaining():
                attrs = cur.lenenc_bytes()
                _parse_attrs(attrs)
        return cls(username, auth, database, charset, plugin, attrs, cur.rest())

    def with_username(self, username: bytes) -> ComChangeUser:
        return replace(self, username=username)

    def build(self, capabilities: int) -> bytes:
        out = bytearray((COM_CHANGE_USER,))
        out += self.username + b"\0"
        if capabilities & CLIENT_SECURE_CONNECTION:
            out.append(len(self.auth_response))
            out += self.auth_response
        else:
            out += self.auth_response + b"\0"
        out += self.database + b"\0"
        if self.charset is not None:
            out += struct.pack("<H", self.charset)
            if self.auth_plugin is not None:
                out += self.auth_plugin + b"\0"
            if self.attrs_block is not None:
                out += lenenc_bytes(self.attrs_block)
        out += self.trailing
        return bytes(out)


@dataclass(frozen=True, slots=True)
class AuthSwitchRequest:
    """0xFE: the server asks the client to answer with another auth plugin."""

    plugin: bytes
    data: bytes

    @property
    def nonce(self) -> bytes:
        """The plugin data without the trailing NUL most servers append."""
        return self.data[:-1] if self.data.endswith(b"\0") else self.data

    @classmethod
    def parse(cls, payload: bytes) -> AuthSwitchRequest:
        payload = bytes(payload)
        if not payload or payload[0] != AUTH_SWITCH_HEADER:
            raise ProtocolError("not an AuthSwitchRequest")
        if len(payload) == 1:  # pre-4.1 "use old password" request
            return cls(b"mysql_old_password", b"")
        cur = _Cursor(payload, 1)
        return cls(cur.nul_bytes(), cur.rest())

    def build(self) -> bytes:
        return b"\xfe" + self.plugin + b"\0" + self.data


@dataclass(frozen=True, slots=True)
class AuthMoreData:
    """0x01: extra auth data from the server (caching_sha2 state, RSA key, …)."""

    data: bytes

    @classmethod
    def parse(cls, payload: bytes) -> AuthMoreData:
        if not payload or payload[0] != AUTH_MORE_DATA_HEADER:
            raise ProtocolError("not an AuthMoreData packet")
        return cls(bytes(payload[1:]))

    def build(self) -> bytes:
        return b"\x01" + self.data


# --- generic responses --------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OkPacket:
    """OK (0x00), or OK-as-EOF (0xFE) under CLIENT_DEPRECATE_EOF."""

    affected_rows: int = 0
    last_insert_id: int = 0
    status_flags: int = SERVER_STATUS_AUTOCOMMIT
    warnings: int = 0
    info: bytes = b""
    session_state: bytes | None = None
    header: int = OK_HEADER

    @classmethod
    def parse(cls, payload: bytes, capabilities: int) -> OkPacket:
        payload = bytes(payload)
        if not payload or payload[0] not in (OK_HEADER, EOF_HEADER):
            raise ProtocolError("not an OK packet")
        cur = _Cursor(payload, 1)
        affected = cur.lenenc_int()
        last_id = cur.lenenc_int()
        status = warnings = 0
        if capabilities & CLIENT_PROTOCOL_41:
            status = cur.uint(2)
            warnings = cur.uint(2)
        elif capabilities & CLIENT_TRANSACTIONS:
            status = cur.uint(2)
        info = b""
        state = None
        if capabilities & CLIENT_SESSION_TRACK:
            if cur.remaining():
                info = cur.lenenc_bytes()
            if status & SERVER_SESSION_STATE_CHANGED:
                state = cur.lenenc_bytes()
        else:
            info = cur.rest()
        return cls(affected, last_id, status, warnings, info, state, payload[0])

    def build(self, capabilities: int) -> bytes:
        out = bytearray((self.header,))
        out += lenenc_int(self.affected_rows) + lenenc_int(self.last_insert_id)
        if capabilities & CLIENT_PROTOCOL_41:
            out += struct.pack("<HH", self.status_flags, self.warnings)
        elif capabilities & CLIENT_TRANSACTIONS:
            out += struct.pack("<H", self.status_flags)
        if capabilities & CLIENT_SESSION_TRACK:
            out += lenenc_bytes(self.info)
            if self.session_state is not None:
                out += lenenc_bytes(self.session_state)
        else:
            out += self.info
        return bytes(out)


@dataclass(frozen=True, slots=True)
class ErrPacket:
    """0xFF: an error.  `sql_state` is empty when the server sent none."""

    code: int
    sql_state: bytes
    message: bytes

    @property
    def is_progress_report(self) -> bool:
        """MariaDB progress reports borrow the ERR header with code 0xFFFF."""
        return self.code == MARIADB_PROGRESS_ERRNO

    @classmethod
    def parse(cls, payload: bytes) -> ErrPacket:
        payload = bytes(payload)
        if not payload or payload[0] != ERR_HEADER:
            raise ProtocolError("not an ERR packet")
        cur = _Cursor(payload, 1)
        code = cur.uint(2)
        state = b""
        if cur.remaining() >= 6 and payload[cur.pos] == 0x23:  # '#'
            state = cur.take(6)[1:]
        return cls(code, state, cur.rest())

    def build(self) -> bytes:
        state = b"#" + self.sql_state if self.sql_state else b""
        return b"\xff" + struct.pack("<H", self.code) + state + self.message


def err_packet(seq: int, code: int, sqlstate: str, message: str) -> bytes:
    """A framed ERR packet, for errors the proxy itself reports to a client."""
    state = sqlstate.encode("ascii")
    if len(state) != 5:
        raise ValueError("SQLSTATE is 5 characters")
    return build_packet(seq, ErrPacket(code, state, message.encode("utf-8")).build())


@dataclass(frozen=True, slots=True)
class EofPacket:
    """0xFE with fewer than 9 bytes: end of column definitions or rows."""

    warnings: int = 0
    status_flags: int = SERVER_STATUS_AUTOCOMMIT

    @classmethod
    def parse(cls, payload: bytes) -> EofPacket:
        if not is_eof_packet(payload):
            raise ProtocolError("not an EOF packet")
        if len(payload) >= 5:
            warnings, status = struct.unpack_from("<HH", payload, 1)
            return cls(warnings, status)
        return cls(0, 0)

    def build(self) -> bytes:
        return struct.pack("<BHH", EOF_HEADER, self.warnings, self.status_flags)


def is_eof_packet(payload: bytes) -> bool:
    """A classic EOF: 0xFE header and under 9 bytes (a row can begin with 0xFE too)."""
    return len(payload) < 9 and len(payload) > 0 and payload[0] == EOF_HEADER


def is_ok_as_eof(payload: bytes) -> bool:
    """An OK packet ending rows under CLIENT_DEPRECATE_EOF: 0xFE, shorter than 0xFFFFFF."""
    return 0 < len(payload) < MAX_PACKET_PAYLOAD and payload[0] == EOF_HEADER


@dataclass(frozen=True, slots=True)
class ColumnCount:
    """First packet of a result set; `metadata_follows` is False when the
    client and server agreed to skip column definitions (MariaDB metadata
    cache, MySQL optional metadata)."""

    count: int
    metadata_follows: bool = True

    @classmethod
    def parse(cls, payload: bytes, capabilities: int, mariadb_capabilities: int = 0) -> ColumnCount:
        cur = _Cursor(bytes(payload))
        count = cur.lenenc_int()
        follows = True
        if (
            mariadb_capabilities & MARIADB_CLIENT_CACHE_METADATA
            or capabilities & CLIENT_OPTIONAL_RESULTSET_METADATA
        ):
            follows = bool(cur.uint(1)) if cur.remaining() else True
        if cur.remaining():
            raise ProtocolError("trailing bytes after column count")
        return cls(count, follows)


@dataclass(frozen=True, slots=True)
class StmtPrepareOk:
    """Response header of COM_STMT_PREPARE."""

    statement_id: int
    num_columns: int
    num_params: int
    warnings: int = 0
    metadata_follows: bool = True

    @classmethod
    def parse(cls, payload: bytes, capabilities: int = 0) -> StmtPrepareOk:
        payload = bytes(payload)
        if len(payload) < 10 or payload[0] != OK_HEADER:
            raise ProtocolError("not a COM_STMT_PREPARE_OK")
        stmt_id, cols, params = struct.unpack_from("<IHH", payload, 1)
        warnings = 0
        if len(payload) >= 12:
            (warnings,) = struct.unpack_from("<H", payload, 10)
        follows = True
        if capabilities & CLIENT_OPTIONAL_RESULTSET_METADATA and len(payload) >= 13:
            follows = bool(payload[12])
        return cls(stmt_id, cols, params, warnings, follows)

    def build(self) -> bytes:
        return struct.pack(
            "<BIHHBH", OK_HEADER, self.statement_id, self.num_columns, self.num_params, 0,
            self.warnings,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class LocalInfileRequest:
    """0xFB: the server asks the client to send the contents of a file."""

    filename: bytes

    @classmethod
    def parse(cls, payload: bytes) -> LocalInfileRequest:
        if not payload or payload[0] != LOCAL_INFILE_HEADER:
            raise ProtocolError("not a LOCAL INFILE request")
        return cls(bytes(payload[1:]))


# --- commands ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QueryAttributes:
    """Query attributes (MySQL 8 CLIENT_QUERY_ATTRIBUTES), kept in wire form."""

    null_bitmap: bytes
    types: tuple[int, ...]
    names: tuple[bytes, ...]
    values: tuple[bytes | None, ...]


@dataclass(frozen=True, slots=True)
class ComQuery:
    """COM_QUERY: the statement text plus any query attributes."""

    query: bytes
    attributes: QueryAttributes | None = None

    @classmethod
    def parse(cls, payload: bytes, capabilities: int) -> ComQuery:
        payload = bytes(payload)
        if not payload or payload[0] != COM_QUERY:
            raise ProtocolError("not a COM_QUERY")
        if not capabilities & CLIENT_QUERY_ATTRIBUTES:
            return cls(payload[1:])
        cur = _Cursor(payload, 1)
        count = cur.lenenc_int()
        cur.lenenc_int()  # parameter_set_count, always 1
        attrs = None
        if count:
            if count > len(payload):
                raise ProtocolError("implausible attribute count")
            bitmap = cur.take((count + 7) // 8)
            if cur.uint(1) != 1:
                raise ProtocolError("query attributes without types")
            types, names = _read_types(cur, count, with_names=True)
            values = _read_values(cur, types, bitmap)
            attrs = QueryAttributes(bitmap, types, names, values)
        return cls(cur.rest(), attrs)


@dataclass(frozen=True, slots=True)
class ComStmtExecute:
    """COM_STMT_EXECUTE, split into the parts a cache key needs.

    `param_types` holds each parameter's 2-byte type (type | flags << 8) as
    sent now or, when the client did not resend them, as passed in from the
    previous execute.  `values` has the exact binary bytes of each parameter,
    None for NULL.  Parameters sent earlier with COM_STMT_SEND_LONG_DATA are
    not in this packet: the caller must track those itself.

    `types_block` is the wire form of the types (with their names under
    CLIENT_QUERY_ATTRIBUTES) when this packet carries them, else empty: what
    :func:`execute_with_types` puts back into a packet that left them out.
    """

    statement_id: int
    flags: int
    iteration_count: int
    null_bitmap: bytes
    new_params_bound: bool
    param_types: tuple[int, ...]
    param_names: tuple[bytes, ...]
    values: tuple[bytes | None, ...]
    types_block: bytes = b""

    @classmethod
    def parse(
        cls,
        payload: bytes,
        num_params: int,
        capabilities: int = 0,
        previous_types: tuple[int, ...] | None = None,
    ) -> ComStmtExecute:
        payload = bytes(payload)
        stmt_id, flags, iterations = _execute_header(payload)
        cur = _Cursor(payload, 10)
        count = _execute_param_count(cur, flags, num_params, capabilities)
        if count == 0:
            return cls(stmt_id, flags, iterations, b"", False, (), (), ())
        bitmap = cur.take((count + 7) // 8)
        bound = cur.uint(1)
        names: tuple[bytes, ...] = ()
        block = b""
        if bound:
            start = cur.pos
            types, names = _read_types(
                cur, count, with_names=bool(capabilities & CLIENT_QUERY_ATTRIBUTES)
            )
            block = payload[start : cur.pos]
        elif previous_types is not None and len(previous_types) == count:
            types = previous_types
        else:
            raise ProtocolError("parameter types were not sent and are not known")
        values = _read_values(cur, types, bitmap)
        if cur.remaining():
            raise ProtocolError("trailing bytes after parameter values")
        return cls(stmt_id, flags, iterations, bitmap, bool(bound), types, names, values, block)


def _execute_header(payload: bytes) -> tuple[int, int, int]:
    if len(payload) < 10 or payload[0] != COM_STMT_EXECUTE:
        raise ProtocolError("not a COM_STMT_EXECUTE")
    return struct.unpack_from("<IBI", payload, 1)


def _execute_param_count(cur: _Cursor, flags: int, num_params: int, capabilities: int) -> int:
    count = num_params
    if capabilities & CLIENT_QUERY_ATTRIBUTES and (
        num_params > 0 or flags & PARAMETER_COUNT_AVAILABLE
    ):
        count = cur.lenenc_int()
        if count < num_params:
            raise ProtocolError("fewer parameters than the statement has")
    if count > len(cur.buf) * 8:
        raise ProtocolError("implausible parameter count")
    return count


def execute_bound_offset(payload: bytes, num_params: int, capabilities: int = 0) -> int | None:
    """Offset of the new-params-bound byte of a COM_STMT_EXECUTE payload (None: the
    packet has no parameters, hence no such byte). Reads only the header, so it
    works on packets whose values :meth:`ComStmtExecute.parse` cannot read."""
    payload = bytes(payload)
    _, flags, _ = _execute_header(payload)
    cur = _Cursor(payload, 10)
    count = _execute_param_count(cur, flags, num_params, capabilities)
    if count == 0:
        return None
    cur.take((count + 7) // 8)
    if not cur.remaining():
        raise ProtocolError("truncated message")
    return cur.pos


def execute_with_types(payload: bytes, offset: int, types_block: bytes) -> bytes:
    """The COM_STMT_EXECUTE `payload`, which did not send its parameter types
    (new-params-bound 0 at `offset`), with new-params-bound 1 and `types_block`
    (:attr:`ComStmtExecute.types_block` of the execute that last sent them)."""
    if payload[offset] != 0:
        raise ValueError("the packet already sends its parameter types")
    return bytes(payload[:offset]) + b"\x01" + types_block + bytes(payload[offset + 1 :])


def _read_types(cur: _Cursor, count: int, *, with_names: bool):
    types = []
    names = []
    for _ in range(count):
        types.append(cur.uint(2))
        if with_names:
            names.append(cur.lenenc_bytes())
    return tuple(types), tuple(names)


def _read_values(cur: _Cursor, types: tuple[int, ...], bitmap: bytes):
    values: list[bytes | None] = []
    for i, type_and_flags in enumerate(types):
        if bitmap[i >> 3] & (1 << (i & 7)):
            values.append(None)
            continue
        t = type_and_flags & 0xFF
        start = cur.pos
        width = _FIXED_WIDTH.get(t)
        if width is not None:
            cur.take(width)
        elif t in _LENGTH_PREFIXED:
            cur.take(cur.uint(1))
        elif t in _LENENC_TYPES:
            cur.lenenc_bytes()
        else:
            raise ProtocolError(f"unknown parameter type {t}")
        values.append(cur.buf[start : cur.pos])
    return tuple(values)


def command_byte(payload: bytes) -> int:
    """The command of a client packet in the command phase."""
    if not payload:
        raise ProtocolError("empty command packet")
    return payload[0]


# --- response tracking ------------------------------------------------------------
_START, _COLUMNS, _COLUMNS_EOF, _ROWS, _PARAMS, _PARAMS_EOF, _FIELDS = range(7)


class ResultReader:
    """Follows the server's response to one command, packet by packet.

    Feed every physical packet payload the server sends (continuation
    packets of a split payload included) to `feed`; it returns True once the
    response is complete.  It looks only at packet boundaries and headers, so
    it is cheap enough to run on every relayed packet.

    `command` is the command byte being answered; `capabilities` and
    `mariadb_capabilities` are the negotiated ones.  After completion:
    `error` is the ERR packet if the command failed, `status_flags` those of
    the final OK/EOF (in-transaction detection), `result_sets` counts the
    results of a multi-result response, `local_infile` tells that the server
    asked for a client file, and `cursor_opened` that a COM_STMT_EXECUTE
    opened a cursor (rows then come through COM_STMT_FETCH).

    Known gap: a cursor opened under CLIENT_DEPRECATE_EOF has no EOF marking
    the end of its metadata, so that case is not detected.
    """

    __slots__ = (
        "command",
        "capabilities",
        "mariadb_capabilities",
        "done",
        "error",
        "status_flags",
        "warnings",
        "result_sets",
        "rows",
        "local_infile",
        "cursor_opened",
        "ok_packets",
        "_deprecate_eof",
        "_state",
        "_pending",
        "_columns_after",
        "_continued",
    )

    def __init__(self, command: int, capabilities: int, mariadb_capabilities: int = 0) -> None:
        if command in NO_RESPONSE_COMMANDS:
            raise ValueError("this command has no response")
        self.command = command
        self.capabilities = capabilities
        self.mariadb_capabilities = mariadb_capabilities
        self.done = False
        self.error: ErrPacket | None = None
        self.status_flags = 0
        self.warnings = 0
        self.result_sets = 0
        self.rows = 0
        self.local_infile = False
        self.cursor_opened = False
        self.ok_packets: list[OkPacket] = []
        self._deprecate_eof = bool(capabilities & CLIENT_DEPRECATE_EOF)
        self._pending = 0
        self._columns_after = 0
        self._continued = False
        if command == COM_FIELD_LIST:
            self._state = _FIELDS
        elif command == COM_STMT_FETCH:
            self._state = _ROWS
        else:
            self._state = _START

    @property
    def in_transaction(self) -> bool:
        """Whether the session is inside a transaction after this response."""
        return bool(self.status_flags & SERVER_STATUS_IN_TRANS)

    def feed(self, payload: bytes | memoryview) -> bool:
        """Account for one physical packet; return True when the response is complete."""
        if self.done:
            raise ProtocolError("packet after the end of the response")
        if self._continued:  # rest of a split payload: it has no header of its own
            self._continued = len(payload) == MAX_PACKET_PAYLOAD
            return False
        self._continued = len(payload) == MAX_PACKET_PAYLOAD
        if not payload:
            raise ProtocolError("empty response packet")
        state = self._state
        if state == _ROWS:
            self._row_or_end(payload)
        elif state in (_COLUMNS, _PARAMS):
            self._definition()
        elif state == _START:
            self._first(payload)
        elif state == _FIELDS:
            self._field_or_end(payload)
        else:
            self._definitions_eof(payload)
        return self.done

    def _end_marker(self, payload) -> bool:
        """0xFE ends a run of rows or definitions only in a short packet: a text
        row may start with 0xFE, but then it is at least 0xFFFFFF bytes long."""
        if payload[0] != EOF_HEADER:
            return False
        if self._deprecate_eof:
            return len(payload) < MAX_PACKET_PAYLOAD
        return len(payload) < 9

    def _take_end(self, payload) -> None:
        if self._deprecate_eof:
            ok = OkPacket.parse(bytes(payload), self.capabilities)
            self.ok_packets.append(ok)
            self.status_flags, self.warnings = ok.status_flags, ok.warnings
        else:
            eof = EofPacket.parse(payload)
            self.status_flags, self.warnings = eof.status_flags, eof.warnings

    def _first(self, payload) -> None:
        head = payload[0]
        command = self.command
        if head == ERR_HEADER:
            self._error(payload)
        elif command == COM_STATISTICS:
            self.done = True  # a bare string, whatever its first byte
        elif head == OK_HEADER and command == COM_STMT_PREPARE:
            prep = StmtPrepareOk.parse(bytes(payload), self.capabilities)
            self.warnings = prep.warnings
            self._columns_after = prep.num_columns if prep.metadata_follows else 0
            if prep.num_params and prep.metadata_follows:
                self._pending = prep.num_params
                self._state = _PARAMS
            else:
                self._after_params()
        elif head == OK_HEADER:
            ok = OkPacket.parse(bytes(payload), self.capabilities)
            self.ok_packets.append(ok)
            self.status_flags, self.warnings = ok.status_flags, ok.warnings
            self._finish_result()
        elif head == EOF_HEADER and len(payload) < 9:  # e.g. COM_SET_OPTION
            eof = EofPacket.parse(payload)
            self.status_flags, self.warnings = eof.status_flags, eof.warnings
            self._finish_result()
        elif head == LOCAL_INFILE_HEADER and command == COM_QUERY:
            self.local_infile = True  # the server answers the upload with OK/ERR
        elif command in (COM_QUERY, COM_STMT_EXECUTE):
            cc = ColumnCount.parse(bytes(payload), self.capabilities, self.mariadb_capabilities)
            if cc.count == 0:
                raise ProtocolError("result set with no columns")
            if cc.metadata_follows:
                self._pending = cc.count
                self._state = _COLUMNS
            else:
                self._state = _ROWS if self._deprecate_eof else _COLUMNS_EOF
        else:
            raise ProtocolError(f"unexpected response header 0x{head:02X}")

    def _definition(self) -> None:
        self._pending -= 1
        if self._pending:
            return
        if self._state == _PARAMS:
            if self._deprecate_eof:
                self._after_params()
            else:
                self._state = _PARAMS_EOF
        elif not self._deprecate_eof:
            self._state = _COLUMNS_EOF
        elif self.command == COM_STMT_PREPARE:
            self.done = True
        else:
            self._state = _ROWS

    def _definitions_eof(self, payload) -> None:
        if not is_eof_packet(payload):
            raise ProtocolError("expected EOF after definitions")
        eof = EofPacket.parse(payload)
        self.status_flags = eof.status_flags
        if self._state == _PARAMS_EOF:
            self._after_params()
        elif self.command == COM_STMT_PREPARE:
            self.done = True
        elif self.command == COM_STMT_EXECUTE and eof.status_flags & SERVER_STATUS_CURSOR_EXISTS:
            self.cursor_opened = True
            self._finish_result()
        else:
            self._state = _ROWS

    def _after_params(self) -> None:
        if self._columns_after:
            self._pending, self._columns_after = self._columns_after, 0
            self._state = _COLUMNS
        else:
            self.done = True

    def _row_or_end(self, payload) -> None:
        if self._end_marker(payload):
            self._take_end(payload)
            self._finish_result()
        elif payload[0] == ERR_HEADER:  # never a row: 0xFF is no lenenc prefix
            self._error(payload)
        else:
            self.rows += 1

    def _field_or_end(self, payload) -> None:
        if payload[0] == ERR_HEADER:
            self._error(payload)
        elif self._end_marker(payload):
            self._take_end(payload)
            self.done = True

    def _finish_result(self) -> None:
        self.result_sets += 1
        if self.status_flags & SERVER_MORE_RESULTS_EXISTS and self.command in (
            COM_QUERY,
            COM_STMT_EXECUTE,
        ):
            self._state = _START
        else:
            self.done = True

    def _error(self, payload) -> None:
        err = ErrPacket.parse(bytes(payload))
        if err.is_progress_report and self._state == _START:
            return
        self.error = err
        self.done = True


def response_expected(command: int) -> bool:
    """False for the commands the server never answers."""
    return command not in NO_RESPONSE_COMMANDS
