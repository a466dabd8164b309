"""``wirecache serve`` as a subprocess, the way a user runs it."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

WIRECACHE = [sys.executable, "-m", "wirecache"]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WIRECACHE, *args], capture_output=True, text=True, timeout=timeout
    )


@dataclass
class Served:
    """A running ``wirecache serve``: its process, address and log file."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def _wait_listening(served: Served, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise RuntimeError(
                f"wirecache serve exited with {served.process.returncode}:\n{served.log()}"
            )
        with contextlib.suppress(OSError), socket.create_connection(
            (served.host, served.port), timeout=1
        ):
            return
        time.sleep(0.05)
    raise RuntimeError(f"wirecache serve did not listen within {timeout}s:\n{served.log()}")


@contextlib.contextmanager
def serve(origin_host: str, origin_port: int, directory: Path, *extra: str) -> Iterator[Served]:
    """``wirecache serve --listen 127.0.0.1:PORT --origin HOST:PORT --cache-dir DIR``."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = directory / "wirecache.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*WIRECACHE, "serve", "--listen", f"127.0.0.1:{port}",
             "--origin", f"{origin_host}:{origin_port}", "--cache-dir", str(directory / "cache"),
             "--log-level", "info", *extra],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    served = Served(process, "127.0.0.1", port, log_path)
    try:
        _wait_listening(served)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
