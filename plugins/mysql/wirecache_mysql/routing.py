"""Which cache a MySQL client asked for: the ``CACHEID-realuser`` user-name prefix.

MySQL has no startup parameter like PostgreSQL's ``application_name`` that
every driver can set, so the user name carries the cache id. The fallback
rules are the core's (:func:`wirecache.api.choose_cache`): a prefix that names
no cache is part of the real user name when the listener has a single cache
or a default one. Removing the prefix is safe for every MySQL auth method:
none of them hashes the user name.
"""

from __future__ import annotations

from dataclasses import dataclass

from wirecache.api import Cache, Connection, UnknownCache, choose_cache

HOW = "Put the cache id in front of the MySQL user name: CACHEID-user."


@dataclass(frozen=True, slots=True)
class Route:
    """The chosen cache and the user name the origin sees."""

    cache: Cache
    user: bytes

    @property
    def user_text(self) -> str:
        return self.user.decode("utf-8", "replace")


class RoutingError(Exception):
    """No cache matches; the message is for the client."""


def route(conn: Connection, username: bytes) -> Route:
    """Resolve the cache of a HandshakeResponse41 or COM_CHANGE_USER user name."""
    name = username.decode("utf-8", "surrogateescape")
    try:
        choice = choose_cache(conn, name, how=HOW)
    except UnknownCache as e:
        raise RoutingError(str(e)) from e
    return Route(choice.cache, choice.user.encode("utf-8", "surrogateescape"))
