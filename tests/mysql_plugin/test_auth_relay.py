"""The authentication relay, byte by byte, over in-memory streams.

caching_sha2_password cannot be run against a MySQL 8 server here, so its
exchanges (fast path, full authentication over TLS, the RSA public-key
request) are built from the protocol documentation and played by a scripted
origin; the same harness checks that cleartext passwords never cross a plain
origin leg and that sequence ids are renumbered between the legs.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from wirecache_mysql import auth
from wirecache_mysql import messages as m
from wirecache_mysql.packets import build_packet
from wirecache_mysql.wire import PacketStream

CAPS = m.CLIENT_PROTOCOL_41 | m.CLIENT_PLUGIN_AUTH | m.CLIENT_SECURE_CONNECTION
OK = m.OkPacket(status_flags=m.SERVER_STATUS_AUTOCOMMIT).build(CAPS)
PEM = b"-----BEGIN PUBLIC KEY-----\nMIIB...\n-----END PUBLIC KEY-----\n"


class Legs:
    """The two far ends a test plays: the client and the origin."""

    def __init__(self) -> None:
        self.proxy_client, client = trio.testing.memory_stream_pair()
        self.proxy_origin, origin = trio.testing.memory_stream_pair()
        self.client = PacketStream(client)
        self.origin = PacketStream(origin)


async def run_relay(legs: Legs, script, *, delta=0, plugin=auth.CACHING_SHA2_PASSWORD,
                    client_tls=False, origin_tls=False):  # fmt: skip
    """Run the relay against ``script(legs)``; return the relay's result or exception."""
    box: dict[str, object] = {}

    async def relay() -> None:
        try:
            box["result"] = await auth.relay(
                PacketStream(legs.proxy_client), PacketStream(legs.proxy_origin), delta=delta,
                plugin=plugin, capabilities=CAPS, client_tls=client_tls, origin_tls=origin_tls,
            )  # fmt: skip
        except auth.AuthFailed as e:
            box["error"] = e
            if e.response is not None:
                await legs.proxy_client.send_all(e.response)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(relay)
            await script(legs)
    return box


async def test_caching_sha2_fast_path():
    async def script(legs: Legs) -> None:
        await legs.origin.send(build_packet(2, b"\x01\x03") + build_packet(3, OK))
        assert (await legs.client.message()).payload == b"\x01\x03"
        assert (await legs.client.message()).payload == OK

    box = await run_relay(Legs(), script)
    assert isinstance(box["result"], auth.AuthResult)


async def test_caching_sha2_full_auth_over_tls_both_legs():
    async def script(legs: Legs) -> None:
        await legs.origin.send(build_packet(2, b"\x01\x04"))
        more = await legs.client.message()
        assert (more.seq, more.payload) == (3, b"\x01\x04")  # renumbered: delta 1
        await legs.client.send(build_packet(4, b"secret\0"))
        answer = await legs.origin.message()
        assert (answer.seq, answer.payload) == (3, b"secret\0")
        await legs.origin.send(build_packet(4, OK))
        ok = await legs.client.message()
        assert ok.seq == 5

    box = await run_relay(Legs(), script, delta=1, client_tls=True, origin_tls=True)
    assert "result" in box


async def test_cleartext_password_never_crosses_a_plain_origin_leg():
    async def script(legs: Legs) -> None:
        await legs.origin.send(build_packet(2, b"\x01\x04"))
        await legs.client.message()
        await legs.client.send(build_packet(3, b"secret\0"))
        err = await legs.client.message()
        assert err.payload[0] == 0xFF and b"origin_tls" in err.payload
        assert legs.origin.reader.buffered == 0
        with trio.move_on_after(0.1):
            await legs.origin.fill()
            pytest.fail("the password reached the origin")

    box = await run_relay(Legs(), script, client_tls=True, origin_tls=False)
    assert isinstance(box["error"], auth.AuthFailed)


async def test_caching_sha2_rsa_public_key_request():
    encrypted = bytes(range(256))

    async def script(legs: Legs) -> None:
        await legs.origin.send(build_packet(2, b"\x01\x04"))
        await legs.client.message()
        await legs.client.send(build_packet(3, b"\x02"))  # request the public key
        assert (await legs.origin.message()).payload == b"\x02"
        await legs.origin.send(build_packet(4, b"\x01" + PEM))
        assert (await legs.client.message()).payload == b"\x01" + PEM
        await legs.client.send(build_packet(5, encrypted))
        assert (await legs.origin.message()).payload == encrypted
        await legs.origin.send(build_packet(6, OK))
        assert (await legs.client.message()).payload == OK

    box = await run_relay(Legs(), script)
    assert "result" in box


async def test_auth_switch_then_native_password():
    nonce = b"abcdefghij0123456789"

    async def script(legs: Legs) -> None:
        switch = m.AuthSwitchRequest(auth.MYSQL_NATIVE_PASSWORD, nonce + b"\0").build()
        await legs.origin.send(build_packet(2, switch))
        assert (await legs.client.message()).payload == switch
        answer = auth.native_password_scramble(b"pw", nonce)
        await legs.client.send(build_packet(3, answer))
        assert (await legs.origin.message()).payload == answer
        await legs.origin.send(build_packet(4, OK))
        await legs.client.message()

    box = await run_relay(Legs(), script, plugin=auth.CLIENT_ED25519)
    assert box["result"].plugin == auth.MYSQL_NATIVE_PASSWORD


@pytest.mark.parametrize(("client_tls", "origin_tls"), [(False, False), (True, False),
                                                        (False, True)])  # fmt: skip
async def test_clear_password_only_over_tls_on_both_legs(client_tls, origin_tls):
    async def script(legs: Legs) -> None:
        switch = m.AuthSwitchRequest(auth.MYSQL_CLEAR_PASSWORD, b"").build()
        await legs.origin.send(build_packet(2, switch))
        err = await legs.client.message()
        assert err.payload[0] == 0xFF and b"mysql_clear_password" in err.payload

    box = await run_relay(Legs(), script, client_tls=client_tls, origin_tls=origin_tls)
    assert isinstance(box["error"], auth.AuthFailed)


async def test_origin_error_is_forwarded_renumbered():
    async def script(legs: Legs) -> None:
        err = m.ErrPacket(1045, b"28000", b"Access denied").build()
        await legs.origin.send(build_packet(2, err))
        got = await legs.client.message()
        assert (got.seq, got.payload) == (3, err)

    box = await run_relay(Legs(), script, delta=1)
    assert "Access denied" in box["error"].reason


def test_initial_answer_rules():
    assert auth.initial_answer_allowed(auth.MYSQL_NATIVE_PASSWORD, b"x" * 20, False, False)
    assert not auth.initial_answer_allowed(auth.MYSQL_CLEAR_PASSWORD, b"pw\0", True, False)
    assert auth.initial_answer_allowed(auth.MYSQL_CLEAR_PASSWORD, b"pw\0", True, True)
    assert not auth.initial_answer_allowed(auth.SHA256_PASSWORD, b"pw\0", True, False)
    assert auth.initial_answer_allowed(auth.SHA256_PASSWORD, b"\x01", False, False)
