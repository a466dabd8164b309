"""Entry storage: a byte-bounded LRU in memory (L1) in front of diskcache (L2).

L1 answers hits without leaving the process. L2 is diskcache on local disk:
it survives restarts and is shared by worker processes on one host. Entries
are promoted from L2 into L1 on first use.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import diskcache

#: Bookkeeping bytes charged per L1 entry on top of its payload, so a budget
#: holds even when entries are tiny.
ENTRY_OVERHEAD = 200


@dataclass(slots=True)
class Entry:
    """A cached response: ready-to-send bytes and what they depend on.

    ``versions`` is the snapshot of the table versions of ``database`` and
    ``tables`` taken before the statement went to the origin. ``expires`` is
    a wall-clock time so that it stays meaningful in L2 across restarts.
    """

    payload: bytes
    database: str
    tables: tuple[str, ...]
    versions: tuple[int, ...]
    expires: float
    fingerprint: str


class MemoryLRU:
    """L1: an LRU bounded by the bytes of its entries."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._entries: OrderedDict[bytes, Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: bytes, entry: Entry) -> None:
        size = len(entry.payload) + ENTRY_OVERHEAD
        if size > self.budget:
            return
        self.discard(key)
        self._entries[key] = entry
        self.used += size
        while self.used > self.budget:
            _, old = self._entries.popitem(last=False)
            self.used -= len(old.payload) + ENTRY_OVERHEAD

    def discard(self, key: bytes) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.used -= len(old.payload) + ENTRY_OVERHEAD

    def clear(self) -> None:
        self._entries.clear()
        self.used = 0


class EntryStore:
    """L1 over L2. ``get`` returns entries that have not expired; freshness
    against table versions is the caller's business (it owns the versions)."""

    def __init__(self, directory: Path | None, memory_budget: int, disk_budget: int) -> None:
        self.l1 = MemoryLRU(memory_budget)
        self.l2 = (
            diskcache.Cache(str(directory), size_limit=disk_budget, cull_limit=10)
            if directory is not None and disk_budget > 0
            else None
        )

    def get(self, key: bytes) -> Entry | None:
        entry = self.l1.get(key)
        if entry is None and self.l2 is not None:
            entry = self.l2.get(key)
            if entry is not None:
                self.l1.put(key, entry)
        if entry is not None and entry.expires <= time.time():
            self.discard(key)
            return None
        return entry

    def put(self, key: bytes, entry: Entry) -> None:
        self.l1.put(key, entry)
        if self.l2 is not None:
            self.l2.set(key, entry, expire=max(entry.expires - time.time(), 0.001))

    def discard(self, key: bytes) -> None:
        self.l1.discard(key)
        if self.l2 is not None:
            self.l2.delete(key)

    def clear(self) -> None:
        self.l1.clear()
        if self.l2 is not None:
            self.l2.clear()

    def close(self) -> None:
        if self.l2 is not None:
            self.l2.close()
