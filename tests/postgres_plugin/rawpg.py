"""A bare PostgreSQL frontend over plain TCP for tests that must send exact
extended-protocol messages (row limits, pipelines the drivers never build) and
compare the exact bytes that come back.

It authenticates as ``trust_user`` (no password) and speaks whatever
messages it is given; it interprets nothing but the framing.
"""

from __future__ import annotations

import contextlib
import socket
import struct

from wirecache_postgres import messages as m

TRUST_USER = "trust_user"


class RawConnection:
    """One session: ``send(*messages)`` then ``read_until_ready(n)``."""

    def __init__(self, host: str, port: int, user: str = TRUST_USER, database: str = "app"):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buf = b""
        self.sock.sendall(m.startup_message({"user": user, "database": database}))
        for kind, body in self.read_until_ready(1):
            if kind == "E":
                raise RuntimeError(f"startup failed: {body!r}")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(m.TERMINATE)
        self.sock.close()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, *messages: bytes) -> None:
        self.sock.sendall(b"".join(messages))

    def _message(self) -> tuple[str, bytes]:
        while True:
            if len(self.buf) >= 5:
                (length,) = struct.unpack("!I", self.buf[1:5])
                if len(self.buf) >= length + 1:
                    kind, body = chr(self.buf[0]), self.buf[5 : length + 1]
                    self.buf = self.buf[length + 1 :]
                    return kind, body
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            self.buf += data

    def read_until_ready(self, count: int) -> list[tuple[str, bytes]]:
        """Every message up to and including the ``count``-th ReadyForQuery."""
        out: list[tuple[str, bytes]] = []
        while count:
            kind, body = self._message()
            out.append((kind, body))
            if kind == "Z":
                count -= 1
        return out

    def run(self, *messages: bytes) -> list[tuple[str, bytes]]:
        """Send ``messages`` and read the answers to each Sync (and simple Query) in them."""
        self.send(*messages)
        syncs = sum(msg[0] in (m.Frontend.SYNC, m.Frontend.QUERY) for msg in messages)
        return self.read_until_ready(syncs)


def rows(answer: list[tuple[str, bytes]]) -> list[list[str | None]]:
    """The text values of the DataRows in ``answer``."""
    out = []
    for kind, body in answer:
        if kind == "D":
            out.append([None if v is None else v.decode() for v in m.parse_data_row(body).values])
    return out


def kinds(answer: list[tuple[str, bytes]]) -> str:
    """The message type letters of ``answer``, e.g. ``"12TDDCZ"``."""
    return "".join(kind for kind, _ in answer)
