"""One cache at run time: its configuration, classifier, entries, versions and stats.

This is the object dialect plugins drive for every statement:

* ``classify(text)`` (memoised) says whether a statement is a cacheable read
  and what it writes;
* ``lookup(key, stmt)`` answers a hit or returns ``None``;
* ``begin_fill(key, stmt, database)`` snapshots the table versions before the
  statement goes to the origin, collects the response bytes and stores them
  if the response was clean, complete and within the size cap;
* ``invalidate(database, tables)`` is called after the origin acknowledged a
  write, before the client sees the acknowledgement.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import structlog

from wirecache.cache.dependencies import Dependencies
from wirecache.cache.events import CacheEvent, CacheOutcome
from wirecache.cache.store import Entry, EntryStore
from wirecache.cache.versions import VersionStore
from wirecache.classify import CATALOG, Classification, Classifier, ClassifierRules
from wirecache.config import CacheConfig
from wirecache.stats import CacheStats, TemplateStats

log = structlog.get_logger("wirecache.cache")


class Fill:
    """Response bytes being collected for one miss.

    Stops collecting (and will not store) once the response outgrows the
    cache's ``max_entry_bytes``: the response is still relayed, just not kept.
    """

    __slots__ = (
        "record",
        "key",
        "stmt",
        "database",
        "tables",
        "versions",
        "started",
        "parts",
        "size",
        "limit",
        "generation",
    )

    def __init__(
        self, key: bytes, stmt: Classification, database: str, versions: tuple[int, ...],
        tables: tuple[str, ...], limit: int, record: bool, generation: int,
    ) -> None:  # fmt: skip
        self.record = record
        #: The version generation read before ``versions`` was taken.
        self.generation = generation
        self.key = key
        self.stmt = stmt
        self.database = database
        self.tables = tables
        self.versions = versions
        self.started = time.perf_counter()
        self.parts: list[bytes] | None = []
        self.size = 0
        self.limit = limit

    def add(self, data: bytes) -> None:
        """Append relayed bytes; gives up silently past the size cap."""
        if self.parts is None:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.parts = None
        else:
            self.parts.append(bytes(data))

    @property
    def overflowed(self) -> bool:
        return self.parts is None

    def collected(self) -> bytes | None:
        """What was collected so far (None past the size cap)."""
        return None if self.parts is None else b"".join(self.parts)

    def replace(self, data: bytes) -> None:
        """Keep ``data`` instead of what was collected: for a dialect that collected
        a whole answer of which one part is the entry (``data`` within the cap)."""
        self.parts, self.size = [data], len(data)


class Cache:
    """The run-time state of one configured cache."""

    def __init__(
        self,
        config: CacheConfig,
        rules: ClassifierRules,
        directory: Path,
        *,
        cacheable_hook: Callable[..., list[bool | None]],
        ttl_hook: Callable[..., float | None],
        invalidated_hook: Callable[..., object] | None,
        event_hook: Callable[..., object] | None,
        shared_versions: bool = False,
    ) -> None:
        self.id = config.id
        self.config = config
        self.origin = config.origin
        self.stats = CacheStats()
        self._cacheable_hook = cacheable_hook
        self._ttl_hook = ttl_hook
        self._invalidated_hook = invalidated_hook
        self._event_hook = event_hook
        self.classifier = Classifier(rules, policy=self._policy)
        directory.mkdir(parents=True, exist_ok=True)
        self.entries = EntryStore(
            directory / "entries", config.memory_budget, config.disk_budget,
            shared=shared_versions,
        )  # fmt: skip
        self.versions = VersionStore(directory / "versions", shared=shared_versions)
        #: Catalog edges per database, supplied by the dialect (see
        #: :meth:`dependencies_due` and :meth:`set_dependencies`).
        self.dependencies: dict[str, Dependencies] = {}
        self._log = log.bind(cache=self.id, origin=str(self.origin))

    # -- policy, once per statement text ----------------------------------

    def _policy(self, stmt: Classification) -> Classification:
        if any(v is False for v in self._cacheable_hook(cache_id=self.id, statement=stmt)):
            return replace(stmt, cacheable=False, reason="a plugin rule forbids caching")
        ttl = self._ttl_hook(cache_id=self.id, statement=stmt, default_ttl=self.config.default_ttl)
        ttl = self.config.default_ttl if ttl is None else float(ttl)
        if ttl <= 0:
            return replace(stmt, cacheable=False, ttl=0.0, reason="TTL is 0")
        return replace(stmt, ttl=ttl)

    def classify(self, text: str | bytes) -> Classification:
        """Classification of one statement text (memoised; policy applied)."""
        return self.classifier.classify(text)

    def template_stats(self, stmt: Classification) -> TemplateStats:
        return self.stats.template(stmt.fingerprint, stmt.template)

    # -- the hot path -----------------------------------------------------

    def lookup(self, key: bytes, stmt: Classification, *, record: bool = True) -> bytes | None:
        """The stored response for ``key`` if it is still fresh, else ``None``.

        ``record=False`` leaves statistics alone: for auxiliary entries
        (a statement's Describe, the proof that it parses) that are looked up
        beside the result itself.
        """
        started = time.perf_counter()
        entry = self.entries.get(key)
        if entry is None:
            return None
        versions = self.versions
        generation = versions.generation()
        if entry.checked != generation:
            if versions.snapshot(entry.database, entry.tables) != entry.versions:
                self.entries.discard(key)
                return None
            entry.checked = generation
        if not record:
            return entry.payload
        stats = self.stats.template(stmt.fingerprint, stmt.template)
        stats.hits += 1
        if self._event_hook is not None:
            self._emit(CacheOutcome.HIT, stmt, time.perf_counter() - started, len(entry.payload))
        return entry.payload

    def begin_fill(
        self, key: bytes, stmt: Classification, database: str, *, record: bool = True
    ) -> Fill:
        """Snapshot versions for a miss *before* it is sent to the origin."""
        reads = self._read_tables(database, stmt)
        tables = reads if reads is not None else ()
        generation = self.versions.generation()
        fill = Fill(
            key, stmt, database, self.versions.snapshot(database, tables), tables,
            self.config.max_entry_bytes, record, generation,
        )  # fmt: skip
        if reads is None:
            fill.parts = None  # reads data that lives outside the database
        return fill

    def finish_fill(self, fill: Fill, ok: bool) -> None:
        """Store a completed miss when it was clean, complete and within the cap."""
        elapsed = time.perf_counter() - fill.started
        stmt = fill.stmt
        stats = self.stats.template(stmt.fingerprint, stmt.template) if fill.record else None
        if stats is not None:
            stats.misses += 1
            stats.origin_seconds += elapsed
        reason = ""
        generation = self.versions.generation()
        if not ok:
            reason = "error or incomplete response"
        elif fill.overflowed:
            reason = "larger than max_entry_bytes, or reads a foreign table"
        elif (
            generation != fill.generation
            and self.versions.snapshot(fill.database, fill.tables) != fill.versions
        ):
            reason = "a write committed while the statement ran"
        elif self._read_tables(fill.database, stmt) != fill.tables:
            reason = "the catalog changed while the statement ran"
        if reason:
            self._log.debug("cache.skip", fingerprint=stmt.fingerprint, reason=reason)
            if self._event_hook is not None and stats is not None:
                self._emit(CacheOutcome.SKIP, stmt, elapsed, fill.size, reason)
            return
        payload = b"".join(fill.parts or ())
        self.entries.put(
            fill.key,
            Entry(payload, fill.database, fill.tables, fill.versions, time.time() + stmt.ttl,
                  stmt.fingerprint, checked=generation),
        )  # fmt: skip
        if stats is None:
            return
        stats.stores += 1
        self._log.debug(
            "cache.store", fingerprint=stmt.fingerprint, bytes=len(payload),
            origin_ms=round(elapsed * 1000, 3), ttl=stmt.ttl,
        )  # fmt: skip
        if self._event_hook is not None:
            self._emit(CacheOutcome.STORE, stmt, elapsed, len(payload))

    def _read_tables(self, database: str, stmt: Classification) -> tuple[str, ...] | None:
        """The tables a read depends on, views expanded; None: must not be stored."""
        deps = self.dependencies.get(database)
        reads = deps.read_tables(stmt.reads) if deps is not None else stmt.reads
        return tuple(sorted(reads)) if reads is not None else None

    def dependencies_due(self, database: str) -> bool:
        """Whether the dialect should (re)read the catalog edges of ``database``."""
        deps = self.dependencies.get(database)
        return deps is None or deps.due

    def set_dependencies(self, database: str, deps: Dependencies) -> None:
        self.dependencies[database] = deps
        self._log.info("cache.dependencies", database=database, views=len(deps.reads),
                       edges=len(deps.writes), opaque=len(deps.opaque))  # fmt: skip

    def invalidate(self, database: str, tables: frozenset[str] | None) -> None:
        """Bump versions after an acknowledged write (``None``: the whole database)."""
        deps = self.dependencies.get(database)
        if deps is not None:
            tables = deps.written_tables(tables)
            if tables is None or CATALOG in tables:
                deps.stale = True  # the schema may have changed: read it again
        self.versions.bump(database, tables)
        self.stats.invalidations += 1
        self._log.debug(
            "cache.invalidate", database=database,
            tables=sorted(tables) if tables is not None else "*",
        )  # fmt: skip
        if self._invalidated_hook is not None:
            self._invalidated_hook(cache_id=self.id, database=database, tables=tables)

    def purge(self) -> None:
        """Drop every entry of this cache."""
        self.entries.clear()
        self._log.info("cache.purge")

    def _emit(
        self, outcome: CacheOutcome, stmt: Classification, elapsed: float, size: int,
        reason: str = "",
    ) -> None:  # fmt: skip
        assert self._event_hook is not None
        self._event_hook(
            event=CacheEvent(self.id, outcome, stmt.fingerprint, elapsed, size, reason)
        )

    def close(self) -> None:
        started = time.perf_counter()
        written = self.entries.close()
        self.versions.close()
        self._log.info(
            "cache.closed", l2_written=written, seconds=round(time.perf_counter() - started, 3)
        )
