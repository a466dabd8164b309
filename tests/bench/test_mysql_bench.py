"""The MySQL bench end to end (``wirecache bench --dialect mysql``): a throwaway
MariaDB started by the harness, the C load generator, direct and wirecache in the
same run, text and binary protocol, every scenario, a far origin, a second
wirecache with two workers, the HTML chart and the progress bar. Timing is never
asserted (beyond a far origin's statements taking at least its RTT); counts are."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from wirecache.bench import mysql as mysql_bench
from wirecache.bench.results import CHART_QUANTILES

pytestmark = pytest.mark.skipif(
    not Path("/usr/sbin/mariadbd").exists() and shutil.which("mariadbd") is None,
    reason="MariaDB server not installed (Debian: mariadb-server)",
)


@pytest.fixture(autouse=True)
def _generator() -> Path:
    try:
        return mysql_bench.load_generator()
    except RuntimeError as e:  # no compiler or no libmariadb-dev
        pytest.skip(str(e))


def _run(tmp_path: Path, capsys, *args: str) -> dict:
    out = tmp_path / "results.json"
    code = mysql_bench.main([*args, "--warmup", "0", "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    return json.loads(out.read_text())


def test_direct_and_wirecache_text_and_prepared(tmp_path, capsys):
    document = _run(tmp_path, capsys, "-M", "text,prepared", "-c", "2", "-t", "300")
    assert document["meta"]["origin_started_by_harness"]
    cells = {(r["mode"], r["target"]): r for r in document["results"]}
    assert set(cells) == {(m, t) for m in ("text", "prepared") for t in ("direct", "wirecache")}
    for (_, target), r in cells.items():
        assert r["transactions"] == 600 and r["failed"] == 0, r
        assert r["tps"] > 0 and r["p50_ms"] > 0 and len(r["quantiles_ms"]) > 100
        if target == "direct":
            assert r["reached_origin"] >= r["transactions"]  # every statement at the origin
            assert r["hit_ratio"] is None
        else:
            # a hot row misses at most once per client (concurrent misses of one row)
            assert r["reached_origin"] <= (mysql_bench.HOT_SET + 1) * r["clients"], r  # +catalog
            assert r["ratio_vs_direct"] > 0 and r["proxy_cpu_s"] is not None
    table = capsys.readouterr().out
    assert "mysql-point-hot" in table and "wirecache" in table


@pytest.mark.parametrize("mode", ["text", "prepared"])
def test_new_connections_hit_entries_of_earlier_ones(tmp_path, capsys, mode):
    """The first cell fills the cache with one connection; the second cell's three new
    connections must be served from it without errors (prepared: their first execute,
    the one that sends the parameter types, is a hit, so the origin never receives the
    types the later misses leave out)."""
    document = _run(tmp_path, capsys, "-M", mode, "-c", "1,3", "-t", "300")
    for r in document["results"]:
        assert r["failed"] == 0, r


NEW_SCENARIOS = ("point-zipf", "aggregate", "rw-95-5", "rw-80-20")


def test_every_other_scenario_gives_complete_counted_results(tmp_path, capsys):
    """One short run of each scenario beyond point-hot, both modes, two clients: every
    cell is there, nothing failed, reads and writes add up, writes all reach the
    origin, and the cache never sends more reads to the origin than the client sent."""
    n = 30
    document = _run(tmp_path, capsys, "--scenario", ",".join(NEW_SCENARIOS),
                    "-M", "text,prepared", "-c", "2", "-t", str(n))  # fmt: skip
    assert document["meta"]["plan"]["scenarios"] == list(NEW_SCENARIOS)
    assert document["meta"]["origin_path"]["method"] == "none"
    cells = {(r["scenario"], r["mode"], r["target"]): r for r in document["results"]}
    assert set(cells) == {
        (f"mysql-{s}", m, t)
        for s in NEW_SCENARIOS
        for m in ("text", "prepared")
        for t in ("direct", "wirecache")
    }
    for (scenario, mode, target), r in cells.items():
        assert r["transactions"] == 2 * n and r["failed"] == 0, r
        assert r["sent"] + r["writes_sent"] == r["transactions"], r
        assert r["tps"] > 0 and r["p50_ms"] > 0 and len(r["quantiles_ms"]) > 100, r
        assert r["counted"] == mysql_bench.COUNTED[mode]
        if scenario.startswith("mysql-rw-"):
            assert 0 < r["writes_sent"] < r["sent"], r
        else:
            assert r["writes_sent"] == 0, r
        assert r["writes_reached_origin"] == r["writes_sent"], r  # writes are never cached
        if target == "direct":
            assert r["reached_origin"] >= r["sent"] and r["hit_ratio"] is None, r
        else:
            # wirecache reads the origin's catalog (information_schema) when a
            # session starts, at most once per client: Com_select counts it too.
            assert 0 <= r["reached_origin"] <= r["sent"] + r["clients"], r
            assert 0.0 <= r["hit_ratio"] <= 1.0 and r["proxy_cpu_s"] is not None, r
        if scenario == "mysql-aggregate" and target == "wirecache":
            # ten distinct statements: each misses at most once per client
            assert r["reached_origin"] <= (mysql_bench.GROUPS + 1) * r["clients"], r  # +catalog
    # the same seeded key sequence for both targets: the same writes
    for s in NEW_SCENARIOS:
        for m in ("text", "prepared"):
            direct, cached = (cells[(f"mysql-{s}", m, t)] for t in ("direct", "wirecache"))
            assert direct["writes_sent"] == cached["writes_sent"]
    table = capsys.readouterr().out
    for s in NEW_SCENARIOS:
        assert f"mysql-{s}" in table
    assert "writes at the origin/sent" in table


def test_far_origin_goes_through_the_latency_module(tmp_path, capsys):
    """``--origin-rtt`` moves the origin away for both targets with latency.py's relay;
    the method is reported, and a direct statement cannot be faster than the RTT."""
    document = _run(tmp_path, capsys, "-M", "text", "-t", "20", "--origin-rtt", "5ms",
                    "--latency-method", "relay")  # fmt: skip
    path = document["meta"]["origin_path"]
    assert path["method"] == "relay" and path["rtt_ms"] == 5.0
    assert path["address"] != document["meta"]["origin"]
    cells = {r["target"]: r for r in document["results"]}
    assert cells["direct"]["p50_ms"] >= 5.0
    assert cells["wirecache"]["failed"] == 0 and cells["wirecache"]["transactions"] == 20
    assert "relay" in capsys.readouterr().out


def test_list_names_every_scenario(capsys):
    assert mysql_bench.main(["--list"]) == 0
    listed = capsys.readouterr().out
    for name in mysql_bench.SCENARIOS:
        assert name in listed


def test_bad_mode_is_rejected():
    with pytest.raises(SystemExit):
        mysql_bench.main(["-M", "simple"])


def test_unknown_scenario_is_rejected():
    with pytest.raises(SystemExit):
        mysql_bench.main(["--scenario", "pgbench-tpcb"])


def test_wirecache_bench_dialect_mysql_runs_this_harness(tmp_path, capsys):
    """``wirecache bench --dialect mysql`` is the same harness behind the main command."""
    from wirecache.cli import main

    out = tmp_path / "cli.json"
    code = main(["bench", "--dialect", "mysql", "-M", "text", "-t", "50", "--warmup", "0",
                 "--json", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    targets = {r["target"] for r in json.loads(out.read_text())["results"]}
    assert targets == {"direct", "wirecache"}


def test_repeated_worker_count_is_rejected():
    with pytest.raises(SystemExit):
        mysql_bench.main(["--workers", "1,1"])


def test_workers_html_and_progress(tmp_path, capsys, monkeypatch):
    """``--workers 1,2 --html``: every cell has direct, wirecache and wirecache-w2 in the
    JSON with complete figures, the page has one chart per cell drawing all three, the
    load generator's progress reached the bar while it ran, and on a console that is not
    a terminal the bar is printed once at the end instead of being redrawn."""
    seen: list[tuple[float, float]] = []
    real_run_load = mysql_bench.run_load

    def spy(*args, **kwargs):
        callback = kwargs.get("on_progress")
        if callback is not None:

            def record(done: float, tps: float) -> None:
                seen.append((done, tps))
                callback(done, tps)

            kwargs["on_progress"] = record
        return real_run_load(*args, **kwargs)

    monkeypatch.setattr(mysql_bench, "run_load", spy)
    json_path, html_path = tmp_path / "r.json", tmp_path / "r.html"
    code = mysql_bench.main(["-M", "text,prepared", "-c", "2", "-T", "2", "--warmup", "0",
                             "--workers", "1,2", "--json", str(json_path),
                             "--html", str(html_path)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    targets = ["direct", "wirecache", "wirecache-w2"]

    document = json.loads(json_path.read_text())
    assert document["meta"]["plan"]["targets"] == targets
    assert document["meta"]["plan"]["workers"] == [1, 2]
    assert len(document["quantiles"]) == len(CHART_QUANTILES)
    cells = {(r["mode"], r["target"]): r for r in document["results"]}
    assert set(cells) == {(m, t) for m in ("text", "prepared") for t in targets}
    for (_, target), r in cells.items():
        assert r["transactions"] > 0 and r["failed"] == 0 and r["tps"] > 0, r
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] <= r["max_ms"], r
        assert len(r["quantiles_ms"]) == len(CHART_QUANTILES), r
        assert r["quantiles_ms"] == sorted(r["quantiles_ms"]), r
        if target == "direct":
            assert r["ratio_vs_direct"] == 1 and r["proxy_cpu_s"] is None, r
        else:
            assert r["reached_origin"] <= (mysql_bench.HOT_SET + 1) * r["clients"], r
            # The process tree: with two workers the parent alone does almost nothing.
            assert r["proxy_cpu_s"] > 0 and r["ratio_vs_direct"] > 0, r

    page = html_path.read_text()
    charts = re.findall(r"<svg.*?</svg>", page, re.S)
    assert len(charts) == 2  # one per cell: text and prepared, two clients
    for chart in charts:
        curves = re.findall(r'<polyline[^>]*points="([^"]*)"><title>([^<]*)</title>', chart)
        assert [name for _, name in curves] == targets
        assert all(len(points.split()) > 100 for points, _ in curves)
        assert "latency per statement" in chart
    assert "mysql-point-hot · text · 2 client(s)" in page
    assert "mysql-point-hot · prepared · 2 client(s)" in page
    assert "<script" not in page and not re.search(r"(src|href)=", page)

    assert "wirecache-w2" in captured.out and f"chart written to {html_path}" in captured.out
    # mysqlload -p: a progress line per second of each measured 2 s run
    assert len(seen) >= len(cells) and all(0 < done <= 3 and tps > 0 for done, tps in seen)
    # not a terminal: no cursor movement or redraws, the bar's final state once
    assert "\x1b[" not in captured.err and "\r" not in captured.err
    assert captured.err.count("all runs") == 1
