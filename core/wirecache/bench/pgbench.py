"""Running pgbench and reading what it measured.

Latencies come from pgbench's per-transaction log (``-l``), not from its
averaged summary, so percentiles and the distribution chart are exact.
Throughput is pgbench's own ``tps`` figure, which excludes connection set-up.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .origin import Endpoint
from .progress import ProgressCallback, follow_progress

TPS = re.compile(r"^tps = ([\d.]+) \(without initial connection time\)", re.M)
FAILED = re.compile(r"^number of failed transactions: (\d+)", re.M)


@dataclass(frozen=True)
class Load:
    """How much work one pgbench run does: ``duration`` seconds or ``transactions`` per client."""

    clients: int
    mode: str
    duration: int | None = None
    transactions: int | None = None

    def args(self) -> list[str]:
        amount = (
            ["-T", str(self.duration)]
            if self.duration is not None
            else ["-t", str(self.transactions)]
        )
        return ["-M", self.mode, "-c", str(self.clients), "-j", str(min(self.clients, 2)), *amount]

    @property
    def expected(self) -> float:
        """Progress-bar total: seconds, or transactions across all clients."""
        if self.duration is not None:
            return float(self.duration)
        return float((self.transactions or 0) * self.clients)


@dataclass
class PgbenchResult:
    """One measured run: sorted per-transaction latencies (µs) and the per-script counts."""

    tps: float
    failed: int
    latencies_us: list[int]
    per_script: list[int]

    @property
    def transactions(self) -> int:
        return len(self.latencies_us)


def pgbench_env() -> dict[str, str]:
    """pgbench's environment: every target over the same transport.

    libpq's default (``sslmode=prefer``) would use TLS to a wirecache (which
    always offers it) and plaintext to an origin without TLS, such as the
    throwaway one: unlike things. Without ``PGSSLMODE`` set by the user, every
    target is measured in plaintext; ``PGSSLMODE=require`` measures TLS everywhere.
    """
    return {**os.environ, "PGSSLMODE": os.environ.get("PGSSLMODE", "disable")}


def run_pgbench(
    endpoint: Endpoint,
    workload_args: list[str],
    load: Load,
    *,
    log: bool,
    on_progress: ProgressCallback | None = None,
) -> PgbenchResult:
    """Run pgbench once; with ``log`` keep its per-transaction log for latencies.

    ``-n`` skips pgbench's VACUUM: the harness prepared the tables through the
    origin, and a VACUUM sent through a proxy target is not the workload.
    """
    with tempfile.TemporaryDirectory(prefix="wirecache-bench-run-") as tmp:
        prefix = Path(tmp, "txn")
        cmd = ["pgbench", *endpoint.libpq_args(), "-n", "-P", "1", *load.args(), *workload_args]
        if log:
            cmd += ["-l", "--log-prefix", str(prefix)]
        cmd.append(endpoint.dbname)
        stdout_path = Path(tmp, "stdout")
        with stdout_path.open("w") as stdout:
            proc = subprocess.Popen(
                cmd, stdout=stdout, stderr=subprocess.PIPE, text=True, cwd=tmp, env=pgbench_env()
            )
            assert proc.stderr is not None
            errors = follow_progress(proc.stderr, load.duration is not None, on_progress)
            proc.wait()
        out = stdout_path.read_text()
        tps = TPS.search(out)
        if proc.returncode != 0 or tps is None:
            raise RuntimeError(
                f"pgbench against {endpoint.address} failed "
                f"(exit {proc.returncode}): " + "\n".join(errors[-5:])
            )
        failed = FAILED.search(out)
        latencies, per_script = _read_logs(prefix) if log else ([], [])
        return PgbenchResult(float(tps[1]), int(failed[1]) if failed else 0, latencies, per_script)


def _read_logs(prefix: Path) -> tuple[list[int], list[int]]:
    """Parse ``client txn latency_us script_no epoch epoch_us`` lines of every thread's log.

    Failed or skipped transactions carry a word instead of a latency and are
    left out of the distribution (they are counted by pgbench's summary).
    """
    latencies: list[int] = []
    per_script: list[int] = []
    for path in prefix.parent.glob(prefix.name + ".*"):
        with path.open() as handle:
            for line in handle:
                fields = line.split()
                if len(fields) < 4 or not fields[2].isdigit():
                    continue
                latencies.append(int(fields[2]))
                script = int(fields[3])
                if script >= len(per_script):
                    per_script.extend([0] * (script + 1 - len(per_script)))
                per_script[script] += 1
    latencies.sort()
    return latencies, per_script
