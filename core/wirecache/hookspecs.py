"""The wirecache plugin hooks: what a plugin can supply and when it is asked.

Two kinds of plugins implement these hooks:

* **dialect plugins** (``wirecache-postgres``, ``wirecache-mysql``, a third
  party's ``wirecache-clickhouse``) register a :class:`wirecache.dialect.Dialect`
  that speaks one database's wire protocol;
* **policy plugins** (any installed distribution, or an object registered by
  an embedding program) take part in caching decisions and observe events.

Plugins are found through the ``wirecache`` entry-point group; the entry point
names a module (or object) holding ``@hookimpl`` functions.

Policy hooks sit next to the hot path, so the core resolves them once per
statement template (cacheability, TTL) and calls observers only when some
plugin implements them. A hook is never called per packet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from wirecache.cache.events import CacheEvent
    from wirecache.classify import Classification
    from wirecache.dialect import Dialect

PROJECT = "wirecache"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def wirecache_dialects() -> list[Dialect]:
    """Return the dialects this plugin provides.

    Called once when the plugin manager is built. Each dialect has a unique
    ``name`` (``"postgres"``) that configuration files refer to.
    """


@hookspec
def wirecache_cacheable(cache_id: str, statement: Classification) -> bool | None:
    """Decide whether results of ``statement`` may be cached in ``cache_id``.

    Called once per distinct statement text (the result is memoised with the
    classification), only for statements the dialect already judged to be
    cacheable reads: a plugin can forbid caching ("never cache" rules) but not
    make a write or an unknown statement cacheable, because that would break
    the rules that keep the cache honest. Return ``False`` to forbid, ``None``
    for no opinion. Any ``False`` wins.
    """


@hookspec(firstresult=True)
def wirecache_choose_ttl(
    cache_id: str, statement: Classification, default_ttl: float
) -> float | None:
    """Choose the time to live, in seconds, of results of ``statement``.

    Called once per distinct statement text, after cacheability is settled.
    The first plugin that returns a number wins; ``None`` defers to the next
    plugin and finally to the cache's ``default_ttl``. Returning ``0`` makes
    the statement uncacheable.
    """


@hookspec
def wirecache_invalidated(cache_id: str, database: str, tables: frozenset[str] | None) -> None:
    """Observe an invalidation.

    Called after the versions of ``tables`` in ``database`` were bumped because
    a write was acknowledged by the origin (``tables`` is ``None`` when the
    whole database was invalidated). A shared tier uses this to tell other
    nodes.
    """


@hookspec
def wirecache_cache_event(event: CacheEvent) -> None:
    """Observe a cache hit, miss, store or skip.

    Called for every statement answered or forwarded while some plugin
    implements this hook (the core checks once at start-up), so keep it cheap:
    count, do not log. ``event`` carries the cache id, the statement
    fingerprint and the timings.
    """
