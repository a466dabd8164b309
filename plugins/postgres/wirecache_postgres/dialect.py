"""The PostgreSQL dialect: what the core drives for every client connection.

``serve`` walks a connection through its phases: startup (TLS, GSSENC and
cancel requests, the StartupMessage), routing to a cache, connecting to the
origin, relaying authentication, replacing the origin's BackendKeyData with
wirecache's own, and finally the relay loop of :mod:`wirecache_postgres.relay`.
"""

from __future__ import annotations

import contextlib

import trio
from wirecache.api import (
    Cache,
    ClassifierRules,
    Connection,
    Dependencies,
    Dialect,
    OriginUnavailable,
)

from wirecache_postgres import auth, cancel, catalog
from wirecache_postgres import messages as m
from wirecache_postgres.classify import RULES
from wirecache_postgres.framing import ProtocolError
from wirecache_postgres.messages import Backend
from wirecache_postgres.origin import connect
from wirecache_postgres.relay import Relay
from wirecache_postgres.routing import Route, RoutingError, route
from wirecache_postgres.state import SessionState
from wirecache_postgres.wire import MessageStream, PeerClosed

#: A client must finish the startup phase (TLS and StartupMessage) within this.
STARTUP_TIMEOUT = 60.0
#: Supported protocol: 3.x (3.2 negotiated down by the origin if it must).
PROTOCOL_MAJOR = 3


def fatal(code: str, message: str, hint: str | None = None) -> bytes:
    return m.error_response("FATAL", code, message, hint=hint)


class PostgresDialect(Dialect):
    """PostgreSQL frontend/backend protocol 3.0 and 3.2."""

    name = "postgres"
    default_origin_port = 5432
    default_listen_port = 6432

    @property
    def rules(self) -> ClassifierRules:
        return RULES

    async def serve(self, client: trio.abc.Stream, conn: Connection) -> None:
        ms = MessageStream(client)
        try:
            with trio.fail_after(STARTUP_TIMEOUT):
                startup = await self._startup(ms, conn)
        except trio.TooSlowError:
            conn.log.info("conn.startup_timeout")
            return
        except ProtocolError as e:
            await _try_send(ms, fatal(e.sqlstate, e.message))
            conn.log.info("conn.protocol_error", error=e.message)
            return
        except PeerClosed:
            return
        if startup is None:
            return
        ms, params, version = startup
        try:
            target = route(conn, params)
        except RoutingError as e:
            await _try_send(ms, fatal("3D000", str(e)))
            conn.log.info("conn.unknown_cache", error=str(e))
            return
        try:
            await self._session(ms, conn, target, version)
        except ProtocolError as e:
            await _try_send(ms, fatal(e.sqlstate, e.message))
            conn.log.info("conn.protocol_error", error=e.message)
        except PeerClosed:
            pass

    async def _startup(
        self, ms: MessageStream, conn: Connection
    ) -> tuple[MessageStream, dict[str, str], tuple[int, int]] | None:
        """Negotiate encryption and read the StartupMessage; None when the connection
        was a cancel request or is refused."""
        tls_done = False
        while True:
            code, payload, _ = await ms.startup_packet()
            packet = m.parse_startup_packet(code, payload)
            if isinstance(packet, m.SSLRequest):
                if tls_done:
                    raise ProtocolError("SSLRequest received after TLS was established")
                if ms.reader.buffered:
                    # Bytes sent ahead of the handshake would be read as if
                    # they had come encrypted (CVE-2021-23214).
                    raise ProtocolError("received unencrypted data after SSL request")
                await ms.send(b"S")
                ms = MessageStream(await conn.start_client_tls(ms.stream))
                tls_done = True
            elif isinstance(packet, m.GSSENCRequest):
                if ms.reader.buffered:
                    raise ProtocolError("received unencrypted data after GSSAPI encryption request")
                await ms.send(b"N")
            elif isinstance(packet, m.CancelRequest):
                await cancel.forward(conn, packet)
                return None
            else:
                if packet.major != PROTOCOL_MAJOR:
                    await ms.send(
                        fatal("0A000", f"unsupported frontend protocol {packet.major}."
                              f"{packet.minor}: wirecache supports 3.0 to 3.2")
                    )  # fmt: skip
                    return None
                return ms, packet.params, (packet.major, packet.minor)

    async def _session(
        self, client: MessageStream, conn: Connection, target: Route, version: tuple[int, int]
    ) -> None:
        cache = target.cache
        log = conn.log.bind(cache=cache.id, user=target.user, database=target.database)
        try:
            origin_stream = await connect(conn, cache)
        except OriginUnavailable as e:
            await _try_send(client, fatal("08006", str(e)))
            log.warning("origin.unavailable", error=str(e))
            return
        async with origin_stream:
            origin = MessageStream(origin_stream)
            await origin.send(m.startup_message(target.params, *version))
            try:
                await auth.relay(client, origin, target.user_rewritten)
            except auth.AuthFailed as e:
                if e.response is not None:
                    await _try_send(client, e.response)
                log.info("auth.failed", reason=e.reason)
                return
            log.info("auth.ok")
            state = SessionState(cache.id, target.database, target.user, target.params)
            key = await self._until_ready(client, origin, conn, cache, state)
            try:
                await Relay(
                    conn, cache, state, client.stream, client.reader, origin_stream, origin.reader
                ).run()
            finally:
                if key is not None:
                    conn.forget_cancel_key(key)

    async def _until_ready(
        self, client: MessageStream, origin: MessageStream, conn: Connection, cache: Cache,
        state: SessionState,
    ) -> bytes | None:  # fmt: skip
        """Relay ParameterStatus and the rest up to the first ReadyForQuery, swapping the
        origin's BackendKeyData for wirecache's own. Returns the registered cancel key."""
        registered = None
        out: list[bytes] = []
        while True:
            kind, body, raw = await origin.message()
            if kind == Backend.BACKEND_KEY_DATA:
                data = m.parse_backend_key_data(body)
                pid, secret = cancel.proxy_key(len(data.secret_key))
                registered = cancel.registry_key(pid, secret)
                conn.register_cancel_key(
                    registered, cancel.CancelTarget(cache, data.pid, data.secret_key)
                )
                out.append(m.backend_key_data(pid, secret))
                continue
            if kind == Backend.PARAMETER_STATUS:
                ps = m.parse_parameter_status(body)
                state.set_parameter(ps.name, ps.value)
            out.append(raw)
            if kind == Backend.READY_FOR_QUERY:
                state.ready(m.parse_ready_for_query(body).status)
                if cache.dependencies_due(state.database):
                    deps, error = await catalog.read_dependencies(origin)
                    if deps is None:
                        conn.log.warning("catalog.unreadable", error=error)
                        deps = Dependencies.unknown_edges()
                    cache.set_dependencies(state.database, deps)
                await client.send(b"".join(out))
                return registered
            if kind == Backend.ERROR_RESPONSE:
                await client.send(b"".join(out))
                raise PeerClosed()


async def _try_send(ms: MessageStream, data: bytes) -> None:
    """Best effort: the client may already be gone."""
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        await ms.send(data)
