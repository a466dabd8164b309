"""What else a read depends on and a write changes, beyond the tables a statement names.

A statement names ``orders``; but ``orders`` may be a view over ``order_rows``,
a delete from ``customers`` may cascade into ``orders``, a trigger may write
anywhere, and rows inserted through a partitioned parent land in a partition.
DESIGN.md rule 3 (no stale read after an acknowledged write) needs those
edges, and only the origin's catalog knows them. A dialect reads them from the
catalog (once per database, again after DDL went through wirecache or after
:data:`REFRESH_SECONDS`) and hands them to the cache as a
:class:`Dependencies`; the cache then widens the tables a miss depends on and
the tables a write invalidates. Changes made to the schema behind wirecache's
back are seen at the next refresh; the TTL bounds the rest.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

#: How long a catalog reading is trusted before a new session re-reads it.
REFRESH_SECONDS = 60.0
#: Distinct sets of written tables whose closure is remembered.
WRITTEN_MEMO = 4096


@dataclass
class Dependencies:
    """Relation edges of one database, by bare lower-case relation name."""

    #: Relation -> relations its rows come from (views: their base tables).
    reads: dict[str, frozenset[str]] = field(default_factory=dict)
    #: Relation -> other relations a write to it may change (cascading
    #: foreign keys, partitions and inheritance).
    writes: dict[str, frozenset[str]] = field(default_factory=dict)
    #: Relations a write to which may change anything (triggers, rules).
    opaque: frozenset[str] = frozenset()
    #: Relations whose rows live outside the database (foreign tables).
    external: frozenset[str] = frozenset()
    #: The catalog could not be read: every write may change anything.
    unknown: bool = False
    loaded_at: float = field(default_factory=time.monotonic)
    stale: bool = False
    #: written_tables answers by the tables written: the edges never change
    #: (a new reading is a new object), and every write asks again.
    _written: dict[frozenset[str], frozenset[str] | None] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def unknown_edges(cls) -> Dependencies:
        """For a database whose catalog could not be read."""
        return cls(unknown=True)

    @classmethod
    def build(
        cls,
        views: dict[str, Iterable[str]],
        write_edges: dict[str, Iterable[str]],
        opaque: Iterable[str] = (),
        external: Iterable[str] = (),
    ) -> Dependencies:
        """Close the view edges transitively (views over views) and freeze everything."""
        reads: dict[str, frozenset[str]] = {}
        for view in views:
            seen: set[str] = set()
            todo = list(views[view])
            while todo:
                name = todo.pop()
                if name not in seen:
                    seen.add(name)
                    todo.extend(views.get(name, ()))
            reads[view] = frozenset(seen)
        return cls(
            reads=reads,
            writes={k: frozenset(v) for k, v in write_edges.items()},
            opaque=frozenset(opaque),
            external=frozenset(external),
        )

    @property
    def due(self) -> bool:
        return self.stale or time.monotonic() - self.loaded_at > REFRESH_SECONDS

    def read_tables(self, tables: frozenset[str]) -> frozenset[str] | None:
        """What a read of ``tables`` depends on; None when it must not be cached."""
        if self.external and not self.external.isdisjoint(tables):
            return None
        extra = [self.reads[t] for t in tables if t in self.reads]
        return tables.union(*extra) if extra else tables

    def written_tables(self, tables: frozenset[str] | None) -> frozenset[str] | None:
        """What a write to ``tables`` may change; None: the whole database."""
        if tables is None or self.unknown or self.stale:
            return None  # a stale reading may lack edges the last DDL added
        try:
            return self._written[tables]
        except KeyError:
            if len(self._written) >= WRITTEN_MEMO:
                self._written.clear()
            found = self._written[tables] = self._close_written(tables)
            return found

    def _close_written(self, tables: frozenset[str]) -> frozenset[str] | None:
        if self.opaque and not self.opaque.isdisjoint(tables):
            return None
        # A write through a view lands in its base tables.
        found = set(tables)
        todo = list(tables)
        while todo:
            name = todo.pop()
            for other in (*self.reads.get(name, ()), *self.writes.get(name, ())):
                if other not in found:
                    if other in self.opaque:
                        return None
                    found.add(other)
                    todo.append(other)
        return frozenset(found)
