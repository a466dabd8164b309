"""The session bookkeeping and cache routing the dialects share."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from wirecache.api import SessionKey, TransactionWrites, UnknownCache, choose_cache


def test_session_key_changes_with_everything_folded():
    a, b = SessionKey("mysql", "app", "u"), SessionKey("mysql", "app", "u")
    assert a.digest == b.digest
    a.fold(b"SET time_zone = '+02:00'")
    assert a.digest != b.digest
    b.fold(b"SET time_zone = '+02:00'")
    assert a.digest == b.digest
    a.set("TimeZone", "UTC")
    assert a.digest != b.digest
    a.reset()
    b.reset()
    assert a.digest == b.digest == SessionKey("mysql", "app", "u").digest
    a.set_identity("mysql", "other", "u")
    assert a.digest != b.digest


def test_session_key_parts_cannot_run_together():
    assert SessionKey("ab", "c").digest != SessionKey("a", "bc").digest
    x, y = SessionKey("p"), SessionKey("p")
    x.fold(b"ab")
    y.fold(b"a")
    y.fold(b"b")
    assert x.digest != y.digest


def test_ignored_settings():
    a = SessionKey("pg", ignored=frozenset({"application_name"}))
    before = a.digest
    a.set("application_name", "psql")
    assert a.digest == before


def test_transaction_writes():
    tx = TransactionWrites()
    assert tx.empty
    tx.note(frozenset({"a"}))
    tx.note(frozenset({"b"}))
    assert tx.take() == {"a", "b"} and tx.empty
    tx.note(None)
    tx.note(frozenset({"c"}))
    assert tx.take() is None and tx.empty


def fake_conn(*ids: str, default: bool = False):
    caches = [SimpleNamespace(id=i, config=SimpleNamespace(default=default and n == 0))
              for n, i in enumerate(ids)]  # fmt: skip
    by_id = {c.id.lower(): c for c in caches}
    return SimpleNamespace(
        listener=SimpleNamespace(caches=caches),
        resolve=lambda cid: caches[0] if not cid else by_id.get(cid.lower()),
        known_cache_ids=lambda: [c.id for c in caches],
    )


def test_prefix_routes_and_is_removed():
    conn = fake_conn("main", "reports")
    choice = choose_cache(conn, "REPORTS-alice")
    assert (choice.cache.id, choice.user, choice.user_rewritten) == ("reports", "alice", True)


def test_hint_routes_when_no_prefix():
    conn = fake_conn("main", "reports")
    choice = choose_cache(conn, "alice", None, "reports")
    assert (choice.cache.id, choice.user, choice.user_rewritten) == ("reports", "alice", False)


@pytest.mark.parametrize("default", [True, False])
def test_fallbacks(default):
    single = fake_conn("main")
    assert choose_cache(single, "my-user").user == "my-user"
    several = fake_conn("main", "reports", default=default)
    if default:
        assert choose_cache(several, "my-user").cache.id == "main"
    else:
        with pytest.raises(UnknownCache, match=r'unknown cache id "my".*main, reports.*HOW'):
            choose_cache(several, "my-user", how="HOW")
