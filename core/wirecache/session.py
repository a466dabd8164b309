"""Session bookkeeping every dialect needs: the session part of the key and
the writes of an open transaction.

DESIGN.md rule 2: the key says everything that can change the answer. Wire
protocols report some session settings (PostgreSQL's ParameterStatus, the
character set of a MySQL handshake) but not all: ``SET search_path``,
``SET time_zone``, user variables, temporary tables… are only visible as the
statements that made them. :class:`SessionKey` folds the text of every such
statement into the digest. That is conservative: two sessions that ran the
same statements share entries; any other difference only costs hits, never
correctness.

DESIGN.md rule 3: an explicit transaction invalidates what it wrote at each
write *and* again once the commit is certain; :class:`TransactionWrites`
remembers what to bump then.
"""

from __future__ import annotations

from wirecache.cache.keys import session_digest


class SessionKey:
    """The session digest: fixed identity, reported settings and folded statements.

    ``identity`` holds what names the session (dialect, database, user, …);
    :meth:`set` records a setting the protocol reports; :meth:`fold` adds the
    text of a statement that changed the session in a way nobody reports.
    ``digest`` is recomputed on every change, so a request only hashes its own
    bytes on top of it.
    """

    __slots__ = ("identity", "settings", "folded", "ignored", "digest")

    def __init__(self, *identity: str | bytes, ignored: frozenset[str] = frozenset()) -> None:
        self.identity: tuple[str | bytes, ...] = identity
        self.settings: dict[str, str] = {}
        self.folded: list[bytes] = []
        #: Setting names that cannot change result bytes (application_name).
        self.ignored = ignored
        self.digest = b""
        self._recompute()

    def _recompute(self) -> None:
        settings = sorted((k, v) for k, v in self.settings.items() if k not in self.ignored)
        self.digest = session_digest(
            *self.identity, b"\0settings", *[f"{k}={v}" for k, v in settings],
            b"\0folded", *self.folded,
        )  # fmt: skip

    def set_identity(self, *identity: str | bytes) -> None:
        """Replace the identity (another database or user)."""
        if identity != self.identity:
            self.identity = identity
            self._recompute()

    def set(self, name: str, value: str) -> None:
        """Record a setting the protocol reported."""
        if self.settings.get(name) != value:
            self.settings[name] = value
            if name not in self.ignored:
                self._recompute()

    def fold(self, statement: bytes) -> None:
        """Fold in the text of a statement that changes session state."""
        self.folded.append(bytes(statement))
        self._recompute()

    def reset(self) -> None:
        """Forget folded statements and settings: the session is as new (DISCARD ALL,
        COM_RESET_CONNECTION, a changed user)."""
        self.folded.clear()
        self.settings.clear()
        self._recompute()


class TransactionWrites:
    """Tables written inside the current explicit transaction, bumped again at its end.

    ``None`` once a write with unknown targets happened (the whole database is
    invalidated then); an empty set when nothing was written.
    """

    __slots__ = ("tables",)

    def __init__(self) -> None:
        self.tables: frozenset[str] | None = frozenset()

    def note(self, writes: frozenset[str] | None) -> None:
        """Remember the targets of one write inside the transaction."""
        if self.tables is not None:
            self.tables = None if writes is None else self.tables | writes

    def take(self) -> frozenset[str] | None:
        """What the ended transaction wrote; resets for the next one."""
        tables, self.tables = self.tables, frozenset()
        return tables

    @property
    def empty(self) -> bool:
        return self.tables == frozenset()
