"""Packet I/O over a trio stream: the thin layer between sockets and the sans-IO parsers."""

from __future__ import annotations

import trio
from wirecache.api import Outbox

from wirecache_mysql.packets import (
    DEFAULT_MAX_MESSAGE,
    Message,
    Packet,
    PacketReader,
    ProtocolError,
    resequence,
)

#: Bytes asked of the socket per read.
READ_SIZE = 65536


class PeerClosed(Exception):
    """The peer closed the connection where a packet was expected."""


class PacketStream:
    """A trio stream plus its receive buffer and its FIFO of bytes to send.

    Everything sent goes through :attr:`outbox`, so what a hot-loop handler
    queued (and may not have sent yet) always goes out before what a task
    sends after it.
    """

    __slots__ = ("stream", "reader", "outbox", "eof")

    def __init__(self, stream: trio.abc.Stream, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.stream = stream
        self.reader = PacketReader(max_message)
        self.outbox = Outbox(stream)
        #: Whether the peer closed its side (the reader may still hold packets).
        self.eof = False

    async def read(self) -> None:
        """Read more bytes, or set :attr:`eof`."""
        data = await self.stream.receive_some(READ_SIZE)
        if data:
            self.reader.receive_data(data)
        else:
            self.eof = True

    def read_nowait(self) -> bool:
        """For a hot-loop handler (plain TCP only): take what the socket holds.
        False when it held nothing, True when bytes were read or :attr:`eof` set."""
        data = self.stream.receive_nowait(READ_SIZE)
        if data is None:
            return False
        if data:
            self.reader.receive_data(data)
        else:
            self.eof = True
        return True

    async def fill(self) -> None:
        """Read more bytes; :class:`PeerClosed` at the end of the stream."""
        if not self.eof:
            await self.read()
        if self.eof:
            raise PeerClosed()

    async def message(self) -> Message:
        """The next logical payload (split packets reassembled)."""
        while (msg := self.reader.next_message()) is None:
            await self.fill()
        return msg

    async def packet(self) -> Packet:
        """The next physical packet."""
        while (pkt := self.reader.next_packet()) is None:
            await self.fill()
        return pkt

    async def send(self, data: bytes | bytearray) -> None:
        """Send ``data`` after whatever is queued in :attr:`outbox`."""
        await self.outbox.send(data)


def with_seq(raw: bytes, first_seq: int) -> bytes:
    """Framed packets ``raw`` renumbered from ``first_seq`` (the two legs of a
    connection count differently during the handshake when only one uses TLS)."""
    if raw[3] == first_seq & 0xFF and len(raw) < 0xFFFFFF:
        return raw
    buf = bytearray(raw)
    resequence(buf, first_seq)
    return bytes(buf)


__all__ = ["PacketStream", "PeerClosed", "ProtocolError", "READ_SIZE", "with_seq"]
