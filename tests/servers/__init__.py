"""Real database servers for the test session, started from Debian's packages.

DESIGN.md ("Tests use real things") asks for real PostgreSQL and MariaDB origins
rather than mocks, so the proxy is tested against the exact wire behaviour
clients will see in production. Each server lives in a temp dir on a free
loopback port, so it never touches the machine's shared services on 5432/3306
and several test sessions can run side by side.

This module holds the process plumbing both servers share: finding a free
port, failing with an actionable message when a binary is missing, polling
for readiness instead of sleeping, retrying when another process grabbed the
port first, and stopping cleanly.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

# How long a server may take to accept its first connection. A cold start is
# ~1 s here; the margin is for loaded 2-core CI machines.
STARTUP_TIMEOUT = 60.0
# How long a server gets to shut down before it is killed.
SHUTDOWN_TIMEOUT = 15.0
# Attempts to start a server when another process took its port in between
# us probing the port and the server binding it.
START_ATTEMPTS = 3

_PR_SET_PDEATHSIG = 1

T = TypeVar("T")


class ServerStartError(RuntimeError):
    """A test database server could not be started; the message says why."""


class MissingBinaryError(ServerStartError):
    """A server binary is not installed; the message names the Debian package."""


class ServerExitedError(ServerStartError):
    """The server process exited before it became ready; ``log`` is its output."""

    def __init__(self, message: str, log: str) -> None:
        super().__init__(message)
        self.log = log


def find_binary(candidates: Sequence[str | Path], package: str) -> Path:
    """Return the first existing executable among ``candidates``.

    Raises with the Debian package to install, because "file not found" from
    subprocess does not tell a CI maintainer what to do about it.
    """
    for candidate in candidates:
        path = Path(candidate) if os.sep in str(candidate) else shutil.which(str(candidate))
        if path is not None and os.access(path, os.X_OK):
            return Path(path)
    names = ", ".join(str(c) for c in candidates)
    raise MissingBinaryError(
        f"none of {names} is installed; install the Debian package "
        f"{package!r} (apt-get install -y {package})"
    )


def free_port() -> int:
    """Ask the kernel for a free loopback TCP port.

    The port is released before the server binds it, so another process can
    win the race; ``start_with_retries`` handles that.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def die_with_parent(sig: signal.Signals) -> Callable[[], None]:
    """Build a ``preexec_fn`` that sends ``sig`` to the child when pytest dies.

    Without it a pytest killed by a CI timeout leaves servers running and
    holding ports and temp dirs. CPython runs ``preexec_fn`` after switching
    uid, so the setting survives the drop of privileges.
    """
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return preexec


def log_tail(path: Path, offset: int = 0, limit: int = 4000) -> str:
    """Return the end of a log from ``offset`` on, for error messages."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return "(no log written)"
    return data[-limit:].decode("utf-8", errors="replace")


def wait_until_ready(
    proc: subprocess.Popen[bytes],
    probe: Callable[[], None],
    *,
    what: str,
    log_path: Path,
    log_offset: int,
) -> None:
    """Poll ``probe`` until it succeeds, the process exits, or time runs out.

    The caller stops ``proc`` if this raises.

    Polling with a short backoff makes startup as fast as the server allows;
    a fixed sleep would be both slower and flaky under load.
    """
    deadline = time.monotonic() + STARTUP_TIMEOUT
    delay = 0.02
    last_error: Exception | None = None
    while True:
        if proc.poll() is not None:
            raise ServerExitedError(
                f"{what} exited with code {proc.returncode} during startup; "
                f"log {log_path}:\n{log_tail(log_path, log_offset)}",
                log_tail(log_path, log_offset),
            )
        try:
            probe()
        except Exception as exc:  # any failure means "not ready yet"
            last_error = exc
        else:
            return
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"{what} did not accept connections within {STARTUP_TIMEOUT:.0f}s "
                f"(last error: {last_error!r}); log {log_path}:\n"
                f"{log_tail(log_path, log_offset)}"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def start_with_retries(start: Callable[[int], T]) -> T:
    """Call ``start(port)`` on fresh free ports until the server binds one.

    ``start`` must wait for readiness itself and raise ``ServerExitedError`` if
    the server died. Only a lost port race is retried; any other failure is
    real and is raised at once.
    """
    for _ in range(START_ATTEMPTS - 1):
        try:
            return start(free_port())
        except ServerExitedError as exc:
            if "Address already in use" not in exc.log:
                raise
    return start(free_port())


def stop_process(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send ``sig`` for an orderly shutdown, then kill if it takes too long."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
