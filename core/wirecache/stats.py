"""Per-template statistics: what a user looks at to see what the cache buys.

Counters are plain integers and floats updated on the hot path; nothing here
allocates per request once a template has been seen.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TemplateStats:
    """Counters of one statement template (literals and parameters stripped)."""

    template: str
    hits: int = 0
    misses: int = 0
    stores: int = 0
    hit_seconds: float = 0.0
    origin_seconds: float = 0.0

    @property
    def origin_time_saved(self) -> float:
        """Estimated origin time saved: hits times the mean origin time of misses."""
        return self.hits * self.origin_seconds / self.misses if self.misses else 0.0


class CacheStats:
    """Totals and per-template counters of one cache."""

    def __init__(self, max_templates: int = 5000) -> None:
        self.templates: dict[str, TemplateStats] = {}
        self.invalidations = 0
        self.passthrough = 0
        self._max_templates = max_templates

    def template(self, fingerprint: str, text: str) -> TemplateStats:
        stats = self.templates.get(fingerprint)
        if stats is None:
            if len(self.templates) >= self._max_templates:
                # Bounded: the least informative (fewest hits) template goes.
                victim = min(self.templates, key=lambda f: self.templates[f].hits)
                del self.templates[victim]
            stats = self.templates[fingerprint] = TemplateStats(text)
        return stats

    @property
    def hits(self) -> int:
        return sum(t.hits for t in self.templates.values())

    @property
    def misses(self) -> int:
        return sum(t.misses for t in self.templates.values())
