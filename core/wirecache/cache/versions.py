"""Table versions: the mechanism that keeps cached results fresh (DESIGN.md rule 3).

Every (database, table) has a counter, and every database a counter of its
own. A miss snapshots the counters of the tables it reads *before* the
statement goes to the origin and stores the snapshot with the result; a hit is
valid only while the snapshot still equals the current counters. A write bumps
its tables after the origin acknowledges it and before the client sees the
acknowledgement, so no reader can be served the old result afterwards — and a
miss that was in flight while the write committed is stored with a snapshot
that is already out of date, so it is never served.

Comparing a snapshot costs a tuple and a dict lookup per table, on every
hit. :meth:`VersionStore.generation` moves with every bump, so a hit found
current at one generation is not compared again until something was written.

Entries in L2 outlive the process, so the counters must too:

* one process (the default): counters live in memory and are written to a
  diskcache of their own when the store closes. A store that was not closed
  cleanly (a crash, SIGKILL) leaves its "dirty" mark on disk; the next start
  then moves to a new *epoch*, which is part of every snapshot, so nothing
  stored before the crash is served. Bumps cost a dict update.
* several worker processes on one host (``shared``): every bump increments the
  counter in the shared diskcache (atomic across processes) and a generation
  counter, which it also publishes in a shared-memory word; each check first
  reads that word and drops the in-memory mirror when another process bumped
  something.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import diskcache

_GENERATION = ("generation",)
_EPOCH = ("epoch",)
_DIRTY = ("dirty",)


class _GenerationBoard:
    """The generation counter in a small shared-memory file, readable in well under a
    microsecond (diskcache took 10 µs per read, on every hit of every worker).

    The value only says "something changed since you last looked": the counters
    themselves stay in diskcache. An aligned 8-byte store is atomic on the
    platforms wirecache runs on.
    """

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < 8:
                os.ftruncate(fd, 8)
            self._map = mmap.mmap(fd, 8)
        finally:
            os.close(fd)

    def read(self) -> int:
        return int.from_bytes(self._map[:8], "little")

    def write(self, value: int) -> None:
        self._map[:8] = value.to_bytes(8, "little")


class VersionStore:
    """Counters per (database, table) and per database, persisted on disk."""

    def __init__(self, directory: Path, *, shared: bool = False) -> None:
        self._disk = diskcache.Cache(str(directory), eviction_policy="none", size_limit=2**40)
        self._mirror: dict[tuple[str, ...], int] = {}
        self._shared = shared
        self._generation = self._disk.get(_GENERATION, 0)
        if shared:
            self._epoch = self._disk.get(_EPOCH, 0)
            self._board = _GenerationBoard(directory / "generation.bin")
            return
        epoch = self._disk.get(_EPOCH, 0)
        if self._disk.get(_DIRTY, False):
            # The last process did not write its counters: they may lag.
            epoch += 1
            self._disk.set(_EPOCH, epoch)
        self._epoch = epoch
        self._disk.set(_DIRTY, True)
        self._changed: set[tuple[str, ...]] = set()

    def _get(self, key: tuple[str, ...]) -> int:
        value = self._mirror.get(key)
        if value is None:
            value = self._mirror[key] = self._disk.get(key, 0)
        return value

    def _sync(self) -> None:
        generation = self._board.read()
        if generation != self._generation:
            self._mirror.clear()
            self._generation = generation

    def generation(self) -> int:
        """A number that moves whenever any counter may have moved (in any worker):
        while it stays the same, so does every snapshot. A check that found a
        snapshot current at one generation needs no repeating at the same one.
        Read it *before* the snapshot it vouches for."""
        if self._shared:
            self._sync()
        return self._generation

    def snapshot(self, database: str, tables: tuple[str, ...]) -> tuple[int, ...]:
        """The current counters of ``database`` and ``tables`` (in the order given)."""
        if self._shared:
            self._sync()
        get = self._get
        return (self._epoch, get(("db", database)), *[get(("t", database, t)) for t in tables])

    def bump(self, database: str, tables: frozenset[str] | None) -> None:
        """Advance the counters of ``tables`` (all of ``database`` when ``None``)."""
        keys = [("db", database)] if tables is None else [("t", database, t) for t in tables]
        if not self._shared:
            mirror, get = self._mirror, self._get
            for key in keys:
                mirror[key] = get(key) + 1
            self._changed.update(keys)
            self._generation += 1
            return
        # One SQLite transaction for all of it (each incr alone is one: a write of
        # four tables cost five), and no worker sees half of it.
        with self._disk.transact():
            for key in keys:
                self._mirror[key] = self._disk.incr(key, default=0)
            self._generation = self._disk.incr(_GENERATION, default=0)
        # Published after the counters, so that a worker seeing the new
        # generation reads counters at least this new.
        self._board.write(self._generation)
        # Another worker may have bumped other counters meanwhile.
        self._mirror.clear()

    def close(self) -> None:
        """Write the counters (one process) and mark the store clean."""
        if not self._shared:
            with self._disk.transact():
                for key in self._changed:
                    self._disk.set(key, self._mirror[key])
                self._disk.set(_DIRTY, False)
        self._disk.close()
