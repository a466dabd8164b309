"""Targets and the measurement matrix, the same for every dialect's harness.

A target is ``direct`` (the origin, through the possibly delayed path), a
wirecache the harness starts (``wirecache serve --dialect D``, one per worker
count: ``--workers 1,2`` gives ``wirecache`` and ``wirecache-w2``), or, in the
PostgreSQL harness, any proxy given by address. :func:`measure_matrix` runs
every scenario × mode × clients cell against every target, interleaved per
cell, so the ratios compare like with like; each scenario gets fresh started
wirecaches, since its setup writes to the origin directly and a cache cannot
see that.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .latency import stop
from .origin import free_port, wait_for_port
from .progress import RunProgress
from .results import DIRECT, Result, ratios

__all__ = [
    "DIRECT",
    "WIRECACHE",
    "Target",
    "TargetSpec",
    "measure_matrix",
    "started_wirecache",
    "worker_targets",
]

WIRECACHE = "wirecache"


class Address(Protocol):
    """What a target needs of a dialect's endpoint type."""

    @property
    def address(self) -> str: ...

    def with_address(self, host: str, port: int) -> Address: ...


@dataclass(frozen=True)
class TargetSpec:
    """A target as asked for: a name and, unless the harness starts it, an address."""

    name: str
    address: tuple[str, int] | None = None
    workers: int = 1


@dataclass
class Target:
    """A target ready to receive load; ``pid`` is the process (tree) whose CPU we charge."""

    name: str
    endpoint: Address
    pid: int | None = None


def worker_targets(workers: Sequence[int]) -> list[TargetSpec]:
    """One started wirecache per worker count: ``wirecache`` for 1, ``wirecache-wN`` else."""
    return [TargetSpec(WIRECACHE if n == 1 else f"{WIRECACHE}-w{n}", workers=n) for n in workers]


@contextlib.contextmanager
def started_wirecache(
    spec: TargetSpec, origin: Address, dialect: str, serve_args: Sequence[str], workdir: Path
) -> Iterator[Target]:
    """Start ``python -m wirecache serve`` against ``origin`` (the far address when the
    origin is moved away), with a fresh cache directory and ``--workers`` when > 1."""
    port = free_port()
    cache_dir = Path(tempfile.mkdtemp(prefix=f"{spec.name}-cache-", dir=workdir))
    log_path = workdir / f"{spec.name}.log"
    cmd = [sys.executable, "-m", "wirecache", "serve", "--listen", f"127.0.0.1:{port}",
           "--origin", origin.address, "--dialect", dialect, "--cache-dir", str(cache_dir),
           "--log-level", "warning"]  # fmt: skip
    if spec.workers > 1:
        cmd += ["--workers", str(spec.workers)]
    cmd += serve_args
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            wait_for_port("127.0.0.1", port, 30)
        except TimeoutError:
            raise RuntimeError(
                f"{spec.name} did not start listening ({' '.join(cmd)}): "
                + log_path.read_text()[-2000:]
            ) from None
        if proc.poll() is not None:
            raise RuntimeError(f"{spec.name} exited: {log_path.read_text()[-2000:]}")
        yield Target(spec.name, origin.with_address("127.0.0.1", port), proc.pid)
    finally:
        stop(proc)


def measure_matrix(
    *,
    scenarios: Sequence[str],
    modes: Sequence[str],
    clients: Sequence[int],
    targets: Sequence[TargetSpec],
    progress: RunProgress,
    setup: Callable[[str], None],
    start: Callable[[TargetSpec, contextlib.ExitStack], Target],
    measure: Callable[[str, str, int, Target], Result],
) -> list[Result]:
    """Every scenario × mode × clients cell against every target, in that order.

    ``setup(scenario)`` prepares the origin; ``start(spec, stack)`` readies a
    target for the scenario (started processes live on ``stack``);
    ``measure(scenario, mode, clients, target)`` runs one cell (warm-up
    included). The progress bar says which run is under way.
    """
    results: list[Result] = []
    for name in scenarios:
        progress.describe(f"setting up {name}")
        setup(name)
        with contextlib.ExitStack() as stack:
            ready = [start(spec, stack) for spec in targets]
            for mode in modes:
                for n in clients:
                    cell: list[Result] = []
                    for target in ready:
                        progress.describe(f"{name} {mode} c={n} {target.name}")
                        cell.append(measure(name, mode, n, target))
                        progress.advance()
                    ratios(cell)
                    results += cell
    return results
