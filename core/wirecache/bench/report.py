"""Presenting results: a rich table, a JSON document and a self-contained HTML chart.

Both harnesses (PostgreSQL and MySQL) report through this module; a
:class:`Layout` carries what differs between them (the scenarios'
descriptions, what a latency sample is and what was counted, notes under a
scenario's table).

The chart plots each target's latency CDF on a logarithmic axis: a cache hit
(tens of µs) and a far origin (tens of ms) differ by three orders of
magnitude, and a CDF shows the whole distribution, tail included, for every
target on one set of axes. It is inline SVG with no script, so it opens
offline and can be attached to an issue as one file.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .results import CHART_QUANTILES, DIRECT, Result

MAX_NINES = 4  # the chart's top is p99.99
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")


def _no_notes(results: list[Result]) -> str | None:
    return None


@dataclass(frozen=True)
class Layout:
    """What one harness's report says besides the figures."""

    descriptions: Mapping[str, str]  # scenario, as in Result.scenario -> what it measures
    measured: str  # after the origin path: what a latency is, what origin/sent counts, CPU
    per: str = "transaction"  # one latency sample, for the chart's axis
    notes: Callable[[list[Result]], str | None] = _no_notes  # a line under these results


def _cell_key(result: Result) -> tuple[str, str, int]:
    return result.scenario, result.mode, result.clients


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:{spec}}{unit}"


def _rows(result: Result) -> list[str]:
    return [
        result.mode,
        str(result.clients),
        result.target,
        _fmt(result.tps, ",.0f"),
        _fmt(result.ratio_vs_direct, ".2f", "×"),
        _fmt(result.p50_ms, ".3f"),
        _fmt(result.p95_ms, ".3f"),
        _fmt(result.p99_ms, ".3f"),
        _fmt(None if result.hit_ratio is None else result.hit_ratio * 100, ".1f", " %"),
        f"{result.reached_origin:,}/{result.sent:,}",
        _fmt(result.proxy_cpu_s, ".2f"),
        _fmt(result.cpu_us_per_txn, ".0f"),
    ]


HEADERS = (
    "mode",
    "clients",
    "target",
    "tps",
    "× direct",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "hit ratio",
    "origin/sent",
    "CPU s",
    "CPU µs/tx",
)


def print_table(
    console: Console, results: list[Result], meta: dict[str, Any], layout: Layout
) -> None:
    """One table per scenario, targets of a cell next to each other."""
    for scenario, grouped in groupby(results, key=lambda r: r.scenario):
        group = list(grouped)
        table = Table(
            title=f"[bold]{scenario}[/] — {layout.descriptions[scenario]}",
            title_justify="left",
        )
        for header in HEADERS:
            table.add_column(header, justify="left" if header in ("mode", "target") else "right")
        previous = None
        for result in group:
            if previous is not None and _cell_key(result) != previous:
                table.add_section()
            previous = _cell_key(result)
            table.add_row(*_rows(result), style="dim" if result.failed else None)
        console.print(table)
        if note := layout.notes(group):
            console.print(note)
    console.print(caption(meta, layout))


def caption(meta: dict[str, Any], layout: Layout) -> str:
    """Where the origin was, then the harness's own words on what was measured."""
    far = meta["origin_path"]
    path = (
        f"origin RTT +{far['rtt_ms']:g} ms via {far['method']} ({far['note']})"
        if far["method"] != "none"
        else "origin on loopback, no added latency"
    )
    return f"{path}. {layout.measured}"


def write_json(path: Path, results: list[Result], meta: dict[str, Any]) -> None:
    document = {"meta": meta, "quantiles": CHART_QUANTILES, "results": [asdict(r) for r in results]}
    path.write_text(json.dumps(document, indent=2, allow_nan=False))


def _clean(results: Iterable[Result]) -> None:
    """JSON has no NaN: an empty run (no latencies) gets nulls instead."""
    for result in results:
        for name, value in vars(result).items():
            if isinstance(value, float) and math.isnan(value):
                setattr(result, name, None)
        result.quantiles_ms = [q for q in result.quantiles_ms if not math.isnan(q)]


def _ticks(lo: float, hi: float) -> list[float]:
    ticks = []
    for exponent in range(math.floor(lo), math.ceil(hi) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10.0**exponent
            if lo <= math.log10(value) <= hi:
                ticks.append(value)
    return ticks


def _nines(fraction: float) -> float:
    """Percentile axis that gives p90, p99, p99.9 equal room, so the tail is visible.

    Rounded to 9 decimals: in floating point 1 - 0.9999 is a hair below 1e-4,
    which would put p99.99 just past the top of the chart.
    """
    return round(-math.log10(1 - fraction), 9) if fraction < 1 else math.inf


def _plotted(result: Result) -> list[tuple[float, float]]:
    """(fraction, ms) pairs the chart draws: positive latencies up to p99.99."""
    return [
        (q, v)
        for q, v in zip(CHART_QUANTILES, result.quantiles_ms, strict=False)
        if v > 0 and _nines(q) <= MAX_NINES
    ]


def cdf_svg(
    cell: list[Result], width: int = 720, height: int = 320, per: str = "transaction"
) -> str:
    """Latency percentiles of every target of one cell: log ms across, nines up."""
    left, right, top, bottom = 56, 16, 12, 40
    curves = [_plotted(r) for r in cell]
    # The axis spans what is drawn: the maximum (p100) is not, so it must not stretch it.
    values = [v for curve in curves for _, v in curve]
    if not values:
        return "<p>no latencies recorded</p>"
    lo, hi = math.log10(min(values)), math.log10(max(values))
    if hi - lo < 0.3:
        lo, hi = lo - 0.15, hi + 0.15
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(ms: float) -> float:
        return left + (math.log10(ms) - lo) / (hi - lo) * plot_w

    def y(fraction: float) -> float:
        return top + (1 - _nines(fraction) / MAX_NINES) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
        'stroke="#999"/>',
    ]
    for tick in _ticks(lo, hi):
        tx = x(tick)
        parts.append(
            f'<line x1="{tx:.1f}" y1="{top}" x2="{tx:.1f}" y2="{top + plot_h}" stroke="#e0e0e0"/>'
        )
        parts.append(
            f'<text x="{tx:.1f}" y="{top + plot_h + 14}" text-anchor="middle">{tick:g}</text>'
        )
    for fraction in (0, 0.5, 0.9, 0.99, 0.999, 0.9999):
        ty = y(fraction)
        parts.append(
            f'<line x1="{left}" y1="{ty:.1f}" x2="{left + plot_w}" y2="{ty:.1f}" stroke="#e0e0e0"/>'
        )
        parts.append(
            f'<text x="{left - 4}" y="{ty + 4:.1f}" text-anchor="end">p{fraction * 100:g}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle">'
        f"latency per {html.escape(per)}, ms (log scale)</text>"
    )
    for index, (result, curve) in enumerate(zip(cell, curves, strict=True)):
        colour = COLOURS[index % len(COLOURS)]
        points = " ".join(f"{x(v):.1f},{y(q):.1f}" for q, v in curve)
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
            f'points="{points}"><title>{html.escape(result.target)}</title></polyline>'
        )
        ly = top + 14 + index * 15
        parts.append(f'<rect x="{left + 8}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(
            f'<text x="{left + 22}" y="{ly}">{html.escape(result.target)}: '
            f"{result.tps:,.0f} tps, p50 {_fmt(result.p50_ms, '.3f')} ms, "
            f"p99 {_fmt(result.p99_ms, '.3f')} ms</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def write_html(path: Path, results: list[Result], meta: dict[str, Any], layout: Layout) -> None:
    """A single offline page: per cell, the CDF chart and the figures behind it."""
    body = [
        f"<h1>wirecache bench</h1><p>{html.escape(caption(meta, layout))}</p>",
        f"<p><code>{html.escape(meta['command'])}</code></p>",
    ]
    for (scenario, mode, clients), group in groupby(results, key=_cell_key):
        cell = list(group)
        body.append(
            f"<h2>{html.escape(scenario)} · {mode} · {clients} client(s)</h2>"
            f"<p>{html.escape(layout.descriptions[scenario])}</p>"
        )
        body.append(cdf_svg(cell, per=layout.per))
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _rows(r)) + "</tr>" for r in cell
        )
        head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
        body.append(f"<table><tr>{head}</tr>{rows}</table>")
        if note := layout.notes(cell):
            body.append(f"<p>{html.escape(note)}</p>")
    style = (
        "body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 2em}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
        "h2{margin-top:2em;font-size:1.1em}"
    )
    path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>wirecache bench</title><style>{style}</style></head>"
        f"<body>{''.join(body)}</body></html>"
    )


def finish(
    console: Console,
    results: list[Result],
    meta: dict[str, Any],
    json_path: Path | None,
    html_path: Path | None,
    layout: Layout,
) -> None:
    """Print the tables and write whichever files were asked for."""
    _clean(results)
    print_table(console, results, meta, layout)
    if json_path:
        write_json(json_path, results, meta)
        console.print(f"JSON written to {json_path}")
    if html_path:
        write_html(html_path, results, meta, layout)
        console.print(f"chart written to {html_path}")
    if not any(r.target == DIRECT for r in results):
        console.print("[yellow]no direct target: ratios are not available[/]")
