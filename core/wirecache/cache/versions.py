"""Table versions: the mechanism that keeps cached results fresh (DESIGN.md rule 3).

Every (database, table) has a counter, and every database a counter of its
own. A miss snapshots the counters of the tables it reads *before* the
statement goes to the origin and stores the snapshot with the result; a hit is
valid only while the snapshot still equals the current counters. A write bumps
its tables after the origin acknowledges it and before the client sees the
acknowledgement, so no reader can be served the old result afterwards — and a
miss that was in flight while the write committed is stored with a snapshot
that is already out of date, so it is never served.

The counters are a fixed array of :data:`SLOTS` slots; a table's counter is
the slot its name hashes to. Two tables that share a slot invalidate each
other's results, which costs hits and never freshness, and keeps a counter's
place computable by every process without a shared index. Comparing a
snapshot still costs a lookup per table on every hit:
:meth:`VersionStore.generation` moves with every bump, so a hit found current
at one generation is not compared again until something was written.

Entries in L2 outlive the process, so the counters must too. The store keeps
them in a diskcache of its own, with an *epoch* that is part of every
snapshot:

* one process (the default): the array lives in memory and is written to disk
  when the store closes. A store that was not closed cleanly (a crash,
  SIGKILL) leaves its "dirty" mark on disk; the next start then moves to a new
  epoch, so nothing stored before the crash is served. A bump costs an
  increment.
* several worker processes on one host (``shared``): the parent process opens
  the store as above and :meth:`VersionStore.publish` puts the array, behind a
  generation word, into a small shared-memory file that every worker maps.
  A bump increments the slots and the generation under an exclusive ``flock``
  of that file (a few microseconds; an SQLite transaction per bump cost 116);
  reads take no lock. When every worker has stopped, the parent takes the
  array back (:meth:`VersionStore.absorb`) and closes the store — cleanly only
  if every worker stopped cleanly.
"""

from __future__ import annotations

import fcntl
import mmap
import os
from array import array
from hashlib import blake2b
from pathlib import Path

import diskcache

#: Counters per store: 512 KiB of memory, and of disk when it closes.
SLOTS = 1 << 16
#: The shared-memory file of a store's counters while workers run (see publish).
SHARED_FILE = "counters.bin"

_EPOCH = ("epoch",)
_DIRTY = ("dirty",)
_COUNTERS = ("counters",)
_WORD = 8


def _slot(key: tuple[str, ...]) -> int:
    digest = blake2b("\0".join(key).encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % SLOTS


class VersionStore:
    """Counters per (database, table) and per database, persisted on disk."""

    def __init__(self, directory: Path, *, shared: bool = False) -> None:
        self._directory = directory
        self._disk = diskcache.Cache(str(directory), eviction_policy="none", size_limit=2**40)
        self._slots: dict[tuple[str, ...], int] = {}
        self._shared = shared
        self._file: int | None = None
        self._map: mmap.mmap | None = None
        if shared:
            self._epoch = self._disk.get(_EPOCH, 0)
            self._attach()
            return
        epoch = self._disk.get(_EPOCH, 0)
        saved = self._disk.get(_COUNTERS)
        if saved is None:
            self._disk.clear()  # (counters of an older wirecache, one key per table)
        if self._disk.get(_DIRTY, False) or saved is None:
            # The last process did not write its counters (or wrote them in an
            # older form): they may lag behind what L2 holds.
            epoch += 1
            self._disk.set(_EPOCH, epoch)
        self._epoch = epoch
        self._disk.set(_DIRTY, True)
        self._counters = array("Q", saved if saved is not None else bytes(_WORD * SLOTS))
        self._generation = 0

    def _attach(self) -> None:
        """Map the shared counters the parent published (workers)."""
        path = self._directory / SHARED_FILE
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            raise RuntimeError(
                f"{path} is missing: worker processes share table versions that "
                "'wirecache serve --workers N' publishes before it starts them"
            ) from None
        self._file = fd
        self._map = mmap.mmap(fd, _WORD * (SLOTS + 1))
        self._words = memoryview(self._map).cast("Q")
        self._header, self._counters = self._words[:1], self._words[1:]

    def _slot_of(self, key: tuple[str, ...]) -> int:
        slot = self._slots.get(key)
        if slot is None:
            if len(self._slots) >= SLOTS:
                self._slots.clear()  # (names of dropped tables would pile up)
            slot = self._slots[key] = _slot(key)
        return slot

    def generation(self) -> int:
        """A number that moves whenever any counter may have moved (in any worker):
        while it stays the same, so does every snapshot. A check that found a
        snapshot current at one generation needs no repeating at the same one.
        Read it *before* the snapshot it vouches for."""
        return self._header[0] if self._shared else self._generation

    def snapshot(self, database: str, tables: tuple[str, ...]) -> tuple[int, ...]:
        """The current counters of ``database`` and ``tables`` (in the order given)."""
        slot, counters = self._slot_of, self._counters
        return (
            self._epoch,
            counters[slot(("db", database))],
            *[counters[slot(("t", database, t))] for t in tables],
        )

    def bump(self, database: str, tables: frozenset[str] | None) -> None:
        """Advance the counters of ``tables`` (all of ``database`` when ``None``)."""
        keys = [("db", database)] if tables is None else [("t", database, t) for t in tables]
        slots = {self._slot_of(key) for key in keys}
        counters = self._counters
        if not self._shared:
            for slot in slots:
                counters[slot] += 1
            self._generation += 1
            return
        assert self._file is not None
        # Increments of several processes must not be lost: one lock for the
        # slots and the generation. The generation moves last, so a worker
        # that sees it move reads counters at least this new.
        fcntl.flock(self._file, fcntl.LOCK_EX)
        try:
            for slot in slots:
                counters[slot] += 1
            self._header[0] += 1
        finally:
            fcntl.flock(self._file, fcntl.LOCK_UN)

    def publish(self) -> None:
        """Put the counters in the shared-memory file workers attach to (the parent
        of ``--workers N``, before it starts them)."""
        path = self._directory / SHARED_FILE
        path.write_bytes(bytes(_WORD) + self._counters.tobytes())

    def absorb(self) -> bool:
        """Take back the counters the workers advanced (the parent, once they stopped);
        False if they are gone (then the store must not be closed as clean)."""
        try:
            data = (self._directory / SHARED_FILE).read_bytes()
        except FileNotFoundError:
            return False
        if len(data) != _WORD * (SLOTS + 1):
            return False
        self._counters = array("Q", data[_WORD:])
        return True

    def close(self, *, clean: bool = True) -> None:
        """Write the counters (one process) and, if ``clean``, mark the store clean."""
        if self._shared:
            for view in (self._counters, self._header, self._words):
                view.release()
            assert self._map is not None and self._file is not None
            self._map.close()
            os.close(self._file)
        elif clean:
            with self._disk.transact():
                self._disk.set(_COUNTERS, self._counters.tobytes())
                self._disk.set(_DIRTY, False)
        self._disk.close()
