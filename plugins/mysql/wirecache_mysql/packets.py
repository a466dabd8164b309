"""MySQL packet framing: bytes in, packets out, no I/O.

Every MySQL message travels in packets of a 3-byte little-endian payload length
and a 1-byte sequence id.  A logical payload of 0xFFFFFF bytes or more is split
into 0xFFFFFF-byte packets followed by a shorter one (possibly empty), so a
packet whose length is exactly 0xFFFFFF says "more of this payload follows".

The relay side forwards physical packets as they arrive (`PacketReader.next_packet`)
so that a 100 MB row never has to sit whole in memory; the parsing side wants
logical payloads (`PacketReader.next_message`).  Cached responses are stored
framed, and only their sequence ids are patched on a hit (`resequence`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "HEADER_SIZE",
    "MAX_PACKET_PAYLOAD",
    "Message",
    "Packet",
    "PacketReader",
    "ProtocolError",
    "build_packet",
    "resequence",
]

HEADER_SIZE = 4
MAX_PACKET_PAYLOAD = 0xFFFFFF
DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024


class ProtocolError(Exception):
    """Malformed or hostile protocol input; the connection must be closed."""


@dataclass(frozen=True, slots=True)
class Packet:
    """One physical packet: what a relay forwards unchanged."""

    seq: int
    payload: bytes
    raw: bytes

    @property
    def continued(self) -> bool:
        """True when the logical payload goes on in the next packet."""
        return len(self.payload) == MAX_PACKET_PAYLOAD


@dataclass(frozen=True, slots=True)
class Message:
    """One logical payload, reassembled from one or more physical packets."""

    seq: int
    last_seq: int
    payload: bytes
    raw: bytes


class PacketReader:
    """Receive buffer that cuts a byte stream into packets.

    Use either `next_packet` (relaying) or `next_message` (parsing) on one
    reader; both enforce `max_message`, the largest logical payload accepted,
    so that a hostile peer cannot make the proxy buffer without bound.
    """

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._max_message = max_message
        self._logical_len = 0  # bytes of the current logical payload seen so far
        self._expect_seq: int | None = None
        self._parts: list[Packet] = []

    def receive_data(self, data: bytes) -> None:
        """Append bytes read from the socket."""
        if self._pos and self._pos > len(self._buf) // 2:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as packets."""
        return len(self._buf) - self._pos

    def take_buffered(self) -> bytes:
        """Remove and return the bytes received past the last packet returned.

        After a client's SSL request these are the start of its TLS
        handshake, which must be fed to the TLS layer rather than parsed.
        """
        if self._parts or self._logical_len:
            raise ProtocolError("TLS requested in the middle of a split payload")
        data = bytes(self._buf[self._pos :])
        self._buf.clear()
        self._pos = 0
        return data

    def next_packet(self) -> Packet | None:
        """Return the next complete physical packet, or None if more bytes are needed."""
        buf, pos = self._buf, self._pos
        if len(buf) - pos < HEADER_SIZE:
            return None
        length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
        seq = buf[pos + 3]
        if self._logical_len + length > self._max_message:
            raise ProtocolError(f"payload exceeds the limit of {self._max_message} bytes")
        if self._expect_seq is not None and seq != self._expect_seq:
            raise ProtocolError(
                f"continuation packet has sequence {seq}, expected {self._expect_seq}"
            )
        end = pos + HEADER_SIZE + length
        if len(buf) < end:
            return None
        raw = bytes(buf[pos:end])
        self._pos = end
        if length == MAX_PACKET_PAYLOAD:
            self._logical_len += length
            self._expect_seq = (seq + 1) & 0xFF
        else:
            self._logical_len = 0
            self._expect_seq = None
        return Packet(seq, raw[HEADER_SIZE:], raw)

    def next_message(self) -> Message | None:
        """Return the next complete logical payload, or None if more bytes are needed."""
        while (packet := self.next_packet()) is not None:
            self._parts.append(packet)
            if not packet.continued:
                parts, self._parts = self._parts, []
                if len(parts) == 1:
                    return Message(packet.seq, packet.seq, packet.payload, packet.raw)
                return Message(
                    parts[0].seq,
                    packet.seq,
                    b"".join(p.payload for p in parts),
                    b"".join(p.raw for p in parts),
                )
        return None

    def __iter__(self):
        """Iterate over the complete logical messages buffered so far."""
        while (message := self.next_message()) is not None:
            yield message


def build_packet(seq: int, payload: bytes) -> bytes:
    """Frame `payload` starting at sequence `seq`, splitting it at 0xFFFFFF bytes.

    A payload whose length is a multiple of 0xFFFFFF (including zero) ends with
    an empty packet, as the protocol requires to mark its end.
    """
    n = len(payload)
    if n < MAX_PACKET_PAYLOAD:
        return n.to_bytes(3, "little") + bytes((seq & 0xFF,)) + payload
    out = bytearray()
    view = memoryview(payload)
    offset = 0
    while True:
        chunk = view[offset : offset + MAX_PACKET_PAYLOAD]
        out += len(chunk).to_bytes(3, "little")
        out.append(seq & 0xFF)
        out += chunk
        seq += 1
        offset += len(chunk)
        if len(chunk) < MAX_PACKET_PAYLOAD:
            return bytes(out)


def resequence(buf: bytearray, first_seq: int) -> int:
    """Rewrite, in place, the sequence ids of the framed packets in `buf`.

    Used on every cache hit: a stored response is replayed with ids that
    continue from the client's command.  Returns the next sequence id.
    """
    n = len(buf)
    pos = 0
    seq = first_seq & 0xFF
    while pos + HEADER_SIZE <= n:
        buf[pos + 3] = seq
        seq = (seq + 1) & 0xFF
        pos += HEADER_SIZE + (buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16)
    if pos != n:
        raise ProtocolError("buffer does not end on a packet boundary")
    return seq
