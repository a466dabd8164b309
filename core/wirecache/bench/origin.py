"""Throwaway PostgreSQL origins and the small psql helper the harness uses.

The harness talks to the origin with the ``psql`` and ``pgbench`` binaries
rather than a Python driver: they come with every PostgreSQL install, they are
what the user already trusts, and the core distribution need not depend on a
database driver just to benchmark.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PG_BIN_CANDIDATES = (
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
)


@dataclass(frozen=True)
class Endpoint:
    """A PostgreSQL address plus the role and database the benchmark uses."""

    host: str
    port: int
    user: str = "postgres"
    dbname: str = "postgres"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def with_address(self, host: str, port: int) -> Endpoint:
        return Endpoint(host, port, self.user, self.dbname)

    def libpq_args(self) -> list[str]:
        """Connection flags shared by psql and pgbench."""
        return ["-h", self.host, "-p", str(self.port), "-U", self.user]


def parse_address(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """Split ``HOST:PORT`` (or a bare ``PORT``)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return default_host, int(text)
    return host or default_host, int(port)


def free_port(host: str = "127.0.0.1") -> int:
    """A loopback port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Block until something accepts on host:port, so we never race a server's startup."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing is listening on {host}:{port}") from None
            time.sleep(0.05)


def psql(endpoint: Endpoint, sql: str, *, timeout: float = 600) -> str:
    """Run SQL through psql on one connection; return unaligned tuples-only output.

    ON_ERROR_STOP makes a failing setup statement fail the benchmark loudly
    instead of measuring a half-built schema.
    """
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    proc = subprocess.run(
        [
            "psql",
            *endpoint.libpq_args(),
            "-d",
            endpoint.dbname,
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
        ],
        input=sql,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"psql on {endpoint.address} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def find_pg_bin() -> Path:
    """The server binaries directory (initdb/pg_ctl are not on PATH on Debian)."""
    for candidate in PG_BIN_CANDIDATES:
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise FileNotFoundError("PostgreSQL server binaries (initdb) not found")


def _server_user() -> str | None:
    """PostgreSQL refuses to run as root: pick an unprivileged account to run it as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and no unprivileged user to run PostgreSQL as")


@contextlib.contextmanager
def local_postgres(port: int | None = None) -> Iterator[Endpoint]:
    """Start a throwaway PostgreSQL on a free loopback port and remove it afterwards.

    Trust authentication on 127.0.0.1 only, fsync off (benchmark data is
    disposable; we measure the protocol path, not the disk), and
    pg_stat_statements preloaded so the harness can count statements that
    reached the origin.
    """
    pg_bin = find_pg_bin()
    user = _server_user()
    port = port or free_port()
    tmp = Path(tempfile.mkdtemp(prefix="wirecache-bench-pg-"))
    data = tmp / "data"
    prefix: list[str] = []
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(tmp, entry.pw_uid, entry.pw_gid)
        prefix = ["runuser", "-u", user, "--"]
    tmp.chmod(0o700)
    log = tmp / "server.log"
    try:
        subprocess.run(
            [
                *prefix,
                str(pg_bin / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
        )
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {port}\n"
                f"unix_socket_directories = '{tmp}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 200\nshared_buffers = 128MB\n"
                "shared_preload_libraries = 'pg_stat_statements'\n"
                "pg_stat_statements.track_utility = on\n"
            )
        subprocess.run(
            [
                *prefix,
                str(pg_bin / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        endpoint = Endpoint("127.0.0.1", port)
        wait_for_port(endpoint.host, endpoint.port, 30)
        yield endpoint
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*prefix, str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
            )
        shutil.rmtree(tmp, ignore_errors=True)
