"""Stream helpers the dialects share."""

from __future__ import annotations

import trio


class PrefixedStream(trio.abc.Stream):
    """A stream that first yields bytes already read from ``inner``.

    Clients send their TLS ClientHello right behind a MySQL SSL request without
    waiting; the bytes read past the request must reach the TLS layer, so the
    TLS stream is stacked on this.
    """

    def __init__(self, inner: trio.abc.Stream, prefix: bytes) -> None:
        self.inner = inner
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix, b""
            return data
        return await self.inner.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.inner.send_eof()  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        await self.inner.aclose()
