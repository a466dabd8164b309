"""The table version counters themselves: across restarts, crashes and workers.

These are what rule 3 (no stale read after an acknowledged write) rests on: a
counter must never go back, in one process, across a restart, or between
worker processes bumping at the same time.
"""

from __future__ import annotations

import multiprocessing
from itertools import count

import pytest
from wirecache.cache.versions import SLOTS, VersionStore, _slot


def test_counters_survive_a_clean_restart_and_move_on_after_a_crash(tmp_path):
    first = VersionStore(tmp_path)
    first.bump("app", frozenset({"items"}))
    seen = first.snapshot("app", ("items",))
    first.close()
    second = VersionStore(tmp_path)
    assert second.snapshot("app", ("items",)) == seen  # L2 entries stay valid
    second.bump("app", frozenset({"items"}))
    # no close: the process died; the next one starts a new epoch
    third = VersionStore(tmp_path)
    assert third.snapshot("app", ("items",)) != seen
    assert third.snapshot("app", ("items",))[0] > seen[0]
    third.close()


def test_a_bump_moves_its_tables_the_database_and_the_generation(tmp_path):
    store = VersionStore(tmp_path)
    before, generation = store.snapshot("app", ("a", "b")), store.generation()
    store.bump("app", frozenset({"a"}))
    after = store.snapshot("app", ("a", "b"))
    assert after[2] == before[2] + 1 and after[3] == before[3]
    assert store.generation() != generation
    store.bump("app", None)  # unknown targets: everything of the database
    assert store.snapshot("app", ("b",))[1] == before[1] + 1
    assert store.snapshot("other", ("a",)) == (before[0], 0, 0)
    store.close()


def test_tables_that_share_a_slot_only_invalidate_each_other(tmp_path):
    """Two names hashing to one counter: a write to either moves both (hits lost,
    never freshness)."""
    slots: dict[int, str] = {}
    for i in count():
        name = f"t{i}"
        slot = _slot(("t", "app", name))
        if slot in slots:
            other = slots[slot]
            break
        slots[slot] = name
    store = VersionStore(tmp_path)
    before = store.snapshot("app", (other,))
    store.bump("app", frozenset({name}))
    assert store.snapshot("app", (other,)) != before
    store.close()


def _bump_many(directory, times: int, go) -> None:
    store = VersionStore(directory, shared=True)
    go.wait()  # all at once, so that their increments really overlap
    for _ in range(times):
        store.bump("app", frozenset({"items", "orders"}))
    store.close()


def test_workers_lose_no_bump_and_the_parent_keeps_what_they_counted(tmp_path):
    parent = VersionStore(tmp_path)
    parent.bump("app", frozenset({"items"}))
    parent.publish()
    start = parent.snapshot("app", ("items", "orders"))
    context = multiprocessing.get_context("spawn")
    go = context.Barrier(3)
    workers = [context.Process(target=_bump_many, args=(tmp_path, 20000, go)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    watcher = VersionStore(tmp_path, shared=True)
    assert watcher.snapshot("app", ("items", "orders")) == (
        start[0], start[1], start[2] + 60000, start[3] + 60000,
    )  # fmt: skip
    assert watcher.generation() == 60000
    watcher.close()
    assert parent.absorb()
    parent.close()
    again = VersionStore(tmp_path)  # a single process after the workers
    assert again.snapshot("app", ("items",)) == (start[0], start[1], start[2] + 60000)
    again.close()


def test_a_worker_without_published_counters_refuses_to_start(tmp_path):
    with pytest.raises(RuntimeError, match="--workers N"):
        VersionStore(tmp_path, shared=True)


def test_slots_are_spread_and_in_range():
    slots = {_slot(("t", "app", f"table_{i}")) for i in range(1000)}
    assert len(slots) > 980 and all(0 <= s < SLOTS for s in slots)
