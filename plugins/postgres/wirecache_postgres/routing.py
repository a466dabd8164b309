"""Which cache a PostgreSQL client asked for, and the startup parameters the origin sees.

The rules are the core's (:func:`wirecache.api.choose_cache`): the user-name
prefix ``CACHEID-realuser`` (removed before the origin sees it), then
``application_name=CACHEID``, then the listener's only or default cache.
"""

from __future__ import annotations

from dataclasses import dataclass

from wirecache.api import Cache, Connection, UnknownCache, choose_cache

HOW = "Put the cache id in application_name or in front of the user name (CACHEID-user)."


@dataclass(frozen=True)
class Route:
    """The chosen cache and what to send the origin."""

    cache: Cache
    user: str
    database: str
    params: dict[str, str]
    #: True when the cache id was taken off the user name: md5 hashes the
    #: user name, so md5 cannot pass through such a connection.
    user_rewritten: bool


class RoutingError(Exception):
    """The client named no cache this listener serves; the message says what to do."""


def route(conn: Connection, params: dict[str, str]) -> Route:
    user = params.get("user", "")
    if not user:
        raise RoutingError("no PostgreSQL user name specified in startup packet")
    try:
        choice = choose_cache(conn, user, params.get("application_name"), how=HOW)
    except UnknownCache as e:
        raise RoutingError(str(e)) from None
    origin_params = dict(params)
    origin_params["user"] = choice.user
    database = params.get("database") or choice.user
    return Route(choice.cache, choice.user, database, origin_params, choice.user_rewritten)
