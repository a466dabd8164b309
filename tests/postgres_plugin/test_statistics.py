"""Per-template statistics: what a user reads to see what the cache buys."""

from __future__ import annotations

from postgres_plugin.util import connect


def _template_stats(proxy, fragment: str):
    found = [t for t in proxy.cache().stats.templates.values() if fragment in t.template]
    assert len(found) == 1, [t.template for t in proxy.cache().stats.templates.values()]
    return found[0]


def test_inlined_literals_share_one_template(pg_server, proxy):
    with connect(pg_server, proxy) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS stat_items (id int primary key, v text)")
        for i in (1, 2, 1, 2, 1):
            conn.execute(f"SELECT v FROM stat_items WHERE id = {i}")
    stats = _template_stats(proxy, "stat_items WHERE id = ?")
    assert (stats.misses, stats.hits, stats.stores) == (2, 3, 2)
    assert stats.origin_seconds > 0
    assert stats.origin_time_saved > 0


def test_parameterized_statements_are_counted(pg_server, proxy):
    with connect(pg_server, proxy, application_name="stats") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS stat_params (id int primary key, v text)")
        for i in (1, 2, 1, 2, 1, 1):
            conn.execute("SELECT v FROM stat_params WHERE id = %s", (i,))
    stats = _template_stats(proxy, "stat_params WHERE id = $1")
    assert (stats.misses, stats.hits) == (2, 4)
