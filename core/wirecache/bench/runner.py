"""Orchestration: targets, the scenario × mode × clients × target matrix, measurement.

Every target is measured in the same run, interleaved per cell, against the
same origin through the same (possibly delayed) path, so the ratios compare
like with like. Each measured pgbench run is preceded by a warm-up run of the
same shape whose figures are thrown away (it also fills the cache).
"""

from __future__ import annotations

import contextlib
import math
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .cpu import cpu_seconds, listener_pid
from .latency import FarOrigin, stop
from .origin import Endpoint, free_port, psql, wait_for_port
from .pgbench import Load, PgbenchResult, run_pgbench
from .scenarios import SCENARIOS, Scenario, reads_per_script

DIRECT = "direct"
WIRECACHE = "wirecache"
# Fractions at which latencies are kept for the chart and JSON: every half percent, plus
# the tail.
CHART_QUANTILES = sorted({i / 200 for i in range(201)} | {0.999, 0.9999})


@dataclass(frozen=True)
class TargetSpec:
    """A target as asked for: a name and, unless the harness starts it, an address."""

    name: str
    address: tuple[str, int] | None = None
    workers: int = 1


@dataclass
class Plan:
    """Everything one ``wirecache bench`` invocation measures."""

    scenarios: list[str]
    modes: list[str]
    clients: list[int]
    targets: list[TargetSpec]
    duration: int | None = 10
    transactions: int | None = None
    warmup: int = 2
    scale: int = 1
    serve_args: list[str] = field(default_factory=list)


@dataclass
class Result:
    """One measured cell; this is also the JSON record."""

    scenario: str
    mode: str
    clients: int
    target: str
    transactions: int
    failed: int
    tps: float
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    counted: str
    sent: int
    reached_origin: int
    hit_ratio: float | None
    proxy_cpu_s: float | None
    cpu_us_per_txn: float | None
    quantiles_ms: list[float]
    ratio_vs_direct: float | None = None
    # Writes sent by the client and counted at the origin (the MySQL bench; pgbench's
    # scripts do not report them separately, so None there).
    writes_sent: int | None = None
    writes_reached_origin: int | None = None


@dataclass
class Target:
    """A target ready to receive load; ``pid`` is the process whose CPU we charge to it."""

    name: str
    endpoint: Endpoint
    pid: int | None = None


class OriginCounter:
    """Counts the reads that really reached the origin, to give an honest hit ratio.

    Preferred: ``pg_stat_statements`` calls of SELECT statements in the bench
    database (exact, immediate, and writes are excluded so the ratio is over
    cacheable reads). Fallback: ``pg_stat_database.xact_commit``, which counts
    every transaction (reads and writes alike, and flushed by PostgreSQL with
    up to a second's delay), so the ratio is then over all transactions.
    """

    SELECTS = "SELECT statements (pg_stat_statements)"
    TRANSACTIONS = "transactions (pg_stat_database.xact_commit)"
    STATEMENTS = """
        SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND ltrim(query) ILIKE 'select%' AND query NOT ILIKE '%pg_stat%'
          -- pgbench's own start-up checks for its built-in scripts, not the workload:
          AND query NOT ILIKE 'select count(*) from pgbench_branches%'
          AND query NOT ILIKE 'select o.n, p.partstrat%';
    """
    XACTS = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database();"

    def __init__(self, origin: Endpoint) -> None:
        self.origin = origin
        try:
            psql(origin, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;" + self.STATEMENTS)
            self.unit = self.SELECTS
            self.query = self.STATEMENTS
        except RuntimeError:
            self.unit = self.TRANSACTIONS
            self.query = "SELECT pg_stat_force_next_flush();" + self.XACTS

    def snapshot(self) -> int:
        return int(psql(self.origin, self.query).splitlines()[-1])


def percentile(sorted_values: list[int], q: float) -> float:
    """Nearest-rank percentile of sorted µs values, in ms."""
    if not sorted_values:
        return math.nan
    rank = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[rank] / 1000


@contextlib.contextmanager
def started_wirecache(
    name: str, far: FarOrigin, workers: int, serve_args: list[str], workdir: Path
) -> Iterator[Target]:
    """Start ``python -m wirecache serve`` against the (far) origin, with a fresh cache dir.

    A fresh cache per scenario means the setup's direct writes can never be
    served stale from an earlier scenario's entries.
    """
    port = free_port()
    cache_dir = Path(tempfile.mkdtemp(prefix=f"{name}-cache-", dir=workdir))
    log_path = workdir / f"{name}.log"
    cmd = [
        sys.executable,
        "-m",
        "wirecache",
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
        "--origin",
        far.endpoint.address,
        "--dialect",
        "postgres",
        "--cache-dir",
        str(cache_dir),
        "--log-level",
        "warning",
    ]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    with log_path.open("w") as log:
        proc = subprocess.Popen([*cmd, *serve_args], stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            wait_for_port("127.0.0.1", port, 30)
        except TimeoutError:
            raise RuntimeError(
                f"{name} did not start listening ({' '.join(cmd)}): " + log_path.read_text()[-2000:]
            ) from None
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited: {log_path.read_text()[-2000:]}")
        yield Target(name, far.endpoint.with_address("127.0.0.1", port), proc.pid)
    finally:
        stop(proc)


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


class Runner:
    """Runs a :class:`Plan` against an origin reached through ``far``."""

    def __init__(self, plan: Plan, origin: Endpoint, far: FarOrigin, console: Console) -> None:
        self.plan = plan
        self.origin = origin
        self.far = far
        self.console = console
        self.counter = OriginCounter(origin)

    def run(self) -> list[Result]:
        plan = self.plan
        cells = len(plan.modes) * len(plan.clients) * len(plan.targets)
        results: list[Result] = []
        with (
            tempfile.TemporaryDirectory(prefix="wirecache-bench-") as tmp,
            _progress(self.console) as progress,
        ):
            overall = progress.add_task("all runs", total=cells * len(plan.scenarios), rate="")
            for name in plan.scenarios:
                scenario = SCENARIOS[name]
                progress.update(overall, description=f"setting up {name}")
                scenario.setup(self.origin, plan.scale)
                with contextlib.ExitStack() as stack:
                    targets = [self._target(spec, stack, Path(tmp)) for spec in plan.targets]
                    for mode in plan.modes:
                        for clients in plan.clients:
                            cell: list[Result] = []
                            for target in targets:
                                label = f"{name} {mode} c={clients} {target.name}"
                                progress.update(overall, description=label)
                                cell.append(
                                    self._measure(
                                        scenario, mode, clients, target, Path(tmp), progress
                                    )
                                )
                                progress.advance(overall)
                            _ratios(cell)
                            results += cell
        return results

    def _target(self, spec: TargetSpec, stack: contextlib.ExitStack, tmp: Path) -> Target:
        if spec.name == DIRECT:
            return Target(DIRECT, self.far.endpoint)
        if spec.address is None:
            return stack.enter_context(
                started_wirecache(spec.name, self.far, spec.workers, self.plan.serve_args, tmp)
            )
        host, port = spec.address
        return Target(spec.name, self.origin.with_address(host, port), listener_pid(host, port))

    def _measure(
        self,
        scenario: Scenario,
        mode: str,
        clients: int,
        target: Target,
        tmp: Path,
        progress: Progress,
    ) -> Result:
        plan = self.plan
        workload = scenario.pgbench_args(str(tmp))
        if not scenario.builtin:
            workload += ["-s", str(plan.scale)]  # sets :scale for the custom scripts
        if plan.warmup > 0:
            run_pgbench(
                target.endpoint, workload, Load(clients, mode, duration=plan.warmup), log=False
            )
        load = Load(clients, mode, plan.duration, plan.transactions)
        task = progress.add_task(f"  {target.name}", total=load.expected, rate="")

        def on_progress(done: float, tps: float) -> None:
            progress.update(task, completed=done, rate=f"{tps:,.0f} tps")

        cpu_before = cpu_seconds(target.pid) if target.pid else None
        origin_before = self.counter.snapshot()
        measured = run_pgbench(target.endpoint, workload, load, log=True, on_progress=on_progress)
        origin_after = self.counter.snapshot()
        cpu_after = cpu_seconds(target.pid) if target.pid else None
        progress.remove_task(task)
        return self._result(
            scenario,
            mode,
            clients,
            target.name,
            measured,
            origin_after - origin_before,
            None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
        )

    def _result(
        self,
        scenario: Scenario,
        mode: str,
        clients: int,
        target: str,
        measured: PgbenchResult,
        origin_delta: int,
        cpu: float | None,
    ) -> Result:
        lat = measured.latencies_us
        by_statements = self.counter.unit == OriginCounter.SELECTS
        reads = sum(
            n * r for n, r in zip(measured.per_script, reads_per_script(scenario), strict=False)
        )
        client_units = reads if by_statements else measured.transactions
        hit_ratio = None
        if target != DIRECT and client_units:
            hit_ratio = min(1.0, max(0.0, 1 - origin_delta / client_units))
        return Result(
            scenario=scenario.name,
            mode=mode,
            clients=clients,
            target=target,
            transactions=measured.transactions,
            failed=measured.failed,
            tps=measured.tps,
            mean_ms=sum(lat) / len(lat) / 1000 if lat else math.nan,
            p50_ms=percentile(lat, 0.50),
            p95_ms=percentile(lat, 0.95),
            p99_ms=percentile(lat, 0.99),
            max_ms=percentile(lat, 1.0),
            counted=self.counter.unit,
            sent=client_units,
            reached_origin=origin_delta,
            hit_ratio=hit_ratio,
            proxy_cpu_s=cpu,
            cpu_us_per_txn=cpu / measured.transactions * 1e6
            if cpu is not None and measured.transactions
            else None,
            quantiles_ms=[percentile(lat, q) for q in CHART_QUANTILES],
        )


def _ratios(cell: list[Result]) -> None:
    """Throughput of each target relative to direct in the same cell."""
    direct = next((r for r in cell if r.target == DIRECT), None)
    if direct is None or not direct.tps:
        return
    for result in cell:
        result.ratio_vs_direct = result.tps / direct.tps
