"""The ``wirecache`` command: serve, plugins, check-config, bench."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import signal
import sys
from pathlib import Path

import structlog
import trio

from wirecache import __version__, logs
from wirecache.config import (
    LOG_FORMATS,
    LOG_LEVELS,
    CacheConfig,
    ConfigError,
    ServerConfig,
    default_cache_dir,
    load,
    parse_address,
)
from wirecache.plugins import Plugins
from wirecache.workers import WORKER_FLAG


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wirecache", description="A caching proxy for SQL databases."
    )
    parser.add_argument("--version", action="version", version=f"wirecache {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve",
        help="run the proxy",
        description="Run the proxy. Without --config, one cache named 'default' proxies "
        "--listen to --origin.",
    )
    serve.add_argument("--config", type=Path, help="TOML configuration file (see README)")
    serve.add_argument(
        "--listen", help="HOST:PORT to listen on (default 127.0.0.1:6432 for postgres)"
    )
    serve.add_argument("--origin", help="HOST:PORT of the origin database (default 127.0.0.1:5432)")
    serve.add_argument("--dialect", default=None, help="dialect plugin to use (default postgres)")
    serve.add_argument("--cache-id", default="default", help="id of the cache (default 'default')")
    serve.add_argument(
        "--origin-tls",
        choices=("disable", "prefer", "require", "verify-full"),
        help="TLS toward the origin (default disable)",
    )
    serve.add_argument(
        "--cache-dir", type=Path, help=f"L2 directory (default {default_cache_dir()})"
    )
    serve.add_argument("--log-format", choices=LOG_FORMATS, help="console (default) or json")
    serve.add_argument("--log-level", choices=LOG_LEVELS, help="default info")
    serve.add_argument(
        "--workers",
        type=_positive_int,
        help="worker processes sharing the listen ports, L2 and invalidations (default 1)",
    )
    # Internal: set by the parent of --workers N on each worker it starts (see workers.py).
    serve.add_argument(WORKER_FLAG, type=int, dest="worker_index", help=argparse.SUPPRESS)

    sub.add_parser("plugins", help="list the discovered plugins and their versions")

    check = sub.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file", type=Path)

    from wirecache import bench

    bench_parser = sub.add_parser("bench", help="run a benchmark scenario against targets")
    bench.add_arguments(bench_parser)
    return parser


def config_from_args(args: argparse.Namespace, plugins: Plugins) -> ServerConfig:
    """The configuration ``serve`` runs with: the file, overridden by flags, or flags alone."""
    ports = plugins.dialect_ports()
    if args.config:
        config = load(args.config, ports)
        if args.listen or args.origin or args.dialect or args.origin_tls:
            raise ConfigError(
                "--listen, --origin, --dialect and --origin-tls configure a single cache; "
                "with --config, set them in the file"
            )
    else:
        dialect = args.dialect or "postgres"
        if dialect not in ports:
            known = ", ".join(sorted(ports)) or "none installed"
            raise ConfigError(f"--dialect: unknown dialect {dialect!r}; installed: {known}")
        origin_port, listen_port = ports[dialect]
        cache = CacheConfig(
            id=args.cache_id,
            dialect=dialect,
            origin=parse_address(
                args.origin or f"127.0.0.1:{origin_port}", "--origin", origin_port
            ),
            listen=parse_address(args.listen or f"127.0.0.1:{listen_port}", "--listen"),
            origin_tls=args.origin_tls or "disable",
            default=True,
        )
        config = ServerConfig(caches=(cache,))
    overrides = {}
    if args.cache_dir:
        overrides["cache_dir"] = args.cache_dir
    if args.log_format:
        overrides["log_format"] = args.log_format
    if args.log_level:
        overrides["log_level"] = args.log_level
    if args.workers:
        overrides["workers"] = args.workers
    if overrides:
        config = ServerConfig(**{**config.__dict__, **overrides})
    return config


async def serve(config: ServerConfig, plugins: Plugins, *, parent_pipe: bool = False) -> None:
    """Run the server until SIGINT or SIGTERM, then drain and stop.

    ``parent_pipe`` (a worker of ``--workers N``): also drain and stop when
    stdin, a pipe from the parent, reaches end of file (the parent died).
    """
    from wirecache.server import Server

    server = Server(config, plugins)
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            await nursery.start(server.run)

            async def watch() -> None:
                async for _ in signals:
                    server.shutdown()
                    return

            async def watch_parent() -> None:
                with contextlib.suppress(OSError, trio.BrokenResourceError):
                    async with trio.lowlevel.FdStream(os.dup(0)) as pipe:
                        while await pipe.receive_some():
                            pass
                server.shutdown()

            async with trio.open_nursery() as watchers:
                watchers.start_soon(watch)
                if parent_pipe:
                    watchers.start_soon(watch_parent)
                await server.draining.wait()
                watchers.cancel_scope.cancel()
        # server.run returns once every session ended or the grace period cut them off.


def _mysql_bench_argv(argv: list[str]) -> list[str] | None:
    """The MySQL harness has options of its own: ``wirecache bench --dialect mysql …``
    is handed to it whole, before the PostgreSQL harness's parser sees it."""
    if argv[:1] != ["bench"]:
        return None
    rest = argv[1:]
    for i, arg in enumerate(rest):
        if arg == "--dialect" and rest[i + 1 : i + 2] == ["mysql"]:
            return rest[:i] + rest[i + 2 :]
        if arg == "--dialect=mysql":
            return rest[:i] + rest[i + 1 :]
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    mysql_argv = _mysql_bench_argv(argv)
    if mysql_argv is not None:
        from wirecache.bench import mysql

        return mysql.main(mysql_argv)
    args = build_parser().parse_args(argv)
    if args.command == "bench":
        from wirecache import bench

        return bench.run(args)
    plugins = Plugins()
    if args.command == "plugins":
        for info in plugins.info():
            dialects = f"  dialects: {', '.join(info.dialects)}" if info.dialects else ""
            print(f"{info.distribution} {info.version}  ({info.name}){dialects}")
        return 0
    if args.command == "check-config":
        try:
            config = load(args.file, plugins.dialect_ports())
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        for cache in config.caches:
            print(f"ok: cache {cache.id} ({cache.dialect}) {cache.listen} -> {cache.origin}")
        return 0
    try:
        config = config_from_args(args, plugins)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    logs.configure(config.log_format, config.log_level)
    if config.workers > 1 and args.worker_index is None:
        from wirecache import workers

        try:
            return workers.supervise(config, list(sys.argv[1:] if argv is None else argv))
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if args.worker_index is not None:
        structlog.get_logger("wirecache.workers").info(
            "worker.started", worker=args.worker_index, pid=os.getpid(), workers=config.workers
        )
    try:
        trio.run(
            functools.partial(serve, parent_pipe=args.worker_index is not None), config, plugins
        )
    except Exception as e:
        # Binding fails inside the server's nurseries: find the OSError in the group.
        while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
            e = e.exceptions[0]
        if not isinstance(e, OSError):
            raise
        print(f"error: cannot listen: {e}", file=sys.stderr)
        return 1
    return 0
