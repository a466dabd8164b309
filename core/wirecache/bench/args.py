"""Argument parsing shared by the benchmark commands."""

from __future__ import annotations

import argparse
import re
from collections.abc import Collection
from pathlib import Path

__all__ = [
    "add_origin_path_arguments",
    "add_output_arguments",
    "add_scenario_arguments",
    "add_started_wirecache_arguments",
    "csv",
    "rtt",
    "worker_counts",
]


def csv(kind: type, choices: tuple[str, ...] | None = None):  # noqa: ANN202 - argparse type
    def parse(text: str) -> list:
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
        if choices is not None:
            unknown = [v for v in values if v not in choices]
            if unknown:
                raise argparse.ArgumentTypeError(
                    f"unknown {', '.join(unknown)}; choose from {', '.join(choices)}"
                )
        if not values:
            raise argparse.ArgumentTypeError("empty list")
        return values

    return parse


def rtt(text: str) -> float:
    """Round-trip time in ms from ``20ms``, ``0.02s`` or a bare number of ms."""
    match = re.fullmatch(r"\s*([\d.]+)\s*(ms|s)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r}")
    value = float(match[1])
    return value * 1000 if match[2] == "s" else value


def add_origin_path_arguments(parser: argparse.ArgumentParser) -> None:
    """``--origin-rtt`` and ``--latency-method``, the same for every dialect's harness."""
    parser.add_argument(
        "--origin-rtt",
        type=rtt,
        default=0.0,
        metavar="RTT",
        help="put the origin this far away, e.g. 20ms",
    )
    parser.add_argument(
        "--latency-method",
        choices=("auto", "netns", "relay"),
        default="auto",
        help="how --origin-rtt is done (default auto: netns + netem when root "
        "and available, else the trio relay)",
    )


def add_scenario_arguments(parser: argparse.ArgumentParser, names: Collection[str]) -> None:
    """``--list`` and ``--scenario`` (a comma list of ``names``, or ``all``)."""

    def scenarios(text: str) -> list[str]:
        if text.strip() == "all":
            return list(names)
        return csv(str, tuple(names))(text)

    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--scenario",
        type=scenarios,
        default=["point-hot"],
        metavar="NAME[,NAME…]",
        help="scenarios to run, or 'all' (default point-hot; see --list)",
    )


def worker_counts(text: str) -> list[int]:
    """``1,2``: distinct worker counts, each at least 1 (each names a target)."""
    counts = csv(int)(text)
    if min(counts) < 1 or len(set(counts)) != len(counts):
        raise argparse.ArgumentTypeError(f"distinct counts of at least 1 expected, got {text!r}")
    return counts


def add_started_wirecache_arguments(parser: argparse.ArgumentParser) -> None:
    """``--workers`` and ``--serve-arg``: how the harness starts its wirecache(s)."""
    parser.add_argument(
        "--workers",
        type=worker_counts,
        default=[1],
        metavar="N[,N…]",
        help="worker counts for the wirecache the harness starts; each "
        "N>1 adds a target wirecache-wN (serve --workers N)",
    )
    parser.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for the started 'wirecache serve'",
    )


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--json`` and ``--html``, the files both harnesses write."""
    parser.add_argument("--json", type=Path, metavar="FILE", help="write results as JSON")
    parser.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="write a self-contained HTML page of latency charts",
    )
