"""The cache's freshness check (DESIGN.md rule 3), with and without workers.

A hit re-checks its table versions only when some counter may have moved since
it was last found current (VersionStore.generation): these pin that a write to
a table it reads is still seen at once, in this process and from another
worker, while a write elsewhere leaves it served.
"""

from __future__ import annotations

import pytest
from wirecache.cache.cache import Cache
from wirecache.cache.versions import SHARED_FILE, VersionStore
from wirecache.config import Address, CacheConfig
from wirecache_postgres.classify import RULES

READ = b"SELECT v FROM items WHERE id = 1"


def _cache(directory, *, shared: bool = False) -> Cache:
    """A cache in ``directory``; with ``shared``, as one of several workers (the
    counters published once, as the parent of ``--workers N`` does)."""
    config = CacheConfig("c", "postgres", Address("127.0.0.1", 5432), Address("127.0.0.1", 6432))
    if shared and not (directory / "versions" / SHARED_FILE).exists():
        parent = VersionStore(directory / "versions")
        parent.publish()
        parent.close()
    return Cache(
        config, RULES, directory,
        cacheable_hook=lambda **_: [], ttl_hook=lambda **_: None,
        invalidated_hook=None, event_hook=None, shared_versions=shared,
    )  # fmt: skip


def _fill(cache: Cache, key: bytes, payload: bytes) -> None:
    stmt = cache.classify(READ)
    fill = cache.begin_fill(key, stmt, "app")
    fill.add(payload)
    cache.finish_fill(fill, True)


@pytest.mark.parametrize("shared", [False, True], ids=["one process", "workers"])
def test_a_write_to_what_a_hit_reads_is_seen_after_any_number_of_hits(tmp_path, shared):
    cache = _cache(tmp_path, shared=shared)
    stmt = cache.classify(READ)
    _fill(cache, b"k" * 16, b"rows")
    for _ in range(3):
        assert cache.lookup(b"k" * 16, stmt) == b"rows"
    cache.invalidate("app", frozenset({"other"}))  # moves the generation, not its tables
    assert cache.lookup(b"k" * 16, stmt) == b"rows"
    assert cache.lookup(b"k" * 16, stmt) == b"rows"
    cache.invalidate("app", frozenset({"items"}))
    assert cache.lookup(b"k" * 16, stmt) is None
    cache.close()


def test_a_write_through_another_worker_is_seen(tmp_path):
    one, other = _cache(tmp_path, shared=True), _cache(tmp_path, shared=True)
    stmt = one.classify(READ)
    _fill(one, b"k" * 16, b"rows")
    assert one.lookup(b"k" * 16, stmt) == b"rows"  # found current at this generation
    other.invalidate("app", frozenset({"items"}))
    assert one.lookup(b"k" * 16, stmt) is None
    one.close()
    other.close()


def test_a_miss_in_flight_during_a_write_is_not_stored(tmp_path):
    cache = _cache(tmp_path)
    stmt = cache.classify(READ)
    fill = cache.begin_fill(b"k" * 16, stmt, "app")
    fill.add(b"old rows")
    cache.invalidate("app", frozenset({"items"}))
    cache.finish_fill(fill, True)
    assert cache.lookup(b"k" * 16, stmt) is None
    # A write elsewhere meanwhile moves the generation but spoils nothing.
    fill = cache.begin_fill(b"k" * 16, stmt, "app")
    fill.add(b"rows")
    cache.invalidate("app", frozenset({"other"}))
    cache.finish_fill(fill, True)
    assert cache.lookup(b"k" * 16, stmt) == b"rows"
    cache.close()


def test_an_entry_from_l2_is_checked_whatever_generation_it_was_stored_at(tmp_path):
    """Generations start again in every process: an entry read from L2 is always
    checked against the versions once."""
    first = _cache(tmp_path)
    stmt = first.classify(READ)
    first.invalidate("app", frozenset({"other"}))
    _fill(first, b"k" * 16, b"rows")  # found current at generation 1
    first.close()  # written to L2, versions saved
    second = _cache(tmp_path)
    second.invalidate("app", frozenset({"items"}))  # generation 1 here too
    assert second.lookup(b"k" * 16, stmt) is None
    second.close()
