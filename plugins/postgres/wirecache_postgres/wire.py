"""Message I/O over a trio stream for the startup and authentication phases.

The relay loop has its own batched fast path; these helpers serve the phases
where one message at a time is read and answered.
"""

from __future__ import annotations

import trio

from wirecache_postgres.framing import MessageReader, ProtocolError

#: Bytes asked of the socket per read.
READ_SIZE = 65536


class PeerClosed(Exception):
    """The peer closed the connection where a message was expected."""


class MessageStream:
    """A trio stream plus its receive buffer."""

    def __init__(self, stream: trio.abc.Stream, reader: MessageReader | None = None) -> None:
        self.stream = stream
        self.reader = reader or MessageReader()

    async def _fill(self) -> None:
        data = await self.stream.receive_some(READ_SIZE)
        if not data:
            raise PeerClosed()
        self.reader.feed(data)

    async def startup_packet(self) -> tuple[int, bytes, bytes]:
        """The next untyped startup-phase packet: (code, payload, raw)."""
        while (packet := self.reader.next_startup()) is None:
            await self._fill()
        return packet

    async def message(self) -> tuple[int, bytes, bytes]:
        """The next regular message: (type, body, raw)."""
        while (msg := self.reader.next_message()) is None:
            await self._fill()
        return msg

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)


__all__ = ["MessageStream", "PeerClosed", "ProtocolError", "READ_SIZE"]
