"""Connecting to the origin: TCP, then TLS per the cache's ``origin_tls`` mode.

PostgreSQL negotiates TLS in-band: an SSLRequest answered with one byte,
``S`` (go ahead) or ``N`` (no TLS here).
"""

from __future__ import annotations

import trio
from wirecache.api import Cache, Connection, OriginUnavailable

from wirecache_postgres.messages import SSL_REQUEST


async def connect(conn: Connection, cache: Cache) -> trio.abc.Stream:
    """An open stream to the origin of ``cache``, encrypted when configured."""
    stream = await conn.open_origin(cache)
    if conn.origin_tls(cache) is None:
        return stream
    mode = cache.config.origin_tls
    try:
        await stream.send_all(SSL_REQUEST)
        answer = await stream.receive_some(1)
    except (trio.BrokenResourceError, OSError) as e:
        raise OriginUnavailable(cache.id, str(cache.origin), f"connection lost: {e}") from e
    if answer == b"S":
        return await conn.start_origin_tls(stream, cache)
    if answer == b"N" and mode == "prefer":
        return stream
    await stream.aclose()
    raise OriginUnavailable(
        cache.id,
        str(cache.origin),
        f"origin_tls is {mode!r} but the origin does not accept TLS"
        if answer == b"N"
        else "the origin did not answer the TLS request like a PostgreSQL server",
    )
