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

__all__ = [
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
