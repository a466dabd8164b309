"""Events handed to observer plugins (``wirecache_cache_event``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class CacheOutcome(enum.Enum):
    """What happened to one statement."""

    HIT = "hit"
    MISS = "miss"
    STORE = "store"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class CacheEvent:
    """One statement's fate in one cache.

    ``elapsed`` is the time from receiving the request to sending the last
    byte of a hit, or the origin's round trip for a miss, in seconds.
    """

    cache_id: str
    outcome: CacheOutcome
    fingerprint: str
    elapsed: float
    size: int = 0
    reason: str = ""
