"""TCP streams whose reads and writes skip trio's scheduler when the kernel is ready.

trio's ``SocketStream`` passes through the scheduler on every call: a
``receive_some`` that finds data waiting still yields once, and so does a
``send_all`` that the kernel accepts at once. For a proxy relaying small
messages that pass is most of the cost of a message (a trio checkpoint is
7 µs on the 2-core machine of bench/README.md, and each relayed statement
took several). :class:`DirectStream` tries the system call first and goes
through trio only when it has to wait (``EAGAIN``), or every
:data:`FAIR_EVERY` calls that did not, so that a peer that never lets the
socket run dry cannot starve the other sessions. A read still notices
cancellation (draining) before it returns data. No library offers this: trio
checkpoints by design, and the stdlib socket is what is left.
"""

from __future__ import annotations

import os
import socket as stdlib_socket
from collections.abc import Awaitable, Callable

import trio
from trio.lowlevel import checkpoint, checkpoint_if_cancelled, wait_readable, wait_writable

#: Calls served without waiting after which the stream yields to the scheduler anyway.
FAIR_EVERY = 32


class DirectStream(trio.abc.HalfCloseableStream):
    """A :class:`trio.SocketStream` with non-blocking fast paths (see the module docstring).

    It reads and writes through its own duplicate of the socket's descriptor;
    ``setsockopt``, ``send_eof`` and ``aclose`` go to the wrapped stream as
    usual. (``trio.SocketStream`` cannot be subclassed.)
    """

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.socket = stream.socket
        self._raw = stdlib_socket.socket(fileno=os.dup(stream.socket.fileno()))
        self._raw.setblocking(False)
        self._streak = 0
        self._closed = False

    async def _fair(self) -> None:
        self._streak += 1
        if self._streak >= FAIR_EVERY:
            self._streak = 0
            await checkpoint()

    async def _wait(self, waiter: Callable[[stdlib_socket.socket], Awaitable[None]]) -> None:
        self._streak = 0
        try:
            await waiter(self._raw)
        except trio.ClosedResourceError:
            raise trio.ClosedResourceError("this stream was closed") from None

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("this stream was closed")

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await checkpoint_if_cancelled()
        while True:
            self._check_open()
            data = self.receive_nowait(max_bytes or 65536)
            if data is not None:
                await self._fair()
                return data
            await self._wait(wait_readable)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        sent = 0
        total = len(view)
        while sent < total:
            self._check_open()
            taken = self.send_nowait(view[sent:] if sent else view)
            if not taken:
                await self._wait(wait_writable)
            sent += taken
        if total == 0:
            await checkpoint()
        else:
            await self._fair()

    # -- for handlers that must not wait (see wirecache.hotloop) ---------------

    def fileno(self) -> int:
        return self._raw.fileno()

    async def wait_readable(self) -> None:
        await wait_readable(self._raw)

    def receive_nowait(self, max_bytes: int = 65536) -> bytes | None:
        """What the socket holds (b"" at end of stream), or None when it holds nothing."""
        try:
            return self._raw.recv(max_bytes)
        except BlockingIOError:
            return None
        except OSError as e:
            raise trio.BrokenResourceError(f"socket connection broken: {e}") from e

    def send_nowait(self, data: bytes | memoryview) -> int:
        """Send what the kernel takes at once; the number of bytes it took."""
        try:
            return self._raw.send(data)
        except BlockingIOError:
            return 0
        except OSError as e:
            raise trio.BrokenResourceError(f"socket connection broken: {e}") from e

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            trio.lowlevel.notify_closing(self._raw)
            self._raw.close()
        await self.stream.aclose()

    async def send_eof(self) -> None:
        await self.stream.send_eof()

    async def wait_send_all_might_not_block(self) -> None:
        await wait_writable(self._raw)

    def setsockopt(self, level: int, option: int, value: int | bytes) -> None:
        self.stream.setsockopt(level, option, value)

    def getsockopt(self, level: int, option: int, buffersize: int = 0) -> int | bytes:
        return self.stream.getsockopt(level, option, buffersize)


def direct(stream: trio.SocketStream) -> DirectStream:
    """The same connection as ``stream`` with :class:`DirectStream`'s fast paths."""
    return DirectStream(stream)
