"""Auth helpers, checked against the protocol's own verification rules and
against PyMySQL's independent implementation; the caching_sha2 exchange is
built byte by byte from the protocol documentation (no MySQL 8 runs here)."""

import hashlib

import pytest
from pymysql import _auth as pymysql_auth
from wirecache_mysql import auth
from wirecache_mysql import messages as m
from wirecache_mysql.packets import PacketReader, build_packet

NONCE = bytes.fromhex("324a61273c394a48") + bytes.fromhex("695960597b21306c502d2d3b")


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("password", [b"secret", b"p\xc3\xa4ss w0rd", b"x" * 100])
def test_native_password_scramble(password):
    response = auth.native_password_scramble(password, NONCE)
    assert response == pymysql_auth.scramble_native_password(password, NONCE)
    # the server's check: it stores SHA1(SHA1(pw)) and recovers SHA1(pw)
    stored = hashlib.sha1(hashlib.sha1(password).digest()).digest()
    stage1 = xor(response, hashlib.sha1(NONCE + stored).digest())
    assert hashlib.sha1(stage1).digest() == stored


@pytest.mark.parametrize("password", [b"secret", b"p\xc3\xa4ss w0rd", b"x" * 100])
def test_caching_sha2_scramble(password):
    response = auth.caching_sha2_scramble(password, NONCE)
    assert len(response) == 32
    assert response == pymysql_auth.scramble_caching_sha2(password, NONCE)
    # the server's fast-auth check against its cached SHA256(SHA256(pw))
    stored = hashlib.sha256(hashlib.sha256(password).digest()).digest()
    stage1 = xor(response, hashlib.sha256(stored + NONCE).digest())
    assert hashlib.sha256(stage1).digest() == stored


def test_empty_password_scrambles_to_nothing():
    assert auth.native_password_scramble(b"", NONCE) == b""
    assert auth.caching_sha2_scramble(b"", NONCE) == b""


def test_caching_sha2_fast_auth_exchange_bytes():
    """Server AuthSwitch → client scramble → 0x01 0x03 → OK."""
    switch = build_packet(2, b"\xfecaching_sha2_password\0" + NONCE + b"\0")
    reader = PacketReader()
    reader.receive_data(switch)
    request = m.AuthSwitchRequest.parse(reader.next_message().payload)
    assert request.plugin == auth.CACHING_SHA2_PASSWORD and request.nonce == NONCE
    answer = build_packet(3, auth.caching_sha2_scramble(b"secret", request.nonce))
    assert answer[:4] == b"\x20\x00\x00\x03"
    fast_ok = build_packet(4, b"\x01\x03")
    assert fast_ok == b"\x02\x00\x00\x04\x01\x03"
    more = m.AuthMoreData.parse(fast_ok[4:])
    assert auth.caching_sha2_state(more.data) is auth.CachingSha2State.FAST_AUTH_SUCCESS


def test_caching_sha2_full_auth_exchange_bytes():
    """0x01 0x04 → client 0x02 → 0x01 + PEM → client RSA-encrypted password."""
    full = b"\x01\x04"
    assert auth.caching_sha2_state(m.AuthMoreData.parse(full).data) is (
        auth.CachingSha2State.PERFORM_FULL_AUTH
    )
    assert auth.is_public_key_request(b"\x02")
    assert not auth.is_public_key_request(b"secret\0")
    pem = b"-----BEGIN PUBLIC KEY-----\nMIIB...\n-----END PUBLIC KEY-----\n"
    key = m.AuthMoreData.parse(b"\x01" + pem)
    assert auth.caching_sha2_state(key.data) is auth.CachingSha2State.PUBLIC_KEY
    assert key.data == pem


def test_cleartext_rules():
    assert auth.clear_password_allowed(True)
    assert not auth.clear_password_allowed(False)
    # client over TLS sends its password in clear: the origin leg must be TLS too
    assert not auth.full_auth_forward_allowed(client_tls=True, origin_tls=False)
    assert auth.full_auth_forward_allowed(client_tls=True, origin_tls=True)
    # a plain client RSA-encrypts with the origin's key: safe to forward
    assert auth.full_auth_forward_allowed(client_tls=False, origin_tls=False)
    assert auth.sends_cleartext(auth.MYSQL_CLEAR_PASSWORD, client_tls=False)
    assert auth.sends_cleartext(auth.CACHING_SHA2_PASSWORD, client_tls=True)
    assert not auth.sends_cleartext(auth.CACHING_SHA2_PASSWORD, client_tls=False)
    assert not auth.sends_cleartext(auth.MYSQL_NATIVE_PASSWORD, client_tls=True)
    assert not auth.sends_cleartext(auth.CLIENT_ED25519, client_tls=True)
