"""Which keys L2 may hold, so that a key it cannot hold costs no SQLite read.

Every L1 miss used to ask L2 (a diskcache read, ~50 µs on the bench machine,
on the event loop); for a result never seen before that read always finds
nothing, and such misses are most misses. :class:`KeyFilter` is a Bloom filter
over the keys written to L2. Keys are blake2b digests, already uniformly
random, so their own bytes give the bit positions. Keys are only ever added: a
key deleted from L2 keeps its bits, which costs a read, never an answer.
(A Bloom filter is a few lines; the packages that offer one bring C
extensions or more than is needed here.)
"""

from __future__ import annotations

from collections.abc import Iterable

#: Bits in the filter (1 MiB): about 3 % false positives at a million keys.
BITS = 1 << 23


class KeyFilter:
    """A Bloom filter with three positions per key, taken from the key's bytes."""

    __slots__ = ("_bits", "_mask")

    def __init__(self, keys: Iterable[bytes] = (), bits: int = BITS) -> None:
        if bits & (bits - 1):
            raise ValueError("bits must be a power of two")
        self._bits = bytearray(bits // 8)
        self._mask = bits - 1
        for key in keys:
            self.add(key)

    def _positions(self, key: bytes) -> tuple[int, int, int]:
        mask = self._mask
        return (
            int.from_bytes(key[0:4], "little") & mask,
            int.from_bytes(key[4:8], "little") & mask,
            int.from_bytes(key[8:12], "little") & mask,
        )

    def add(self, key: bytes) -> None:
        bits = self._bits
        for p in self._positions(key):
            bits[p >> 3] |= 1 << (p & 7)

    def __contains__(self, key: bytes) -> bool:
        bits = self._bits
        return all(bits[p >> 3] & (1 << (p & 7)) for p in self._positions(key))
