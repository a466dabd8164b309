"""The per-connection view of the core that a dialect works with."""

from __future__ import annotations

import itertools
import ssl
from typing import TYPE_CHECKING

import structlog
import trio

from wirecache.errors import OriginUnavailable
from wirecache.sockets import DirectStream, direct
from wirecache.streams import PrefixedStream

if TYPE_CHECKING:
    from wirecache.cache.cache import Cache
    from wirecache.hotloop import Handler
    from wirecache.server import Listener, Server

_ids = itertools.count(1)

#: How long connecting to the origin may take before the client is told.
ORIGIN_CONNECT_TIMEOUT = 10.0


class Connection:
    """One accepted client connection: routing, origin access, TLS, draining, logging."""

    def __init__(self, server: Server, listener: Listener, peer: str) -> None:
        self.server = server
        self.listener = listener
        self.id = next(_ids)
        self.peer = peer
        self.log = structlog.get_logger("wirecache.conn").bind(conn=self.id, peer=peer)

    # -- routing ----------------------------------------------------------

    @property
    def default_cache(self) -> Cache:
        return self.listener.caches[0]

    def resolve(self, cache_id: str | None) -> Cache | None:
        """The cache named ``cache_id`` on this listener (case-insensitive), or the default."""
        if not cache_id:
            return self.default_cache
        return self.listener.by_id.get(cache_id.lower())

    def known_cache_ids(self) -> list[str]:
        return [c.id for c in self.listener.caches]

    # -- TLS --------------------------------------------------------------

    @property
    def client_tls(self) -> ssl.SSLContext:
        """The context that terminates TLS from clients on this listener."""
        return self.listener.tls

    async def start_client_tls(
        self, client: trio.abc.Stream, already_read: bytes = b""
    ) -> trio.SSLStream:
        """Wrap the client leg in TLS; ``already_read`` feeds bytes read past the TLS request."""
        inner = PrefixedStream(client, already_read) if already_read else client
        stream = trio.SSLStream(inner, self.client_tls, server_side=True)
        await stream.do_handshake()
        return stream

    def origin_tls(self, cache: Cache) -> ssl.SSLContext | None:
        """The client context for the origin leg of ``cache``, or None when TLS is disabled."""
        return self.server.origin_contexts[cache.id]

    async def start_origin_tls(self, origin: trio.abc.Stream, cache: Cache) -> trio.SSLStream:
        ctx = self.origin_tls(cache)
        assert ctx is not None
        stream = trio.SSLStream(origin, ctx, server_hostname=cache.origin.host)
        try:
            await stream.do_handshake()
        except (trio.BrokenResourceError, ssl.SSLError, OSError) as e:
            # trio reports TLS failures as BrokenResourceError (no message) from the SSLError.
            cause = e.__cause__ if isinstance(e, trio.BrokenResourceError) and e.__cause__ else e
            reason = str(cause) or type(cause).__name__
            raise OriginUnavailable(cache.id, str(cache.origin), f"TLS failed: {reason}") from e
        return stream

    # -- origin -----------------------------------------------------------

    async def open_origin(self, cache: Cache) -> DirectStream:
        """Open a TCP connection to the origin of ``cache`` (TLS is the dialect's to start)."""
        origin = cache.origin
        try:
            with trio.fail_after(ORIGIN_CONNECT_TIMEOUT):
                stream = await trio.open_tcp_stream(origin.host, origin.port)
        except trio.TooSlowError as e:
            raise OriginUnavailable(cache.id, str(origin), "the connection timed out") from e
        except OSError as e:
            raise OriginUnavailable(cache.id, str(origin), _connect_failure(e)) from e
        stream.setsockopt(6, 1, 1)  # TCP_NODELAY: small requests must not wait
        return direct(stream)

    # -- the hot loop -----------------------------------------------------

    def direct(self, *streams: trio.abc.Stream) -> bool:
        """Whether ``streams`` are plain TCP that :meth:`serve_ready` can serve."""
        return all(isinstance(s, DirectStream) for s in streams)

    async def serve_ready(
        self, stream: DirectStream, handler: Handler, *more: tuple[DirectStream, Handler]
    ) -> None:
        """Call ``handler()`` each time ``stream`` has bytes, without a trip through
        trio's scheduler, until it returns False (then this returns) or raises
        (then this raises it). See :mod:`wirecache.hotloop` for why and what a
        handler may do: it must not block, and whatever it cannot finish at
        once it leaves for the awaiting task by returning False.

        ``more`` (stream, handler) pairs are served the same way by the same
        wait, for a task that relays both legs itself (a request/response
        protocol whose next step may come from either side); this returns as
        soon as any of the handlers returns False."""
        await self.server.hotloop.serve(stream, handler, *more)

    # -- cancel keys ------------------------------------------------------

    def register_cancel_key(self, key: bytes, target: object) -> None:
        """Remember what a cancel request carrying ``key`` must reach."""
        self.server.cancel_keys[key] = target

    def forget_cancel_key(self, key: bytes) -> None:
        self.server.cancel_keys.pop(key, None)

    def cancel_target(self, key: bytes) -> object | None:
        return self.server.cancel_keys.get(key)

    # -- draining ---------------------------------------------------------

    @property
    def draining(self) -> bool:
        return self.server.draining.is_set()

    def idle(self) -> _IdleScope:
        """Wrap a wait for the client's next bytes: it is cancelled when the server drains.

        The dialect then lets statements in flight finish and ends the
        session; check ``scope.cancelled_caught`` after the block. (A class,
        not a generator context manager: it wraps every read of every session.)
        """
        return _IdleScope(self.server)


class _IdleScope:
    __slots__ = ("_server", "_scope")

    def __init__(self, server: Server) -> None:
        self._server = server
        self._scope = trio.CancelScope()

    def __enter__(self) -> trio.CancelScope:
        scope = self._scope
        scope.__enter__()
        if self._server.draining.is_set():
            scope.cancel()
        self._server.idle_scopes.add(scope)
        return scope

    def __exit__(self, *exc: object) -> bool:
        self._server.idle_scopes.discard(self._scope)
        return self._scope.__exit__(*exc)  # type: ignore[arg-type]


def _connect_failure(error: OSError) -> str:
    """Why connecting failed, in words: trio reports "all attempts to connect to … failed"
    chained from the per-address errors, which say what happened (Connection refused…)."""
    cause = error.__cause__
    if isinstance(cause, BaseExceptionGroup):
        reasons = sorted({x.strerror for x in cause.exceptions
                          if isinstance(x, OSError) and x.strerror})  # fmt: skip
        if reasons:
            return "; ".join(reasons)
    return error.strerror or str(error)
