"""Entry storage: a byte-bounded LRU in memory (L1) in front of diskcache (L2).

L1 answers hits without leaving the process. L2 is diskcache on local disk:
it survives restarts and is shared by worker processes on one host. Entries
are promoted from L2 into L1 on first use.

What reaches L2, and when, depends on who reads it:

* one process: L2 is a victim cache. An entry is written when L1 evicts it,
  if it was hit at least once (most results read once are never read again),
  and, for everything still in L1, at a clean shutdown. Nothing else can read
  L2 meanwhile, and after an unclean stop the table versions move to a new
  epoch (see versions.py), so an entry written earlier could never be served
  anyway. Writing on first use instead cost a pgbench -S run over 100,000
  rows a SQLite write per row, a third of a core and the GIL with it.
* workers (``shared``): the others read what one writes, so an entry is
  written when it is first hit (a result read once is rarely read again).
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import diskcache
import structlog

from wirecache.cache.keyfilter import KeyFilter

log = structlog.get_logger("wirecache.cache")

#: Bookkeeping bytes charged per L1 entry on top of its payload, so a budget
#: holds even when entries are tiny. Measured with tracemalloc in a 10-minute
#: run (bench/README.md): the Entry object, its version and table tuples, the
#: key and the LRU's dict node cost about 380 bytes besides the payload.
ENTRY_OVERHEAD = 400
#: The key filter workers share, in the L2 directory (see EntryStore.publish_filter).
FILTER_FILE = "keys.filter"
#: What L2 writes may hold in memory while they wait, as a share of L1's budget.
PENDING_SHARE = 4
#: SQLite's page cache per L2 connection (4 KiB pages; diskcache's default is 8,192,
#: i.e. 32 MiB for each of the event loop's and the writer's connections). L2 is
#: read only on L1 misses, and the operating system caches its file anyway
#: (diskcache maps it): the 10-minute memory run of bench/README.md used 40 MB
#: more anonymous memory with the default.
L2_PAGE_CACHE_PAGES = 1024


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
    #: Whether the entry was handed to L2 (see EntryStore.get).
    persisted: bool = False
    #: Whether it was found in L1 since it was stored (see EntryStore._evicted).
    used: bool = False
    #: The version generation at which ``versions`` was last found current (see
    #: VersionStore.generation); -1: never, as for anything read from L2.
    checked: int = -1


def _keys(disk: diskcache.Cache) -> Iterator[bytes]:
    return (k for k in disk.iterkeys() if isinstance(k, bytes))


def _size(entry: Entry) -> int:
    """What ``entry`` costs in memory, as L1 counts it."""
    return len(entry.payload) + ENTRY_OVERHEAD


class MemoryLRU:
    """L1: an LRU bounded by the bytes of its entries; ``on_evict`` is given what the
    budget pushes out."""

    def __init__(self, budget: int, on_evict: Callable[[bytes, Entry], None] | None = None) -> None:
        self.budget = budget
        self.used = 0
        self._entries: OrderedDict[bytes, Entry] = OrderedDict()
        self._on_evict = on_evict

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: bytes, entry: Entry) -> None:
        size = _size(entry)
        if size > self.budget:
            return
        self.discard(key)
        self._entries[key] = entry
        self.used += size
        while self.used > self.budget:
            old_key, old = self._entries.popitem(last=False)
            self.used -= _size(old)
            if self._on_evict is not None:
                self._on_evict(old_key, old)

    def items(self) -> list[tuple[bytes, Entry]]:
        return list(self._entries.items())

    def discard(self, key: bytes) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.used -= _size(old)

    def clear(self) -> None:
        self._entries.clear()
        self.used = 0


class L2Writer:
    """Writes to L2 on a thread of its own, in order, off the event loop.

    A diskcache write is an SQLite transaction: measured at a third to a half
    of a miss's cost on the event loop, and writes queued meanwhile share one
    transaction here. Entries reach L2 a moment later instead; nothing
    depends on their being there at once (L1 has them, and every read of L2
    is checked against the table versions anyway). At most
    :data:`MAX_PENDING` writes and ``max_pending_bytes`` of entries wait (what
    L1 pushed out is still in memory until written); past that new ones are
    dropped, since L2 is a second chance, not the record.
    """

    MAX_PENDING = 10_000
    #: Writes applied in one SQLite transaction at most, and how long the first
    #: waits for others to join it.
    BATCH = 256
    GATHER_SECONDS = 0.005
    #: Writes between two culls. diskcache culls on every set by default, which
    #: cost a third of a write (a size query each time); L2 may now exceed its
    #: budget by this many entries for a moment.
    CULL_EVERY = 100

    def __init__(self, disk: diskcache.Cache, max_pending_bytes: int = 1 << 62) -> None:
        self._disk = disk
        self._unculled = 0
        self._max_pending_bytes = max_pending_bytes
        #: Bytes of entries queued and not yet written (changed by both threads).
        self._pending_bytes = 0
        self._pending_lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        # The event loop must get the GIL back quickly while this thread runs
        # Python code between SQLite calls (the default interval is 5 ms).
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0002))
        self._thread = threading.Thread(target=self._run, name="wirecache-l2", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            batch, closing = self._next_batch()
            if batch:
                self._apply(batch)
                self._unculled += len(batch)
            if closing or self._unculled >= self.CULL_EVERY:
                self._cull()
            if closing:
                return

    def _next_batch(self) -> tuple[list[tuple], bool]:
        """What queued up meanwhile, up to :data:`BATCH` (waiting for the first), and
        whether close() was called. One SQLite transaction for all of it: a write
        costs a third as much in a batch of 50 as alone (109 against 37 us)."""
        batch: list[tuple] = []
        op = self._queue.get()
        if op is not None:
            time.sleep(self.GATHER_SECONDS)  # let writes gather (the GIL is free meanwhile)
        while op is not None:
            batch.append(op)
            if len(batch) >= self.BATCH:
                return batch, False
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True

    def _cull(self) -> None:
        """Drop expired entries, then the least recently stored past the budget."""
        self._unculled = 0
        try:
            self._disk.cull()
        except Exception:
            log.exception("cache.l2_write_failed")

    def _apply(self, batch: list[tuple]) -> None:
        try:
            with self._disk.transact():
                for op in batch:
                    if op[0] == "set":
                        _, key, entry = op
                        self._disk.set(key, entry, expire=max(entry.expires - time.time(), 0.001))
                    elif op[0] == "delete":
                        self._disk.delete(op[1])
                    else:
                        self._disk.clear()
        except Exception:  # a full or broken disk must not stop the proxy
            log.exception("cache.l2_write_failed")
        finally:
            with self._pending_lock:
                self._pending_bytes -= sum(_size(op[2]) for op in batch if op[0] == "set")

    def set(self, key: bytes, entry: Entry) -> bool:
        """Queue a write; False when it was dropped (too much is waiting)."""
        size = _size(entry)
        with self._pending_lock:
            if (
                self._pending_bytes + size > self._max_pending_bytes
                or self._queue.qsize() >= self.MAX_PENDING
            ):
                return False
            self._pending_bytes += size
        self._queue.put(("set", key, entry))
        return True

    def delete(self, key: bytes) -> None:
        self._queue.put(("delete", key))

    def clear(self) -> None:
        self._queue.put(("clear",))

    def close(self) -> None:
        """Finish what is queued, then stop."""
        self._queue.put(None)
        self._thread.join()


class EntryStore:
    """L1 over L2. ``get`` returns entries that have not expired; freshness
    against table versions is the caller's business (it owns the versions)."""

    def __init__(
        self, directory: Path | None, memory_budget: int, disk_budget: int, *, shared: bool = False
    ) -> None:
        self.l2 = (
            # (Culled by the writer, not by every set: see L2Writer.)
            diskcache.Cache(
                str(directory),
                size_limit=disk_budget,
                cull_limit=0,
                sqlite_cache_size=L2_PAGE_CACHE_PAGES,
            )
            if directory is not None and disk_budget > 0
            else None
        )
        self._writer = (
            L2Writer(self.l2, max(memory_budget // PENDING_SHARE, 1 << 20))
            if self.l2 is not None
            else None
        )
        self._shared = shared
        self.l1 = MemoryLRU(
            memory_budget, self._evicted if self._writer is not None and not shared else None
        )
        #: The keys L2 may hold. Workers share one the parent wrote (see
        #: publish_filter); without it, every L1 miss asks L2.
        self._in_l2: KeyFilter | None = None
        if self.l2 is not None:
            self._in_l2 = (
                KeyFilter.mapped(directory / FILTER_FILE)  # type: ignore[operator]
                if shared
                else KeyFilter(_keys(self.l2))
            )

    def get(self, key: bytes) -> Entry | None:
        entry = self.l1.get(key)
        if entry is not None:
            entry.used = True
        else:
            if self.l2 is None or (self._in_l2 is not None and key not in self._in_l2):
                return None
            entry = self.l2.get(key)
            if entry is None:
                return None
            entry.persisted = True
            entry.checked = -1  # (a generation of another process, or of an earlier run)
            self.l1.put(key, entry)
        if entry.expires <= time.time():
            self.discard(key)
            return None
        if self._shared and not entry.persisted and self._writer is not None:
            # Admission on second use, for the other workers: writing every
            # miss cost half of a miss (SQLite), and most results read once
            # are never read again.
            entry.persisted = self._writer.set(key, entry)
            if entry.persisted and self._in_l2 is not None:
                self._in_l2.add(key)
        return entry

    @staticmethod
    def publish_filter(directory: Path) -> None:
        """Write the filter of the keys in the L2 at ``directory`` for the workers to
        share (the parent of ``--workers N``, before it starts them)."""
        disk = diskcache.Cache(str(directory))
        try:
            KeyFilter(_keys(disk)).write(directory / FILTER_FILE)
        finally:
            disk.close()

    def _evicted(self, key: bytes, entry: Entry) -> None:
        """L1 pushed ``entry`` out (one process): L2 keeps it, unless it has it, it
        was never hit or it is out of date anyway."""
        if entry.persisted or not entry.used or entry.expires <= time.time():
            return
        assert self._writer is not None and self._in_l2 is not None
        if self._writer.set(key, entry):
            self._in_l2.add(key)

    def put(self, key: bytes, entry: Entry) -> None:
        self.l1.put(key, entry)

    def discard(self, key: bytes) -> None:
        self.l1.discard(key)
        if self._writer is not None and (self._in_l2 is None or key in self._in_l2):
            self._writer.delete(key)

    def clear(self) -> None:
        self.l1.clear()
        if self._writer is not None:
            self._writer.clear()

    def close(self) -> int:
        """Hand L2 what is queued and every entry not yet in it, in one transaction;
        returns how many entries that was (about 30 µs each: a full L1 of small rows
        takes seconds)."""
        written = 0
        if self._writer is not None:
            self._writer.close()
        if self.l2 is not None:
            now = time.time()
            with self.l2.transact():
                for key, entry in self.l1.items():
                    if not entry.persisted and entry.expires > now:
                        self.l2.set(key, entry, expire=entry.expires - now)
                        written += 1
            self.l2.cull()
            self.l2.close()
        return written
