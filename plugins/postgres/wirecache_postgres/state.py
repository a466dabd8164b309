"""What one PostgreSQL session looks like to the cache: its key and its transaction.

DESIGN.md rule 2: the key says everything that can change the answer. The
session part of the key is one digest over the database, the authenticated
user, every ParameterStatus value that can change result bytes (TimeZone,
DateStyle, client_encoding, …) and the text of every statement that changed
session state in ways the protocol does not report (``SET search_path``,
``SET ROLE``, ``CREATE TEMP TABLE``, ``set_config()``…). Folding statement
texts in is conservative: two sessions that ran the same SETs share entries,
any other difference only costs hits, never correctness. ``DISCARD ALL``
returns a session to its initial state, so it resets the fold.
"""

from __future__ import annotations

from wirecache.api import Classification, SessionKey, TransactionWrites

#: ParameterStatus values that cannot change result bytes or visibility.
#: application_name is excluded so that clients naming themselves still
#: share a cache.
IGNORED_PARAMETERS = frozenset({"application_name"})
#: Startup parameters already in the key (user, database) or that cannot
#: change results; every other one (``options=-c search_path=…``, a GUC sent
#: as a startup parameter) sets session state the origin may never report.
IGNORED_STARTUP = frozenset({"user", "database", "application_name"})
_NOTHING: frozenset[str] = frozenset()


class SessionState:
    """Key material and transaction status of one client session."""

    def __init__(
        self, cache_id: str, database: str, user: str, startup: dict[str, str] | None = None
    ) -> None:
        self.cache_id = cache_id
        self.database = database
        self.user = user
        startup_items = sorted(
            f"startup:{k}={v}" for k, v in (startup or {}).items() if k not in IGNORED_STARTUP
        )
        self.key = SessionKey("postgres", database, user, *startup_items,
                              ignored=IGNORED_PARAMETERS)  # fmt: skip
        #: Transaction status from the last ReadyForQuery: I, T or E.
        self.tx_status = "I"
        self.writes = TransactionWrites()

    @property
    def digest(self) -> bytes:
        return self.key.digest

    def set_parameter(self, name: str, value: str) -> None:
        """Record a ParameterStatus from the origin."""
        self.key.set(name, value)

    def statement_sent(self, text: bytes, stmt: Classification) -> None:
        """Fold in a statement that changes session state, before it reaches the origin."""
        if not stmt.changes_session:
            return
        if text.lstrip()[:10].upper() == b"DEALLOCATE":
            return  # drops prepared statements (see Relay._sent): no result changes
        if text.strip().rstrip(b";").strip().upper() == b"DISCARD ALL":
            self.key.reset()
        else:
            self.key.fold(text)

    @property
    def idle(self) -> bool:
        """Outside any transaction block: the only state in which the cache is used."""
        return self.tx_status == "I"

    @property
    def tx_writes(self) -> frozenset[str] | None:
        """What was written since the session was last idle (None: unknown targets)."""
        return self.writes.tables

    def note_write(self, stmt: Classification) -> None:
        """Remember what a statement wrote, to invalidate again once it is committed."""
        self.writes.note(stmt.writes)

    def ready(self, status: str) -> frozenset[str] | None:
        """Record a ReadyForQuery status.

        Once the session is idle again, whatever was written since the last
        time is committed (or rolled back): returns those tables to
        invalidate once more (``None``: unknown, the whole database;
        ``frozenset()``: nothing) — DESIGN.md rule 3, at the write and at
        COMMIT.
        """
        self.tx_status = status
        if status != "I":
            return _NOTHING
        return self.writes.take()
