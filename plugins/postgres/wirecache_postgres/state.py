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

from wirecache.api import Classification, session_digest

#: ParameterStatus values that cannot change result bytes or visibility.
#: application_name is excluded so that clients naming themselves still
#: share a cache.
IGNORED_PARAMETERS = frozenset({"application_name"})
#: Startup parameters already in the key (user, database) or that cannot
#: change results; every other one (``options=-c search_path=…``, a GUC sent
#: as a startup parameter) sets session state the origin may never report.
IGNORED_STARTUP = frozenset({"user", "database", "application_name"})


class SessionState:
    """Key material and transaction status of one client session."""

    def __init__(
        self, cache_id: str, database: str, user: str, startup: dict[str, str] | None = None
    ) -> None:
        self.cache_id = cache_id
        self.database = database
        self.user = user
        self.startup = sorted(
            f"startup:{k}={v}" for k, v in (startup or {}).items() if k not in IGNORED_STARTUP
        )
        self.parameters: dict[str, str] = {}
        self._folded: list[bytes] = []
        #: Transaction status from the last ReadyForQuery: I, T or E.
        self.tx_status = "I"
        #: Tables written inside the current explicit transaction; ``None``
        #: once a write with unknown targets happened.
        self.tx_writes: frozenset[str] | None = frozenset()
        self.digest = b""
        self._recompute()

    def _recompute(self) -> None:
        params = sorted((k, v) for k, v in self.parameters.items() if k not in IGNORED_PARAMETERS)
        self.digest = session_digest(
            "postgres", self.database, self.user, *self.startup,
            *[f"{k}={v}" for k, v in params], *self._folded,
        )  # fmt: skip

    def set_parameter(self, name: str, value: str) -> None:
        """Record a ParameterStatus from the origin."""
        if self.parameters.get(name) != value:
            self.parameters[name] = value
            if name not in IGNORED_PARAMETERS:
                self._recompute()

    def statement_sent(self, text: bytes, stmt: Classification) -> None:
        """Fold in a statement that changes session state, before it reaches the origin."""
        if not stmt.changes_session:
            return
        if text.strip().rstrip(b";").strip().upper() == b"DISCARD ALL":
            self._folded.clear()
        else:
            self._folded.append(text)
        self._recompute()

    @property
    def idle(self) -> bool:
        """Outside any transaction block: the only state in which the cache is used."""
        return self.tx_status == "I"

    def note_write(self, stmt: Classification) -> None:
        """Remember what a statement inside a transaction wrote, for COMMIT."""
        if self.tx_writes is None:
            return
        self.tx_writes = None if stmt.writes is None else self.tx_writes | stmt.writes

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
            return frozenset()
        written, self.tx_writes = self.tx_writes, frozenset()
        return written
