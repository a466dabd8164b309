"""The trio server: listeners, sessions, caches and graceful shutdown.

One process serves many caches. Caches that share a listen address share a
listener; a client picks its cache by id (how is the dialect's business) or
gets the listener's default cache.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field

import structlog
import trio

from wirecache import tls, workers
from wirecache.cache.cache import Cache
from wirecache.config import Address, CacheConfig, ServerConfig
from wirecache.connection import Connection
from wirecache.dialect import Dialect
from wirecache.hotloop import HotLoop
from wirecache.plugins import Plugins
from wirecache.sockets import direct

log = structlog.get_logger("wirecache.server")

#: Ways a peer can vanish mid-session; they end the connection quietly.
_DISCONNECTS = (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, ConnectionError)


@dataclass
class Listener:
    """One listen address, its dialect and the caches reachable through it (default first)."""

    address: Address
    dialect: Dialect
    caches: list[Cache]
    tls: ssl.SSLContext
    by_id: dict[str, Cache] = field(default_factory=dict)
    bound: list[Address] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_id = {c.id.lower(): c for c in self.caches}


class Server:
    """Everything one wirecache process runs."""

    def __init__(self, config: ServerConfig, plugins: Plugins) -> None:
        workers.check(config)
        self.config = config
        self.plugins = plugins
        self.cancel_keys: dict[bytes, object] = {}
        self.idle_scopes: set[trio.CancelScope] = set()
        self.draining = trio.Event()
        self.caches: dict[str, Cache] = {}
        self.origin_contexts: dict[str, ssl.SSLContext | None] = {}
        self.listeners: list[Listener] = []
        self._listen_scope = trio.CancelScope()
        self._sessions_scope = trio.CancelScope()
        self._active = 0
        self.hotloop = HotLoop()
        for address, group in config.caches_by_listener().items():
            caches = [self._make_cache(c) for c in group]
            self.listeners.append(
                Listener(
                    address, plugins.dialects[group[0].dialect], caches, self._client_tls(group[0])
                )
            )

    def _make_cache(self, config: CacheConfig) -> Cache:
        hook = self.plugins.pm.hook
        dialect = self.plugins.dialects[config.dialect]
        cache = Cache(
            config,
            dialect.rules,
            self.config.cache_dir / config.id,
            cacheable_hook=hook.wirecache_cacheable,
            ttl_hook=hook.wirecache_choose_ttl,
            invalidated_hook=(
                hook.wirecache_invalidated if self.plugins.implemented("wirecache_invalidated")
                else None
            ),
            event_hook=(
                hook.wirecache_cache_event if self.plugins.implemented("wirecache_cache_event")
                else None
            ),
            shared_versions=self.config.workers > 1,
        )  # fmt: skip
        self.caches[config.id] = cache
        self.origin_contexts[config.id] = tls.origin_context(config.origin_tls, config.origin_ca)
        return cache

    def _client_tls(self, config: CacheConfig) -> ssl.SSLContext:
        if config.client_tls_cert and config.client_tls_key:
            return tls.server_context(config.client_tls_cert, config.client_tls_key)
        return tls.server_context(*tls.self_signed(self.config.cache_dir / "tls"))

    # -- running ----------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[list[Address]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen and serve until :meth:`shutdown`; reports the bound addresses when ready."""
        try:
            async with trio.open_nursery() as hot:
                hot.start_soon(self.hotloop.run)
                with self._sessions_scope:
                    async with trio.open_nursery() as sessions:
                        with self._listen_scope:
                            async with trio.open_nursery() as listening:
                                for listener in self.listeners:
                                    await listening.start(self._listen, listener, sessions)
                                task_status.started(
                                    [a for lst in self.listeners for a in lst.bound]
                                )
                hot.cancel_scope.cancel()
        finally:
            for cache in self.caches.values():
                cache.close()
            log.info("server.stopped")

    async def _listen(
        self, listener: Listener, sessions: trio.Nursery,
        *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:  # fmt: skip
        address = listener.address
        if self.config.workers > 1:
            sockets = await _shared_listeners(address)
        else:
            sockets = await trio.open_tcp_listeners(address.port, host=address.host)
        for s in sockets:
            host, port = s.socket.getsockname()[:2]
            listener.bound.append(Address(host, port))
        log.info(
            "server.listening", dialect=listener.dialect.name,
            address=[str(a) for a in listener.bound], caches=[c.id for c in listener.caches],
        )  # fmt: skip
        try:
            async with trio.open_nursery() as accepting:
                for s in sockets:
                    accepting.start_soon(self._accept_loop, s, listener, sessions)
                task_status.started()
        finally:
            for s in sockets:
                await s.aclose()

    async def _accept_loop(
        self, sock: trio.SocketListener, listener: Listener, sessions: trio.Nursery
    ) -> None:
        while True:
            stream = await sock.accept()
            sessions.start_soon(self._session, direct(stream), listener)

    async def _session(self, stream: trio.SocketStream, listener: Listener) -> None:
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            peer = str(Address(*stream.socket.getpeername()[:2]))
        except OSError:
            peer = "?"
        conn = Connection(self, listener, peer)
        self._active += 1
        conn.log.info("conn.open", dialect=listener.dialect.name, listen=str(listener.address))
        try:
            try:
                await listener.dialect.serve(stream, conn)
            except* _DISCONNECTS as group:
                conn.log.info("conn.broken", error=repr(group.exceptions[0]))
        except Exception:
            # A bug in a dialect must cost one connection, never the proxy.
            conn.log.exception("conn.crashed")
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await stream.aclose()
            conn.log.info("conn.close")
            self._active -= 1

    def shutdown(self) -> None:
        """Stop accepting, end idle sessions, and let statements in flight finish.

        After ``shutdown_grace`` seconds whatever is still running is cancelled.
        """
        if self.draining.is_set():
            return
        log.info("server.draining", active=self._active, grace=self.config.shutdown_grace)
        self.draining.set()
        self._listen_scope.cancel()
        for scope in list(self.idle_scopes):
            scope.cancel()
        self._sessions_scope.deadline = trio.current_time() + self.config.shutdown_grace


async def _shared_listeners(address: Address) -> list[trio.SocketListener]:
    """Listening sockets with SO_REUSEPORT, one per address family of ``address``.

    Every worker of ``--workers N`` binds the same port this way and the
    kernel spreads incoming connections over them.
    """
    infos = await trio.socket.getaddrinfo(
        address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    listeners: list[trio.SocketListener] = []
    try:
        for family, type_, proto, _, sockaddr in infos:
            sock = trio.socket.socket(family, type_, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                await sock.bind(sockaddr)
                sock.listen(socket.SOMAXCONN)
            except BaseException:
                sock.close()
                raise
            listeners.append(trio.SocketListener(sock))
    except BaseException:
        for listener in listeners:
            listener.socket.close()
        raise
    return listeners
