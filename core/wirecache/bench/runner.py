"""The PostgreSQL harness's measurement: pgbench against each target, counted at the origin.

The matrix itself (every target measured in the same run, interleaved per
cell, against the same origin through the same possibly delayed path) is
:func:`.targets.measure_matrix`, shared with the MySQL harness. Each measured
pgbench run is preceded by a warm-up run of the same shape whose figures are
thrown away (it also fills the cache).
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from .cpu import CpuMeter, listener_pid
from .latency import FarOrigin
from .origin import Endpoint, psql
from .pgbench import Load, PgbenchResult, run_pgbench
from .progress import RunProgress
from .results import CHART_QUANTILES, DIRECT, Result, cpu_per_txn, hit_ratio, latency_figures
from .scenarios import SCENARIOS, Scenario, reads_per_script
from .targets import WIRECACHE, Target, TargetSpec, measure_matrix, started_wirecache

__all__ = ["CHART_QUANTILES", "DIRECT", "WIRECACHE", "OriginCounter", "Plan", "Result", "Runner",
           "TargetSpec"]  # fmt: skip


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
        runs = len(plan.scenarios) * len(plan.modes) * len(plan.clients) * len(plan.targets)
        with (
            tempfile.TemporaryDirectory(prefix="wirecache-bench-") as tmp,
            RunProgress(self.console, runs) as progress,
        ):
            return measure_matrix(
                scenarios=plan.scenarios,
                modes=plan.modes,
                clients=plan.clients,
                targets=plan.targets,
                progress=progress,
                setup=lambda name: SCENARIOS[name].setup(self.origin, plan.scale),
                start=lambda spec, stack: self._target(spec, stack, Path(tmp)),
                measure=lambda name, mode, clients, target: self._measure(
                    SCENARIOS[name], mode, clients, target, Path(tmp), progress
                ),
            )

    def _target(self, spec: TargetSpec, stack: contextlib.ExitStack, tmp: Path) -> Target:
        if spec.name == DIRECT:
            return Target(DIRECT, self.far.endpoint)
        if spec.address is None:
            return stack.enter_context(
                started_wirecache(spec, self.far.endpoint, "postgres", self.plan.serve_args, tmp)
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
        progress: RunProgress,
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
        with progress.run(target.name, load.expected) as on_progress, CpuMeter(target.pid) as cpu:
            origin_before = self.counter.snapshot()
            measured = run_pgbench(
                target.endpoint, workload, load, log=True, on_progress=on_progress
            )
            origin_after = self.counter.snapshot()
        return self._result(
            scenario,
            mode,
            clients,
            target.name,
            measured,
            origin_after - origin_before,
            cpu.seconds,
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
        by_statements = self.counter.unit == OriginCounter.SELECTS
        reads = sum(
            n * r for n, r in zip(measured.per_script, reads_per_script(scenario), strict=False)
        )
        client_units = reads if by_statements else measured.transactions
        return Result(
            scenario=scenario.name,
            mode=mode,
            clients=clients,
            target=target,
            transactions=measured.transactions,
            failed=measured.failed,
            tps=measured.tps,
            counted=self.counter.unit,
            sent=client_units,
            reached_origin=origin_delta,
            hit_ratio=hit_ratio(target, client_units, origin_delta),
            proxy_cpu_s=cpu,
            cpu_us_per_txn=cpu_per_txn(cpu, measured.transactions),
            **latency_figures(measured.latencies_us),
        )
