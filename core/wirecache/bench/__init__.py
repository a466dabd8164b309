"""``wirecache bench``: measure on your own database what the cache buys.

The CLI module wires :func:`add_arguments` and :func:`run` into
``wirecache bench``. Load comes from pgbench; targets are the origin
(``direct``), a wirecache the harness starts (or one given by address) and any
other named address, all measured in the same run through the same path to
the origin, which ``--origin-rtt`` can move tens of milliseconds away.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import re
import shlex
import shutil
import subprocess
import sys

from rich.console import Console
from rich.table import Table

from .args import (
    add_origin_path_arguments,
    add_output_arguments,
    add_scenario_arguments,
    add_started_wirecache_arguments,
)
from .args import csv as _csv
from .latency import far_origin
from .origin import Endpoint, local_postgres, parse_address
from .report import Layout, finish
from .runner import Plan, Runner
from .scenarios import MODES, SCENARIOS
from .targets import DIRECT, WIRECACHE, TargetSpec, worker_targets

__all__ = ["add_arguments", "run"]


def _seconds(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*s?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"whole seconds expected, got {text!r}")
    return int(match[1])


def _target(text: str) -> TargetSpec:
    name, sep, address = text.partition("=")
    if not re.fullmatch(r"[\w.-]+", name):
        raise argparse.ArgumentTypeError(f"bad target name {name!r}")
    if not sep:
        if name not in (DIRECT, WIRECACHE):
            raise argparse.ArgumentTypeError(f"target {name!r} needs =HOST:PORT")
        return TargetSpec(name)
    if name == DIRECT:
        raise argparse.ArgumentTypeError("direct is the origin; use --origin HOST:PORT")
    try:
        return TargetSpec(name, parse_address(address))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad address {address!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``wirecache bench``."""
    parser.add_argument(
        "--dialect",
        choices=("postgres", "mysql"),
        default="postgres",
        help="postgres (default; pgbench load) or mysql (its own options: "
        "wirecache bench --dialect mysql --help)",
    )
    add_scenario_arguments(parser, SCENARIOS)
    parser.add_argument(
        "--mode",
        "-M",
        type=_csv(str, MODES),
        default=list(MODES),
        metavar="MODE[,MODE…]",
        help="protocol modes: simple, extended, prepared (default all)",
    )
    parser.add_argument(
        "--clients",
        "-c",
        type=_csv(int),
        default=[1],
        metavar="N[,N…]",
        help="concurrent clients per run (default 1)",
    )
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument(
        "--duration",
        "-T",
        type=_seconds,
        default=None,
        help="seconds per measured run (default 10)",
    )
    amount.add_argument(
        "--transactions",
        "-t",
        type=int,
        default=None,
        help="transactions per client per measured run",
    )
    parser.add_argument(
        "--warmup",
        type=_seconds,
        default=2,
        help="seconds of unmeasured warm-up before each run (0: none)",
    )
    parser.add_argument(
        "--target",
        action="append",
        type=_target,
        metavar="NAME[=HOST:PORT]",
        help="direct, wirecache (started here unless =HOST:PORT), or "
        "NAME=HOST:PORT; repeatable (default: direct and wirecache)",
    )
    add_started_wirecache_arguments(parser)
    parser.add_argument(
        "--origin", metavar="HOST:PORT", help="existing PostgreSQL; default: start a throwaway one"
    )
    parser.add_argument(
        "--user",
        default="postgres",
        help="role for the origin (default postgres; use PGPASSWORD or ~/.pgpass for a password)",
    )
    parser.add_argument("--dbname", default="postgres", help="database (default postgres)")
    parser.add_argument(
        "--scale",
        type=int,
        default=1,
        help="data size: pgbench -s and multiples of the bench tables",
    )
    add_origin_path_arguments(parser)
    add_output_arguments(parser)


def list_scenarios(console: Console) -> None:
    table = Table("scenario", "dialect", "description", title="wirecache bench scenarios")
    for scenario in SCENARIOS.values():
        table.add_row(scenario.name, scenario.dialect, scenario.description)
    console.print(table)


def _targets(args: argparse.Namespace) -> list[TargetSpec]:
    """Expand the target list: direct first, one started wirecache per worker count."""
    specs = args.target or [TargetSpec(DIRECT), TargetSpec(WIRECACHE)]
    expanded: list[TargetSpec] = []
    for spec in specs:
        if spec.name == WIRECACHE and spec.address is None:
            expanded += worker_targets(args.workers)
        else:
            expanded.append(spec)
    names = [s.name for s in expanded]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate target names in {names}")
    return sorted(expanded, key=lambda s: s.name != DIRECT)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; 0 on success, 1 with a message when something could not run."""
    # Piped output (CI logs, files) would otherwise wrap the wide table at 80 columns.
    out = Console() if sys.stdout.isatty() else Console(width=170)
    err = Console(stderr=True)
    if args.list:
        list_scenarios(out)
        return 0
    if shutil.which("pgbench") is None or shutil.which("psql") is None:
        err.print("[red]pgbench and psql are needed (Debian: postgresql-client)[/]")
        return 1
    try:
        plan = Plan(
            scenarios=args.scenario,
            modes=args.mode,
            clients=args.clients,
            targets=_targets(args),
            duration=args.duration if args.transactions is None else None,
            transactions=args.transactions,
            warmup=args.warmup,
            scale=args.scale,
            serve_args=args.serve_arg,
        )
        if plan.duration is None and plan.transactions is None:
            plan.duration = 10
        with contextlib.ExitStack() as stack:
            if args.origin:
                origin = Endpoint(*parse_address(args.origin), args.user, args.dbname)
            else:
                err.print("starting a throwaway PostgreSQL…")
                origin = stack.enter_context(local_postgres())
            far = stack.enter_context(far_origin(origin, args.origin_rtt, args.latency_method))
            if far.method != "none":
                err.print(
                    f"origin {origin.address} reached at {far.endpoint.address}: "
                    f"+{far.rtt_ms:g} ms RTT via {far.method} ({far.note})"
                )
            runner = Runner(plan, origin, far, err)
            results = runner.run()
            meta = {
                "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "command": shlex.join(["wirecache", *sys.argv[1:]]),
                "cpus": os.cpu_count(),
                "pgbench": subprocess.run(
                    ["pgbench", "--version"], capture_output=True, text=True
                ).stdout.strip(),
                "origin": origin.address,
                "origin_started_by_harness": not args.origin,
                "origin_path": {
                    "method": far.method,
                    "rtt_ms": far.rtt_ms,
                    "address": far.endpoint.address,
                    "note": far.note,
                },
                "sslmode": os.environ.get("PGSSLMODE", "disable"),
                "counted": runner.counter.unit,
                "plan": {
                    "scenarios": plan.scenarios,
                    "modes": plan.modes,
                    "clients": plan.clients,
                    "duration_s": plan.duration,
                    "transactions_per_client": plan.transactions,
                    "warmup_s": plan.warmup,
                    "scale": plan.scale,
                    "targets": [t.name for t in plan.targets],
                },
            }
        layout = Layout(
            {name: scenario.description for name, scenario in SCENARIOS.items()},
            f"Latency per pgbench transaction; origin/sent counts {meta['counted']} during "
            "the measured run; CPU = proxy process tree.",
        )
        finish(out, results, meta, args.json, args.html, layout)
    except (RuntimeError, ValueError, OSError, subprocess.SubprocessError) as exc:
        err.print(f"[red]bench failed:[/] {exc}")
        return 1
    return 0
