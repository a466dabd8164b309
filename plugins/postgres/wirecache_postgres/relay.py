"""The authenticated session: relay both ways, answer hits, fill and invalidate.

Two tasks per session. The client pump reads the client's messages and turns
each into a :class:`Unit`, the piece of response the client is owed for it:
either bytes wirecache answers itself (a hit, a ParseComplete it may vouch
for) or a response the origin will send. The origin pump relays the origin's
messages, cutting them into the units they answer, storing clean misses and
invalidating after writes — before the client sees the acknowledgement — and
sends wirecache's own answers when their turn in the FIFO comes. Order is
therefore exactly what the origin would have produced, for simple queries and
for pipelines of Parse/Bind/Describe/Execute/Sync mixing hits and misses.

A hit is allowed only while no statement that is not a plain read is in
flight and the session is outside a transaction: then the session state and
the data the client may expect to see are settled.

Messages larger than :data:`STREAM_THRESHOLD` are streamed piece by piece in
both directions, so a multi-GB result or COPY never sits in memory.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable

import trio
from wirecache.api import (
    Cache,
    Classification,
    Connection,
    Dependencies,
    Fill,
    Outbox,
    StatementKind,
    TxEffect,
    derive_key,
    request_key,
    statement_hash,
)

from wirecache_postgres import catalog
from wirecache_postgres import messages as m
from wirecache_postgres.extended import (
    Portal,
    Prepared,
    Run,
    Views,
    deallocated,
    result_formats,
    split_bind,
    split_execute,
    split_parse,
    split_run_answer,
    split_target,
    statement_run,
)
from wirecache_postgres.framing import MessageReader, ProtocolError, whole_messages
from wirecache_postgres.messages import Backend, Frontend
from wirecache_postgres.state import SessionState
from wirecache_postgres.wire import READ_SIZE, PeerClosed

#: Messages with a body at least this large are streamed, not buffered whole.
STREAM_THRESHOLD = 256 * 1024

READY_IDLE = m.ready_for_query("I")
PARSE_COMPLETE = m.PARSE_COMPLETE
BIND_COMPLETE = m.BIND_COMPLETE
CLOSE_COMPLETE = m.CLOSE_COMPLETE

_Z, _E, _C = Backend.READY_FOR_QUERY, Backend.ERROR_RESPONSE, Backend.COMMAND_COMPLETE
# Enum members read on every statement passed through: under Python 3.11 each
# ``TxEffect.END`` goes through the enum metaclass's __getattr__ hook.
_TX_NONE, _TX_END = TxEffect.NONE, TxEffect.END
_KIND_READ, _KIND_SESSION, _KIND_UNKNOWN = (
    StatementKind.READ,
    StatementKind.SESSION,
    StatementKind.UNKNOWN,
)
_ENDS_SYNC = frozenset({_Z})
_ENDS_PARSE = frozenset({Backend.PARSE_COMPLETE})
_ENDS_BIND = frozenset({Backend.BIND_COMPLETE})
_ENDS_CLOSE = frozenset({Backend.CLOSE_COMPLETE})
_ENDS_DESCRIBE = frozenset({Backend.ROW_DESCRIPTION, Backend.NO_DATA})
_ENDS_EXECUTE = frozenset({_C, Backend.EMPTY_QUERY_RESPONSE, Backend.PORTAL_SUSPENDED})
#: Messages the origin may send at any time, outside any response.
_ASYNC = frozenset(
    {Backend.NOTICE_RESPONSE, Backend.NOTIFICATION_RESPONSE, Backend.PARAMETER_STATUS}
)
#: Origin messages after which a response must not be stored.
_SPOIL_FILL = frozenset(
    {
        _E, Backend.PARAMETER_STATUS, Backend.NOTIFICATION_RESPONSE,
        Backend.COPY_IN_RESPONSE, Backend.COPY_OUT_RESPONSE, Backend.COPY_BOTH_RESPONSE,
        Backend.PORTAL_SUSPENDED,
    }
)  # fmt: skip
#: A statement wirecache cannot see (too large, or bound to an unknown name).
_UNKNOWN = Classification(
    StatementKind.UNKNOWN, False, writes=None, changes_session=True,
    reason="statement not visible to wirecache",
)  # fmt: skip


#: The largest answer remembered (see Relay._replay), and the bytes of answers one
#: session remembers at most (a hot set of a few hundred small rows fits).
MEMO_BYTES = 4096
MEMO_SESSION_BYTES = 64 * 1024
#: Requests seen once per session, of which the next sighting is remembered: most
#: requests with random parameters come once, and remembering costs.
SEEN_REQUESTS = 1024


class _Memo:
    __slots__ = ("response", "lookups", "digest", "statements", "syncs")

    def __init__(
        self, response: bytes, lookups: list, digest: object, statements: int, syncs: int
    ) -> None:
        self.response = response
        self.lookups = lookups
        self.digest = digest
        self.statements = statements
        self.syncs = syncs


class _RunFills:
    """The entries a statement run that misses fills besides its result (the unit's
    own fill, which collects the whole answer until it is cut: see Relay._cut_run):
    the proof that its Parse parses and its portal's description, each None when
    stored already or not in the run."""

    __slots__ = ("run", "parse", "describe")

    def __init__(self, run: Run, parse: Fill | None, describe: Fill | None) -> None:
        self.run = run
        self.parse = parse
        self.describe = describe


#: What planning or relaying what was read left to do (see _plan_buffered).
_DONE, _AWAIT, _END = object(), object(), object()


class _Wait(Exception):
    """A client message cannot be planned before ``unit`` is answered."""

    def __init__(self, unit: Unit) -> None:
        self.unit = unit
        if unit.done is None:
            unit.done = trio.Event()


class Unit:
    """One piece of response the client is owed, in order.

    ``local`` units are answered by wirecache with those bytes; the others
    are answered by the origin and end with one of ``ends``. ``swallow``
    marks replayed Parse/Bind whose answers the client must not see.
    """

    __slots__ = (
        "local", "ends", "extended", "sync", "stmt", "fill", "fill_ok", "swallow",
        "acknowledged", "undo", "include_end", "catalog", "held", "portal", "tag_delta",
        "done", "answered", "blocks", "special", "on_error", "run_fills",
    )  # fmt: skip

    def __init__(
        self,
        local: bytes | None = None,
        ends: frozenset[int] = _ENDS_SYNC,
        *,
        extended: bool = False,
        sync: bool = False,
        stmt: Classification | None = None,
        fill: Fill | None = None,
        swallow: bool = False,
        undo: Callable[[], None] | None = None,
        include_end: bool = True,
        catalog: list[list[bytes | None]] | None = None,
        portal: Portal | None = None,
        tag_delta: int = 0,
    ) -> None:
        self.local = local
        self.ends = ends
        self.extended = extended
        self.sync = sync
        self.stmt = stmt
        self.fill = fill
        self.fill_ok = True
        self.swallow = swallow
        self.acknowledged = False
        self.undo = undo
        #: Whether the terminating message belongs in the stored entry
        #: (CommandComplete does; ReadyForQuery is generated live).
        self.include_end = include_end
        #: Rows of wirecache's own catalog query (see catalog.py): the whole
        #: response is read here and none of it reaches the client.
        self.catalog = catalog
        #: An Execute sent with a row limit of 2 for the client's 1 (see
        #: Relay._execute): its messages are held and cut to what the client
        #: asked for; ``portal`` is the client's portal.
        self.held: list[bytes] | None = [] if portal is not None else None
        self.portal = portal
        #: Rows wirecache sent ahead of this Execute's answer (a row held back
        #: from the last one): added to the count of its CommandComplete.
        self.tag_delta = tag_delta
        #: Set when the unit is answered, for a client message waiting on it.
        self.done: trio.Event | None = None
        self.answered = False
        #: Whether no hit may overtake it while in flight (see Relay.blocking).
        self.blocks = stmt is not None and stmt.kind is not _KIND_READ
        #: Whether its messages are read or cut by wirecache (see _relay_batch).
        self.special = catalog is not None or portal is not None
        #: Called at an ErrorResponse in a unit that spans a whole group (see
        #: Relay._run_through).
        self.on_error: Callable[[], None] | None = None
        #: A statement run that misses: its answer is cut into entries at the end.
        self.run_fills: _RunFills | None = None


def _serve(hit: bytes, served: int | None, max_rows: int) -> tuple[bytes, int] | None:
    """The origin's answer to Execute(``max_rows``) of a portal whose whole result is
    ``hit`` and of which ``served`` rows were sent already (None: not executed yet);
    with the new count of rows sent. None when ``hit`` is not DataRows then
    ``SELECT n``.

    PostgreSQL stops after ``max_rows`` rows with PortalSuspended even when no
    row is left, sends the rest with a CommandComplete counting only this
    Execute's rows, and ``SELECT 0`` once the portal is exhausted; asyncpg's
    fetchrow/fetchval (a limit of 1) are answered this way.
    """
    if served is None and max_rows == 0:
        return hit, -1  # the whole result, as stored
    rows: list[int] = []
    pos, end = 0, len(hit)
    while pos < end and hit[pos] == Backend.DATA_ROW:
        rows.append(pos)
        pos += 1 + int.from_bytes(hit[pos + 1 : pos + 5], "big")
    tag = hit[pos + 5 : end - 1]
    if pos >= end or hit[pos] != _C or not tag.startswith(b"SELECT "):
        return None
    rows.append(pos)  # the end of the last row
    total = len(rows) - 1
    start = 0 if served is None else (total if served < 0 else served)
    remaining = total - start
    if max_rows and remaining >= max_rows:
        stop = start + max_rows
        return hit[rows[start] : rows[stop]] + m.PORTAL_SUSPENDED, stop
    if start == 0:
        return hit, -1
    return hit[rows[start] : rows[total]] + m.command_complete(f"SELECT {remaining}"), -1


def _answered(unit: Unit) -> None:
    unit.answered = True
    if unit.portal is not None and unit.portal.inflight is unit:
        unit.portal.inflight = None
    if unit.done is not None:
        unit.done.set()


def _execute_message(portal: bytes, max_rows: int) -> bytes:
    """An Execute of ``portal`` (its name as the client sent it) with a row limit."""
    body = portal + b"\0" + max_rows.to_bytes(4, "big")
    return b"E" + (len(body) + 4).to_bytes(4, "big") + body


def _messages(data: bytes) -> list[bytes]:
    """Split complete backend messages held by wirecache."""
    out, pos = [], 0
    while pos < len(data):
        nxt = pos + 1 + int.from_bytes(data[pos + 1 : pos + 5], "big")
        out.append(data[pos:nxt])
        pos = nxt
    return out


class Relay:
    """One authenticated session between a client and its origin backend."""

    def __init__(
        self,
        conn: Connection,
        cache: Cache,
        state: SessionState,
        client: trio.abc.Stream,
        client_reader: MessageReader,
        origin: trio.abc.Stream,
        origin_reader: MessageReader,
    ) -> None:
        self.conn = conn
        self.cache = cache
        self.state = state
        self.client = client
        self.client_reader = client_reader
        self.origin = origin
        self.origin_reader = origin_reader
        self.units: deque[Unit] = deque()
        #: Units in flight whose statement is not a plain read: while any is,
        #: no hit may overtake it (read-your-writes inside a pipeline).
        self.blocking = 0
        #: Whether the current extended-protocol group (up to Sync) sent
        #: anything to the origin, which then owes a ReadyForQuery.
        self.group_forwarded = False
        #: The origin reported an error and the client's Sync has not been
        #: planned yet: messages until it are ignored.
        self.skipping = False
        #: wirecache's own catalog query is in flight on this session.
        self.catalog_pending = False
        #: Extended-protocol groups planned (Syncs seen), and those forwarded
        #: whose ReadyForQuery has not come back: until it has, what the client
        #: prepared in them may yet be skipped after an error (see _settled).
        self.group = 0
        self.syncs_in_flight = 0
        #: Whether the current group has messages before the next one.
        self.group_open = False
        self.views = Views()
        #: Set when the last unit in flight is answered (for draining).
        self._units_done = trio.Event()
        #: Bytes owed to each side, in order. Both pumps add to ``_to_client``.
        self._to_origin = Outbox(origin)
        self._to_client = Outbox(client)
        #: Client messages read and not planned yet: [data, offsets, next index].
        self._batch: list | None = None
        #: What the client pump must do asynchronously before planning on.
        self._large: tuple[int, int, bytes] | None = None
        self._waiting: Unit | None = None
        self._origin_large: tuple[int, int, bytes] | None = None
        self._client_eof = False
        self._origin_eof = False
        #: Whether both legs are plain TCP, served by the core's hot loop.
        self.direct = conn.direct(client, origin)
        #: Requests answered wholly from the cache, by their exact bytes (see _replay),
        #: and the lookups of the request being planned when it may become one.
        self._memos: dict[bytes, _Memo] = {}
        self._seen: set[bytes] = set()
        self._memo_bytes = 0
        self._recording: list[tuple[bytes, Classification, bool, bytes]] | None = None
        #: The last Parse sent to the origin per name, replayed or of the unnamed
        #: statement, with its group (see _settle_parse).
        self._parses: dict[bytes, tuple[Unit, int]] = {}
        self.log = conn.log.bind(cache=cache.id)

    async def run(self) -> None:
        """Relay until either side closes or the server drains."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._origin_side, nursery.cancel_scope)
            try:
                await self._client_pump()
            except PeerClosed:
                pass
            except ProtocolError as e:
                await self._to_client.send(m.error_response("FATAL", e.sqlstate, e.message))
                self.log.info("conn.protocol_error", side="client", error=e.message)
            nursery.cancel_scope.cancel()

    def _flush_nowait(self) -> bool:
        """:meth:`_flush` for a hot-loop handler: False if something is left to send."""
        client_done = self._to_client.send_nowait()
        return self._to_origin.send_nowait() and client_done

    # -- client -> origin: planning -----------------------------------------

    @property
    def can_hit(self) -> bool:
        return self.blocking == 0 and self.state.idle

    def _settled(self, p: Prepared) -> bool:
        """Whether a hit may rely on ``p``: made in this group (an error before it
        skips the hit too), first in its group (only its own Parse could fail, and
        a text with cached results parses), or every earlier group is answered."""
        return self.can_hit and self._certain(p)

    def _certain(self, p: Prepared) -> bool:
        """Whether no error still to come can undo the client's Parse of ``p``."""
        return p.group == self.group or p.first or not self.syncs_in_flight

    def _forward(self, raw: bytes, unit: Unit | None) -> None:
        self._to_origin.add(raw)
        if unit is not None:
            self._expect(unit)

    def _forward_ahead(self, raw: bytes, sent: int | None, unit: Unit) -> None:
        """:meth:`_forward` of ``raw`` of which Outbox.send_ahead sent ``sent`` bytes."""
        if sent is None:
            self._to_origin.add(raw)
        elif sent < len(raw):
            self._to_origin.add(raw[sent:])
        self._expect(unit)

    def _expect(self, unit: Unit) -> None:
        self.units.append(unit)
        if unit.blocks:
            self.blocking += 1

    def _local(self, data: bytes, undo: Callable[[], None] | None = None) -> None:
        if self.units:
            # ``undo`` reverts the views if an error before it skips it.
            self.units.append(Unit(local=data, undo=undo))
        else:
            self._to_client.add(data)

    async def _flush(self) -> None:
        """Send what was planned: first wirecache's own answers (they precede
        everything queued), then the origin's share."""
        if self._to_client:
            await self._to_client.drain()
        if self._to_origin:
            await self._to_origin.drain()

    async def _client_pump(self) -> None:
        """Plan the client's messages as they come; wait for the origin only where a
        message cannot be planned before an earlier answer (rare)."""
        while True:
            todo = self._plan_buffered()
            while todo is not _DONE:
                if todo is _END:
                    await self._flush()
                    return
                await self._plan_async()
                todo = self._plan_buffered()
            await self._flush()
            with self.conn.idle() as scope:
                if self.direct:
                    await self.conn.serve_ready(self.client, self._client_ready)
                elif not await self._receive(self.client, self.client_reader):
                    self._client_eof = True
            if scope.cancelled_caught:
                # The server drains: let what is in flight finish, then end.
                while self.units:
                    self._units_done = trio.Event()
                    await self._units_done.wait()
                await self._flush()
                return
            if self._client_eof:
                return

    @staticmethod
    async def _receive(stream: trio.abc.Stream, reader: MessageReader) -> bool:
        """Feed what ``stream`` sends next to ``reader`` (TLS legs); False at its end."""
        data = await stream.receive_some(READ_SIZE)
        reader.feed(data)
        return bool(data)

    def _client_ready(self) -> bool:
        """The hot loop's handler for the client socket (see Connection.serve_ready):
        plan and send at once, or leave the rest to the client pump."""
        data = self.client.receive_nowait(READ_SIZE)
        if data is None:
            return True
        if not data:
            self._client_eof = True
            return False
        if self._at_rest():
            if self.can_hit:
                memo = self._memos.get(data)
                if memo is not None and self._replay(memo):
                    return self._to_client.send_nowait()
            if self._run_through(data):
                return self._flush_nowait()
            if self.can_hit:
                return self._plan_remembering(data)
            if self._query_ahead(data):
                return self._to_origin.send_nowait()
        self._take(data)
        return self._plan_buffered() is _DONE and self._flush_nowait()

    def _take(self, data: bytes) -> None:
        """Hand client bytes to planning: as a batch of whole messages when they are
        (see whole_messages), else through the reader."""
        reader = self.client_reader
        if (
            self._batch is None
            and not reader.buffered
            and not reader.stream_remaining
            and len(data) < STREAM_THRESHOLD
        ):
            offsets = whole_messages(data, reader.max_message_length)
            if offsets is not None:
                self._batch = [data, offsets, 0]
                return
        reader.feed(data)

    def _plan_remembering(self, data: bytes) -> bool:
        """Plan a request on a quiet session, remembering it if the cache answers it
        and the session sent it before."""
        self._take(data)
        if not self._seen_before(data):
            return self._plan_buffered() is _DONE and self._flush_nowait()
        self._recording = []
        group = self.group
        try:
            todo = self._plan_buffered()
        finally:
            recorded, self._recording = self._recording, None
        if todo is _DONE and recorded:
            self._remember(data, recorded, self.group - group)
        return todo is _DONE and self._flush_nowait()

    def _seen_before(self, data: bytes) -> bool:
        """Whether the session sent this request before (see SEEN_REQUESTS)."""
        seen = self._seen
        if data in seen:
            return True
        if len(seen) >= SEEN_REQUESTS:
            seen.clear()
        seen.add(data)
        return False

    def _query_ahead(self, data: bytes) -> bool:
        """Send a lone Query in a transaction (where the cache neither answers nor
        stores) before planning it, so the origin runs it meanwhile. Not when the
        catalog edges are due: their query would have to go first."""
        if (
            len(data) < 6
            or data[0] != Frontend.QUERY
            or data[-1] != 0
            or int.from_bytes(data[1:5], "big") + 1 != len(data)
            or self.cache.dependencies_due(self.state.database)
        ):
            return False
        sent = self._to_origin.send_ahead(data)
        text = data[5:-1]
        stmt = self.cache.classify(text)
        self._drop_unnamed(at_origin=True)
        self._sent(text, stmt, catalog=False)
        self._forward_ahead(data, sent, Unit(ends=_ENDS_SYNC, stmt=stmt, include_end=False))
        return True

    def _run_through(self, data: bytes) -> bool:
        """Answer a statement run (see extended.statement_run) from the cache, or
        forward it as one unit up to its ReadyForQuery, without planning its
        messages one by one: what the long path would leave behind is known
        without it. A forwarded statement is one both views have (or the run's own
        Parse of the unnamed statement), so nothing is replayed; the unnamed
        portal ends with the Sync; and an error anywhere in the run ends at that
        same Sync. A cacheable miss collects the whole answer and stores what the
        long path would have stored (see _run_cached). Only on a session with
        nothing in flight (see _at_rest)."""
        run = statement_run(data)
        if run is None:
            return False
        parse, name = run.parse, run.statement
        views = self.views
        p = views.client_statements.get(name)
        if parse is not None:
            if name:
                return False
            if p is None or parse != p.raw:
                try:
                    _, text, types = split_parse(parse[5:])
                except ProtocolError:
                    return False  # (the long path reports it)
                p = Prepared(b"", text, types, self.cache.classify(text), parse)
        elif p is None:
            return False
        fill = run_fills = None
        if p.stmt.cacheable and self.can_hit:
            cached = self._run_cached(p, run, data)
            if cached is None:
                return False
            if cached is _DONE:
                return True
            fill, run_fills = cached  # type: ignore[misc]
        elif parse is None and views.origin_statements.get(name) is not p:
            return False
        # The origin starts on it while the bookkeeping below is done.
        sent = self._to_origin.send_ahead(data)
        unit = Unit(ends=_ENDS_SYNC, sync=True, stmt=p.stmt, fill=fill, include_end=False)
        unit.run_fills = run_fills
        if parse is not None:
            # Parsed again, first in this group (see _certain).
            p.group, p.first = self.group, True
            views.client_statements[b""] = views.origin_statements[b""] = p
            self._parses[b""] = (unit, self.group)

            # After an error anywhere in the run the unnamed statement may or may
            # not exist (see _forget_unnamed): the origin judges what comes next.
            unit.on_error = lambda: self._forget_unnamed(p)
        self.group_forwarded = True  # (as at an Execute: no catalog query in a group)
        self._sent(p.text, p.stmt)
        self._forward_ahead(data, sent, unit)
        self.group += 1
        self.syncs_in_flight += 1
        self.group_forwarded = False
        if self.can_hit:
            views.forget_portals()
        else:
            views.client_portals.pop(b"", None)
            views.origin_portals.pop(b"", None)
        return True

    def _run_cached(self, p: Prepared, run: Run, data: bytes) -> object:
        """A cacheable statement run on a quiet session: answered from the cache
        (_DONE), or the fills of a miss, or None for the long path (the result is
        stored but not the proof or description the answer needs; the catalog is
        due; the origin lacks the statement). The entries are those the long path
        reads and stores, so either path answers what the other stored."""
        cache, stmt, database = self.cache, p.stmt, self.state.database
        key = self._key(b"E", p, run.rest)
        lookups: list[tuple[bytes, Classification, bool, bytes]] = []
        proof = description = None
        if run.parse is not None:
            proof = self._key(b"P", p)
            if (found := cache.lookup(proof, stmt, record=False)) is not None:
                lookups.append((proof, stmt, False, found))
                proof = None
        if run.described:
            description = self._key(b"T", p, result_formats(run.rest))
            if (found := cache.lookup(description, stmt, record=False)) is not None:
                lookups.append((description, stmt, False, found))
                description = None
        if proof is None and description is None:
            hit = cache.lookup(key, stmt)
            if hit is not None:
                lookups.append((key, stmt, True, hit))
                self._run_hit(p, run, data, lookups)
                return _DONE
        elif cache.lookup(key, stmt, record=False) is not None:
            return None
        if cache.dependencies_due(database) or (
            run.parse is None and self.views.origin_statements.get(run.statement) is not p
        ):
            return None
        parse = describe = None
        if proof is not None:
            parse = cache.begin_fill(proof, stmt, database, record=False)
        if description is not None:
            describe = cache.begin_fill(description, stmt, database, record=False)
        self.log.debug("cache.miss", fingerprint=stmt.fingerprint)
        return cache.begin_fill(key, stmt, database), _RunFills(run, parse, describe)

    def _run_hit(self, p: Prepared, run: Run, data: bytes, lookups: list) -> None:
        """Answer a statement run from the cache (``lookups``: what it found, the
        description before the result), leaving the views as the long path does:
        the client's Parse, first in its group, is the unnamed statement for the
        client only; the portal ends with the Sync."""
        answer = [PARSE_COMPLETE] if run.parse is not None else []
        answer.append(BIND_COMPLETE)
        if run.described:
            answer.append(lookups[-2][3])
        answer += (lookups[-1][3], READY_IDLE)
        if run.parse is not None:
            p.group, p.first = self.group, True
            self.views.client_statements[b""] = p
        self.group += 1
        self.views.forget_portals()
        self._to_client.add(b"".join(answer))
        self.log.debug("cache.hit", fingerprint=p.stmt.fingerprint)
        if self._seen_before(data):
            self._remember(data, lookups, 1)

    def _cut_run(self, fill: Fill, fills: _RunFills, ok: bool) -> None:
        """Store the entries of a statement run's whole answer, collected in ``fill``:
        its result in ``fill``, and the proof and description it lacked."""
        answer = fill.collected() if ok else None
        parts = (
            split_run_answer(answer, fills.run.parse is not None, fills.run.described)
            if answer is not None
            else None
        )  # fmt: skip
        ok = parts is not None
        if parts is not None:
            fill.replace(parts[1])
        cache = self.cache
        if fills.parse is not None:
            cache.finish_fill(fills.parse, ok)
        if fills.describe is not None:
            if parts is not None:
                fills.describe.add(parts[0])
            cache.finish_fill(fills.describe, ok)
        cache.finish_fill(fill, ok)

    # -- requests answered from memory ---------------------------------------
    #
    # A request answered wholly from the cache (a Query, or Parse/Bind/Describe/
    # Execute up to Sync) is remembered by its exact bytes with the lookups it
    # made. When the same bytes come again on a quiet session (at rest, outside a
    # transaction) whose statements and state have not changed, the same lookups
    # are made again (so freshness, TTLs, purges and statistics are exactly as on
    # the long path) and, if each returns the same stored response, the remembered
    # answer is sent without parsing or planning anything: most of a hit's cost in
    # the extended protocol.

    def _at_rest(self) -> bool:
        """Nothing in flight, buffered or owed, and outside a group."""
        return (
            not self.units
            and not self.group_open
            and not self.group_forwarded
            and not self.skipping
            and self._batch is None
            and not self.client_reader.buffered
            and not self._to_client
            and not self._to_origin
        )

    def _lookup(self, key: bytes, stmt: Classification, *, record: bool = True) -> bytes | None:
        hit = self.cache.lookup(key, stmt, record=record)
        if hit is not None and self._recording is not None:
            self._recording.append((key, stmt, record, hit))
        return hit

    def _remember(self, request: bytes, lookups: list, syncs: int) -> None:
        if self.units or self._to_origin or self.group_open or self.client_reader.buffered:
            return  # not answered wholly here, or not a whole request
        parts = self._to_client.parts
        if sum(map(len, parts)) > MEMO_BYTES:
            return
        response = b"".join(parts)
        self._memo_bytes += len(response) + len(request)
        if self._memo_bytes > MEMO_SESSION_BYTES:
            self._memos.clear()
            self._memo_bytes = len(response) + len(request)
        self._memos[request] = _Memo(
            response, lookups, self.state.digest,
            self.views.client_statements.changes, syncs,
        )  # fmt: skip

    def _replay(self, memo: _Memo) -> bool:
        if (
            memo.digest is not self.state.digest
            or memo.statements != self.views.client_statements.changes
        ):
            return False
        lookup = self.cache.lookup
        for key, stmt, record, hit in memo.lookups:
            if lookup(key, stmt, record=record) is not hit:
                return False
        if memo.syncs:
            self.group += memo.syncs
            self.views.forget_portals()
        self._to_client.add(memo.response)
        return True

    def _plan_buffered(self) -> object:
        """Plan the client messages read so far: _DONE, or _END (the session ends),
        or _AWAIT (a large message or a :class:`_Wait` for :meth:`_plan_async`)."""
        if self._large is not None or self._waiting is not None:
            return _AWAIT
        reader = self.client_reader
        plan = self._plan
        while True:
            if self._batch is None:
                if not reader.buffered:
                    return _DONE
                batch = reader.next_batch()
                if batch is None:
                    header = reader.next_header(STREAM_THRESHOLD)
                    if header is None:
                        return _DONE
                    self._large = header
                    return _AWAIT
                self._batch = [batch[0], batch[1], 0]
            data, offsets, i = self._batch
            count = len(offsets)
            while i < count:
                off = offsets[i]
                end = offsets[i + 1] if i + 1 < count else len(data)
                try:
                    go_on = plan(data[off], data[off + 5 : end], data[off:end])
                except _Wait as wait:
                    self._batch[2] = i  # planned again once the answer is in
                    self._waiting = wait.unit
                    return _AWAIT
                i += 1
                if not go_on:
                    self._batch = None
                    return _END
            self._batch = None

    async def _plan_async(self) -> None:
        if self._large is not None:
            header, self._large = self._large, None
            self._large_message(header[0])
            await self._flush()
            await self._stream(self.client_reader, header[2], self.client, self.origin, None)
        elif self._waiting is not None:
            # Needs the answer to an earlier message first: a Flush makes the
            # origin send it before any Sync.
            unit, self._waiting = self._waiting, None
            self._forward(m.FLUSH, None)
            await self._flush()
            assert unit.done is not None
            await unit.done.wait()

    def _large_message(self, kind: int) -> None:
        """A message too large to hold is streamed through, unseen."""
        if kind == Frontend.QUERY:
            # Whatever it does to the session, no key from before matches after.
            self._drop_unnamed(at_origin=True)
            self._sent(secrets.token_bytes(16), _UNKNOWN)
            self._forward(b"", Unit(stmt=_UNKNOWN))
        elif kind in (Frontend.PARSE, Frontend.BIND):
            raise ProtocolError(
                "Parse and Bind messages over 256 kB are not supported by wirecache"
            )
        elif kind == Frontend.EXECUTE or kind == Frontend.DESCRIBE:
            raise ProtocolError("invalid message length")

    def _plan(self, kind: int, body: bytes, raw: bytes) -> bool:
        """Decide what to do with one client message; False when the session ends."""
        if self.skipping:
            # The origin reported an error in this group: like it, ignore
            # everything up to the Sync, which it still needs.
            if kind == Frontend.SYNC:
                self.skipping = False
                self.group_forwarded = True
            elif kind != Frontend.TERMINATE:
                return True
        if kind == Frontend.QUERY:
            self._query(body, raw)
        elif kind == Frontend.PARSE:
            self._parse(body, raw)
        elif kind == Frontend.BIND:
            self._bind(body, raw)
        elif kind == Frontend.DESCRIBE:
            self._describe(body, raw)
        elif kind == Frontend.EXECUTE:
            self._execute(body, raw)
        elif kind == Frontend.CLOSE:
            self._close(body, raw)
        elif kind == Frontend.SYNC:
            self._sync(raw)
        elif kind == Frontend.FLUSH:
            if self.group_forwarded:
                self._forward(raw, None)
        elif kind == Frontend.TERMINATE:
            self._forward(raw, None)
            return False
        elif kind == Frontend.FUNCTION_CALL:
            self._forward(raw, Unit(stmt=_UNKNOWN))
        else:
            # CopyData/CopyDone/CopyFail and anything the origin will judge.
            self._forward(raw, None)
        if kind != Frontend.SYNC and kind != Frontend.QUERY:
            # (A simple Query is a cycle of its own: its error skips nothing after it.)
            self.group_open = True
        return True

    def _query(self, body: bytes, raw: bytes) -> None:
        text = body[:-1]
        cache, state = self.cache, self.state
        stmt = cache.classify(text)
        fill = None
        if stmt.cacheable and self.can_hit:
            key = request_key(state.digest, text)
            hit = self._lookup(key, stmt)
            if hit is not None:
                self._local(hit + READY_IDLE)
                self._drop_unnamed(at_origin=False)
                self.log.debug("cache.hit", fingerprint=stmt.fingerprint)
                return
            fill = self._begin_fill(key, stmt)
            self.log.debug("cache.miss", fingerprint=stmt.fingerprint)
        self._drop_unnamed(at_origin=True)
        self._sent(text, stmt)
        self._forward(raw, Unit(ends=_ENDS_SYNC, stmt=stmt, fill=fill, include_end=False))

    def _drop_unnamed(self, *, at_origin: bool) -> None:
        """A simple Query ends the unnamed statement and portal (PostgreSQL drops
        them before it runs one): in the client's view always, in the origin's
        when the Query reaches it. (Left alone: a client that binds the unnamed
        statement right after a Query answered from the cache, which the origin
        would refuse, reaches an origin that still has it.)"""
        views = self.views
        if b"" in views.client_statements:
            del views.client_statements[b""]
        views.client_portals.pop(b"", None)
        if at_origin:
            views.origin_statements.pop(b"", None)
            views.origin_portals.pop(b"", None)

    def _begin_fill(self, key: bytes, stmt: Classification, *, record: bool = True) -> Fill:
        """Start collecting a miss (reading the catalog edges first when they are due)."""
        self._refresh_catalog()
        return self.cache.begin_fill(key, stmt, self.state.database, record=record)

    def _refresh_catalog(self) -> None:
        """Queue wirecache's catalog query ahead of what follows when the edges are due.

        A fill started meanwhile is stored only if the new reading leaves its
        tables unchanged (the cache checks); writes meanwhile invalidate the
        whole database. Never inside an extended-protocol group, which a
        simple query would cut in two.
        """
        if (
            not self.catalog_pending
            and not self.group_forwarded
            and self.cache.dependencies_due(self.state.database)
        ):
            self.catalog_pending = True
            self._forward(m.query(catalog.QUERY), Unit(ends=_ENDS_SYNC, catalog=[]))

    def _sent(self, text: bytes, stmt: Classification, *, catalog: bool = True) -> None:
        """Bookkeeping for a statement about to execute at the origin (``catalog``:
        read the catalog edges first if a write finds them due)."""
        if catalog and stmt.is_write:
            self._refresh_catalog()
        self.state.statement_sent(text, stmt)
        if stmt.kind is _KIND_SESSION or stmt.kind is _KIND_UNKNOWN:
            dropped, name = deallocated(text)
            if dropped:
                self.views.forget_statements(name)

    # Extended protocol ----------------------------------------------------

    def _key(self, tag: bytes, p: Prepared, extra: bytes = b"") -> bytes:
        """Key of an auxiliary or result entry of ``p``: the statement's part is
        hashed once per session state and copied per request."""
        digest = self.state.digest
        if p.hash_digest is not digest:
            p.hash = statement_hash(digest, p.text, p.types)
            p.hash_digest = digest
        return derive_key(p.hash, tag, extra)

    def _parse(self, body: bytes, raw: bytes) -> None:
        name, text, types = split_parse(body)
        views = self.views
        p = Prepared(name, text, types, self.cache.classify(text), raw, group=self.group,
                     first=not self.group_open)  # fmt: skip
        previous = views.client_statements.get(name)

        def undo() -> None:
            if views.client_statements.get(name) is p:
                if previous is None:
                    del views.client_statements[name]
                else:
                    views.client_statements[name] = previous

        # When the origin parsed this text before under this session state and
        # nothing it reads has changed since, ParseComplete is certain. Named
        # statements always go to the origin (once per connection), which then
        # refuses a name taken exactly as it would have.
        if (
            p.stmt.cacheable
            and not name
            and self.can_hit
            and self._lookup(self._key(b"P", p), p.stmt, record=False) is not None
        ):
            views.client_statements[name] = p
            self._local(PARSE_COMPLETE, undo)
            return
        views.client_statements[name] = p
        self._replay_parse(p, client_undo=undo)

    def _replay_parse(self, p: Prepared, *, client_undo: Callable[[], None] | None = None) -> None:
        views = self.views
        fill = None
        if p.stmt.cacheable and self.can_hit:
            key = self._key(b"P", p)
            # (A replay of a Parse wirecache vouched for: the proof is stored.)
            if self.cache.lookup(key, p.stmt, record=False) is None:
                fill = self._begin_fill(key, p.stmt, record=False)
        previous = views.origin_statements.get(p.name)
        views.origin_statements[p.name] = p

        def undo() -> None:
            if views.origin_statements.get(p.name) is p:
                if previous is None:
                    del views.origin_statements[p.name]
                else:
                    views.origin_statements[p.name] = previous
            if client_undo is not None:
                client_undo()

        self.group_forwarded = True
        unit = Unit(
            ends=_ENDS_PARSE, extended=True, fill=fill, swallow=client_undo is None, undo=undo,
            include_end=False,
        )  # fmt: skip
        if not p.name and client_undo is not None:
            # Skipped, it leaves the unnamed statement there was; refused, none.
            unit.on_error = lambda: self._forget_unnamed(p)
        self._forward(p.raw, unit)
        if client_undo is None or not p.name:
            self._parses[p.name] = (unit, self.group)
        else:
            self._parses.pop(p.name, None)

    def _forget_unnamed(self, p: Prepared) -> None:
        """A Parse of the unnamed statement ``p`` failed: PostgreSQL drops the
        unnamed statement before it parses a new one, so none is left."""
        views = self.views
        if views.client_statements.get(b"") is p:
            del views.client_statements[b""]
        if views.origin_statements.get(b"") is p:
            del views.origin_statements[b""]

    def _ensure_statement(self, p: Prepared) -> None:
        if self.views.origin_statements.get(p.name) is not p:
            self._replay_parse(p)

    def _settle_parse(self, p: Prepared | None) -> None:
        """Wait (see _Wait) before planning a message that relies on the origin having
        ``p`` when its Parse went there in an earlier group still in flight, and was
        wirecache's replay or of the unnamed statement: an error before it in that
        group skips it, and undoing that may bring back a statement the origin never
        saw (one wirecache vouched for), so the views are right only once the group
        is answered. A client's own Parse of a named statement needs no wait: if it
        is skipped, the client's message fails at the origin as it would directly.
        Likewise when the client's own Parse of ``p`` is in such a group: answered
        by wirecache, it may yet be undone. Called before the message changes
        anything, so that it can be planned again."""
        if p is None:
            return
        if not self._certain(p):
            raise _Wait(next(u for u in reversed(self.units) if u.sync))
        if self.views.origin_statements.get(p.name) is not p:
            return
        parse = self._parses.get(p.name)
        if parse is not None and not parse[0].answered and parse[1] != self.group:
            raise _Wait(parse[0])

    def _bind(self, body: bytes, raw: bytes) -> None:
        portal_name, stmt_name, rest = split_bind(body)
        views = self.views
        p = views.client_statements.get(stmt_name)
        self._settle_parse(p)
        portal = Portal(portal_name, p, rest, raw)
        previous = views.client_portals.get(portal_name)
        views.client_portals[portal_name] = portal

        def client_undo() -> None:
            if views.client_portals.get(portal_name) is portal:
                if previous is None:
                    del views.client_portals[portal_name]
                else:
                    views.client_portals[portal_name] = previous

        # Only the unnamed portal is answered here: a named one must exist at
        # the origin, which refuses a name taken (the client may reuse one).
        if not portal_name and p is not None and p.stmt.cacheable and self._settled(p):
            hit = self._lookup(self._key(b"E", p, rest), p.stmt)
            if hit is not None:
                portal.hit = hit
                self._local(BIND_COMPLETE, client_undo)
                return
        self._replay_bind(portal, client_undo=client_undo)

    def _replay_bind(
        self, portal: Portal, *, client_undo: Callable[[], None] | None = None
    ) -> None:
        views = self.views
        if portal.prepared is not None:
            self._ensure_statement(portal.prepared)
        origin_previous = views.origin_portals.get(portal.name)
        views.origin_portals[portal.name] = portal

        def undo() -> None:
            if views.origin_portals.get(portal.name) is portal:
                if origin_previous is None:
                    del views.origin_portals[portal.name]
                else:
                    views.origin_portals[portal.name] = origin_previous
            if client_undo is not None:
                client_undo()

        self.group_forwarded = True
        self._forward(portal.raw, Unit(ends=_ENDS_BIND, extended=True,
                                       swallow=client_undo is None, undo=undo))  # fmt: skip

    def _ensure_portal(self, portal: Portal) -> None:
        if self.views.origin_portals.get(portal.name) is not portal:
            self._replay_bind(portal)

    def _describe(self, body: bytes, raw: bytes) -> None:
        target, name = split_target(body, "Describe")
        views = self.views
        if target == ord("S"):
            p = views.client_statements.get(name)
            portal = None
        else:
            portal = views.client_portals.get(name)
            p = portal.prepared if portal is not None else None
        self._settle_parse(p)
        fill = None
        if p is not None and p.stmt.cacheable and self._settled(p):
            if portal is None:
                key = self._key(b"S", p)
            else:
                key = self._key(b"T", p, result_formats(portal.rest))
            hit = self._lookup(key, p.stmt, record=False)
            if hit is not None:
                self._local(hit)
                return
            fill = self._begin_fill(key, p.stmt, record=False)
        if portal is not None:
            self._ensure_portal(portal)
        elif p is not None:
            self._ensure_statement(p)
        self.group_forwarded = True
        self._forward(raw, Unit(ends=_ENDS_DESCRIBE, extended=True, fill=fill))

    def _execute(self, body: bytes, raw: bytes) -> None:
        portal_name, max_rows = split_execute(body)
        portal = self.views.client_portals.get(portal_name)
        p = portal.prepared if portal is not None else None
        if portal is None or portal.hit is None:
            self._settle_parse(p)
        if portal is not None and portal.hit is not None:
            served = _serve(portal.hit, portal.served, max_rows)
            if served is not None:
                portal.served = served[1]
                self._local(served[0])
                self.log.debug("cache.hit", fingerprint=p.stmt.fingerprint if p else "")
                return
        stmt = p.stmt if p is not None else _UNKNOWN
        tag_delta = 0
        if portal is not None and portal.inflight is not None:
            # Whether a row was held back for this Execute is known only once
            # the origin answered the last one.
            raise _Wait(portal.inflight)
        if portal is not None and portal.pending is not None:
            # A row held back from the last Execute comes first.
            row, portal.pending = portal.pending, None
            if max_rows == 1:
                self._local(row + m.PORTAL_SUSPENDED)
                return
            self._local(row)
            tag_delta = 1
            max_rows = max(max_rows - 1, 0)
            raw = _execute_message(portal_name, max_rows)
        fill = None
        held_for = None
        # With a row limit, what ends in CommandComplete is the whole result;
        # PortalSuspended (part of it) is never stored.
        if p is not None and stmt.cacheable and self.can_hit and portal.served is None:
            fill = self._begin_fill(self._key(b"E", p, portal.rest), stmt)
            self.log.debug("cache.miss", fingerprint=stmt.fingerprint)
            if max_rows == 1:
                # fetchrow/fetchval: ask for one row more, so that a result of
                # one row comes back complete and can be stored; the client
                # still gets exactly what a limit of 1 gives (see _cut).
                raw = _execute_message(portal_name, 2)
                held_for = portal
        if portal is not None:
            self._ensure_portal(portal)
            # A later Execute continues this one at the origin: no longer a hit
            # nor the statement's whole result (PortalSuspended, or no rows).
            portal.hit = None
            portal.served = -1
        if p is not None:
            self._sent(p.text, stmt)
        self.group_forwarded = True
        unit = Unit(ends=_ENDS_EXECUTE, extended=True, stmt=stmt, fill=fill, portal=held_for,
                    tag_delta=tag_delta)  # fmt: skip
        if held_for is not None:
            held_for.inflight = unit
        self._forward(raw, unit)

    def _close(self, body: bytes, raw: bytes) -> None:
        target, name = split_target(body, "Close")
        views = self.views
        client, origin = (
            (views.client_statements, views.origin_statements) if target == ord("S")
            else (views.client_portals, views.origin_portals)
        )  # fmt: skip
        was_client, was_origin = client.pop(name, None), origin.pop(name, None)

        def undo() -> None:
            # Skipped after an error: the origin still has what it had.
            if was_client is not None and name not in client:
                client[name] = was_client  # type: ignore[assignment]
            if was_origin is not None and name not in origin:
                origin[name] = was_origin  # type: ignore[assignment]

        if was_origin is not None:
            self.group_forwarded = True
            self._forward(raw, Unit(ends=_ENDS_CLOSE, extended=True, undo=undo))
        else:
            self._local(CLOSE_COMPLETE, undo)

    def _sync(self, raw: bytes) -> None:
        self.group += 1
        self.group_open = False
        if self.group_forwarded:
            self.syncs_in_flight += 1
            self._forward(raw, Unit(ends=_ENDS_SYNC, sync=True, include_end=False))
        else:
            self._local(m.ready_for_query(self.state.tx_status))
        self.group_forwarded = False
        if self.can_hit:
            # The implicit transaction ends here, and its portals with it.
            self.views.forget_portals()
        else:
            self.views.client_portals.pop(b"", None)
            self.views.origin_portals.pop(b"", None)

    # -- origin -> client ----------------------------------------------------

    async def _origin_side(self, scope: trio.CancelScope) -> None:
        try:
            await self._origin_pump()
        except PeerClosed:
            self.log.info("origin.closed")
        except ProtocolError as e:
            self.log.warning("origin.protocol_error", error=e.message)
            await self._to_client.send(
                m.error_response("FATAL", "08P01", f"wirecache: the origin sent invalid data: "
                                 f"{e.message}")
            )  # fmt: skip
        finally:
            # The origin went away (or sent garbage): the session is over.
            scope.cancel()

    async def _origin_pump(self) -> None:
        while True:
            if self._relay_buffered() is _AWAIT:
                header, self._origin_large = self._origin_large, None
                assert header is not None
                head = self._origin_head()
                fill = head.fill if head is not None and head.fill_ok else None
                hold = head.held if head is not None else None
                await self._stream(self.origin_reader, header[2], self.origin, self.client,
                                   fill, hold)  # fmt: skip
                continue
            if self._to_client:
                await self._to_client.drain()
            if self.direct:
                await self.conn.serve_ready(self.origin, self._origin_ready)
            elif not await self._receive(self.origin, self.origin_reader):
                self._origin_eof = True
            if self._origin_eof:
                raise PeerClosed()

    def _origin_ready(self) -> bool:
        """The hot loop's handler for the origin socket: relay at once, or leave the
        rest (a large message, a client that does not take it all) to the pump."""
        data = self.origin.receive_nowait(READ_SIZE)
        if data is None:
            return True
        if not data:
            self._origin_eof = True
            return False
        reader = self.origin_reader
        if not reader.buffered and not reader.stream_remaining and len(data) < STREAM_THRESHOLD:
            offsets = whole_messages(data, reader.max_message_length)
            if offsets is not None:
                if self._verbatim(data, offsets):
                    sent = self._to_client.send_ahead(data)
                    if sent is not None:
                        self._relay_batch(data, offsets, [])
                        if sent == len(data):
                            return True
                        self._to_client.add(data[sent:])
                        return self._to_client.send_nowait()
                self._relay_batch(data, offsets)
                return self._to_client.send_nowait()
        reader.feed(data)
        return self._relay_buffered() is _DONE and self._to_client.send_nowait()

    def _relay_buffered(self) -> object:
        """Relay the origin messages read so far: _DONE, or _AWAIT when a large one
        must be streamed (its header is in ``_origin_large``)."""
        if self._origin_large is not None:
            return _AWAIT
        reader = self.origin_reader
        while reader.buffered:
            header = reader.next_header(STREAM_THRESHOLD)
            if header is not None:
                self._origin_large = header
                return _AWAIT
            batch = reader.next_batch()
            if batch is None:
                return _DONE
            self._relay_batch(*batch)
        return _DONE

    def _origin_head(self) -> Unit | None:
        units = self.units
        return units[0] if units and units[0].local is None else None

    def _verbatim(self, data: bytes, offsets: list[int]) -> bool:
        """Whether ``data`` is the rest of the answer to the one unit in flight, which
        the client gets unchanged and which needs no invalidation before the
        client sees it: then it is sent before _relay_batch reads it (see
        Outbox.send_ahead), and a miss is stored just after. Nothing it wrote
        may have committed: its ReadyForQuery says the transaction goes on, or
        the session is idle and nothing was written since it last was."""
        units = self.units
        if len(units) != 1 or offsets[-1] != len(data) - 6 or data[-6] != _Z:
            return False
        head = units[0]
        if (
            head.local is not None or head.special or head.swallow or head.tag_delta
            or head.ends is not _ENDS_SYNC
        ):  # fmt: skip
            return False
        stmt = head.stmt
        if stmt is not None and stmt.tx is _TX_END:
            return False  # (COMMIT AND CHAIN commits and leaves a transaction open)
        status = data[-1]
        if status == 0x49:  # 'I'
            return self.state.writes.empty and (stmt is None or not stmt.is_write)
        if status != 0x54:  # 'T'
            return False
        return (
            stmt is None
            or not stmt.is_write
            or (self.state.tx_status == "T" and stmt.tx is _TX_NONE)
        )

    def _relay_batch(self, data: bytes, offsets: list[int], out: list[bytes] | None = None) -> None:
        """Relay whole messages read from the origin: cut them into the units they
        answer, into ``out`` (by default what the client is owed)."""
        if out is None:
            out = self._to_client.parts
        units = self.units
        out_start = 0  # start of bytes not yet copied to ``out``
        unit_start = 0  # where the head unit's bytes begin in this batch
        ends = offsets[1:]
        ends.append(len(data))
        for off, end in zip(offsets, ends, strict=True):
            kind = data[off]
            head = units[0] if units and units[0].local is None else None
            if kind in _ASYNC:
                if kind == Backend.PARAMETER_STATUS:
                    ps = m.parse_parameter_status(data[off + 5 : end])
                    self.state.set_parameter(ps.name, ps.value)
                if head is not None and kind != Backend.NOTICE_RESPONSE:
                    head.fill_ok = False
                continue
            if head is None:
                continue  # nothing expected: relay as it is
            if head.special:
                out_start, unit_start = self._relay_special(
                    head, kind, data, off, end, out, out_start, unit_start
                )
                continue
            if kind in head.ends:
                if head.swallow:
                    out.append(data[out_start:off])
                    out_start = end
                if kind == _Z:
                    ready = chr(data[off + 5])
                    self._ready(head, ready)
                    ok = head.fill_ok and ready == "I"
                else:
                    if kind == _C:
                        if head.tag_delta:
                            out.append(data[out_start:off])
                            out_start = end
                            count = int(data[off + 5 : end - 1].rsplit(b" ", 1)[1])
                            out.append(m.command_complete(f"SELECT {count + head.tag_delta}"))
                        self._acknowledged(head)
                    ok = head.fill_ok and kind != Backend.PORTAL_SUSPENDED
                if head.fill is not None:
                    self._finish(head, data, unit_start, end if head.include_end else off, ok=ok)
                out_start, unit_start = self._end_unit(data, out, out_start, end)
                continue
            if kind == _E:
                if head.extended:
                    start = unit_start
                    out_start, unit_start = self._end_unit(data, out, out_start, end, emit=False)
                    self._skip_to_sync()
                    self._finish(head, data, start, off, ok=False, failed=True)
                    continue
                if head.on_error is not None:
                    head.on_error()
                    head.on_error = None
            if kind in _SPOIL_FILL:
                head.fill_ok = False
            elif kind == _C:
                self._acknowledged(head)
        if out_start < len(data):
            out.append(data[out_start:])
        head = self._origin_head()
        if head is not None and head.fill is not None and head.fill_ok and unit_start < len(data):
            head.fill.add(data[unit_start:])
        if not units:
            self._units_done.set()

    def _relay_special(
        self, head: Unit, kind: int, data: bytes, off: int, end: int, out: list[bytes],
        out_start: int, unit_start: int,
    ) -> tuple[int, int]:  # fmt: skip
        """One message answering wirecache's catalog query (read here, never relayed)
        or an Execute whose answer is held and cut (see _cut); returns the new
        ``out_start`` and ``unit_start`` of _relay_batch."""
        out.append(data[out_start:off])
        out_start = end
        if head.catalog is not None:
            if kind == Backend.DATA_ROW:
                head.catalog.append(list(m.parse_data_row(data[off + 5 : end]).values))
            elif kind == _E:
                head.fill_ok = False
            elif kind == _Z:
                self._catalog_read(head)
                return self._end_unit(data, out, out_start, end)
            return out_start, unit_start
        assert head.held is not None
        head.held.append(data[off:end])
        if kind == _E or kind in head.ends:
            out.append(self._cut(head, kind))
            if kind == _C:
                self._acknowledged(head)
            ok = head.fill_ok and kind == _C
            positions = self._end_unit(data, out, end, end, emit=kind != _E)
            if kind == _E:
                self._skip_to_sync()  # (undoes later units first: see there)
            self._finish(head, data, unit_start, end, ok=ok, failed=kind == _E)
            return positions
        if kind in _SPOIL_FILL:
            head.fill_ok = False
        return out_start, unit_start

    def _cut(self, unit: Unit, kind: int) -> bytes:
        """What the client's Execute with a row limit of 1 gets from the held answer
        to the Execute sent with a limit of 2: one row and PortalSuspended (the
        origin stops at the limit even when no row is left), no row and the
        CommandComplete, or an error as it came. A second row is kept on the
        portal for the client's next Execute; a complete answer becomes the
        portal's hit, to cut further Executes from."""
        held = b"".join(unit.held or ())
        portal = unit.portal
        assert portal is not None
        rows = [msg for msg in _messages(held) if msg[0] == Backend.DATA_ROW]
        portal.served = -1
        if kind == _E or not rows:
            return held
        if kind == _C:
            portal.hit, portal.served = held, 1
        elif len(rows) > 1:
            portal.pending = rows[1]
        return rows[0] + m.PORTAL_SUSPENDED

    def _end_unit(
        self, data: bytes, out: list[bytes], out_start: int, end: int, *, emit: bool = True
    ) -> tuple[int, int]:
        """Pop the finished head, then emit wirecache's answers queued behind it."""
        units = self.units
        unit = units.popleft()
        if unit.blocks:
            self.blocking -= 1
        if unit.sync:
            self.syncs_in_flight -= 1
        if unit.portal is None and unit.done is None:
            unit.answered = True
        else:
            _answered(unit)
        out.append(data[out_start:end])
        while emit and units and units[0].local is not None:
            out.append(units.popleft().local)  # type: ignore[arg-type]
        return end, end

    def _skip_to_sync(self) -> None:
        """After an error the origin ignores everything up to Sync; so must the client's
        answers from wirecache, and replays skipped with them are undone — latest
        first, since each undo restores what was there before its own change (the
        failed unit's own undo comes after these: see _relay_batch)."""
        units = self.units
        undos = []
        while units and not units[0].sync:
            unit = units.popleft()
            if unit.blocks:
                self.blocking -= 1
            _answered(unit)
            if unit.undo is not None:
                undos.append(unit.undo)
            if unit.fill is not None:
                self.cache.finish_fill(unit.fill, False)
        for undo in reversed(undos):
            undo()
        if not units:
            # The client has not sent that Sync yet: what it sends before it
            # is ignored too (see _plan).
            self.skipping = True

    def _finish(
        self, head: Unit, data: bytes, start: int, stop: int, *, ok: bool, failed: bool = False
    ) -> None:
        """Store ``head``'s fill if ``ok``; if the origin refused its message
        (``failed``), put the views back as that refusal leaves them."""
        if failed:
            if head.on_error is not None:
                head.on_error()
            elif head.undo is not None:
                head.undo()
        if head.fill is not None:
            if head.fill_ok and stop > start:
                head.fill.add(data[start:stop])
            if head.run_fills is not None:
                self._cut_run(head.fill, head.run_fills, ok)
            else:
                self.cache.finish_fill(head.fill, ok)

    def _catalog_read(self, head: Unit) -> None:
        self.catalog_pending = False
        if head.fill_ok and head.catalog is not None:
            deps = catalog.parse_rows(head.catalog)
        else:
            self.log.warning("catalog.unreadable")
            deps = Dependencies.unknown_edges()
        self.cache.set_dependencies(self.state.database, deps)

    def _acknowledged(self, head: Unit) -> None:
        """A CommandComplete of ``head``: invalidate before the client sees it.

        Every CommandComplete of a write bumps again: in a multi-statement
        text only the last one follows the commit. A COMMIT bumps what its
        transaction wrote. A write inside an explicit transaction (the last
        ReadyForQuery said ``T``) that does not itself end it is not committed
        by its CommandComplete: it is only remembered, and bumped when the
        transaction ends (by the COMMIT's CommandComplete, or by the next idle
        ReadyForQuery if an Execute after a COMMIT in the same group wrote).
        Until then other sessions read what was there before, as cached.
        """
        stmt = head.stmt
        if stmt is None:
            return
        if stmt.is_write:
            head.acknowledged = True
            # Maybe not committed yet (an explicit transaction, the implicit
            # one of an extended-protocol group or of a multi-statement
            # text): bump again at the next idle ReadyForQuery.
            self.state.note_write(stmt)
            if self.state.tx_status != "T" or stmt.tx is not _TX_NONE:
                self._invalidate(stmt.writes)
        if stmt.tx is _TX_END and ((tx := self.state.tx_writes) is None or tx):
            self._invalidate(tx)

    def _ready(self, head: Unit, status: str) -> None:
        """A ReadyForQuery: when the session is idle again, what it wrote is committed."""
        stmt = head.stmt
        if stmt is not None and stmt.is_write and not head.acknowledged:
            # No CommandComplete came (an error): part of it may have run.
            self.state.note_write(stmt)
        committed = self.state.ready(status)
        if committed is None or committed:  # (None: unknown tables, all of them)
            self._invalidate(committed)

    def _invalidate(self, tables: frozenset[str] | None) -> None:
        self.cache.invalidate(self.state.database, tables)

    # -- streaming of large messages ------------------------------------------

    async def _stream(
        self,
        reader: MessageReader,
        raw_header: bytes,
        source: trio.abc.Stream,
        sink: trio.abc.Stream,
        fill: Fill | None,
        hold: list[bytes] | None = None,
    ) -> None:
        """Forward one large message piece by piece as it arrives (or keep it whole
        in ``hold``, for an answer wirecache cuts before the client sees it)."""
        if hold is not None:
            parts = [raw_header]

            async def send(data: bytes) -> None:
                parts.append(data)
        else:
            send = (self._to_client if sink is self.client else self._to_origin).send
        await send(raw_header)
        if fill is not None:
            fill.add(raw_header)
        while reader.stream_remaining:
            chunk = reader.next_chunk()
            if chunk is None:
                data = await source.receive_some(READ_SIZE)
                if not data:
                    raise PeerClosed()
                reader.feed(data)
                continue
            if fill is not None:
                fill.add(chunk)
            await send(chunk)
        if hold is not None:
            hold.append(b"".join(parts))
