"""Authentication as a relay sees it: pure helpers, no I/O.

wirecache never stores passwords: it forwards the client's answers to the
origin and watches the exchange to learn when the origin accepted the client
(nothing is served from the cache before that).  The scramble functions
exist to check that understanding in tests and to recognise what travels;
the rules decide when forwarding would leak a cleartext password.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from wirecache_mysql import messages as m
from wirecache_mysql.wire import PacketStream, with_seq

__all__ = [
    "AuthFailed",
    "AuthResult",
    "relay",
    "CACHING_SHA2_PASSWORD",
    "CLIENT_ED25519",
    "MYSQL_CLEAR_PASSWORD",
    "MYSQL_NATIVE_PASSWORD",
    "SHA256_PASSWORD",
    "CachingSha2State",
    "caching_sha2_scramble",
    "caching_sha2_state",
    "clear_password_allowed",
    "full_auth_forward_allowed",
    "is_public_key_request",
    "native_password_scramble",
    "sends_cleartext",
]

MYSQL_NATIVE_PASSWORD = b"mysql_native_password"
CACHING_SHA2_PASSWORD = b"caching_sha2_password"
SHA256_PASSWORD = b"sha256_password"
MYSQL_CLEAR_PASSWORD = b"mysql_clear_password"
CLIENT_ED25519 = b"client_ed25519"

#: AuthMoreData bodies of caching_sha2_password.
FAST_AUTH_SUCCESS = b"\x03"
PERFORM_FULL_AUTHENTICATION = b"\x04"
#: What a client sends to ask for the server's RSA public key.
REQUEST_PUBLIC_KEY = b"\x02"


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def native_password_scramble(password: bytes, nonce: bytes) -> bytes:
    """mysql_native_password: SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw)))."""
    if not password:
        return b""
    stage1 = hashlib.sha1(password).digest()
    stage2 = hashlib.sha1(stage1).digest()
    return _xor(stage1, hashlib.sha1(nonce + stage2).digest())


def caching_sha2_scramble(password: bytes, nonce: bytes) -> bytes:
    """caching_sha2_password: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce)."""
    if not password:
        return b""
    stage1 = hashlib.sha256(password).digest()
    stage2 = hashlib.sha256(stage1).digest()
    return _xor(stage1, hashlib.sha256(stage2 + nonce).digest())


class CachingSha2State(enum.Enum):
    """What a caching_sha2_password AuthMoreData body means."""

    FAST_AUTH_SUCCESS = "fast_auth_success"  # an OK packet follows
    PERFORM_FULL_AUTH = "perform_full_auth"  # client must send the password (TLS or RSA)
    PUBLIC_KEY = "public_key"  # PEM answer to the client's 0x02 request


def caching_sha2_state(more_data: bytes) -> CachingSha2State:
    """Classify the body of an AuthMoreData packet (the bytes after 0x01)."""
    if more_data == FAST_AUTH_SUCCESS:
        return CachingSha2State.FAST_AUTH_SUCCESS
    if more_data == PERFORM_FULL_AUTHENTICATION:
        return CachingSha2State.PERFORM_FULL_AUTH
    return CachingSha2State.PUBLIC_KEY


def is_public_key_request(payload: bytes) -> bool:
    """The client asks (caching_sha2 / sha256_password) for the RSA public key."""
    return payload == REQUEST_PUBLIC_KEY


def clear_password_allowed(tls: bool) -> bool:
    """mysql_clear_password sends the password as is: only ever over TLS.

    For a relay, `tls` must be true on both legs (client and origin).
    """
    return tls


def full_auth_forward_allowed(client_tls: bool, origin_tls: bool) -> bool:
    """May the client's answer to "perform full authentication" be forwarded?

    Clients send the password in cleartext when their connection is TLS and
    RSA-encrypted (with the origin's key, fetched through the relay)
    otherwise.  Forwarding is safe unless a cleartext password would cross
    an unencrypted origin leg.
    """
    return origin_tls or not client_tls


def sends_cleartext(plugin: bytes, client_tls: bool) -> bool:
    """Whether the client's auth answer for `plugin` may hold a cleartext password.

    Used to decide, before forwarding, whether the origin leg must be TLS.
    caching_sha2_password and sha256_password answer full authentication in
    cleartext only over TLS; mysql_clear_password always does.
    """
    if plugin == MYSQL_CLEAR_PASSWORD:
        return True
    if plugin in (CACHING_SHA2_PASSWORD, SHA256_PASSWORD):
        return client_tls
    return False


# --- the relay: I/O glue over the helpers above ----------------------------------

#: ER_ACCESS_DENIED_ERROR: what clients show as "access denied".
ER_ACCESS_DENIED = 1045
#: ER_HANDSHAKE_ERROR ("Bad handshake").
ER_HANDSHAKE = 1043
CLEAR_PASSWORD_MESSAGE = (
    "wirecache: mysql_clear_password sends the password as is; it is passed through only "
    "when both the client's connection and wirecache's connection to the origin use TLS"
)
CLEARTEXT_TO_PLAIN_ORIGIN = (
    "wirecache: the client sent its password in clear (over TLS), and wirecache's "
    "connection to the origin is not encrypted; set origin_tls for this cache, or let the "
    "client use RSA password exchange without TLS"
)


class AuthFailed(Exception):
    """Authentication ended without success; ``response`` (framed, already numbered for
    the client) is what the client must still get, ``reason`` is for the log."""

    def __init__(self, reason: str, response: bytes | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.response = response


@dataclass(frozen=True, slots=True)
class AuthResult:
    """What the origin's final OK said."""

    ok: m.OkPacket
    plugin: bytes


def initial_answer_allowed(plugin: bytes | None, auth_response: bytes, client_tls: bool,
                           origin_tls: bool) -> bool:  # fmt: skip
    """May the auth data of a HandshakeResponse41/COM_CHANGE_USER be forwarded?

    sha256_password sends the password in clear right away over TLS, and
    mysql_clear_password always does: never across a plain origin leg.
    """
    if not auth_response or plugin not in (SHA256_PASSWORD, MYSQL_CLEAR_PASSWORD):
        return True
    if plugin == MYSQL_CLEAR_PASSWORD:
        return client_tls and origin_tls
    return full_auth_forward_allowed(client_tls, origin_tls)


async def relay(
    client: PacketStream, origin: PacketStream, *, delta: int, plugin: bytes | None,
    capabilities: int, client_tls: bool, origin_tls: bool,
) -> AuthResult:  # fmt: skip
    """Relay the origin's side of authentication until it says OK or ERR.

    ``delta`` is what to add to an origin sequence id to get the client's
    (the legs differ by one when only one of them started TLS). ``plugin`` is
    the method the client answered with first. Raises :class:`AuthFailed`.
    """

    async def to_client(raw: bytes, seq: int) -> None:
        await client.send(with_seq(raw, seq + delta))

    async def forward_answer(expect_seq: int, *, cleartext_check: bool = False) -> None:
        answer = await client.message()
        if cleartext_check and not is_public_key_request(answer.payload) and client_tls \
                and not origin_tls:  # fmt: skip
            raise AuthFailed(
                "cleartext password towards a plain origin leg",
                m.err_packet(answer.seq + 1, ER_ACCESS_DENIED, "28000", CLEARTEXT_TO_PLAIN_ORIGIN),
            )
        await origin.send(with_seq(answer.raw, answer.seq - delta))

    while True:
        msg = await origin.message()
        payload = msg.payload
        head = payload[0] if payload else -1
        client_seq = (msg.seq + delta) & 0xFF
        if head == m.OK_HEADER:
            ok = m.OkPacket.parse(payload, capabilities)
            await to_client(msg.raw, msg.seq)
            return AuthResult(ok, plugin or b"")
        if head == m.ERR_HEADER:
            err = m.ErrPacket.parse(payload)
            raise AuthFailed(
                f"origin refused: {err.code} {err.message.decode('utf-8', 'replace')}",
                with_seq(msg.raw, client_seq),
            )
        if head == m.AUTH_SWITCH_HEADER:
            switch = m.AuthSwitchRequest.parse(payload)
            plugin = switch.plugin
            if plugin == MYSQL_CLEAR_PASSWORD and not (client_tls and origin_tls):
                raise AuthFailed(
                    "mysql_clear_password without TLS on both legs",
                    m.err_packet(client_seq, ER_ACCESS_DENIED, "28000", CLEAR_PASSWORD_MESSAGE),
                )
            await to_client(msg.raw, msg.seq)
            await forward_answer(msg.seq + 1)
            continue
        if head == m.AUTH_MORE_DATA_HEADER:
            more = m.AuthMoreData.parse(payload)
            await to_client(msg.raw, msg.seq)
            if plugin == CACHING_SHA2_PASSWORD:
                state = caching_sha2_state(more.data)
                if state is CachingSha2State.FAST_AUTH_SUCCESS:
                    continue  # the OK follows
                await forward_answer(msg.seq + 1, cleartext_check=True)
            elif plugin == SHA256_PASSWORD:
                await forward_answer(msg.seq + 1, cleartext_check=True)
            else:
                await forward_answer(msg.seq + 1)
            continue
        raise AuthFailed(
            f"unexpected packet 0x{head & 0xFF:02X} from the origin during authentication",
            m.err_packet(client_seq, ER_HANDSHAKE, "08S01",
                         "wirecache: the origin sent an unexpected packet during authentication"),
        )  # fmt: skip
