"""Bytes owed to one side of a session, sent at once when possible.

A dialect's relay queues what it owes a peer here, from a hot-loop handler
(:meth:`Outbox.send_nowait`, which never waits) or from a task
(:meth:`Outbox.drain`). Both may write to the same peer (the client gets
wirecache's own answers and the origin's), so order is kept by one FIFO and
one lock: a handler never sends while a task is in the middle of sending.
"""

from __future__ import annotations

import trio

from wirecache.sockets import DirectStream


class Outbox:
    """A FIFO of bytes for ``stream``; see the module docstring."""

    __slots__ = ("stream", "parts", "_lock")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        #: Pieces queued, oldest first. Appending to it directly is allowed.
        self.parts: list[bytes] = []
        self._lock = trio.Lock()

    def __bool__(self) -> bool:
        return bool(self.parts)

    def add(self, data: bytes) -> None:
        self.parts.append(data)

    def send_nowait(self) -> bool:
        """Send what the socket takes at once; True when nothing is left.

        Only for a :class:`DirectStream`. False also while a task is sending
        (it sends the rest).
        """
        parts = self.parts
        if not parts:
            return True
        if self._lock.locked():
            return False
        assert isinstance(self.stream, DirectStream)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        sent = self.stream.send_nowait(data)
        self.parts = [data[sent:]] if sent < len(data) else []
        return sent == len(data)

    def send_ahead(self, data: bytes) -> int | None:
        """Send ``data`` at once, before the caller's bookkeeping for it, when nothing
        is queued or being sent (else None: queue it). Returns how much the socket
        took; the caller queues the rest. A relay uses it so that its own work on
        a message overlaps the peer's, instead of adding to the round trip."""
        if self.parts or self._lock.locked():
            return None
        assert isinstance(self.stream, DirectStream)
        return self.stream.send_nowait(data)

    async def drain(self) -> None:
        """Send everything queued, waiting as needed. The lock is taken without a
        checkpoint when free (the common case)."""
        lock = self._lock
        try:
            lock.acquire_nowait()
        except trio.WouldBlock:
            await lock.acquire()
        try:
            while self.parts:
                parts = self.parts
                self.parts = []
                await self.stream.send_all(parts[0] if len(parts) == 1 else b"".join(parts))
        finally:
            lock.release()

    async def send(self, data: bytes) -> None:
        """Queue ``data`` and send everything queued."""
        self.parts.append(data)
        await self.drain()
