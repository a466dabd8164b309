"""Argument parsing shared by the benchmark commands."""

from __future__ import annotations

import argparse
import re

__all__ = ["add_origin_path_arguments", "csv", "rtt"]


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
