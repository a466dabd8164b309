"""Argument parsing shared by the benchmark commands."""

from __future__ import annotations

import argparse

__all__ = ["csv"]


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
