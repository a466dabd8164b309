"""The live progress bar of both harnesses, and the load generators' progress lines.

pgbench (``-P 1``) and mysqlload (``-p``) both print ``progress: T s, R tps``
on stderr once a second; :func:`follow_progress` turns those lines into
(completed, rate) updates for the bar and keeps every other line as an error
message. :class:`RunProgress` is the bar itself: one overall task over every
measured run, and one task per run while it is measured. On a console that is
not a terminal (a pipe, a CI log) rich draws nothing while it runs and prints
the final state of the bar once, so piped output stays readable.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

__all__ = ["PROGRESS", "ProgressCallback", "RunProgress", "follow_progress"]

PROGRESS = re.compile(r"progress: ([\d.]+) s, ([\d.]+) tps")

ProgressCallback = Callable[[float, float], None]  # (completed units, current tps)


def follow_progress(
    lines: Iterable[str], by_time: bool, on_progress: ProgressCallback | None
) -> list[str]:
    """Report each progress line to ``on_progress``; return the other lines.

    Completed units are seconds when the run is timed (``by_time``), else
    transactions, estimated from each interval's rate.
    """
    others: list[str] = []
    done = last_t = 0.0
    for line in lines:
        match = PROGRESS.search(line)
        if not match:
            others.append(line.rstrip())
            continue
        t, rate = float(match[1]), float(match[2])
        done = t if by_time else done + rate * (t - last_t)
        last_t = t
        if on_progress:
            on_progress(done, rate)
    return others


class RunProgress:
    """A rich progress display: ``all runs`` plus a bar for the run being measured."""

    def __init__(self, console: Console | None, runs: int) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=console is None,
        )
        self.overall = self.progress.add_task("all runs", total=runs, rate="")
        self.enabled = console is not None

    def __enter__(self) -> RunProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.describe("all runs")  # what a pipe sees: the final state, not the last cell
        self.progress.stop()

    def describe(self, text: str) -> None:
        """What is happening now (setting up, warming up, measuring a cell)."""
        self.progress.update(self.overall, description=text)

    def advance(self) -> None:
        """One measured run done."""
        self.progress.advance(self.overall)

    def print(self, text: str) -> None:
        """A message above the bar (on the bar's console; nowhere when there is none)."""
        if self.enabled:
            self.progress.console.print(text)

    @contextlib.contextmanager
    def run(self, name: str, total: float) -> Iterator[ProgressCallback]:
        """A bar for one measured run of ``total`` units; yields its progress callback."""
        task = self.progress.add_task(f"  {name}", total=total, rate="")

        def on_progress(done: float, tps: float) -> None:
            self.progress.update(task, completed=done, rate=f"{tps:,.0f} tps")

        try:
            yield on_progress
        finally:
            self.progress.remove_task(task)
