"""Table versions: the mechanism that keeps cached results fresh (DESIGN.md rule 3).

Every (database, table) has a counter, and every database a counter of its
own. A miss snapshots the counters of the tables it reads *before* the
statement goes to the origin and stores the snapshot with the result; a hit is
valid only while the snapshot still equals the current counters. A write bumps
its tables after the origin acknowledges it and before the client sees the
acknowledgement, so no reader can be served the old result afterwards — and a
miss that was in flight while the write committed is stored with a snapshot
that is already out of date, so it is never served.

Counters live in a diskcache of their own, never evicted, so that entries kept
in L2 across a restart are not served after writes they missed. Several
worker processes share one directory; in ``shared`` mode each check first
reads a generation counter that every bump increments, and drops the
in-memory mirror when another process bumped something.
"""

from __future__ import annotations

from pathlib import Path

import diskcache

_GENERATION = ("generation",)


class VersionStore:
    """Counters per (database, table) and per database, persisted on disk."""

    def __init__(self, directory: Path, *, shared: bool = False) -> None:
        self._disk = diskcache.Cache(str(directory), eviction_policy="none", size_limit=2**40)
        self._mirror: dict[tuple[str, ...], int] = {}
        self._shared = shared
        self._generation = self._disk.get(_GENERATION, 0)

    def _get(self, key: tuple[str, ...]) -> int:
        value = self._mirror.get(key)
        if value is None:
            value = self._mirror[key] = self._disk.get(key, 0)
        return value

    def _sync(self) -> None:
        generation = self._disk.get(_GENERATION, 0)
        if generation != self._generation:
            self._mirror.clear()
            self._generation = generation

    def snapshot(self, database: str, tables: tuple[str, ...]) -> tuple[int, ...]:
        """The current counters of ``database`` and ``tables`` (in the order given)."""
        if self._shared:
            self._sync()
        get = self._get
        return (get(("db", database)), *[get(("t", database, t)) for t in tables])

    def bump(self, database: str, tables: frozenset[str] | None) -> None:
        """Advance the counters of ``tables`` (all of ``database`` when ``None``)."""
        keys = [("db", database)] if tables is None else [("t", database, t) for t in tables]
        for key in keys:
            self._mirror[key] = self._disk.incr(key, default=0)
        self._generation = self._disk.incr(_GENERATION, default=0)
        if self._shared:
            # Another worker may have bumped other counters meanwhile.
            self._mirror.clear()

    def close(self) -> None:
        self._disk.close()
