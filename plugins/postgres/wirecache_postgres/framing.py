"""Bytes ⇄ framed PostgreSQL messages, sans-IO.

The PostgreSQL protocol has two framings:

* Startup-phase packets (StartupMessage, SSLRequest, GSSENCRequest,
  CancelRequest) are ``int32 length`` (counting itself) followed by an
  ``int32 code`` and a payload; there is no type byte.
* Every later message is ``byte type`` + ``int32 length`` (counting itself,
  not the type byte) + body.

:class:`MessageReader` is the receive buffer for either: the I/O layer
``feed()``s it whatever the socket returned and pulls complete frames out. It
never touches a socket, so it can be driven from captures and fuzzers.

Three ways to pull regular messages, for three kinds of caller:

* :meth:`MessageReader.next_message` – one ``(type, body, raw)`` at a time,
  for the session state machine (startup, auth, the odd control message).
* :meth:`MessageReader.next_batch` – every complete message buffered at the
  head, as one contiguous ``bytes`` plus the offsets where messages start.
  This is the relay fast path: a TCP read holding fifty DataRows becomes one
  ``send()`` and one list of ints, and when the read held only whole messages
  the returned ``bytes`` *is* the object that was fed (no copy at all).
* :meth:`MessageReader.next_header` + :meth:`MessageReader.next_chunk` – the
  streaming path for messages too big to hold whole (a 100 MB DataRow or
  CopyData): take the 5-byte header, then forward the payload in whatever
  pieces have arrived, holding no more than one socket read at a time.

Why bytes chunks rather than a bytearray: ``feed()`` stores the fed objects
as they are and joins them only when a frame needs bytes that straddle two
reads, and then only once the whole frame has arrived. Each byte is thus
copied at most a small constant number of times however it is split, and the
common case (reads aligned with message boundaries) copies nothing.
"""

from __future__ import annotations

import struct
from typing import Final

__all__ = [
    "MAX_MESSAGE_LENGTH",
    "MAX_STARTUP_LENGTH",
    "MessageReader",
    "ProtocolError",
    "frame",
]

#: Default cap on a regular message's length field (1 GiB, like the server's
#: own limit for the largest messages).
MAX_MESSAGE_LENGTH: Final = 1 << 30
#: Default cap on a startup packet's length field; the server uses 10000 too
#: (MAX_STARTUP_PACKET_LENGTH), so nothing legitimate is ever larger.
MAX_STARTUP_LENGTH: Final = 10000

_int32_at = struct.Struct("!i").unpack_from
_uint32_at = struct.Struct("!I").unpack_from
_header = struct.Struct("!Bi").pack


class ProtocolError(Exception):
    """The peer sent bytes that are not valid PostgreSQL protocol.

    ``message`` is worded to be sent back to the client as is, in an
    ErrorResponse with SQLSTATE ``sqlstate`` (08P01, protocol_violation),
    after which the connection must be closed: once framing is lost there is
    no way to find the next message boundary.
    """

    sqlstate: str = "08P01"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def whole_messages(data: bytes, max_message_length: int = MAX_MESSAGE_LENGTH) -> list[int] | None:
    """The offsets of the messages in ``data`` when it holds exactly complete,
    valid messages, as one read usually does; else None, and the caller feeds a
    :class:`MessageReader`, which keeps what is incomplete and reports what is
    invalid. Saves the reader's buffering on the common path."""
    offsets = []
    pos, end = 0, len(data)
    while pos + 5 <= end:
        length = _int32_at(data, pos + 1)[0]
        if length < 4 or length > max_message_length:
            return None
        offsets.append(pos)
        pos += 1 + length
    return offsets if pos == end and offsets else None


def frame(type_byte: int, body: bytes) -> bytes:
    """Return the wire form of one regular message: type, length, body."""
    return _header(type_byte, len(body) + 4) + body


class MessageReader:
    """Receive buffer that splits a byte stream into PostgreSQL frames.

    Not thread-safe; one per direction of one connection. All ``next_*``
    methods return ``None`` when more bytes are needed and raise
    :class:`ProtocolError` when the bytes at the head cannot be a valid frame
    (a length below 4, above the configured maximum, …). A frame that is
    invalid is detected only when it reaches the head, so every valid message
    before it is still delivered first.
    """

    __slots__ = (
        "max_message_length",
        "max_startup_length",
        "_buf",
        "_pos",
        "_parts",
        "_size",
        "_stream_left",
    )

    def __init__(
        self,
        max_message_length: int = MAX_MESSAGE_LENGTH,
        max_startup_length: int = MAX_STARTUP_LENGTH,
    ) -> None:
        self.max_message_length = max_message_length
        self.max_startup_length = max_startup_length
        # Unconsumed bytes are self._buf[self._pos:] followed by self._parts.
        # Invariant: if self._size > 0 then self._buf[self._pos:] is non-empty.
        self._buf = b""
        self._pos = 0
        self._parts: list[bytes] = []
        self._size = 0
        self._stream_left = 0

    # -- input -------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes received from the peer (any split is fine)."""
        if not data:
            return
        if type(data) is not bytes:
            data = bytes(data)
        if self._size:
            self._parts.append(data)
        else:
            self._buf = data
            self._pos = 0
        self._size += len(data)

    @property
    def buffered(self) -> int:
        """Bytes fed but not yet returned.

        After an SSLRequest or GSSENCRequest this must be 0 before the TLS
        handshake starts: bytes sent ahead of the handshake would otherwise
        be treated as if they had arrived encrypted (CVE-2021-23214).
        """
        return self._size

    @property
    def stream_remaining(self) -> int:
        """Payload bytes of the message being streamed not yet returned by
        :meth:`next_chunk`; 0 when no message is being streamed."""
        return self._stream_left

    def peek(self, n: int) -> bytes:
        """Return up to ``n`` buffered bytes without consuming them.

        Lets the caller sniff the first byte of a connection, e.g. ``0x16``
        for a TLS ClientHello sent directly (``sslnegotiation=direct``)
        instead of a startup packet.
        """
        n = min(n, self._size)
        self._contiguous(n)
        return self._buf[self._pos : self._pos + n]

    # -- startup phase -----------------------------------------------------

    def next_startup(self) -> tuple[int, bytes, bytes] | None:
        """Return the next startup-phase packet as ``(code, payload, raw)``.

        ``code`` is the int32 after the length: the protocol version of a
        StartupMessage (196608 for 3.0) or one of the request codes of
        SSLRequest, GSSENCRequest and CancelRequest. ``payload`` is what
        follows it and ``raw`` the whole packet, for forwarding.
        """
        if not self._contiguous(4):
            return None
        length = _int32_at(self._buf, self._pos)[0]
        if length < 8 or length > self.max_startup_length:
            raise ProtocolError(f"invalid length of startup packet: {length}")
        if not self._contiguous(length):
            return None
        pos = self._pos
        raw = self._buf[pos : pos + length]
        self._consume(length)
        return _uint32_at(raw, 4)[0], raw[8:], raw

    # -- regular messages --------------------------------------------------

    def next_message(self) -> tuple[int, bytes, bytes] | None:
        """Return the next complete message as ``(type_byte, body, raw)``.

        ``body`` excludes the 5-byte header; ``raw`` is the whole message as
        it came off the wire. A message is returned only once it is buffered
        whole, so use :meth:`next_header` for messages that may be huge.
        """
        self._check_not_streaming()
        total = self._head_size()
        if total < 0 or not self._contiguous(total):
            return None
        pos = self._pos
        raw = self._buf[pos : pos + total]
        self._consume(total)
        return raw[0], raw[5:], raw

    def __iter__(self) -> MessageReader:
        return self

    def __next__(self) -> tuple[int, bytes, bytes]:
        """Iterate over complete messages with :meth:`next_message`."""
        msg = self.next_message()
        if msg is None:
            raise StopIteration
        return msg

    def next_batch(self) -> tuple[bytes, list[int]] | None:
        """Return all complete messages at the head as ``(data, offsets)``.

        ``data`` is their wire bytes back to back, ready to forward with one
        write; message ``i`` starts at ``offsets[i]`` (its type byte is
        ``data[offsets[i]]``) and ends where the next starts or at
        ``len(data)``. ``None`` if not even the first message is complete.
        A batch stops before an incomplete or invalid frame; an invalid one
        raises on the following call.
        """
        self._check_not_streaming()
        total = self._head_size()
        if total < 0 or not self._contiguous(total):
            return None
        buf = self._buf
        start = self._pos
        end = len(buf)
        limit = self.max_message_length
        offsets = [0]
        pos = start + total
        # Only the contiguous head chunk is scanned: frames that straddle
        # into self._parts come out on the next call, after one join.
        while pos + 5 <= end:
            length = _int32_at(buf, pos + 1)[0]
            if length < 4 or length > limit or pos + 1 + length > end:
                break
            offsets.append(pos - start)
            pos += 1 + length
        data = buf[start:pos]
        self._consume(pos - start)
        return data, offsets

    def next_header(self, min_length: int = 0) -> tuple[int, int, bytes] | None:
        """Start streaming the message at the head; return its header.

        Returns ``(type_byte, body_length, raw_header)`` (``raw_header`` is
        the 5 wire bytes, to forward verbatim) and switches the reader to
        payload mode: :meth:`next_chunk` then yields the body piece by piece
        until :attr:`stream_remaining` is 0. Returns ``None`` (and stays in
        message mode) when the header is not buffered yet or the body is
        shorter than ``min_length``; a relay passes its streaming threshold
        there so small messages keep going through :meth:`next_batch`.
        """
        self._check_not_streaming()
        total = self._head_size()
        if total < 0 or total - 5 < min_length:
            return None
        pos = self._pos
        raw_header = self._buf[pos : pos + 5]
        self._consume(5)
        self._stream_left = total - 5
        return raw_header[0], total - 5, raw_header

    def next_chunk(self) -> bytes | None:
        """Return the next buffered piece of the streamed message's body.

        Pieces are never joined: each is (part of) one fed ``bytes``, so
        memory stays bounded by what the caller fed. ``None`` when nothing
        of the body is buffered or no message is being streamed.
        """
        left = self._stream_left
        if not left or not self._size:
            return None
        pos = self._pos
        take = min(len(self._buf) - pos, left)
        chunk = self._buf[pos : pos + take]
        self._consume(take)
        self._stream_left = left - take
        return chunk

    # -- internals ---------------------------------------------------------

    def _check_not_streaming(self) -> None:
        if self._stream_left:
            raise RuntimeError("a message is being streamed: drain it with next_chunk() first")

    def _head_size(self) -> int:
        """Wire size (type byte + length) of the head message, validated;
        -1 while its 5-byte header is incomplete."""
        if not self._contiguous(5):
            return -1
        length = _int32_at(self._buf, self._pos + 1)[0]
        if length < 4:
            raise ProtocolError(f"invalid message length: {length}")
        if length > self.max_message_length:
            raise ProtocolError(
                f"message length {length} exceeds the limit of {self.max_message_length}"
            )
        return length + 1

    def _contiguous(self, n: int) -> bool:
        """Make the first ``n`` unconsumed bytes contiguous in ``_buf``.

        False if fewer than ``n`` are buffered; nothing is copied then, which
        is what keeps slowly arriving large frames from being re-joined on
        every feed.
        """
        if len(self._buf) - self._pos >= n:
            return True
        if self._size < n:
            return False
        self._buf = b"".join([memoryview(self._buf)[self._pos :], *self._parts])
        self._pos = 0
        self._parts = []
        return True

    def _consume(self, n: int) -> None:
        """Drop ``n`` bytes, all of which lie in ``_buf``."""
        self._size -= n
        pos = self._pos + n
        if pos < len(self._buf):
            self._pos = pos
        elif self._parts:
            self._buf = self._parts.pop(0)
            self._pos = 0
        else:
            self._buf = b""
            self._pos = 0
