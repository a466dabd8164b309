"""Choosing a cache from what a client sent: the rules every dialect shares.

A client names its cache in front of the user name (``CACHEID-realuser``) or
in a dialect-specific hint (PostgreSQL's ``application_name``). Real user
names may contain dashes and drivers set hints of their own, so a value that
names no cache is not an error when the listener has one obvious cache to
fall back on: a single cache, or one marked ``default = true``. Only when
several caches share a listener without a default does an unknown id become
an error, whose text the dialect wraps in its own error message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wirecache.cache.cache import Cache
    from wirecache.connection import Connection


@dataclass(frozen=True, slots=True)
class CacheChoice:
    """The chosen cache and the user name the origin must see."""

    cache: Cache
    user: str
    #: True when the cache id was taken off the user name (a hash of the user
    #: name computed by the client, as in PostgreSQL's md5, no longer matches).
    user_rewritten: bool


class UnknownCache(Exception):
    """The client named no cache this listener serves; the message says what to do."""

    def __init__(self, asked: str, known: list[str], how: str) -> None:
        super().__init__(
            f'wirecache: unknown cache id "{asked}"; this listener serves: '
            f"{', '.join(known)}. {how}"
        )
        self.asked = asked


def choose_cache(
    conn: Connection, user: str, *hints: str | None, how: str = "Put the cache id in front "
    "of the user name (CACHEID-user).",
) -> CacheChoice:  # fmt: skip
    """Resolve the cache of a new session.

    Order: a ``CACHEID-`` prefix of ``user`` that names a cache (removed from
    the user name), then each hint that names a cache, then the listener's
    fallback (its only cache, or its default). Raises :class:`UnknownCache`
    with ``how`` (the dialect's way of naming a cache) appended otherwise.
    """
    prefix, dash, rest = user.partition("-")
    if dash and rest and (found := conn.resolve(prefix)) is not None:
        return CacheChoice(found, rest, True)
    for hint in hints:
        if hint and (found := conn.resolve(hint)) is not None:
            return CacheChoice(found, user, False)
    caches = conn.listener.caches
    if len(caches) == 1 or caches[0].config.default:
        return CacheChoice(caches[0], user, False)
    asked = prefix if dash else next((h for h in hints if h), "")
    raise UnknownCache(asked, conn.known_cache_ids(), how)
