"""Connecting to the origin: TCP, its greeting, then TLS per the cache's ``origin_tls``.

MySQL negotiates TLS after the server speaks: the server's HandshakeV10
offers CLIENT_SSL, the client answers with a 32-byte SSLRequest (sequence 1)
and both start TLS; the HandshakeResponse41 follows encrypted (sequence 2).
wirecache terminates the client's TLS itself, so on the origin leg it sends
an SSLRequest of its own whenever TLS is configured, independent of what the
client did.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import trio
from wirecache.api import Cache, Connection, OriginUnavailable

from wirecache_mysql import messages as m
from wirecache_mysql.packets import ProtocolError, build_packet
from wirecache_mysql.wire import PacketStream, PeerClosed

#: Results may hold rows up to max_allowed_packet (1 GiB at most).
ORIGIN_MAX_MESSAGE = 1 << 30
#: How long the origin may take to greet.
GREETING_TIMEOUT = 10.0


@dataclass
class OriginLeg:
    """The connection to the origin while the session is being set up."""

    cache: Cache
    packets: PacketStream
    greeting: m.HandshakeV10
    tls: bool = False

    async def aclose(self) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await self.packets.stream.aclose()


async def connect(conn: Connection, cache: Cache) -> OriginLeg:
    """Open the origin of ``cache`` and read its greeting."""
    stream = await conn.open_origin(cache)
    packets = PacketStream(stream, ORIGIN_MAX_MESSAGE)
    try:
        with trio.fail_after(GREETING_TIMEOUT):
            msg = await packets.message()
        if msg.payload[:1] == b"\xff":
            err = m.ErrPacket.parse(msg.payload)
            raise OriginUnavailable(
                cache.id, str(cache.origin),
                f"it refused the connection: {err.message.decode('utf-8', 'replace')}",
            )  # fmt: skip
        greeting = m.HandshakeV10.parse(msg.payload)
    except (trio.TooSlowError, PeerClosed, ProtocolError, trio.BrokenResourceError, OSError) as e:
        with contextlib.suppress(OSError, trio.BrokenResourceError):
            await stream.aclose()
        raise OriginUnavailable(
            cache.id, str(cache.origin), f"it did not greet like a MySQL server ({e!r})"
        ) from e
    except OriginUnavailable:
        await stream.aclose()
        raise
    return OriginLeg(cache, packets, greeting)


async def secure(
    conn: Connection, leg: OriginLeg, capabilities: int, max_packet: int, charset: int
) -> int:
    """Start TLS on the origin leg when configured; return the sequence id of the
    HandshakeResponse41 that follows (1 in clear, 2 after an SSLRequest)."""
    cache = leg.cache
    if conn.origin_tls(cache) is None:
        return 1
    if not leg.greeting.capabilities & m.CLIENT_SSL:
        if cache.config.origin_tls == "prefer":
            return 1
        raise OriginUnavailable(
            cache.id, str(cache.origin),
            f"origin_tls is {cache.config.origin_tls!r} but the origin does not offer TLS",
        )  # fmt: skip
    request = m.SSLRequest(capabilities | m.CLIENT_SSL, max_packet, charset)
    try:
        await leg.packets.send(build_packet(1, request.build()))
    except (trio.BrokenResourceError, OSError) as e:
        raise OriginUnavailable(cache.id, str(cache.origin), f"connection lost: {e}") from e
    if leg.packets.reader.buffered:
        raise OriginUnavailable(cache.id, str(cache.origin), "unexpected data before TLS")
    stream = await conn.start_origin_tls(leg.packets.stream, cache)
    leg.packets = PacketStream(stream, ORIGIN_MAX_MESSAGE)
    leg.tls = True
    return 2
