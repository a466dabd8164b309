"""The MySQL/MariaDB dialect: what the core drives for every client connection.

``serve`` walks a connection through its phases:

1. connect to the origin of the listener's default cache and relay its
   HandshakeV10, with capabilities adjusted (no compression, no query
   attributes, no MariaDB metadata cache or bulk/progress extensions;
   CLIENT_SSL always offered, since wirecache terminates the client's TLS);
2. the client's SSLRequest, then TLS with the bytes already read fed in
   (clients send their ClientHello without waiting for an answer);
3. the HandshakeResponse41: route by the ``CACHEID-`` user-name prefix, move
   to the chosen cache's origin if it is another server (that server then
   sends the client an AuthSwitchRequest over its own scramble), start
   TLS towards the origin if configured, and forward the response with the
   prefix removed;
4. authentication relayed until the origin's OK (:mod:`wirecache_mysql.auth`);
5. the command loop of :mod:`wirecache_mysql.relay`.

Sequence ids differ between the legs while only one of them did an
SSLRequest; they are renumbered during authentication. The command phase
restarts at 0 with every command on both legs.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace

import trio
from wirecache.api import ClassifierRules, Connection, Dialect, OriginUnavailable

from wirecache_mysql import auth, origin
from wirecache_mysql import messages as m
from wirecache_mysql.classify import RULES
from wirecache_mysql.packets import ProtocolError, build_packet
from wirecache_mysql.relay import Relay
from wirecache_mysql.routing import RoutingError, route
from wirecache_mysql.state import SessionState
from wirecache_mysql.wire import PacketStream, PeerClosed

#: A client must finish TLS and send its HandshakeResponse41 within this.
STARTUP_TIMEOUT = 60.0
#: A plugin name no account uses (see ``MySQLDialect._move``).
NO_PLUGIN = b"wirecache_reauthenticate"
#: CR_CONN_HOST_ERROR: "Can't connect to MySQL server".
ER_CANT_CONNECT = 2003

#: Capabilities never offered to clients: compression is not implemented,
#: query attributes and multi-factor auth change packet layouts wirecache
#: reads, the extension flag announces more of the same.
REMOVED_CAPABILITIES = (
    m.CLIENT_COMPRESS | m.CLIENT_ZSTD_COMPRESSION_ALGORITHM | m.CLIENT_QUERY_ATTRIBUTES
    | m.CLIENT_MULTI_FACTOR_AUTHENTICATION | m.CLIENT_CAPABILITY_EXTENSION
)  # fmt: skip
#: MariaDB extensions not offered: cached metadata would make stored binary
#: results depend on what a connection saw before; progress reports, COM_MULTI
#: and bulk execution are not followed by the relay.
REMOVED_MARIADB_CAPABILITIES = (
    m.MARIADB_CLIENT_PROGRESS | m.MARIADB_CLIENT_COM_MULTI | m.MARIADB_CLIENT_STMT_BULK_OPERATIONS
    | m.MARIADB_CLIENT_CACHE_METADATA | m.MARIADB_CLIENT_BULK_UNIT_RESULTS
)  # fmt: skip


def offered_greeting(greeting: m.HandshakeV10) -> m.HandshakeV10:
    """The origin's greeting as wirecache shows it to clients."""
    caps = (greeting.capabilities | m.CLIENT_SSL) & ~REMOVED_CAPABILITIES
    return greeting.with_capabilities(
        caps, greeting.mariadb_capabilities & ~REMOVED_MARIADB_CAPABILITIES
    )


class MySQLDialect(Dialect):
    """MySQL client/server protocol 4.1 (MySQL 5.5+, MariaDB)."""

    name = "mysql"
    default_origin_port = 3306
    default_listen_port = 3307

    @property
    def rules(self) -> ClassifierRules:
        return RULES

    async def serve(self, client: trio.abc.Stream, conn: Connection) -> None:
        cs = PacketStream(client)
        try:
            leg = await origin.connect(conn, conn.default_cache)
        except OriginUnavailable as e:
            conn.log.warning("origin.unavailable", error=str(e))
            await _try_send(cs, m.err_packet(0, ER_CANT_CONNECT, "HY000", str(e)))
            return
        try:
            await self._serve(cs, conn, leg)
        except ProtocolError as e:
            conn.log.info("conn.protocol_error", error=str(e))
            await _try_send(cs, m.err_packet(2, auth.ER_HANDSHAKE, "08S01",
                                             f"wirecache: bad handshake: {e}"))  # fmt: skip
        except PeerClosed:
            pass
        finally:
            await leg.aclose()

    async def _serve(self, cs: PacketStream, conn: Connection, leg: origin.OriginLeg) -> None:
        offered = offered_greeting(leg.greeting)
        await cs.send(build_packet(0, offered.build()))
        client_tls = False
        try:
            with trio.fail_after(STARTUP_TIMEOUT):
                msg = await cs.message()
                if m.is_ssl_request(msg.payload):
                    m.SSLRequest.parse(msg.payload)
                    already = cs.reader.take_buffered()
                    cs = PacketStream(await conn.start_client_tls(cs.stream, already))
                    client_tls = True
                    msg = await cs.message()
                response = m.HandshakeResponse41.parse(msg.payload)
        except trio.TooSlowError:
            conn.log.info("conn.startup_timeout")
            return
        client_seq = msg.seq
        try:
            target = route(conn, response.username)
        except RoutingError as e:
            conn.log.info("conn.unknown_cache", error=str(e))
            await _try_send(cs, m.err_packet(client_seq + 1, auth.ER_ACCESS_DENIED, "28000",
                                             str(e)))  # fmt: skip
            return
        cache = target.cache
        log = conn.log.bind(cache=cache.id, user=target.user_text)
        if cache is not leg.cache:
            try:
                leg, response, client_seq = await self._move(cs, conn, leg, cache, response,
                                                             client_seq)  # fmt: skip
            except OriginUnavailable as e:
                log.warning("origin.unavailable", error=str(e))
                await _try_send(cs, m.err_packet(client_seq + 1, ER_CANT_CONNECT, "HY000",
                                                 str(e)))  # fmt: skip
                return
        plugin = response.auth_plugin or leg.greeting.auth_plugin or auth.MYSQL_NATIVE_PASSWORD
        if plugin == NO_PLUGIN:
            plugin = None
        caps = response.capabilities & (offered.capabilities | m.CLIENT_SSL) & ~m.CLIENT_SSL
        mcaps = offered.mariadb_capabilities & response.mariadb_capabilities
        try:
            seq = await origin.secure(conn, leg, caps, response.max_packet, response.charset)
        except OriginUnavailable as e:
            log.warning("origin.unavailable", error=str(e))
            await _try_send(cs, m.err_packet(client_seq + 1, ER_CANT_CONNECT, "HY000", str(e)))
            return
        if not auth.initial_answer_allowed(plugin, response.auth_response, client_tls, leg.tls):
            log.info("auth.refused", reason="cleartext password towards a plain origin leg")
            await _try_send(cs, m.err_packet(client_seq + 1, auth.ER_ACCESS_DENIED, "28000",
                                             auth.CLEAR_PASSWORD_MESSAGE))  # fmt: skip
            return
        origin_caps = caps | (m.CLIENT_SSL if leg.tls else 0)
        forwarded = response.rewrite(
            username=target.user, capabilities=origin_caps,
            mariadb_capabilities=None if caps & m.CLIENT_MYSQL else mcaps,
        )  # fmt: skip
        await leg.packets.send(build_packet(seq, forwarded.build()))
        negotiated = caps & leg.greeting.capabilities
        try:
            result = await auth.relay(
                cs, leg.packets, delta=client_seq - seq, plugin=plugin, capabilities=negotiated,
                client_tls=client_tls, origin_tls=leg.tls,
            )  # fmt: skip
        except auth.AuthFailed as e:
            if e.response is not None:
                await _try_send(cs, e.response)
            log.info("auth.failed", reason=e.reason)
            return
        log.info("auth.ok", plugin=result.plugin.decode("ascii", "replace"),
                 client_tls=client_tls, origin_tls=leg.tls)  # fmt: skip
        database = (response.database or b"").decode("utf-8", "surrogateescape")
        state = SessionState(
            cache.id, database, target.user_text, response.charset, negotiated,
            mcaps if not caps & m.CLIENT_MYSQL else 0, result.ok.status_flags,
        )  # fmt: skip
        await Relay(
            conn, cache, state, cs, leg.packets, client_tls=client_tls, origin_tls=leg.tls,
            default_plugin=leg.greeting.auth_plugin or auth.MYSQL_NATIVE_PASSWORD,
        ).run()  # fmt: skip

    async def _move(
        self, cs: PacketStream, conn: Connection, leg: origin.OriginLeg, cache,
        response: m.HandshakeResponse41, client_seq: int,
    ) -> tuple[origin.OriginLeg, m.HandshakeResponse41, int]:  # fmt: skip
        """The client chose a cache behind another origin: connect to that one and
        let it ask the client for an answer over its own scramble."""
        same = leg.cache.config
        if cache.origin == same.origin and cache.config.origin_tls == same.origin_tls:
            leg.cache = cache
            return leg, response, client_seq
        new = await origin.connect(conn, cache)
        await leg.aclose()
        if not response.capabilities & m.CLIENT_PLUGIN_AUTH:
            await new.aclose()
            raise OriginUnavailable(cache.id, str(cache.origin),
                                    "the client cannot answer an auth switch")  # fmt: skip
        # The client's answer was computed over the first origin's scramble. Name a
        # plugin no account uses: the new origin then asks, with an auth switch that
        # carries its own scramble, for the account's real plugin, and the client
        # answers that (one switch, as for a direct connection).
        return new, replace(response, auth_response=b"", auth_plugin=NO_PLUGIN), client_seq


async def _try_send(cs: PacketStream, data: bytes) -> None:
    """Best effort: the client may already be gone."""
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        await cs.send(data)
