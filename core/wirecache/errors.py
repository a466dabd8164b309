"""Errors the core raises to dialects, worded for the client who will read them."""

from __future__ import annotations


class OriginUnavailable(Exception):
    """The origin of a cache cannot be reached; the message names both and what to do."""

    def __init__(self, cache_id: str, origin: str, reason: str) -> None:
        super().__init__(
            f'wirecache cache "{cache_id}" cannot reach its origin database at {origin}: '
            f"{reason}. Check that the database is running and that the cache's origin "
            "setting points at it."
        )
        self.cache_id = cache_id
        self.origin = origin
