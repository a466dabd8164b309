"""wirecache itself, run in-process for tests: a Server on a trio loop in a thread.

The proxy runs on its own thread so that synchronous drivers (psycopg,
PyMySQL) and asyncio drivers (asyncpg) can talk to it from the test's thread
without blocking the event loop that serves them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import trio
from wirecache import logs
from wirecache.config import Address, CacheConfig, ServerConfig
from wirecache.plugins import Plugins
from wirecache.server import Server


@dataclass
class RunningProxy:
    """A wirecache serving in this process; ``host``/``port`` of its first listener."""

    server: Server
    addresses: list[Address]
    token: trio.lowlevel.TrioToken

    @property
    def host(self) -> str:
        return self.addresses[0].host

    @property
    def port(self) -> int:
        return self.addresses[0].port

    def cache(self, cache_id: str = "default"):
        return self.server.caches[cache_id]

    def call(self, fn, *args):
        """Run a plain function on the proxy's thread (its state is not thread-safe)."""
        return trio.from_thread.run_sync(fn, *args, trio_token=self.token)


def cache_config(origin_host: str, origin_port: int, **overrides) -> CacheConfig:
    """A cache on an ephemeral loopback port in front of the given origin."""
    base = CacheConfig(
        id="default",
        dialect="postgres",
        origin=Address(origin_host, origin_port),
        listen=Address("127.0.0.1", 0),
        default=True,
    )
    return replace(base, **overrides)


@contextlib.contextmanager
def run_proxy(
    caches: list[CacheConfig], cache_dir: Path, *, shutdown_grace: float = 5.0
) -> Iterator[RunningProxy]:
    """Start wirecache with ``caches`` on a thread; stop it (draining) on exit."""
    logs.configure("console", "warning")
    config = ServerConfig(caches=tuple(caches), cache_dir=cache_dir, shutdown_grace=shutdown_grace)
    server = Server(config, Plugins())
    ready = threading.Event()
    box: dict[str, object] = {}

    async def main() -> None:
        box["token"] = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            box["addresses"] = await nursery.start(server.run)
            ready.set()

    def target() -> None:
        try:
            trio.run(main)
        except BaseException as e:  # surfaced to the test below
            box["error"] = e
            ready.set()

    thread = threading.Thread(target=target, name="wirecache", daemon=True)
    thread.start()
    ready.wait(30)
    if "error" in box:
        raise RuntimeError("wirecache failed to start") from box["error"]  # type: ignore[arg-type]
    running = RunningProxy(server, box["addresses"], box["token"])  # type: ignore[arg-type]
    try:
        yield running
    finally:
        with contextlib.suppress(trio.RunFinishedError):
            trio.from_thread.run_sync(server.shutdown, trio_token=running.token)
        thread.join(30)


@contextlib.contextmanager
def proxy_factory(
    origin_host: str, origin_port: int, tmp_path: Path, **defaults
) -> Iterator[Callable[..., RunningProxy]]:
    """A function that starts wirecaches in front of one origin, each with its own
    cache directory, all stopped on exit. Its keyword arguments override fields of
    the cache's CacheConfig, on top of ``defaults``; positional ones are more caches."""
    with contextlib.ExitStack() as stack:
        count = 0

        def start(*extra_caches: CacheConfig, **overrides) -> RunningProxy:
            nonlocal count
            count += 1
            config = cache_config(origin_host, origin_port, **{**defaults, **overrides})
            return stack.enter_context(
                run_proxy([config, *extra_caches], tmp_path / f"cache{count}")
            )

        yield start
