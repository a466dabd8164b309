"""The authenticated session: relay both ways, answer hits, fill and invalidate.

Two tasks per session. The client pump reads the client's messages,
classifies simple queries (memoised by text), answers hits itself when
nothing else is outstanding, and forwards everything else. The origin pump
relays the origin's responses in batches, collects the bytes of misses that
may be stored, and invalidates after writes — before the client sees the
acknowledgement.

Order is kept by a FIFO of :class:`Pending` responses the client is owed:
one per Query/Sync/FunctionCall sent to the origin (each ends with
ReadyForQuery). A hit is served only when that FIFO is empty and nothing
unsynchronised was sent, which is also when the session state (transaction
status, parameters) is settled, so the key it is looked up under is right.

Messages larger than :data:`STREAM_THRESHOLD` are streamed piece by piece in
both directions, so a multi-GB result or COPY never sits in memory.
"""

from __future__ import annotations

from collections import deque

import trio
from wirecache.api import (
    Cache,
    Classification,
    Connection,
    Fill,
    StatementKind,
    TxEffect,
    request_key,
)

from wirecache_postgres import messages as m
from wirecache_postgres.framing import MessageReader, ProtocolError
from wirecache_postgres.messages import Backend, Frontend
from wirecache_postgres.state import SessionState
from wirecache_postgres.wire import READ_SIZE, PeerClosed

#: Messages with a body at least this large are streamed, not buffered whole.
STREAM_THRESHOLD = 256 * 1024

READY_IDLE = m.ready_for_query("I")

#: Origin messages after which a response must not be stored.
_SPOIL_FILL = frozenset(
    {
        Backend.ERROR_RESPONSE, Backend.PARAMETER_STATUS, Backend.NOTIFICATION_RESPONSE,
        Backend.COPY_IN_RESPONSE, Backend.COPY_OUT_RESPONSE, Backend.COPY_BOTH_RESPONSE,
        Backend.PORTAL_SUSPENDED,
    }
)  # fmt: skip
#: Client messages that the origin answers with ReadyForQuery.
_SYNCING = frozenset({Frontend.SYNC, Frontend.FUNCTION_CALL})
#: A Query too large to classify could be anything.
_UNKNOWN = Classification(StatementKind.UNKNOWN, False, writes=None, changes_session=True,
                          reason="statement too large to classify")  # fmt: skip
_OTHER = Classification(StatementKind.UNKNOWN, False, reason="extended protocol")


class Pending:
    """A response the client is owed, in order."""

    __slots__ = ("stmt", "fill", "fill_ok", "invalidated")

    def __init__(self, stmt: Classification, fill: Fill | None) -> None:
        self.stmt = stmt
        self.fill = fill
        self.fill_ok = True
        self.invalidated = False


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
        self.pending: deque[Pending] = deque()
        #: Sent to the origin something it answers without ReadyForQuery
        #: (Parse, Bind, Flush…): until the next ReadyForQuery, no hit may
        #: be interleaved with its answers.
        self.unsynced = False
        self.client_lock = trio.Lock()
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
                await self._send_client(m.error_response("FATAL", e.sqlstate, e.message))
                self.log.info("conn.protocol_error", side="client", error=e.message)
            nursery.cancel_scope.cancel()

    async def _send_client(self, data: bytes) -> None:
        async with self.client_lock:
            await self.client.send_all(data)

    # -- client -> origin --------------------------------------------------

    async def _client_pump(self) -> None:
        reader = self.client_reader
        out: list[bytes] = []
        while True:
            while True:
                header = reader.next_header(STREAM_THRESHOLD)
                if header is not None:
                    await self._flush_origin(out)
                    if header[0] == Frontend.QUERY:
                        self.pending.append(Pending(_UNKNOWN, None))
                    elif header[0] in _SYNCING:
                        self.pending.append(Pending(_OTHER, None))
                    await self._stream(reader, header[2], self.client, self.origin, None)
                    continue
                msg = reader.next_message()
                if msg is None:
                    break
                kind, body, raw = msg
                if kind == Frontend.QUERY:
                    if await self._query(body, raw, out):
                        continue
                elif kind == Frontend.TERMINATE:
                    out.append(raw)
                    await self._flush_origin(out)
                    return
                elif kind in _SYNCING:
                    self.pending.append(Pending(_OTHER, None))
                else:
                    self.unsynced = True
                out.append(raw)
            await self._flush_origin(out)
            if self.pending or self.unsynced:
                data = await self.client.receive_some(READ_SIZE)
            else:
                with self.conn.idle():
                    data = await self.client.receive_some(READ_SIZE)
                if self.conn.draining and not data:
                    return
            if not data:
                return
            reader.feed(data)

    async def _flush_origin(self, out: list[bytes]) -> None:
        if out:
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            await self.origin.send_all(data)

    async def _query(self, body: bytes, raw: bytes, out: list[bytes]) -> bool:
        """Handle a simple Query; True when it was answered from the cache."""
        text = body[:-1]
        cache, state = self.cache, self.state
        stmt = cache.classify(text)
        fill = None
        if stmt.cacheable and not self.pending and not self.unsynced and state.idle:
            key = request_key(state.digest, text)
            hit = cache.lookup(key, stmt)
            if hit is not None:
                await self._flush_origin(out)
                await self._send_client(hit + READY_IDLE)
                self.log.debug("cache.hit", fingerprint=stmt.fingerprint)
                return True
            fill = cache.begin_fill(key, stmt, state.database)
            self.log.debug("cache.miss", fingerprint=stmt.fingerprint)
        state.statement_sent(text, stmt)
        self.pending.append(Pending(stmt, fill))
        return False

    # -- origin -> client --------------------------------------------------

    async def _origin_side(self, scope: trio.CancelScope) -> None:
        try:
            await self._origin_pump()
        except PeerClosed:
            self.log.info("origin.closed")
        except ProtocolError as e:
            self.log.warning("origin.protocol_error", error=e.message)
            await self._send_client(
                m.error_response("FATAL", "08P01", f"wirecache: the origin sent invalid data: "
                                 f"{e.message}")
            )  # fmt: skip
        finally:
            # The origin went away (or sent garbage): the session is over.
            scope.cancel()

    async def _origin_pump(self) -> None:
        reader = self.origin_reader
        while True:
            data = await self.origin.receive_some(READ_SIZE)
            if not data:
                raise PeerClosed()
            reader.feed(data)
            while True:
                header = reader.next_header(STREAM_THRESHOLD)
                if header is not None:
                    head = self.pending[0] if self.pending else None
                    fill = head.fill if head is not None and head.fill_ok else None
                    await self._stream(reader, header[2], self.origin, self.client, fill)
                    continue
                batch = reader.next_batch()
                if batch is None:
                    break
                await self._relay_batch(*batch)

    async def _relay_batch(self, data: bytes, offsets: list[int]) -> None:
        out: list[bytes] = []
        start = 0
        pending = self.pending
        end_offsets = offsets[1:] + [len(data)]
        for off, end in zip(offsets, end_offsets, strict=True):
            kind = data[off]
            head = pending[0] if pending else None
            if kind == Backend.READY_FOR_QUERY:
                if head is not None:
                    if head.fill is not None:
                        head.fill.add(data[start:off])
                    self._complete(head, chr(data[off + 5]))
                    pending.popleft()
                else:
                    self.state.ready(chr(data[off + 5]))
                if not pending:
                    self.unsynced = False
                out.append(data[start:end])
                start = end
                continue
            if kind == Backend.PARAMETER_STATUS:
                ps = m.parse_parameter_status(data[off + 5 : end])
                self.state.set_parameter(ps.name, ps.value)
            if head is None:
                continue
            if kind in _SPOIL_FILL:
                head.fill_ok = False
            elif kind == Backend.COMMAND_COMPLETE:
                self._acknowledged(head)
        if start < len(data):
            tail = data[start:]
            head = pending[0] if pending else None
            if head is not None and head.fill is not None and head.fill_ok:
                head.fill.add(tail)
            out.append(tail)
        await self._send_client(out[0] if len(out) == 1 else b"".join(out))

    def _acknowledged(self, head: Pending) -> None:
        """A CommandComplete of ``head``: invalidate before the client sees it.

        Every CommandComplete of a write bumps again: in a multi-statement
        text only the last one follows the commit. A COMMIT bumps what its
        transaction wrote.
        """
        stmt = head.stmt
        if stmt.is_write:
            self._invalidate(stmt.writes)
            head.invalidated = True
        if stmt.tx is TxEffect.END and (tx := self.state.tx_writes) != frozenset():
            self._invalidate(tx)

    def _complete(self, head: Pending, status: str) -> None:
        """A response ended with ReadyForQuery: store, invalidate, track transactions."""
        stmt = head.stmt
        was_idle = self.state.idle
        ended, tx_writes = self.state.ready(status)
        if stmt.is_write:
            if not was_idle or status != "I":
                self.state.note_write(stmt)
            if not head.invalidated:
                # No CommandComplete came (an error): part of it may have run.
                self._invalidate(stmt.writes)
        if ended and tx_writes != frozenset():
            # After the commit is certain, whatever acknowledged it.
            self._invalidate(tx_writes)
        if head.fill is not None:
            self.cache.finish_fill(head.fill, head.fill_ok and status == "I")

    def _invalidate(self, tables: frozenset[str] | None) -> None:
        self.cache.invalidate(self.state.database, tables)

    # -- streaming of large messages ----------------------------------------

    async def _stream(
        self,
        reader: MessageReader,
        raw_header: bytes,
        source: trio.abc.Stream,
        sink: trio.abc.Stream,
        fill: Fill | None,
    ) -> None:
        """Forward one large message piece by piece as it arrives."""
        send = self._send_client if sink is self.client else sink.send_all
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
