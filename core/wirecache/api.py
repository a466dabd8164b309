"""The public plugin API: everything a dialect or policy plugin may import.

First-party plugins import only from here, exactly as a third party writing
``wirecache-clickhouse`` would. If a plugin needs something that is not here,
add it here rather than reaching into a core module.
"""

from wirecache.cache.cache import Cache, Fill
from wirecache.cache.dependencies import Dependencies
from wirecache.cache.events import CacheEvent, CacheOutcome
from wirecache.cache.keys import derive_key, request_key, session_digest, statement_hash
from wirecache.classify import (
    CATALOG,
    Classification,
    ClassifierRules,
    StatementKind,
    TxEffect,
)
from wirecache.connection import Connection
from wirecache.dialect import Dialect
from wirecache.errors import OriginUnavailable
from wirecache.hookspecs import hookimpl
from wirecache.hotloop import Handler
from wirecache.outbox import Outbox
from wirecache.routing import CacheChoice, UnknownCache, choose_cache
from wirecache.session import SessionKey, TransactionWrites
from wirecache.sockets import DirectStream

__all__ = [
    "CATALOG",
    "Cache",
    "CacheChoice",
    "CacheEvent",
    "CacheOutcome",
    "Classification",
    "ClassifierRules",
    "Connection",
    "Dependencies",
    "Dialect",
    "DirectStream",
    "Fill",
    "Handler",
    "OriginUnavailable",
    "Outbox",
    "SessionKey",
    "StatementKind",
    "TransactionWrites",
    "TxEffect",
    "UnknownCache",
    "choose_cache",
    "hookimpl",
    "derive_key",
    "request_key",
    "session_digest",
    "statement_hash",
]
