"""Which keys L2 may hold, so that a key it cannot hold costs no SQLite read.

Every L1 miss used to ask L2 (a diskcache read, ~50 µs on the bench machine,
on the event loop); for a result never seen before that read always finds
nothing, and such misses are most misses. :class:`KeyFilter` is a Bloom filter
over the keys written to L2. Keys are blake2b digests, already uniformly
random, so their own bytes give the bit positions. Keys are only ever added: a
key deleted from L2 keeps its bits, which costs a read, never an answer.
(A Bloom filter is a few lines; the packages that offer one bring C
extensions or more than is needed here.)

Worker processes share one filter in a mapped file (:meth:`KeyFilter.mapped`).
Two workers setting bits of the same byte at the same instant may lose one of
them: a key another worker just wrote is then not looked for, which costs a
miss, never a stale answer (everything read from L2 is checked anyway).
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterable
from pathlib import Path

#: Bits in the filter (1 MiB): about 3 % false positives at a million keys.
BITS = 1 << 23
#: The three 32-bit words of a key its positions come from.
_WORDS = struct.Struct("<3I").unpack_from


class KeyFilter:
    """A Bloom filter with three positions per key, taken from the key's bytes."""

    __slots__ = ("_bits", "_mask")

    def __init__(
        self, keys: Iterable[bytes] = (), bits: int = BITS, *, buffer: mmap.mmap | None = None
    ) -> None:
        if bits & (bits - 1):
            raise ValueError("bits must be a power of two")
        self._bits: bytearray | mmap.mmap = bytearray(bits // 8) if buffer is None else buffer
        self._mask = bits - 1
        for key in keys:
            self.add(key)

    @classmethod
    def mapped(cls, path: Path) -> KeyFilter | None:
        """The filter written to ``path`` (see :meth:`write`), shared with every
        process that maps it; None if there is none."""
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            if os.fstat(fd).st_size != BITS // 8:
                return None
            return cls(buffer=mmap.mmap(fd, BITS // 8))
        finally:
            os.close(fd)

    def write(self, path: Path) -> None:
        path.write_bytes(bytes(self._bits))

    def add(self, key: bytes) -> None:
        bits, mask = self._bits, self._mask
        for word in _WORDS(key):
            p = word & mask
            bits[p >> 3] |= 1 << (p & 7)

    def __contains__(self, key: bytes) -> bool:
        # (Asked on every L1 miss, and usually answered by the first position.)
        bits, mask = self._bits, self._mask
        for word in _WORDS(key):
            p = word & mask
            if not bits[p >> 3] & (1 << (p & 7)):
                return False
        return True
