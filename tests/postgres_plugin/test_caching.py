"""Reads are answered by wirecache, proven from the origin's own statement log."""

from __future__ import annotations

from postgres_plugin.util import connect


def test_repeated_read_reaches_origin_once(pg_server, proxy, marker):
    with connect(pg_server, proxy) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS cache_items (id int primary key, name text)")
        conn.execute("TRUNCATE cache_items")
        conn.execute("INSERT INTO cache_items VALUES (1, 'one'), (2, 'two')")
        query = f"SELECT id, name FROM cache_items ORDER BY id {marker}"
        first = conn.execute(query).fetchall()
        second = conn.execute(query).fetchall()
    assert first == second == [(1, "one"), (2, "two")]
    assert pg_server.statement_count(marker) == 1


def test_hit_on_another_connection(pg_server, proxy, marker):
    query = f"SELECT 40 + 2 AS answer {marker}"
    with connect(pg_server, proxy) as a:
        assert a.execute(query).fetchone() == (42,)
    with connect(pg_server, proxy) as b:
        cur = b.execute(query)
        assert cur.fetchone() == (42,)
        assert [d.name for d in cur.description] == ["answer"]
    assert pg_server.statement_count(marker) == 1


def test_volatile_function_is_not_cached(pg_server, proxy, marker):
    query = f"SELECT now() {marker}"
    with connect(pg_server, proxy) as conn:
        conn.execute(query)
        conn.execute(query)
    assert pg_server.statement_count(marker) == 2


def test_l2_survives_restart(pg_server, make_proxy, tmp_path, marker):
    """Entries persist in diskcache: a new proxy on the same directory answers from them."""
    from servers.proxy import cache_config, run_proxy

    query = f"SELECT 'persisted' {marker}"
    caches = [cache_config(pg_server.host, pg_server.port)]
    for _ in range(2):
        with run_proxy(caches, tmp_path / "persist") as proxy, connect(pg_server, proxy) as conn:
            assert conn.execute(query).fetchone() == ("persisted",)
    assert pg_server.statement_count(marker) == 1
