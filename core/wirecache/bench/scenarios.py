"""The named workloads: what each one measures, its schema and its pgbench scripts.

Load is driven by ``pgbench`` (a C client, so the client is never the
bottleneck, and ``-M simple|extended|prepared`` gives all three protocol
modes for free) with custom scripts; the two pgbench built-ins are included
as the workloads PostgreSQL users already know.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace

from .origin import Endpoint, psql

MODES = ("simple", "extended", "prepared")
HOT_SET = 100  # rows read by the hot-set scenarios: small enough to be all hits once warm
ITEMS_PER_SCALE = 10_000
FACTS_PER_SCALE = 200_000
GROUPS = 10  # distinct aggregate statements, so the aggregate cache warms after ten misses


@dataclass(frozen=True)
class Script:
    """One pgbench script, its weight in the mix and what a transaction of it sends.

    ``reads`` counts the SELECT statements per transaction, the ones a cache can
    answer; the hit ratio is measured against them.
    """

    name: str
    sql: str
    weight: int = 1
    reads: int = 1


@dataclass(frozen=True)
class Scenario:
    """A workload: either custom scripts or a pgbench built-in, plus its data setup."""

    name: str
    description: str
    setup: Callable[[Endpoint, int], None]
    scripts: tuple[Script, ...] = ()
    builtin: str | None = None
    dialect: str = "postgres"

    def pgbench_args(self, script_dir: str) -> list[str]:
        """The ``-b``/``-f`` flags; custom scripts are written into ``script_dir``."""
        if self.builtin:
            return ["-b", self.builtin]
        args = []
        for script in self.scripts:
            path = f"{script_dir}/{self.name}-{script.name}.sql"
            with open(path, "w") as handle:
                handle.write(script.sql)
            args += ["-f", f"{path}@{script.weight}"]
        return args


def _setup_items(origin: Endpoint, scale: int) -> None:
    """bench_items: ITEMS_PER_SCALE rows keyed by id; rebuilt only if its size is wrong."""
    rows = ITEMS_PER_SCALE * scale
    existing = psql(origin, "SELECT count(*) FROM pg_class WHERE relname = 'bench_items';")
    if existing == "1" and psql(origin, "SELECT count(*) FROM bench_items;") == str(rows):
        return
    psql(
        origin,
        f"""
        DROP TABLE IF EXISTS bench_items;
        CREATE TABLE bench_items (id int PRIMARY KEY, k int NOT NULL, v text NOT NULL);
        INSERT INTO bench_items
            SELECT i, i % 1000, md5(i::text) FROM generate_series(1, {rows}) AS i;
        ANALYZE bench_items;
    """,
    )


def _setup_facts(origin: Endpoint, scale: int) -> None:
    """bench_facts: a table with no index on ``grp``, so each aggregate is a full scan."""
    rows = FACTS_PER_SCALE * scale
    existing = psql(origin, "SELECT count(*) FROM pg_class WHERE relname = 'bench_facts';")
    if existing == "1" and psql(origin, "SELECT count(*) FROM bench_facts;") == str(rows):
        return
    psql(
        origin,
        f"""
        DROP TABLE IF EXISTS bench_facts;
        CREATE TABLE bench_facts (id bigint, grp int, amount numeric(12, 2), note text);
        INSERT INTO bench_facts
            SELECT i, i % {GROUPS}, (i * 7919 % 100000) / 100.0, md5(i::text)
            FROM generate_series(1, {rows}) AS i;
        ANALYZE bench_facts;
    """,
    )


def _setup_pgbench(origin: Endpoint, scale: int) -> None:
    """``pgbench -i`` at the requested scale, skipped when the tables already match."""
    have = psql(origin, "SELECT count(*) FROM pg_class WHERE relname = 'pgbench_branches';")
    if have == "1" and psql(origin, "SELECT count(*) FROM pgbench_branches;") == str(scale):
        return
    proc = subprocess.run(
        ["pgbench", *origin.libpq_args(), "-i", "-q", "-s", str(scale), origin.dbname],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pgbench -i failed: {proc.stderr.strip()}")


POINT_READ = "SELECT id, k, v FROM bench_items WHERE id = :id;\n"
HOT_READ = Script("read", f"\\set id random(1, {HOT_SET})\n{POINT_READ}")
HOT_WRITE = Script(
    "write",
    f"\\set id random(1, {HOT_SET})\nUPDATE bench_items SET k = k + 1 WHERE id = :id;\n",
    reads=0,
)


def _mix(read_weight: int, write_weight: int) -> tuple[Script, ...]:
    return replace(HOT_READ, weight=read_weight), replace(HOT_WRITE, weight=write_weight)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "point-hot",
            f"Primary-key reads of a hot set of {HOT_SET} rows, uniformly: the pure hit path.",
            _setup_items,
            (HOT_READ,),
        ),
        Scenario(
            "point-zipf",
            f"Primary-key reads over all {ITEMS_PER_SCALE}×scale rows with a Zipf(1.1) skew: "
            "a realistic mix of hits and cold misses.",
            _setup_items,
            (
                Script(
                    "read",
                    f"\\set id random_zipfian(1, {ITEMS_PER_SCALE} * :scale, 1.1)\n" + POINT_READ,
                ),
            ),
        ),
        Scenario(
            "aggregate",
            f"A full-scan aggregate over {FACTS_PER_SCALE}×scale rows ({GROUPS} distinct "
            "groups), costing the origin many ms: what a cache saves on heavy reads.",
            _setup_facts,
            (
                Script(
                    "agg",
                    f"\\set g random(0, {GROUPS - 1})\n"
                    "SELECT grp, count(*), sum(amount), avg(amount), max(note)\n"
                    "  FROM bench_facts WHERE grp = :g GROUP BY grp;\n",
                ),
            ),
        ),
        Scenario(
            "rw-95-5",
            f"95 % hot-set reads, 5 % autocommit UPDATEs of the same {HOT_SET} rows: every "
            "write must invalidate what the reads use.",
            _setup_items,
            _mix(95, 5),
        ),
        Scenario(
            "rw-80-20",
            f"80 % hot-set reads, 20 % autocommit UPDATEs of the same {HOT_SET} rows: "
            "heavy invalidation.",
            _setup_items,
            _mix(80, 20),
        ),
        Scenario(
            "pgbench-select",
            "pgbench's built-in select-only (-S): random primary-key reads over "
            "100000×scale accounts, mostly cold.",
            _setup_pgbench,
            builtin="select-only",
        ),
        Scenario(
            "pgbench-tpcb",
            "pgbench's built-in TPC-B-like transaction (3 UPDATEs, a SELECT, an INSERT in "
            "BEGIN/END): nothing cacheable, measures pass-through overhead.",
            _setup_pgbench,
            builtin="tpcb-like",
        ),
    )
}


def reads_per_script(scenario: Scenario) -> list[int]:
    """SELECTs per transaction indexed by pgbench's script number in its log."""
    if scenario.builtin:
        return [1]  # select-only and tpcb-like both run exactly one SELECT
    return [script.reads for script in scenario.scripts]
