"""Structured logging: one structlog configuration for the whole process.

Every log line has a stable event name (``cache.hit``, ``conn.open``); values
never include passwords or result data. Debug lines on the hot path cost
almost nothing when the level is above debug, because the filtering bound
logger turns them into no-op methods.
"""

from __future__ import annotations

import logging
import sys

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}  # fmt: skip


def configure(fmt: str = "console", level: str = "info") -> None:
    """Configure structlog for ``console`` (humans) or ``json`` (machines) output on stderr."""
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
