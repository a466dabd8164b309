"""What one MySQL session looks like to the cache: its key and its transaction.

DESIGN.md rule 2: the key says everything that can change the answer. The
session part is one digest (:class:`wirecache.api.SessionKey`) over the
current database, the authenticated user, the character set of the
handshake, the capabilities that change the bytes of a result (EOF vs OK
terminators, session tracking, MariaDB metadata) and the text of every
statement that changed the session (``SET NAMES``, ``SET time_zone``,
``SET sql_mode``, ``SET @x``, ``USE``, temporary tables, COM_SET_OPTION…).
COM_RESET_CONNECTION and COM_CHANGE_USER return a session to its initial
state, so they reset the fold.

Transactions are followed from the status flags of every OK and EOF packet
(SERVER_STATUS_IN_TRANS, SERVER_STATUS_AUTOCOMMIT), which also covers
implicit commits (DDL, ``SET autocommit=1``) and rollbacks by the server. The
cache is used only outside a transaction with autocommit on: with autocommit
off every statement opens a transaction at the origin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wirecache.api import Classification, SessionKey, TransactionWrites

from wirecache_mysql import messages as m

#: Capabilities that change the bytes of a response: part of the key.
KEY_CAPABILITIES = (
    m.CLIENT_PROTOCOL_41 | m.CLIENT_DEPRECATE_EOF | m.CLIENT_MULTI_RESULTS
    | m.CLIENT_PS_MULTI_RESULTS | m.CLIENT_SESSION_TRACK | m.CLIENT_MULTI_STATEMENTS
    | m.CLIENT_OPTIONAL_RESULTSET_METADATA | m.CLIENT_LONG_FLAG | m.CLIENT_TRANSACTIONS
)  # fmt: skip
KEY_MARIADB_CAPABILITIES = m.MARIADB_CLIENT_EXTENDED_METADATA | m.MARIADB_CLIENT_CACHE_METADATA

_USE = re.compile(rb"^\s*USE\s+(`(?:[^`]|``)+`|[\w$]+)\s*;?\s*$", re.IGNORECASE)


@dataclass
class Prepared:
    """A statement prepared on this connection (ids are the origin's: one client
    connection maps to one origin connection).

    An execute may leave the parameter types out (new-params-bound 0): the
    server then uses those of the last execute that sent them. Client and
    origin can disagree on which that was, because an execute answered from the
    cache never reaches the origin: `types_block` is what the client last sent
    (`param_types` parsed), `origin_types` what the origin last received; the
    relay puts `types_block` back into a forwarded execute when they differ.
    None: not known (the origin then has what the client sent).
    """

    sql: bytes
    stmt: Classification
    num_params: int
    param_types: tuple[int, ...] | None = None
    long_data: bool = False
    types_block: bytes | None = None
    origin_types: bytes | None = None

    def types_unknown(self) -> None:
        """An execute sent types that could not be read, and the origin got them."""
        self.param_types = self.types_block = self.origin_types = None


class SessionState:
    """Key material, transaction status and prepared statements of one session."""

    def __init__(
        self, cache_id: str, database: str, user: str, charset: int, capabilities: int,
        mariadb_capabilities: int, status_flags: int,
    ) -> None:  # fmt: skip
        self.cache_id = cache_id
        self.database = database
        self.user = user
        self.charset = charset
        self.capabilities = capabilities
        self.mariadb_capabilities = mariadb_capabilities
        self.key = SessionKey(*self._identity())
        self.status_flags = status_flags
        self.tx = TransactionWrites()
        self.prepared: dict[int, Prepared] = {}
        self.last_prepared: int | None = None

    def _identity(self) -> tuple[str, ...]:
        return (
            "mysql", self.database, self.user, f"charset={self.charset}",
            f"caps={self.capabilities & KEY_CAPABILITIES:x}"
            f"/{self.mariadb_capabilities & KEY_MARIADB_CAPABILITIES:x}",
        )  # fmt: skip

    @property
    def digest(self) -> bytes:
        return self.key.digest

    # -- session changes ----------------------------------------------------

    def statement_sent(self, text: bytes, stmt: Classification) -> None:
        """Fold in a statement that changes session state, before it reaches the origin."""
        if not stmt.changes_session:
            return
        self.key.fold(text)
        use = _USE.match(text)
        if use is not None:
            name = use.group(1)
            if name.startswith(b"`"):
                name = name[1:-1].replace(b"``", b"`")
            # The fold already keys on the USE; the name is kept for logs.
            self.database = name.decode("utf-8", "replace")

    def option_set(self, payload: bytes) -> None:
        """COM_SET_OPTION (multi-statements on/off) changes what a text can return."""
        self.key.fold(payload)

    def set_database(self, name: str) -> None:
        """COM_INIT_DB succeeded."""
        self.database = name
        self.key.fold(b"\x02" + name.encode("utf-8", "surrogateescape"))

    def reset(self, *, user: str | None = None, database: str | None = None,
              charset: int | None = None) -> None:  # fmt: skip
        """COM_RESET_CONNECTION or COM_CHANGE_USER: back to a fresh session."""
        if user is not None:
            self.user = user
        if database is not None:
            self.database = database
        if charset is not None:
            self.charset = charset
        self.key.reset()
        self.key.set_identity(*self._identity())
        self.prepared.clear()
        self.last_prepared = None

    # -- transactions -------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        return bool(self.status_flags & m.SERVER_STATUS_IN_TRANS)

    @property
    def idle(self) -> bool:
        """Outside any transaction with autocommit on: the only state in which the
        cache is read or filled."""
        flags = self.status_flags
        return not flags & m.SERVER_STATUS_IN_TRANS and bool(flags & m.SERVER_STATUS_AUTOCOMMIT)

    def note_write(self, stmt: Classification) -> None:
        """A write ran inside a transaction: its tables are bumped again at the end."""
        self.tx.note(stmt.writes)

    def status(self, flags: int) -> tuple[bool, frozenset[str] | None]:
        """Record the status flags of an OK/EOF.

        Returns whether a transaction just ended and what it wrote (``None``:
        unknown, the whole database), to be invalidated again now that the
        commit is certain.
        """
        ended = self.in_transaction and not flags & m.SERVER_STATUS_IN_TRANS
        self.status_flags = flags
        if not ended:
            return False, frozenset()
        return True, self.tx.take()
