"""``wirecache serve --workers N``: worker processes share the port, L2 and invalidations.

The property that matters (DESIGN.md rule 3, issue 5): a write acknowledged
through one worker never leaves another worker serving the old result. The
kernel spreads connections over the SO_REUSEPORT listeners; which worker
holds which connection is read from /proc, so the test proves it really
exercised both.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from wirecache import workers
from wirecache.config import Address, CacheConfig, ConfigError, ServerConfig

from postgres_plugin.cli import WIRECACHE, Served, free_port, serve
from postgres_plugin.util import connect

WORKERS = 2


def _wait_for_workers(served: Served, count: int = WORKERS, timeout: float = 30) -> None:
    """Until every worker says it listens (the first one alone would take all connections)."""
    deadline = time.monotonic() + timeout
    while served.log().count("server.listening") < count:
        if served.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{count} workers did not start:\n{served.log()}")
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                children.append(int(entry.name))
    return children


def _accepted(served: Served) -> dict[int, int]:
    """Connections accepted on the listen port: client port -> pid of the worker holding it."""
    inodes: dict[str, int] = {}
    for pid in _children(served.process.pid):
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes[target[8:-1]] = pid
    accepted = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == served.port and fields[3] == "01" and fields[9] in inodes:
            accepted[int(fields[2].split(":")[1], 16)] = inodes[fields[9]]
    return accepted


def _client_port(conn: psycopg.Connection) -> int:
    with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
        return sock.getsockname()[1]


@pytest.fixture
def table(pg_server) -> str:
    name = f"workers_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, name text)")
        conn.execute(f"INSERT INTO {name} VALUES (1, 'v0'), (2, 'other')")
    return name


def test_a_write_through_one_worker_refreshes_every_worker(pg_server, tmp_path, marker, table):
    literal = f"SELECT name FROM {table} WHERE id = 1 {marker}"
    with_param = f"SELECT name FROM {table} WHERE id = %s {marker}"
    with serve(pg_server.host, pg_server.port, tmp_path / "serve", "--workers", str(WORKERS)) as s:
        _wait_for_workers(s)
        worker_pids = set(_children(s.process.pid))
        assert len(worker_pids) == WORKERS
        with contextlib.ExitStack() as stack:
            conns: list[psycopg.Connection] = []
            # ~20 connections; the kernel hashes each onto a worker. Open more in the
            # (one in half a million) case that they all landed on the same one.
            while len(conns) < 20 or (
                len(set(_accepted(s).values())) < WORKERS and len(conns) < 80
            ):
                conns.append(stack.enter_context(connect(pg_server, s)))
            accepted = _accepted(s)
            by_worker: dict[int, list[psycopg.Connection]] = {}
            for conn in conns:
                by_worker.setdefault(accepted[_client_port(conn)], []).append(conn)
            assert set(by_worker) == worker_pids, {p: len(c) for p, c in by_worker.items()}

            def read_all(expected: str) -> None:
                for conn in conns:
                    assert conn.execute(literal).fetchone() == (expected,)
                    assert conn.execute(with_param, (1,)).fetchone() == (expected,)

            # Cache the reads on every connection, twice (the second read is an L1 hit in
            # every worker).
            read_all("v0")
            read_all("v0")
            reached = pg_server.statement_count(marker)
            assert reached < 2 * len(conns), "the reads were not served from the cache"

            # Writes through each worker in turn, each seen by every connection of every worker.
            for round_, pid in enumerate(sorted(by_worker) * 2, start=1):
                writer = by_worker[pid][round_ % len(by_worker[pid])]
                writer.execute(f"UPDATE {table} SET name = %s WHERE id = 1", (f"v{round_}",))
                read_all(f"v{round_}")
                read_all(f"v{round_}")
            # ...and the reads between the writes were hits, not pass-through.
            assert pg_server.statement_count(marker) < reached + 4 * 2 * 2 * len(conns)
        assert s.stop() == 0
    assert s.log().count("server.stopped") == WORKERS


def test_workers_from_the_config_file_and_a_clean_stop(pg_server, tmp_path, marker):
    port = free_port()
    config = tmp_path / "wirecache.toml"
    config.write_text(
        f'[server]\nworkers = {WORKERS}\ncache_dir = "{tmp_path / "cache"}"\n\n'
        f'[[cache]]\nid = "main"\ndialect = "postgres"\n'
        f'origin = "{pg_server.host}:{pg_server.port}"\nlisten = "127.0.0.1:{port}"\n'
    )
    log_path = tmp_path / "wirecache.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*WIRECACHE, "serve", "--config", str(config)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    served = Served(process, "127.0.0.1", port, log_path)
    try:
        _wait_for_workers(served)
        with connect(pg_server, served) as conn:
            assert conn.execute(f"SELECT 41 + 1 {marker}").fetchone() == (42,)
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 0
        # Every worker drained and stopped; none is left behind.
        assert served.log().count("server.stopped") == WORKERS
        assert _children(process.pid) == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_workers_need_an_explicit_port(tmp_path):
    cache = CacheConfig(
        id="c", dialect="postgres", origin=Address("127.0.0.1", 5), listen=Address("127.0.0.1", 0)
    )
    with pytest.raises(ConfigError, match="explicit port"):
        workers.check(ServerConfig(caches=(cache,), cache_dir=tmp_path, workers=2))
    workers.check(ServerConfig(caches=(cache,), cache_dir=tmp_path, workers=1))
