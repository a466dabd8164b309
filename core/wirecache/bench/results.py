"""The measured cell, the record both harnesses report (table, JSON, chart).

A cell is one scenario × mode × clients × target run. Latencies are kept as
quantiles at :data:`CHART_QUANTILES`, enough for the chart to draw the whole
distribution up to p99.99 without storing every sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["CHART_QUANTILES", "DIRECT", "Result", "cpu_per_txn", "hit_ratio", "latency_figures",
           "percentile", "ratios"]  # fmt: skip

DIRECT = "direct"
# Fractions at which latencies are kept for the chart and JSON: every half percent, plus
# the tail.
CHART_QUANTILES = sorted({i / 200 for i in range(201)} | {0.999, 0.9999})


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


def percentile(sorted_values: list[int], q: float) -> float:
    """Nearest-rank percentile of sorted µs values, in ms."""
    if not sorted_values:
        return math.nan
    rank = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[rank] / 1000


def latency_figures(sorted_us: list[int]) -> dict[str, Any]:
    """The latency fields of a :class:`Result` (ms) from sorted per-transaction µs."""
    return {
        "mean_ms": sum(sorted_us) / len(sorted_us) / 1000 if sorted_us else math.nan,
        "p50_ms": percentile(sorted_us, 0.50),
        "p95_ms": percentile(sorted_us, 0.95),
        "p99_ms": percentile(sorted_us, 0.99),
        "max_ms": percentile(sorted_us, 1.0),
        "quantiles_ms": [percentile(sorted_us, q) for q in CHART_QUANTILES],
    }


def hit_ratio(target: str, sent: int, reached_origin: int) -> float | None:
    """The share of the client's (counted) statements that did not reach the origin; None
    for direct, which is the origin."""
    if target == DIRECT or not sent:
        return None
    return min(1.0, max(0.0, 1 - reached_origin / sent))


def cpu_per_txn(cpu_s: float | None, transactions: int) -> float | None:
    """Proxy CPU µs per transaction, when the CPU was measured and anything ran."""
    return cpu_s / transactions * 1e6 if cpu_s is not None and transactions else None


def ratios(cell: list[Result]) -> None:
    """Throughput of each target relative to direct in the same cell."""
    direct = next((r for r in cell if r.target == DIRECT), None)
    if direct is None or not direct.tps:
        return
    for result in cell:
        result.ratio_vs_direct = result.tps / direct.tps
