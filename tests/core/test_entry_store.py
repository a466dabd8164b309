"""L2 is asked only for keys it may hold, and still finds what it holds."""

from __future__ import annotations

import os
import time

from wirecache.cache.keyfilter import KeyFilter
from wirecache.cache.store import Entry, EntryStore


def _entry(payload: bytes = b"rows") -> Entry:
    return Entry(payload, "app", ("t",), (0, 0, 0), time.time() + 60, "fp")


def _l2_reads(store: EntryStore) -> int:
    hits, misses = store.l2.stats()
    return hits + misses


def test_a_key_never_written_to_l2_costs_no_l2_read(tmp_path):
    store = EntryStore(tmp_path, 1 << 20, 1 << 24)
    store.l2.stats(enable=True)
    for _ in range(50):
        assert store.get(os.urandom(16)) is None
    assert _l2_reads(store) <= 5  # false positives only (about 3 % at a million keys)
    store.close()


def test_what_l2_holds_is_found_after_a_restart(tmp_path):
    first = EntryStore(tmp_path, 1 << 20, 1 << 24)
    kept, hit_once = os.urandom(16), os.urandom(16)
    first.put(kept, _entry(b"kept"))  # written to L2 at a clean shutdown
    first.put(hit_once, _entry(b"hit"))
    assert first.get(hit_once) is not None  # admitted to L2 on its first hit
    first.close()

    second = EntryStore(tmp_path, 1 << 20, 1 << 24)
    assert second.get(kept).payload == b"kept"
    assert second.get(hit_once).payload == b"hit"
    second.close()


def test_workers_always_ask_l2_since_the_others_write_to_it(tmp_path):
    one = EntryStore(tmp_path, 1 << 20, 1 << 24, shared=True)
    other = EntryStore(tmp_path, 1 << 20, 1 << 24, shared=True)
    key = os.urandom(16)
    other.put(key, _entry(b"from the other worker"))
    assert other.get(key) is not None  # admitted, written from the other's thread
    other.close()  # (waits for its writer)
    assert one.get(key).payload == b"from the other worker"
    one.close()


def test_the_filter_never_forgets_a_key():
    keys = [os.urandom(16) for _ in range(10_000)]
    f = KeyFilter(keys[:5_000], bits=1 << 16)
    assert all(k in f for k in keys[:5_000])
    for k in keys[5_000:]:
        f.add(k)
    assert all(k in f for k in keys)
    assert sum(os.urandom(16) in KeyFilter(keys, bits=1 << 20) for _ in range(1000)) < 100
