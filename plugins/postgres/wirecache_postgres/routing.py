"""Which cache a client asked for, and the startup parameters the origin sees.

A client names its cache with ``application_name=CACHEID`` or with the user
name ``CACHEID-realuser`` (the prefix is removed before the origin sees it).
Real user names may contain dashes and ``application_name`` is often set by
drivers (psql sends "psql"), so a value that names no cache is not an error
when the listener has one obvious cache to fall back on: a single cache, or
one marked ``default = true``. Only when several caches share a listener
without a default does an unknown id become a FATAL error.
"""

from __future__ import annotations

from dataclasses import dataclass

from wirecache.api import Cache, Connection


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
    prefix, dash, rest = user.partition("-")
    cache, rewritten = None, False
    if dash and rest and (found := conn.resolve(prefix)) is not None:
        cache, user, rewritten = found, rest, True
    elif (app := params.get("application_name")) and (found := conn.resolve(app)) is not None:
        cache = found
    else:
        caches = conn.listener.caches
        if len(caches) == 1 or caches[0].config.default:
            cache = caches[0]
    if cache is None:
        asked = prefix if dash else params.get("application_name", "")
        known = ", ".join(conn.known_cache_ids())
        raise RoutingError(
            f'wirecache: unknown cache id "{asked}"; this listener serves: {known}. '
            "Put the cache id in application_name or in front of the user name "
            "(CACHEID-user)."
        )
    origin_params = dict(params)
    origin_params["user"] = user
    database = params.get("database") or user
    return Route(cache, user, database, origin_params, rewritten)
