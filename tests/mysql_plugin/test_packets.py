"""Framing: packet reader, split payloads, builder and re-sequencing."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wirecache_mysql.packets import (
    MAX_PACKET_PAYLOAD,
    PacketReader,
    ProtocolError,
    build_packet,
    resequence,
)

# Captured from MariaDB 10.11: OK, then a text result set (SELECT 1, NULL, 'abc').
OK_RAW = bytes.fromhex("0700000200000002000000")


def test_single_packet_round_trip():
    raw = build_packet(3, b"\x03SELECT 1")
    assert raw == b"\x09\x00\x00\x03\x03SELECT 1"
    reader = PacketReader()
    reader.receive_data(raw)
    message = reader.next_message()
    assert (message.seq, message.last_seq, message.payload, message.raw) == (
        3, 3, b"\x03SELECT 1", raw
    )
    assert reader.next_message() is None
    assert reader.buffered == 0


def test_empty_payload_is_a_packet():
    assert build_packet(0, b"") == b"\0\0\0\0"


def test_every_byte_boundary():
    stream = build_packet(0, b"hello") + OK_RAW + build_packet(9, b"") + build_packet(255, b"x")
    for cut in range(len(stream) + 1):
        reader = PacketReader()
        got = []
        for part in (stream[:cut], stream[cut:]):
            reader.receive_data(part)
            got.extend(reader)
        assert [(m.seq, m.payload) for m in got] == [
            (0, b"hello"), (2, bytes.fromhex("00000002000000")), (9, b""), (255, b"x")
        ]
        assert b"".join(m.raw for m in got) == stream


def test_one_byte_at_a_time():
    stream = OK_RAW * 3
    reader = PacketReader()
    got = []
    for b in stream:
        reader.receive_data(bytes((b,)))
        got.extend(reader)
    assert len(got) == 3


def test_split_payload_just_over_16mb():
    payload = bytes(range(256)) * (MAX_PACKET_PAYLOAD // 256 + 1) + b"abcdefghij"
    assert len(payload) > MAX_PACKET_PAYLOAD
    raw = build_packet(7, payload)
    assert raw[:4] == b"\xff\xff\xff\x07"
    tail_len = len(payload) - MAX_PACKET_PAYLOAD
    assert raw[4 + MAX_PACKET_PAYLOAD : 8 + MAX_PACKET_PAYLOAD] == (
        tail_len.to_bytes(3, "little") + b"\x08"
    )
    # logical assembly, fed in uneven chunks crossing the second header
    reader = PacketReader(max_message=32 * 1024 * 1024)
    for start in range(0, len(raw), 5_000_001):
        reader.receive_data(raw[start : start + 5_000_001])
    message = reader.next_message()
    assert (message.seq, message.last_seq) == (7, 8)
    assert message.payload == payload and message.raw == raw
    # raw relay: two physical packets, the first marked continued
    relay = PacketReader(max_message=32 * 1024 * 1024)
    relay.receive_data(raw)
    first, second = relay.next_packet(), relay.next_packet()
    assert first.continued and not second.continued
    assert first.raw + second.raw == raw
    assert relay.next_packet() is None


def test_exact_multiple_of_max_ends_with_empty_packet():
    payload = b"\x01" * MAX_PACKET_PAYLOAD
    raw = build_packet(0, payload)
    assert raw.endswith(b"\0\0\0\x01") and len(raw) == MAX_PACKET_PAYLOAD + 8
    reader = PacketReader(max_message=MAX_PACKET_PAYLOAD)
    reader.receive_data(raw)
    assert reader.next_message().payload == payload


def test_max_message_enforced_before_buffering():
    reader = PacketReader(max_message=100)
    reader.receive_data(b"\x65\x00\x00\x00")  # header announcing 101 bytes
    with pytest.raises(ProtocolError):
        reader.next_packet()


def test_max_message_counts_continuations():
    reader = PacketReader(max_message=MAX_PACKET_PAYLOAD + 5)
    reader.receive_data(b"\xff\xff\xff\x00" + b"\0" * MAX_PACKET_PAYLOAD + b"\x06\x00\x00\x01")
    assert reader.next_packet().continued
    with pytest.raises(ProtocolError):
        reader.next_packet()


def test_continuation_with_wrong_sequence_rejected():
    reader = PacketReader()
    reader.receive_data(b"\xff\xff\xff\x00" + b"\0" * MAX_PACKET_PAYLOAD + b"\x00\x00\x00\x05")
    with pytest.raises(ProtocolError):
        reader.next_message()


def test_truncated_packet_waits():
    reader = PacketReader()
    reader.receive_data(OK_RAW[:-1])
    assert reader.next_message() is None
    assert reader.buffered == len(OK_RAW) - 1


def test_resequence_in_place():
    stored = bytearray(build_packet(1, b"\x01") + build_packet(2, b"col") + OK_RAW)
    nxt = resequence(stored, 254)
    assert nxt == 1
    assert [stored[3], stored[8], stored[15]] == [254, 255, 0]
    reader = PacketReader()
    reader.receive_data(bytes(stored))
    assert [m.payload for m in reader] == [b"\x01", b"col", OK_RAW[4:]]


def test_resequence_split_payload():
    stored = bytearray(build_packet(0, b"z" * (MAX_PACKET_PAYLOAD + 1)))
    assert resequence(stored, 10) == 12
    assert stored[3] == 10 and stored[MAX_PACKET_PAYLOAD + 7] == 11


def test_resequence_rejects_misaligned_buffer():
    with pytest.raises(ProtocolError):
        resequence(bytearray(OK_RAW[:-2]), 0)


@given(st.lists(st.binary(max_size=300), max_size=8), st.integers(0, 255), st.integers(0, 255))
def test_build_read_resequence_round_trip(payloads, seq, new_seq):
    stream = b"".join(build_packet(seq + i, p) for i, p in enumerate(payloads))
    buf = bytearray(stream)
    assert resequence(buf, new_seq) == (new_seq + len(payloads)) & 0xFF
    reader = PacketReader()
    reader.receive_data(bytes(buf))
    got = list(reader)
    assert [m.payload for m in got] == payloads
    assert [m.seq for m in got] == [(new_seq + i) & 0xFF for i in range(len(payloads))]


@given(st.lists(st.binary(max_size=64), max_size=10), st.integers(0, 300))
def test_fuzz_reader_only_raises_protocol_error(chunks, limit):
    reader = PacketReader(max_message=limit)
    try:
        for chunk in chunks:
            reader.receive_data(chunk)
            for message in reader:
                assert len(message.payload) <= limit
    except ProtocolError:
        pass
