"""Dependencies widen what a read depends on and what a write changes."""

from __future__ import annotations

from wirecache.cache.dependencies import Dependencies


def deps() -> Dependencies:
    return Dependencies.build(
        views={"v_orders": ["orders"], "v_top": ["v_orders", "customers"]},
        write_edges={"customers": ["orders"], "events": ["events_2026"], "events_2026": ["events"]},
        opaque=["audited"],
        external=["remote"],
    )


def test_views_are_expanded_transitively():
    assert deps().read_tables(frozenset({"v_top"})) == {"v_top", "v_orders", "orders", "customers"}


def test_plain_tables_read_as_themselves():
    assert deps().read_tables(frozenset({"orders"})) == {"orders"}


def test_reads_of_foreign_tables_are_not_stored():
    assert deps().read_tables(frozenset({"remote", "orders"})) is None


def test_cascades_and_partitions_widen_writes():
    d = deps()
    assert d.written_tables(frozenset({"customers"})) == {"customers", "orders"}
    assert d.written_tables(frozenset({"events"})) == {"events", "events_2026"}
    assert d.written_tables(frozenset({"events_2026"})) == {"events", "events_2026"}


def test_writes_through_a_view_reach_its_base_tables():
    assert deps().written_tables(frozenset({"v_orders"})) == {"v_orders", "orders"}


def test_opaque_tables_and_unknown_edges_invalidate_everything():
    d = deps()
    assert d.written_tables(frozenset({"audited"})) is None
    assert Dependencies.unknown_edges().written_tables(frozenset({"orders"})) is None
    d.stale = True
    assert d.written_tables(frozenset({"orders"})) is None
    assert d.due
