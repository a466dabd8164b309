"""The cache: entries (L1 memory, L2 disk), table versions, statistics and policy.

Dialect plugins use :class:`wirecache.cache.cache.Cache` through the public API
re-exported by :mod:`wirecache.api`.
"""
