"""The MySQL/MariaDB bench: the PostgreSQL bench's scenarios (point reads of a hot
set, uniform and Zipf, a heavy aggregate, read/write mixes) over the text and the
binary protocol, direct vs wirecache in the same run, the origin optionally far
away (``--origin-rtt``, through :mod:`.latency` like the PostgreSQL bench).

There is no pgbench for MySQL: load comes from ``mysqlload.c`` next to this
file, a small C client on libmariadb (threads, one connection each, the text
protocol or one prepared statement per connection), compiled on first use
with the system's C compiler and ``mariadb_config`` (Debian: ``gcc`` and
``libmariadb-dev``). The origin is the user's server or a throwaway MariaDB
started here (``mariadb-install-db`` into a temp dir, like the PostgreSQL one
in :mod:`.origin`). Statements that reached the origin are counted from its
``Com_select`` (text) or ``Com_stmt_execute`` minus ``Com_update`` (binary),
writes from ``Com_update``, status counters read with the ``mariadb``
command-line client, so the core needs no driver.

The outputs are the PostgreSQL bench's (:mod:`.report`): the table, ``--json``
and the ``--html`` latency chart, with the same live progress bar; ``--workers
1,2`` adds ``wirecache-w2`` (``serve --workers 2``), its CPU summed over the
process tree. Run as ``wirecache bench --dialect mysql [--scenario point-hot,…]
[-M text,prepared] [-c 1,16] [-T 5] [--workers 1,2] [--origin-rtt 20ms]
[--json FILE] [--html FILE]``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .args import (
    add_origin_path_arguments,
    add_output_arguments,
    add_scenario_arguments,
    add_started_wirecache_arguments,
)
from .args import csv as _csv
from .cpu import CpuMeter
from .latency import FarOrigin, far_origin, stop
from .origin import free_port, parse_address, wait_for_port
from .progress import ProgressCallback, RunProgress, follow_progress
from .report import Layout, finish
from .results import DIRECT, Result, cpu_per_txn, hit_ratio, latency_figures
from .targets import Target, TargetSpec, measure_matrix, started_wirecache, worker_targets

MODES = ("text", "prepared")
HOT_SET = 100
ITEMS = 10_000
FACTS = 200_000
GROUPS = 10  # distinct aggregate statements, so the aggregate cache warms after ten misses
DESCRIPTION = (
    "The bench's scenarios over the MySQL protocol: direct and a wirecache started here "
    "(one per --workers count) in the same run; a table, --json figures, an --html chart."
)
SOURCE = Path(__file__).with_name("mysqlload.c")
COUNTERS = ("Com_select", "Com_stmt_execute", "Com_update")
COUNTED = {
    "text": "reads: Com_select; writes: Com_update (SHOW GLOBAL STATUS)",
    "prepared": "reads: Com_stmt_execute - Com_update; writes: Com_update (SHOW GLOBAL STATUS)",
}


@dataclass(frozen=True)
class MySQLEndpoint:
    """A MySQL/MariaDB address plus the account and database the bench uses."""

    host: str
    port: int
    user: str = "bench"
    password: str = "bench"
    database: str = "bench"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def with_address(self, host: str, port: int) -> MySQLEndpoint:
        return MySQLEndpoint(host, port, self.user, self.password, self.database)


def mariadb_cli(endpoint: MySQLEndpoint, sql: str, *, database: bool = True) -> str:
    """Run SQL with the ``mariadb`` client; tab-separated output without headers."""
    client = shutil.which("mariadb") or shutil.which("mysql")
    if client is None:
        raise RuntimeError("the mariadb client is needed (Debian: mariadb-client)")
    cmd = [client, "--no-defaults", "-h", endpoint.host, "-P", str(endpoint.port),
           "-u", endpoint.user, "--skip-ssl", "-N", "-B"]  # fmt: skip
    if database:
        cmd.append(endpoint.database)
    env = {**os.environ, "MYSQL_PWD": endpoint.password}
    proc = subprocess.run(cmd, input=sql, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"mariadb on {endpoint.address} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


@contextlib.contextmanager
def local_mariadb(port: int | None = None) -> Iterator[MySQLEndpoint]:
    """Start a throwaway MariaDB on a free loopback port; remove it afterwards.

    ``--no-defaults`` keeps the machine's config (and its shared server's port
    and socket) out; no durability (the data is disposable); a ``bench`` user
    with a mysql_native_password password, created over the unix socket.
    """
    mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    install_db = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    client = shutil.which("mariadb") or shutil.which("mysql")
    if not Path(mariadbd).exists() or install_db is None or client is None:
        raise RuntimeError("MariaDB is needed (Debian: mariadb-server and mariadb-client)")
    port = port or free_port()
    tmp = Path(tempfile.mkdtemp(prefix="wirecache-bench-mariadb-"))
    data, sock, log = tmp / "data", tmp / "mariadbd.sock", tmp / "error.log"
    common = ["--no-defaults", f"--datadir={data}", "--user=root", "--skip-name-resolve",
              "--character-set-server=utf8mb4", "--innodb-buffer-pool-size=128M",
              "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0"]  # fmt: skip
    proc: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            [install_db, *common, "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, capture_output=True,
        )  # fmt: skip
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [mariadbd, *common, f"--port={port}", "--bind-address=127.0.0.1",
                 f"--socket={sock}", f"--pid-file={tmp / 'mariadbd.pid'}",
                 f"--log-error={log}", "--max-connections=300", "--performance-schema=OFF"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            wait_for_port("127.0.0.1", port, 60)
        except TimeoutError:
            raise RuntimeError(f"mariadbd did not start: {log.read_text()[-2000:]}") from None
        endpoint = MySQLEndpoint("127.0.0.1", port)
        setup = (
            f"CREATE DATABASE {endpoint.database};"
            f"CREATE USER '{endpoint.user}'@'%' IDENTIFIED BY '{endpoint.password}';"
            f"GRANT ALL ON *.* TO '{endpoint.user}'@'%';"
        )
        subprocess.run([client, "--no-defaults", f"--socket={sock}", "-u", "root"],
                       input=setup, check=True, capture_output=True, text=True)  # fmt: skip
        yield endpoint
    finally:
        if proc is not None:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def setup_items(origin: MySQLEndpoint) -> None:
    """bench_items: ITEMS rows keyed by id; rebuilt only if its size is wrong."""
    with contextlib.suppress(RuntimeError):
        if mariadb_cli(origin, "SELECT COUNT(*) FROM bench_items") == str(ITEMS):
            return
    mariadb_cli(
        origin,
        f"""
        SET SESSION max_recursive_iterations = {ITEMS + 1};
        DROP TABLE IF EXISTS bench_items;
        CREATE TABLE bench_items (id INT PRIMARY KEY, k INT NOT NULL, v VARCHAR(32) NOT NULL);
        INSERT INTO bench_items
            WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {ITEMS})
            SELECT i, i % 1000, MD5(i) FROM s;
        ANALYZE TABLE bench_items;
        """,
    )


def setup_facts(origin: MySQLEndpoint) -> None:
    """bench_facts: FACTS rows, no index on ``grp`` (1..GROUPS), so each aggregate is a
    full scan; rebuilt only if its size is wrong."""
    with contextlib.suppress(RuntimeError):
        if mariadb_cli(origin, "SELECT COUNT(*) FROM bench_facts") == str(FACTS):
            return
    mariadb_cli(
        origin,
        f"""
        SET SESSION max_recursive_iterations = {FACTS + 1};
        DROP TABLE IF EXISTS bench_facts;
        CREATE TABLE bench_facts (id BIGINT, grp INT, amount DECIMAL(12, 2), note VARCHAR(32));
        INSERT INTO bench_facts
            WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {FACTS})
            SELECT i, 1 + i % {GROUPS}, (i * 7919 % 100000) / 100.0, MD5(i) FROM s;
        ANALYZE TABLE bench_facts;
        """,
    )


POINT_READ = "SELECT id, k, v FROM bench_items WHERE id = ?"
HOT_WRITE = "UPDATE bench_items SET k = k + 1 WHERE id = ?"


@dataclass(frozen=True)
class Scenario:
    """A workload for mysqlload: a read statement with one integer parameter drawn
    from 1..keys (uniformly, or Zipf with exponent ``zipf``), and optionally a
    share of writes (same keys) that invalidate what the reads use."""

    name: str
    description: str
    setup: Callable[[MySQLEndpoint], None]
    keys: int
    read_sql: str = POINT_READ
    zipf: float = 0.0
    write_pct: int = 0
    write_sql: str = HOT_WRITE

    @property
    def label(self) -> str:
        """The scenario as named in the table and the JSON (``mysql-…``)."""
        return f"mysql-{self.name}"

    def load_args(self) -> list[str]:
        args = ["-r", self.read_sql]
        if self.zipf:
            args += ["-z", str(self.zipf)]
        if self.write_pct:
            args += ["-w", str(self.write_pct), "-u", self.write_sql]
        return args


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "point-hot",
            f"Primary-key reads of a hot set of {HOT_SET} rows, uniformly: the pure hit path.",
            setup_items, HOT_SET,
        ),
        Scenario(
            "point-zipf",
            f"Primary-key reads over all {ITEMS} rows with a Zipf(1.1) skew: "
            "a realistic mix of hits and cold misses.",
            setup_items, ITEMS, zipf=1.1,
        ),
        Scenario(
            "aggregate",
            f"A full-scan aggregate over {FACTS} rows ({GROUPS} distinct groups), costing "
            "the origin many ms: what a cache saves on heavy reads.",
            setup_facts, GROUPS,
            read_sql="SELECT grp, COUNT(*), SUM(amount), AVG(amount), MAX(note) "
            "FROM bench_facts WHERE grp = ? GROUP BY grp",
        ),
        Scenario(
            "rw-95-5",
            f"95 % hot-set reads, 5 % autocommit UPDATEs of the same {HOT_SET} rows: every "
            "write must invalidate what the reads use.",
            setup_items, HOT_SET, write_pct=5,
        ),
        Scenario(
            "rw-80-20",
            f"80 % hot-set reads, 20 % autocommit UPDATEs of the same {HOT_SET} rows: "
            "heavy invalidation.",
            setup_items, HOT_SET, write_pct=20,
        ),
    )
}  # fmt: skip


def load_generator(workdir: Path | None = None) -> Path:
    """Compile mysqlload.c once per source version (cached under the temp dir)."""
    digest = hashlib.blake2b(SOURCE.read_bytes(), digest_size=8).hexdigest()
    base = workdir or Path(tempfile.gettempdir()) / f"wirecache-mysqlload-{os.getuid()}"
    binary = base / f"mysqlload-{digest}"
    if binary.exists():
        return binary
    base.mkdir(parents=True, exist_ok=True)
    cc = shutil.which("cc") or shutil.which("gcc")
    config = shutil.which("mariadb_config") or shutil.which("mysql_config")
    if cc is None or config is None:
        raise RuntimeError("a C compiler and libmariadb-dev (mariadb_config) are needed "
                           "to build the MySQL load generator")  # fmt: skip
    flags = subprocess.run([config, "--cflags"], capture_output=True, text=True).stdout.split()
    libs = subprocess.run([config, "--libs"], capture_output=True, text=True).stdout.split()
    partial = binary.with_suffix(f".{os.getpid()}.tmp")
    proc = subprocess.run([cc, "-O2", "-o", str(partial), str(SOURCE), *flags, *libs,
                           "-lpthread", "-lm"], capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"building the MySQL load generator failed: {proc.stderr[-2000:]}")
    partial.rename(binary)
    return binary


@dataclass
class LoadResult:
    transactions: int  # statements, reads and writes
    failed: int
    tps: float
    latencies_us: list[int]
    errors: str = ""
    writes: int = 0

    @property
    def reads(self) -> int:
        return self.transactions - self.writes


def run_load(
    binary: Path, target: MySQLEndpoint, mode: str, clients: int, duration: int,
    transactions: int, workdir: Path, scenario: Scenario = SCENARIOS["point-hot"],
    on_progress: ProgressCallback | None = None,
) -> LoadResult:  # fmt: skip
    """One mysqlload run; with ``on_progress``, its once-a-second progress is reported."""
    lat_path, out_path = workdir / "latencies.txt", workdir / "mysqlload.out"
    cmd = [str(binary), *(["-p"] if on_progress else []), *scenario.load_args(), target.host,
           str(target.port), target.user, target.password, target.database, mode, str(clients),
           str(duration), str(transactions), str(scenario.keys), str(lat_path)]  # fmt: skip
    with out_path.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(duration + 600, proc.kill)
    watchdog.start()
    try:
        assert proc.stderr is not None
        errors = "\n".join(follow_progress(proc.stderr, duration > 0, on_progress)).strip()
        proc.wait()
    finally:
        watchdog.cancel()
    stdout = out_path.read_text()
    if proc.returncode != 0 and "failed=" not in stdout:  # failed statements are counted
        raise RuntimeError(f"mysqlload against {target.address} failed: "
                           f"{(errors or stdout).strip()[-2000:]}")  # fmt: skip
    fields = dict(part.split("=") for part in stdout.split())
    done, elapsed = int(fields["transactions"]), float(fields["elapsed"])
    latencies = sorted(int(line) for line in lat_path.read_text().split())
    return LoadResult(done, int(fields["failed"]), done / elapsed if elapsed else 0.0, latencies,
                      errors, int(fields["writes"]))  # fmt: skip


def origin_counts(origin: MySQLEndpoint) -> dict[str, int]:
    """The origin's global statement counters (COUNTERS) so far."""
    names = ", ".join(f"'{name}'" for name in COUNTERS)
    out = mariadb_cli(origin, f"SHOW GLOBAL STATUS WHERE Variable_name IN ({names})",
                      database=False)  # fmt: skip
    counts = {name: int(value) for name, value in (line.split() for line in out.splitlines())}
    return {name: counts.get(name, 0) for name in COUNTERS}


def reached(mode: str, before: dict[str, int], after: dict[str, int]) -> tuple[int, int]:
    """(reads, writes) that reached the origin between two snapshots.

    Text: reads are ``Com_select``. Binary: ``Com_stmt_execute`` minus the writes
    (MariaDB also counts a binary execution in ``Com_select``/``Com_update``, so
    ``Com_update`` is the writes in both modes; a server that did not count binary
    writes there would have them counted as reads at the origin, a lower hit ratio,
    not a higher one).
    """
    delta = {name: after[name] - before[name] for name in COUNTERS}
    writes = delta["Com_update"]
    if mode == "text":
        return delta["Com_select"], writes
    return max(0, delta["Com_stmt_execute"] - writes), writes


@dataclass
class Plan:
    modes: list[str]
    clients: list[int]
    duration: int = 5
    transactions: int = 0
    warmup: int = 1
    serve_args: tuple[str, ...] = ()
    scenarios: tuple[str, ...] = ("point-hot",)
    workers: tuple[int, ...] = (1,)  # one started wirecache per count (wirecache-wN for N > 1)

    @property
    def targets(self) -> list[TargetSpec]:
        return [TargetSpec(DIRECT), *worker_targets(self.workers)]


def measure(
    plan: Plan, origin: MySQLEndpoint, console: Console | None = None,
    far: FarOrigin | None = None,
) -> list[Result]:  # fmt: skip
    """Run every scenario × mode × clients cell against direct and the started wirecache(s).

    Every target reaches the origin through ``far`` (the same, possibly delayed, path);
    the counters are read on the origin itself. Each scenario gets fresh wirecaches,
    since its setup writes to the origin directly. ``console`` shows the progress bar.
    """
    path = far.endpoint if far is not None else origin
    specs = plan.targets
    runs = len(plan.scenarios) * len(plan.modes) * len(plan.clients) * len(specs)
    with (
        tempfile.TemporaryDirectory(prefix="wirecache-bench-mysql-") as tmp,
        RunProgress(console, runs) as progress,
    ):
        workdir = Path(tmp)
        binary = load_generator()

        def start(spec: TargetSpec, stack: contextlib.ExitStack) -> Target:
            if spec.name == DIRECT:
                return Target(DIRECT, path)
            return stack.enter_context(
                started_wirecache(spec, path, "mysql", plan.serve_args, workdir)
            )

        def one(name: str, mode: str, clients: int, target: Target) -> Result:
            return _measure(plan, SCENARIOS[name], mode, clients, target, origin, binary,
                            workdir, progress)  # fmt: skip

        return measure_matrix(
            scenarios=plan.scenarios, modes=plan.modes, clients=plan.clients, targets=specs,
            progress=progress, setup=lambda name: SCENARIOS[name].setup(origin), start=start,
            measure=one,
        )  # fmt: skip


def _measure(
    plan: Plan, scenario: Scenario, mode: str, clients: int, target: Target,
    origin: MySQLEndpoint, binary: Path, workdir: Path, progress: RunProgress,
) -> Result:  # fmt: skip
    if plan.warmup > 0:
        run_load(binary, target.endpoint, mode, clients, plan.warmup, 0, workdir, scenario)
    total = plan.duration or plan.transactions * clients
    with progress.run(target.name, total) as on_progress, CpuMeter(target.pid) as cpu:
        before = origin_counts(origin)
        load = run_load(binary, target.endpoint, mode, clients, plan.duration,
                        plan.transactions, workdir, scenario, on_progress=on_progress)  # fmt: skip
        reads, writes = reached(mode, before, origin_counts(origin))
    if load.failed:
        progress.print(f"[yellow]{load.failed} statements failed:[/] {load.errors[:500]}")
    return _result(scenario, mode, clients, target.name, load, reads, writes, cpu.seconds)


def _result(scenario: Scenario, mode: str, clients: int, target: str, load: LoadResult,
            reads: int, writes: int, cpu: float | None) -> Result:  # fmt: skip
    """One cell. tps and latency are over every statement (reads and writes, like
    pgbench's per-transaction figures); the hit ratio is over the reads."""
    return Result(
        scenario=scenario.label, mode=mode, clients=clients, target=target,
        transactions=load.transactions, failed=load.failed, tps=load.tps,
        counted=COUNTED[mode], sent=load.reads, reached_origin=reads,
        hit_ratio=hit_ratio(target, load.reads, reads), proxy_cpu_s=cpu,
        cpu_us_per_txn=cpu_per_txn(cpu, load.transactions),
        writes_sent=load.writes, writes_reached_origin=writes,
        **latency_figures(load.latencies_us),
    )  # fmt: skip


def _writes(results: list[Result]) -> str | None:
    """Under a table or a chart: every write sent, and how many reached the origin."""
    writes = [r for r in results if r.writes_sent]
    if not writes:
        return None
    return "writes at the origin/sent: " + ", ".join(
        f"{r.mode} c={r.clients} {r.target} {r.writes_reached_origin:,}/{r.writes_sent:,}"
        for r in writes
    )


LAYOUT = Layout(
    {scenario.label: scenario.description for scenario in SCENARIOS.values()},
    "Latency per statement (mysqlload, C on libmariadb); origin/sent counts reads: "
    "Com_select (text) or Com_stmt_execute - Com_update (prepared) during the measured run; "
    "tps and latency include the writes; CPU = the wirecache process tree.",
    per="statement",
    notes=_writes,
)


def list_scenarios(console: Console) -> None:
    table = Table("scenario", "description", title="wirecache bench --dialect mysql scenarios")
    for scenario in SCENARIOS.values():
        table.add_row(scenario.name, scenario.description)
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wirecache bench --dialect mysql",
                                     description=DESCRIPTION)  # fmt: skip
    add_scenario_arguments(parser, SCENARIOS)
    parser.add_argument("--mode", "-M", type=_csv(str, MODES), default=list(MODES),
                        metavar="MODE[,MODE…]",
                        help="protocol modes: text (COM_QUERY), prepared (COM_STMT_EXECUTE); "
                        "default both")  # fmt: skip
    parser.add_argument("--clients", "-c", type=_csv(int), default=[1], metavar="N[,N…]",
                        help="concurrent clients (threads, one connection each) per run; "
                        "default 1")  # fmt: skip
    parser.add_argument("--duration", "-T", type=int, default=5,
                        help="seconds per measured run (default 5)")  # fmt: skip
    parser.add_argument("--transactions", "-t", type=int, default=0,
                        help="statements per client instead of a duration")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=1,
                        help="seconds of unmeasured warm-up before each run "
                        "(0: none; default 1)")  # fmt: skip
    parser.add_argument(
        "--origin", metavar="HOST:PORT", help="existing server; default: a throwaway MariaDB"
    )
    parser.add_argument("--user", default="bench", help="account on the origin (default bench)")
    parser.add_argument("--password", default=os.environ.get("MYSQL_PWD", "bench"),
                        help="its password (default $MYSQL_PWD, else bench)")  # fmt: skip
    parser.add_argument("--database", default="bench", help="database (default bench)")
    add_started_wirecache_arguments(parser)
    add_origin_path_arguments(parser)
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    out = Console() if sys.stdout.isatty() else Console(width=170)
    err = Console(stderr=True)
    if args.list:
        list_scenarios(out)
        return 0
    plan = Plan(args.mode, args.clients, 0 if args.transactions else args.duration,
                args.transactions, args.warmup, tuple(args.serve_arg),
                tuple(args.scenario), tuple(args.workers))  # fmt: skip
    try:
        with contextlib.ExitStack() as stack:
            if args.origin:
                origin = MySQLEndpoint(*parse_address(args.origin), args.user, args.password,
                                       args.database)  # fmt: skip
            else:
                err.print("starting a throwaway MariaDB…")
                origin = stack.enter_context(local_mariadb())
            far = stack.enter_context(far_origin(origin, args.origin_rtt, args.latency_method))
            if far.method != "none":
                err.print(f"origin {origin.address} reached at {far.endpoint.address}: "
                          f"+{far.rtt_ms:g} ms RTT via {far.method} ({far.note})")  # fmt: skip
            results = measure(plan, origin, err, far)
            version = mariadb_cli(origin, "SELECT VERSION()", database=False)
        meta = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": shlex.join(["python", "-m", "wirecache.bench.mysql",
                                   *(argv or sys.argv[1:])]),
            "dialect": "mysql",
            "cpus": os.cpu_count(), "origin": origin.address, "origin_version": version,
            "origin_started_by_harness": not args.origin, "load": "mysqlload (C, libmariadb)",
            "origin_path": {"method": far.method, "rtt_ms": far.rtt_ms,
                            "address": far.endpoint.address, "note": far.note},
            "counted": "reads: Com_select (text), Com_stmt_execute - Com_update (prepared); "
                       "writes: Com_update",
            "plan": {"scenarios": list(plan.scenarios), "modes": plan.modes,
                     "clients": plan.clients, "duration_s": plan.duration,
                     "transactions_per_client": plan.transactions,
                     "warmup_s": plan.warmup, "workers": list(plan.workers),
                     "targets": [t.name for t in plan.targets]},
        }  # fmt: skip
        finish(out, results, meta, args.json, args.html, LAYOUT)
    except (RuntimeError, ValueError, OSError, subprocess.SubprocessError) as exc:
        err.print(f"[red]bench failed:[/] {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
