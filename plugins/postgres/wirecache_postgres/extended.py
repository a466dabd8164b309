"""Prepared statements and portals as the client sees them and as the origin has them.

To answer Parse, Bind and Execute of a hit without the origin, wirecache must
let the two views differ: the client believes a statement is prepared (it got
ParseComplete from wirecache) while the origin never saw that Parse. Before a
later miss needs the statement or portal, the relay replays the stored Parse
or Bind to the origin and swallows its answer ("lazy replay"). This module
keeps both views and the bytes to replay; it does no I/O.

Messages are kept as raw bytes: keys are built from the exact bytes of the
statement text, parameter types, formats and values, so no parameter value is
ever decoded, and parsing costs only finding two NUL terminators.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from wirecache.api import Classification

from wirecache_postgres.framing import ProtocolError


@dataclass(slots=True, eq=False)
class Prepared:
    """A statement as the client prepared it (identity matters, not equality)."""

    name: bytes
    text: bytes
    #: The parameter type OIDs exactly as sent (count and OIDs).
    types: bytes
    stmt: Classification
    #: The whole Parse message, to replay to the origin.
    raw: bytes
    #: The statement's part of cache keys and the session digest it was made
    #: under (see Relay._key).
    hash: object = None
    hash_digest: bytes = b""
    #: The extended-protocol group (counted by Sync) the client prepared it in.
    group: int = 0
    #: Whether it was the first message of that group: no error before it can skip it.
    first: bool = False


@dataclass(slots=True, eq=False)
class Portal:
    """A portal as the client bound it."""

    name: bytes
    prepared: Prepared | None
    #: The Bind body after the portal and statement names: parameter formats,
    #: values and result formats, exactly as sent.
    rest: bytes
    raw: bytes
    #: The cached Execute response found when the portal was bound, if any.
    hit: bytes | None = None
    #: Rows of ``hit`` already sent by Executes with a row limit; -1 once the
    #: portal ran to its end (or was executed at the origin), None before any
    #: Execute. A later Execute continues where the last one stopped.
    served: int | None = None
    #: A DataRow the origin sent beyond the client's row limit (wirecache asked
    #: for one more), owed to the client's next Execute of the portal.
    pending: bytes | None = None
    #: The Execute sent for this portal with a row limit of 2 whose answer has
    #: not come yet (the next Execute waits for it: see Relay._execute).
    inflight: object = None


def split_parse(body: bytes) -> tuple[bytes, bytes, bytes]:
    """(name, text, types) of a Parse body."""
    i = body.find(0)
    j = body.find(0, i + 1) if i >= 0 else -1
    if j < 0:
        raise ProtocolError("invalid Parse message: missing string terminator")
    return body[:i], body[i + 1 : j], body[j + 1 :]


def split_bind(body: bytes) -> tuple[bytes, bytes, bytes]:
    """(portal, statement, rest) of a Bind body."""
    i = body.find(0)
    j = body.find(0, i + 1) if i >= 0 else -1
    if j < 0:
        raise ProtocolError("invalid Bind message: missing string terminator")
    return body[:i], body[i + 1 : j], body[j + 1 :]


def result_formats(rest: bytes) -> bytes:
    """The result-format part of a Bind body after its names (``rest``): what a
    Describe of the portal depends on besides the statement, unlike the
    parameter values. ``rest`` itself when it does not parse (then the origin
    will refuse the Bind anyway)."""
    try:
        pos = 2 + 2 * int.from_bytes(rest[0:2], "big")
        count = int.from_bytes(rest[pos : pos + 2], "big")
        pos += 2
        for _ in range(count):
            size = int.from_bytes(rest[pos : pos + 4], "big", signed=True)
            pos += 4 + max(size, 0)
    except (IndexError, ValueError):
        return rest
    return rest[pos:] if pos + 2 <= len(rest) else rest


def split_target(body: bytes, what: str) -> tuple[int, bytes]:
    """(kind 'S'/'P' as int, name) of a Describe or Close body."""
    if len(body) < 2 or body[-1] != 0 or body[0] not in (0x53, 0x50):
        raise ProtocolError(f"invalid {what} message")
    return body[0], body[1:-1]


def split_execute(body: bytes) -> tuple[bytes, int]:
    """(portal, max_rows) of an Execute body."""
    i = body.find(0)
    if i < 0 or len(body) != i + 5:
        raise ProtocolError("invalid Execute message")
    return body[:i], int.from_bytes(body[i + 1 :], "big", signed=True)


_DESCRIBE_UNNAMED_PORTAL = b"D\0\0\0\x06P\0"
_EXECUTE_UNNAMED_PORTAL = b"E\0\0\0\x09\0\0\0\0\0"  # all rows
_SYNC = b"S\0\0\0\x04"


class Run(NamedTuple):
    """A statement run (see :func:`statement_run`)."""

    #: The Parse message, or None.
    parse: bytes | None
    #: The statement the Bind names.
    statement: bytes
    #: The Bind body after its two names (see Portal.rest).
    rest: bytes
    #: Whether the run describes its portal.
    described: bool


def statement_run(data: bytes) -> Run | None:
    """How drivers run one statement, recognised in the bytes of one read: an
    optional Parse of the unnamed statement, a Bind of the unnamed portal, an
    optional Describe of it, an Execute of all its rows, a Sync, and nothing
    else (libpq's PQexecParams and PQexecPrepared, psycopg, asyncpg, JDBC).
    None for anything else, malformed bytes included (the message-by-message
    path then reads, checks and plans them)."""
    end = len(data) - 5
    if end < 17 or not data.endswith(_SYNC):
        return None
    pos = 0
    parse = None
    if data[0] == 0x50:  # 'P'
        size = 1 + int.from_bytes(data[1:5], "big")
        if size < 8 or size > end or data[5] != 0:
            return None
        parse, pos = data[:size], size
    if data[pos] != 0x42 or pos + 7 > end:  # 'B', and room for its two names
        return None
    bind_end = pos + 1 + int.from_bytes(data[pos + 1 : pos + 5], "big")
    if bind_end > end or data[pos + 5] != 0:
        return None
    name_end = data.find(0, pos + 6, bind_end)
    if name_end < 0:
        return None
    name = data[pos + 6 : name_end]
    rest = data[name_end + 1 : bind_end]
    pos = bind_end
    described = data.startswith(_DESCRIBE_UNNAMED_PORTAL, pos)
    if described:
        pos += len(_DESCRIBE_UNNAMED_PORTAL)
    if pos + len(_EXECUTE_UNNAMED_PORTAL) != end or not data.startswith(
        _EXECUTE_UNNAMED_PORTAL, pos
    ):
        return None
    return Run(parse, name, rest, described)


#: What a run's answer starts with, by whether it has a Parse.
_PARSE_BIND_COMPLETE = b"1\0\0\0\x042\0\0\0\x04"
_BIND_COMPLETE = b"2\0\0\0\x04"


def split_run_answer(answer: bytes, parsed: bool, described: bool) -> tuple[bytes, bytes] | None:
    """The Describe's and the Execute's part of the origin's whole answer to a
    statement run (without its ReadyForQuery): (RowDescription or NoData, or b""
    without a Describe; the DataRows and CommandComplete), the entries the
    message-by-message path stores for them. None unless the answer is exactly
    [ParseComplete] BindComplete [RowDescription|NoData] DataRow* CommandComplete:
    a notice, an error or anything else in it, and nothing is stored."""
    head = _PARSE_BIND_COMPLETE if parsed else _BIND_COMPLETE
    if not answer.startswith(head):
        return None
    pos, end = len(head), len(answer)
    description = b""
    if described:
        if pos + 5 > end or answer[pos] not in (0x54, 0x6E):  # 'T', 'n'
            return None
        nxt = pos + 1 + int.from_bytes(answer[pos + 1 : pos + 5], "big")
        description, pos = answer[pos:nxt], nxt
    start = pos
    while pos + 5 <= end and answer[pos] == 0x44:  # 'D'
        pos += 1 + int.from_bytes(answer[pos + 1 : pos + 5], "big")
    if pos + 5 > end or answer[pos] != 0x43:  # 'C'
        return None
    if pos + 1 + int.from_bytes(answer[pos + 1 : pos + 5], "big") != end:
        return None
    return description, answer[start:]


class Statements(dict[bytes, Prepared]):
    """The client's statements, counting changes of what a name stands for: a
    request that wirecache answers from memory (Relay._replay) is valid only
    while none happened."""

    __slots__ = ("changes",)

    def __init__(self) -> None:
        super().__init__()
        self.changes = 0

    def __setitem__(self, name: bytes, p: Prepared) -> None:
        old = self.get(name)
        if old is None or old.raw != p.raw:
            # (The same Parse again, as drivers send for the unnamed statement,
            # changes nothing a remembered answer depends on.)
            self.changes += 1
        super().__setitem__(name, p)

    def __delitem__(self, name: bytes) -> None:
        self.changes += 1
        super().__delitem__(name)

    def pop(self, name: bytes, *default: Prepared | None) -> Prepared | None:  # type: ignore[override]
        self.changes += 1
        return super().pop(name, *default)

    def clear(self) -> None:
        self.changes += 1
        super().clear()


@dataclass
class Views:
    """Statements and portals, per the client and per the origin."""

    client_statements: Statements = field(default_factory=Statements)
    origin_statements: dict[bytes, Prepared] = field(default_factory=dict)
    client_portals: dict[bytes, Portal] = field(default_factory=dict)
    origin_portals: dict[bytes, Portal] = field(default_factory=dict)

    def forget_portals(self) -> None:
        """Portals end with the transaction that created them."""
        self.client_portals.clear()
        self.origin_portals.clear()

    def forget_statements(self, name: bytes | None) -> None:
        """DEALLOCATE name / DEALLOCATE ALL / DISCARD ALL ran at the origin."""
        if name is None:
            self.client_statements.clear()
            self.origin_statements.clear()
        else:
            self.client_statements.pop(name, None)
            self.origin_statements.pop(name, None)


def deallocated(text: bytes) -> tuple[bool, bytes | None]:
    """Whether ``text`` drops prepared statements: (True, None) for all, (True, name)."""
    words = text.strip().rstrip(b";").split()
    if not words:
        return False, None
    first = words[0].upper()
    if first == b"DISCARD" and len(words) == 2 and words[1].upper() == b"ALL":
        return True, None
    if first == b"DEALLOCATE":
        rest = [w for w in words[1:] if w.upper() != b"PREPARE"]
        if len(rest) == 1:
            name = rest[0]
            if name.upper() == b"ALL":
                return True, None
            quoted = name.startswith(b'"') and name.endswith(b'"')
            return True, name[1:-1] if quoted else name.lower()
    return False, None
