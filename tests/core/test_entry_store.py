"""L2 is asked only for keys it may hold, and still finds what it holds."""

from __future__ import annotations

import os
import time

import diskcache
import pytest
from wirecache.cache.keyfilter import KeyFilter
from wirecache.cache.store import Entry, EntryStore, L2Writer


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


def _queued(store: EntryStore) -> int:
    return store._writer._queue.qsize()


def test_what_l2_holds_is_found_after_a_restart(tmp_path):
    first = EntryStore(tmp_path, 1 << 20, 1 << 24)
    kept, hit_once = os.urandom(16), os.urandom(16)
    first.put(kept, _entry(b"kept"))  # written to L2 at a clean shutdown
    first.put(hit_once, _entry(b"hit"))
    assert first.get(hit_once) is not None
    first.close()

    second = EntryStore(tmp_path, 1 << 20, 1 << 24)
    assert second.get(kept).payload == b"kept"
    assert second.get(hit_once).payload == b"hit"
    second.close()


def test_one_process_writes_l2_only_what_l1_evicts_after_a_hit(tmp_path):
    """With one process nothing else reads L2 before a restart: hits write nothing,
    an entry L1 pushes out is written if it was hit, and it is found in L2
    afterwards; one never hit is not written."""
    store = EntryStore(tmp_path, 20 * 1400, 1 << 24)  # L1 holds about 20 of these
    keys = [os.urandom(16) for _ in range(60)]
    for key in keys[:10]:
        store.put(key, _entry(key * 63))
        assert store.get(key) is not None
        assert store.get(key) is not None
    assert _queued(store) == 0
    for key in keys[10:]:
        store.put(key, _entry(key * 63))  # pushes out all that was hit, and more
    deadline = time.monotonic() + 10
    while store.l2.get(keys[9]) is None:  # (written in order by the writer's thread)
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert _queued(store) == 0
    assert len(store.l2) == 10  # those hit; none of those evicted without a hit
    assert store.get(keys[0]).payload == keys[0] * 63  # from L2, back into L1
    store.close()


def test_workers_write_l2_at_the_first_hit(tmp_path):
    store = EntryStore(tmp_path, 1 << 20, 1 << 24, shared=True)
    key = os.urandom(16)
    store.put(key, _entry())
    assert _queued(store) == 0
    assert store.get(key) is not None
    assert _queued(store) == 1  # for the other workers
    assert store.get(key) is not None
    assert _queued(store) <= 1  # once
    store.close()


@pytest.mark.parametrize("published", [True, False], ids=["shared filter", "no filter"])
def test_workers_find_what_another_worker_wrote_to_l2(tmp_path, published):
    """Workers share the key filter the parent published: a key another worker
    wrote is looked for, one nobody wrote costs no L2 read. Without a published
    filter every L1 miss asks L2."""
    if published:
        EntryStore.publish_filter(tmp_path)
    one = EntryStore(tmp_path, 1 << 20, 1 << 24, shared=True)
    other = EntryStore(tmp_path, 1 << 20, 1 << 24, shared=True)
    key = os.urandom(16)
    other.put(key, _entry(b"from the other worker"))
    assert other.get(key) is not None  # admitted, written from the other's thread
    other.close()  # (waits for its writer)
    one.l2.stats(enable=True)
    for _ in range(50):
        assert one.get(os.urandom(16)) is None
    assert (_l2_reads(one) <= 5) == published
    assert one.get(key).payload == b"from the other worker"
    one.close()


def test_the_published_filter_holds_what_l2_held_before(tmp_path):
    """A single process's L2 becomes the workers' L2: the parent's filter covers it."""
    first = EntryStore(tmp_path, 1 << 20, 1 << 24)
    key = os.urandom(16)
    first.put(key, _entry(b"kept"))
    first.close()
    EntryStore.publish_filter(tmp_path)
    worker = EntryStore(tmp_path, 1 << 20, 1 << 24, shared=True)
    assert worker.get(key).payload == b"kept"
    worker.close()


def test_the_filter_never_forgets_a_key():
    keys = [os.urandom(16) for _ in range(10_000)]
    f = KeyFilter(keys[:5_000], bits=1 << 16)
    assert all(k in f for k in keys[:5_000])
    for k in keys[5_000:]:
        f.add(k)
    assert all(k in f for k in keys)
    assert sum(os.urandom(16) in KeyFilter(keys, bits=1 << 20) for _ in range(1000)) < 100


def test_queued_writes_reach_l2_in_order(tmp_path):
    """The writer applies what queued up in batches (one SQLite transaction each):
    every write lands, and a later delete or clear still wins over an earlier set."""
    disk = diskcache.Cache(str(tmp_path))
    writer = L2Writer(disk)
    keys = [os.urandom(16) for _ in range(600)]  # more than one batch
    for key in keys:
        writer.set(key, _entry(key))
    writer.delete(keys[0])
    writer.clear()
    writer.set(keys[1], _entry(b"after the clear"))
    for key in keys[2:400]:
        writer.set(key, _entry(key))
    writer.delete(keys[2])
    writer.close()
    assert disk.get(keys[0]) is None
    assert disk.get(keys[1]).payload == b"after the clear"
    assert disk.get(keys[2]) is None
    assert all(disk.get(key).payload == key for key in keys[3:400])
    assert all(disk.get(key) is None for key in keys[400:])
    disk.close()


def test_l2_stays_within_its_budget(tmp_path):
    """L2 is culled by the writer every CULL_EVERY writes and at close, not by each
    write: what it holds afterwards still fits the disk budget."""
    budget = 200_000
    store = EntryStore(tmp_path, 1 << 20, budget)
    for _ in range(1000):
        key = os.urandom(16)
        store.put(key, _entry(os.urandom(1000)))
        assert store.get(key) is not None  # hit: L1 (1 MiB) evicts most of them to L2
    store.close()
    disk = diskcache.Cache(str(tmp_path))
    assert 0 < len(disk) < 1000
    assert disk.volume() <= budget
    disk.close()


def test_writes_waiting_for_l2_hold_a_bounded_amount_of_memory(tmp_path):
    """While L2 is slow (here: locked by another connection), what waits for it is
    bounded by bytes: later writes are dropped, never queued without limit."""
    disk = diskcache.Cache(str(tmp_path))
    size = 1000 + 400  # (payload and the bookkeeping L1 charges)
    writer = L2Writer(disk, max_pending_bytes=3 * size)
    keys = [os.urandom(16) for _ in range(6)]
    with diskcache.Cache(str(tmp_path)).transact():  # the writer waits for this
        accepted = [writer.set(key, _entry(os.urandom(1000))) for key in keys]
    assert accepted == [True, True, True, False, False, False]
    writer.close()
    assert [disk.get(key) is not None for key in keys] == accepted
    assert writer._pending_bytes == 0
    disk.close()
