"""Cancel requests: the client's key is wirecache's own, mapped to the origin backend.

wirecache hands every client its own BackendKeyData, so that a CancelRequest
(which arrives on a new connection, before any authentication) can be routed
to the origin backend of the right session, and so that keys of one origin
are never shown to clients of another.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import trio
from wirecache.api import Cache, Connection, OriginUnavailable

from wirecache_postgres import messages as m
from wirecache_postgres.origin import connect


@dataclass(frozen=True)
class CancelTarget:
    """Where a proxy key's cancel request goes."""

    cache: Cache
    pid: int
    secret: bytes


def proxy_key(origin_secret_length: int) -> tuple[int, bytes]:
    """A fresh (pid, secret) for the client, with the origin's secret length
    so it is valid under the negotiated protocol version."""
    return secrets.randbits(31), secrets.token_bytes(max(4, origin_secret_length))


def registry_key(pid: int, secret: bytes) -> bytes:
    return pid.to_bytes(4, "big", signed=True) + secret


async def forward(conn: Connection, request: m.CancelRequest) -> None:
    """Send the cancel to the origin backend the key maps to; unknown keys are ignored,
    as PostgreSQL does, so a guesser learns nothing."""
    target = conn.cancel_target(registry_key(request.pid, request.secret_key))
    if not isinstance(target, CancelTarget):
        conn.log.info("cancel.unknown_key")
        return
    try:
        with trio.fail_after(10):
            stream = await connect(conn, target.cache)
            async with stream:
                await stream.send_all(m.cancel_request(target.pid, target.secret))
                await stream.receive_some(1)  # the origin closes when done
    except (OriginUnavailable, trio.TooSlowError, trio.BrokenResourceError, OSError) as e:
        conn.log.warning("cancel.failed", error=str(e))
        return
    conn.log.info("cancel.forwarded", cache=target.cache.id)
