"""The authenticated session: one command at a time, answered from the cache or relayed.

MySQL's command phase is strict request/response: a client sends a command
(sequence id 0) and reads the whole response before the next one. (The
MariaDB connector sends PREPARE and EXECUTE back to back; they simply wait in
the receive buffer.) So one task serves a session, with no FIFO of owed
responses: read a command, answer it from the cache or forward it, relay the
origin's packets until :class:`~wirecache_mysql.messages.ResultReader` says
the response is complete, then settle the cache.

That work is synchronous (:meth:`Relay._process`), and whatever it cannot
finish without waiting is kept in attributes (the response in flight,
``_work`` for the task). With both legs plain TCP the task parks on both
sockets at once in the core's hot loop (``Connection.serve_ready``), whose
handlers read, process and send at once: a hit, or a command forwarded and
its response relayed, costs no pass through trio's scheduler. What has to
wait goes back to the task: reading the catalog before a fill, commands of
16 MiB or more, LOCAL INFILE uploads, COM_CHANGE_USER, COM_QUIT, and a socket
that did not take everything. With TLS on a leg, the task reads one side at
a time through trio.

* COM_QUERY and COM_STMT_EXECUTE of cacheable reads are looked up under the
  session digest plus the statement (and, for EXECUTE, the parameter types
  and values); a hit is the stored packets, renumbered for this request.
  An execute answered from the cache never reaches the origin, so when it
  carried the parameter types, a later execute that leaves them out (as
  libmariadb's do) is forwarded with the types put back (`Prepared`).
* A miss snapshots table versions before the command goes out; the response
  is stored only when it is clean (no ERR, no warnings, no LOCAL INFILE, no
  cursor, no session change) and the session was outside a transaction
  before and after.
* A write invalidates when the origin's OK (or ERR: part of it may have run)
  arrives, before that packet is forwarded, unless the OK says a transaction
  is still open (nothing committed); a transaction's writes are invalidated
  when the status flags say it ended (COMMIT, or an implicit commit).
* Responses are forwarded as they arrive, in batches of at most one socket
  read, so a large result never sits whole in memory.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Awaitable, Callable
from functools import partial

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

from wirecache_mysql import auth, catalog
from wirecache_mysql import messages as m
from wirecache_mysql.packets import (
    MAX_PACKET_PAYLOAD,
    Packet,
    ProtocolError,
    build_packet,
    resequence,
)
from wirecache_mysql.routing import RoutingError, route
from wirecache_mysql.state import Prepared, SessionState
from wirecache_mysql.wire import PacketStream, PeerClosed

#: Table versions of MySQL caches live in one namespace for the whole origin
#: server: a table can be written as ``db.t`` from any current database, and
#: the classifier reports bare names, so ``app.t`` and ``other.t`` share a
#: counter. That can only over-invalidate.
NAMESPACE = "*"
#: While a response is in flight, the client is read only until this many bytes
#: of its next commands wait (and the origin between commands: it has nothing
#: to say then), so that a peer that talks out of turn cannot fill memory.
HOLD_BYTES = 256 * 1024
#: ER_UNKNOWN_COM_ERROR.
ER_UNKNOWN_COM = 1047
#: ER_NET_PACKETS_OUT_OF_ORDER / a malformed packet.
ER_MALFORMED = 1835
#: ER_WRONG_ARGUMENTS ("Incorrect arguments to …").
ER_WRONG_ARGUMENTS = 1210
STMT_ID_LAST = 0xFFFFFFFF

#: A command whose meaning wirecache cannot see: invalidates everything.
UNKNOWN = Classification(StatementKind.UNKNOWN, False, writes=None, changes_session=True,
                         reason="not understood")  # fmt: skip
HARMLESS = Classification(StatementKind.UNKNOWN, False, reason="not a statement")

#: Commands relayed as they are, with a response the ResultReader follows.
_PLAIN = frozenset(
    {m.COM_PING, m.COM_STATISTICS, m.COM_FIELD_LIST, m.COM_PROCESS_KILL, m.COM_DEBUG,
     m.COM_STMT_RESET, m.COM_STMT_FETCH, m.COM_SLEEP}
)  # fmt: skip
#: Responses whose ResultReader status flags are not the session's.
_NO_STATUS = frozenset({m.COM_STMT_PREPARE, m.COM_STATISTICS})
#: Status flags that forbid storing a response.
_SPOIL_STATUS = m.SERVER_STATUS_IN_TRANS | m.SERVER_SESSION_STATE_CHANGED
#: What processing the bytes read so far left to do (see Relay._process).
_DONE, _AWAIT, _END = object(), object(), object()


class SessionEnded(Exception):
    """The session must end (QUIT, failed re-authentication)."""


class _OriginBroke(Exception):
    """The origin sent garbage or vanished in the middle of a response."""


class _Response:
    """The origin's response to the one command in flight, as far as it was relayed."""

    __slots__ = ("reader", "stmt", "fill", "then", "write", "was_idle", "first", "oks",
                 "uploaded")  # fmt: skip

    def __init__(
        self, reader: m.ResultReader, stmt: Classification, fill: Fill | None,
        then: Callable[[_Response], None] | None, was_idle: bool,
    ) -> None:  # fmt: skip
        self.reader = reader
        self.stmt = stmt
        self.fill = fill
        #: Called once the response is complete (after the cache is settled).
        self.then = then
        self.write = stmt.is_write
        self.was_idle = was_idle
        #: The first payload (a COM_STMT_PREPARE's OK).
        self.first: bytes | None = None
        #: OK packets seen so far (a write invalidates at each).
        self.oks = 0
        #: Whether the client uploaded a file (LOCAL INFILE): never stored then.
        self.uploaded = False


class Relay:
    """One authenticated session between a client and its origin connection."""

    def __init__(
        self, conn: Connection, cache: Cache, state: SessionState, client: PacketStream,
        origin: PacketStream, *, client_tls: bool, origin_tls: bool, default_plugin: bytes,
    ) -> None:  # fmt: skip
        self.conn = conn
        self.cache = cache
        self.state = state
        self.client = client
        self.origin = origin
        self.client_tls = client_tls
        self.origin_tls = origin_tls
        self.default_plugin = default_plugin
        self.caps = state.capabilities
        self.mcaps = state.mariadb_capabilities
        self.log = conn.log.bind(cache=cache.id)
        #: The response in flight (MySQL answers one command at a time).
        self._response: _Response | None = None
        #: What the task must await before processing goes on (see _process).
        self._work: Callable[[], Awaitable[None]] | None = None
        #: The server drains: finish the response in flight, then end.
        self._draining = False
        #: Whether both legs are plain TCP, served by the core's hot loop.
        self.direct = conn.direct(client.stream, origin.stream)
        #: The legs the task is parked on (client, origin); see _wants.
        self._parked = (False, False)

    async def run(self) -> None:
        """Serve commands until the client quits or either side closes."""
        try:
            await self._refresh_catalog()
            await self._serve()
        except (PeerClosed, SessionEnded):
            return
        except _OriginBroke as e:
            await self._origin_broke(str(e))
        except ProtocolError as e:
            # Bad client input (origin trouble is _OriginBroke).
            self.log.info("conn.protocol_error", side="client", error=str(e))
            await self._try_send_client(
                m.err_packet(1, ER_MALFORMED, "08S01", f"wirecache: malformed packet: {e}")
            )
        finally:
            response, self._response = self._response, None
            if response is not None and response.fill is not None:
                self.cache.finish_fill(response.fill, False)

    async def _try_send_client(self, data: bytes) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await self.client.send(data)

    # -- the session loop -----------------------------------------------------

    async def _serve(self) -> None:
        """Process what was read; await what needs it; send; wait for either side."""
        while True:
            todo = self._process()
            if todo is _AWAIT:
                await self._flush()
                work, self._work = self._work, None
                assert work is not None
                await work()
                continue
            await self._flush()
            if todo is _END:
                return
            await self._wait()

    async def _flush(self) -> None:
        if self.origin.outbox:
            await self.origin.outbox.drain()
        if self.client.outbox:
            await self.client.outbox.drain()

    def _process(self) -> object:
        """Relay the origin's packets read so far and answer or forward the client's
        commands, as far as that goes without waiting: _DONE (more bytes are
        needed), _AWAIT (``_work`` must be awaited first) or _END (the session
        ends). Everything it leaves undone is in attributes, so it resumes where
        it stopped, whether a hot-loop handler or the task calls it next."""
        if self._work is not None:
            return _AWAIT
        reader = self.client.reader
        while True:
            response = self._response
            if response is not None:
                if not self._relay(response):
                    return _DONE if self._work is None else _AWAIT
                continue
            packet = reader.next_packet()
            if packet is None:
                return _END if self.client.eof or self._draining else _DONE
            self._command(packet)
            if self._work is not None:
                return _AWAIT

    def _wants(self) -> tuple[bool, bool]:
        """Which legs to read, (client, origin): the client unless a response is in
        flight and enough of its next commands wait already (or draining); the
        origin while a response is in flight, and between commands only until it
        said too much (it has nothing to say then)."""
        busy = self._response is not None
        client, origin = self.client, self.origin
        return (
            not client.eof and not self._draining
            and (not busy or client.reader.buffered < HOLD_BYTES),
            not origin.eof and (busy or origin.reader.buffered < HOLD_BYTES),
        )  # fmt: skip

    async def _wait(self) -> None:
        """Wait for bytes: for the rest of a response, or (then the server's
        draining may end the wait) for the client's next command."""
        if self._response is not None:
            await self._read()
            return
        with self.conn.idle() as scope:
            await self._read()
        if scope.cancelled_caught:
            # A handler may have forwarded a command meanwhile: that one finishes.
            self._draining = True

    async def _read(self) -> None:
        if not self.direct:
            # TLS on a leg: one side at a time, through trio.
            await (self.client if self._response is None else self.origin).read()
            return
        want_client, want_origin = self._parked = self._wants()
        client, origin = self.client.stream, self.origin.stream
        if want_client and want_origin:
            await self.conn.serve_ready(client, self._client_ready, (origin, self._origin_ready))
        elif want_client:
            await self.conn.serve_ready(client, self._client_ready)
        else:
            assert want_origin
            await self.conn.serve_ready(origin, self._origin_ready)

    def _client_ready(self) -> bool:
        """The hot loop's handler for the client socket (see Connection.serve_ready)."""
        if not self.client.read_nowait():
            return True
        return not self.client.eof and self._step()

    def _origin_ready(self) -> bool:
        """The hot loop's handler for the origin socket."""
        if not self.origin.read_nowait():
            return True
        return not self.origin.eof and self._step()

    def _step(self) -> bool:
        """Process what was read and send it at once. False (the task goes on) when
        something must be awaited, a socket did not take everything, or the task
        should wait on other legs than it does."""
        if self._process() is not _DONE:
            return False
        client_sent = self.client.outbox.send_nowait()
        return self.origin.outbox.send_nowait() and client_sent and self._wants() == self._parked

    # -- commands -------------------------------------------------------------

    def _command(self, packet: Packet) -> None:
        payload = packet.payload
        if not payload:
            raise ProtocolError("empty command packet")
        command = payload[0]
        if packet.continued:
            self._work = partial(self._large_command, packet)
        elif command == m.COM_QUERY:
            self._query(packet)
        elif command == m.COM_STMT_EXECUTE:
            self._execute(packet)
        elif command == m.COM_STMT_PREPARE:
            self._prepare(packet)
        elif command == m.COM_QUIT:
            self._work = partial(self._quit, packet)
        elif command == m.COM_STMT_CLOSE:
            if len(payload) >= 5:
                self.state.prepared.pop(struct.unpack_from("<I", payload, 1)[0], None)
            self.origin.outbox.add(packet.raw)
        elif command == m.COM_STMT_SEND_LONG_DATA:
            if len(payload) >= 5 and (p := self._prepared(payload)) is not None:
                p.long_data = True
            self.origin.outbox.add(packet.raw)
        elif command == m.COM_INIT_DB:
            database = payload[1:].decode("utf-8", "surrogateescape")

            def init_db(response: _Response) -> None:
                if response.reader.error is None:
                    self.state.set_database(database)

            self._forward(packet, HARMLESS, then=init_db)
        elif command == m.COM_SET_OPTION:
            self.state.option_set(payload)
            self._forward(packet, HARMLESS)
        elif command == m.COM_RESET_CONNECTION:
            self._forward(packet, HARMLESS, then=self._reset)
        elif command == m.COM_CHANGE_USER:
            self._work = partial(self._change_user, packet)
        elif command in _PLAIN:
            if command == m.COM_STMT_RESET and (p := self._prepared(payload)) is not None:
                p.long_data = False
            self._forward(packet, HARMLESS)
        else:
            self.log.info("command.unsupported", command=command)
            self.client.outbox.add(
                m.err_packet(packet.seq + 1, ER_UNKNOWN_COM, "08S01",
                             f"wirecache does not relay command 0x{command:02X}")
            )  # fmt: skip

    def _reset(self, response: _Response) -> None:
        if response.reader.error is None:
            self.state.reset()

    async def _quit(self, packet: Packet) -> None:
        await self.origin.send(packet.raw)
        raise SessionEnded()

    def _prepared(self, payload: bytes) -> Prepared | None:
        stmt_id = struct.unpack_from("<I", payload, 1)[0]
        if stmt_id == STMT_ID_LAST and self.state.last_prepared is not None:
            stmt_id = self.state.last_prepared
        return self.state.prepared.get(stmt_id)

    def _query(self, packet: Packet) -> None:
        text = packet.payload[1:]
        cache, state = self.cache, self.state
        stmt = cache.classify(text)
        if stmt.cacheable and state.idle:
            key = request_key(state.digest, b"Q", text)
            if not self._hit(key, stmt, packet.seq):
                self._miss(self._query_miss, packet, stmt, key)
            return
        state.statement_sent(text, stmt)
        self._forward(packet, stmt)

    def _query_miss(self, packet: Packet, stmt: Classification, key: bytes) -> None:
        fill = self.cache.begin_fill(key, stmt, NAMESPACE)
        self.state.statement_sent(packet.payload[1:], stmt)
        self._forward(packet, stmt, fill)

    def _miss(self, go: Callable[..., None], *args: object) -> None:
        """A cacheable read missed: ``go(*args)`` forwards it to fill the cache, after
        the catalog is read when that is due (``_work``; see catalog.py)."""
        if not self.cache.dependencies_due(NAMESPACE):
            go(*args)
            return

        async def catalog_first() -> None:
            await self._refresh_catalog()
            go(*args)

        self._work = catalog_first

    def _execute(self, packet: Packet) -> None:
        payload = packet.payload
        if len(payload) < 10:
            raise ProtocolError("COM_STMT_EXECUTE shorter than 10 bytes")
        prepared = self._prepared(payload)
        if prepared is None:
            self._forward(packet, UNKNOWN)
            return
        stmt = prepared.stmt
        try:
            execute = m.ComStmtExecute.parse(
                payload, prepared.num_params, self.caps, prepared.param_types
            )
        except ProtocolError:
            execute = None  # the origin will say what is wrong
        if execute is not None and execute.new_params_bound:
            prepared.param_types = execute.param_types
            prepared.types_block = execute.types_block
        elif execute is None and self._sends_types(payload, prepared):
            prepared.types_unknown()
        cacheable = (
            stmt.cacheable and execute is not None and not prepared.long_data
            and not execute.flags & m.CURSOR_TYPE_READ_ONLY and self.state.idle
        )  # fmt: skip
        if cacheable:
            assert execute is not None
            key = request_key(
                self.state.digest, b"E", prepared.sql,
                b"".join(struct.pack("<H", t) for t in execute.param_types),
                *[b"\0" if v is None else b"\1" + v for v in execute.values],
            )  # fmt: skip
            if not self._hit(key, stmt, packet.seq):
                self._miss(self._execute_on, packet, prepared, key)
            return
        self._execute_on(packet, prepared, None)

    def _execute_on(self, packet: Packet, prepared: Prepared, key: bytes | None) -> None:
        """Forward an execute, filling the cache under ``key`` when there is one."""
        stmt = prepared.stmt
        fill = None if key is None else self.cache.begin_fill(key, stmt, NAMESPACE)
        origin_packet = self._with_origin_types(packet, prepared)
        if origin_packet is None:
            if fill is not None:
                self.cache.finish_fill(fill, False)
            self.client.outbox.add(self._types_lost(packet.seq + 1))
            return
        prepared.long_data = False
        self._forward(origin_packet, stmt, fill)

    def _sends_types(self, payload: bytes, prepared: Prepared) -> bool:
        """Whether this execute (a whole payload or the first packet of one) has
        new-params-bound 1."""
        try:
            offset = m.execute_bound_offset(payload, prepared.num_params, self.caps)
        except ProtocolError:
            return False
        return offset is not None and payload[offset] != 0

    def _with_origin_types(self, packet: Packet, prepared: Prepared) -> Packet | None:
        """The execute to send to the origin: ``packet``, or ``packet`` with the
        parameter types put back when it leaves them out and the origin never
        received the ones the client last sent (that execute was answered from
        the cache — for a new connection, typically its very first one: the
        origin would answer "Incorrect arguments to mysqld_stmt_execute", or
        read the values with another execute's types). None: the types cannot
        be added without going over one packet."""
        block = prepared.types_block
        if block is None or block == prepared.origin_types:
            return packet
        payload = packet.payload
        try:
            offset = m.execute_bound_offset(payload, prepared.num_params, self.caps)
        except ProtocolError:
            return packet  # the origin will say what is wrong
        if offset is None:
            return packet
        if payload[offset] == 0:
            payload = m.execute_with_types(payload, offset, block)
            if len(payload) >= MAX_PACKET_PAYLOAD:
                return None
            packet = Packet(packet.seq, payload, build_packet(packet.seq, payload))
            self.log.debug("execute.types_resent")
        prepared.origin_types = block
        return packet

    @staticmethod
    def _types_lost(seq: int) -> bytes:
        return m.err_packet(
            seq, ER_WRONG_ARGUMENTS, "HY000",
            "wirecache: this execute leaves out its parameter types, which the origin never "
            "received (an earlier execute was answered from the cache), and is too large to "
            "add them to; bind the parameters again",
        )  # fmt: skip

    def _prepare(self, packet: Packet) -> None:
        sql = packet.payload[1:]
        stmt = self.cache.classify(sql)

        def prepared(response: _Response) -> None:
            if response.reader.error is None and response.first is not None:
                ok = m.StmtPrepareOk.parse(response.first, self.caps)
                self.state.prepared[ok.statement_id] = Prepared(sql, stmt, ok.num_params)
                self.state.last_prepared = ok.statement_id

        self._forward(packet, HARMLESS, then=prepared)

    def _hit(self, key: bytes, stmt: Classification, seq: int) -> bool:
        hit = self.cache.lookup(key, stmt)
        if hit is None:
            self.log.debug("cache.miss", fingerprint=stmt.fingerprint)
            return False
        buf = bytearray(hit)
        resequence(buf, seq + 1)
        self.client.outbox.add(buf)
        self.log.debug("cache.hit", fingerprint=stmt.fingerprint)
        return True

    async def _change_user(self, packet: Packet) -> None:
        change = m.ComChangeUser.parse(packet.payload, self.caps)
        try:
            target = route(self.conn, change.username)
        except RoutingError as e:
            await self.client.send(m.err_packet(packet.seq + 1, auth.ER_ACCESS_DENIED, "28000",
                                                str(e)))  # fmt: skip
            raise SessionEnded() from e
        if target.cache is not self.cache:
            await self.client.send(m.err_packet(
                packet.seq + 1, auth.ER_ACCESS_DENIED, "28000",
                f'wirecache: COM_CHANGE_USER cannot move a connection from cache "{self.cache.id}"'
                f' to "{target.cache.id}"; open a new connection',
            ))  # fmt: skip
            raise SessionEnded()
        plugin = change.auth_plugin or self.default_plugin
        if not auth.initial_answer_allowed(plugin, change.auth_response, self.client_tls,
                                           self.origin_tls):  # fmt: skip
            await self.client.send(m.err_packet(packet.seq + 1, auth.ER_ACCESS_DENIED, "28000",
                                                auth.CLEARTEXT_TO_PLAIN_ORIGIN))  # fmt: skip
            raise SessionEnded()
        rewritten = change.with_username(target.user).build(self.caps)
        await self.origin.send(build_packet(packet.seq, rewritten))
        try:
            result = await auth.relay(
                self.client, self.origin, delta=0, plugin=plugin, capabilities=self.caps,
                client_tls=self.client_tls, origin_tls=self.origin_tls,
            )  # fmt: skip
        except auth.AuthFailed as e:
            if e.response is not None:
                await self._try_send_client(e.response)
            self.log.info("auth.failed", reason=e.reason, command="change_user")
            raise SessionEnded() from e
        self.state.reset(
            user=target.user_text, database=change.database.decode("utf-8", "surrogateescape"),
            charset=change.charset,
        )  # fmt: skip
        self.state.status(result.ok.status_flags)
        self.log.info("auth.ok", command="change_user", user=target.user_text)

    async def _large_command(self, first: Packet) -> None:
        """A command of 16 MiB or more: streamed through, whatever it is, and
        treated as a statement that may have written anything."""
        command = first.payload[0]
        if command == m.COM_STMT_EXECUTE and (p := self._prepared(first.payload)) is not None:
            if self._sends_types(first.payload, p):
                p.types_unknown()  # not parsed: the client's and the origin's alike
            elif p.types_block is not None and p.types_block != p.origin_types:
                packet = first  # see _with_origin_types; a split payload is not rebuilt
                while packet.continued:
                    packet = await self.client.packet()
                await self.client.send(self._types_lost(packet.seq + 1))
                return
        await self.origin.send(first.raw)
        packet = first
        while packet.continued:
            packet = await self.client.packet()
            await self.origin.send(packet.raw)
        if command in m.NO_RESPONSE_COMMANDS:
            return
        self._forward(None, UNKNOWN if command in (m.COM_QUERY, m.COM_STMT_EXECUTE)
                      else HARMLESS, command=command)  # fmt: skip

    # -- responses ------------------------------------------------------------

    def _forward(
        self, packet: Packet | None, stmt: Classification, fill: Fill | None = None, *,
        command: int | None = None, then: Callable[[_Response], None] | None = None,
    ) -> None:  # fmt: skip
        """Queue ``packet`` for the origin (``None``: it was sent already) and follow
        its response, which :meth:`_relay` relays as it comes."""
        if packet is not None:
            command = packet.payload[0]
            self.origin.outbox.add(packet.raw)
        assert command is not None
        reader = m.ResultReader(command, self.caps, self.mcaps)
        self._response = _Response(reader, stmt, fill, then, self.state.idle)

    def _relay(self, response: _Response) -> bool:
        """Relay the origin's packets read so far to the client; True once the
        response is complete (then the cache and the session state are settled)."""
        packets = self.origin.reader
        out = self.client.outbox
        reader, fill = response.reader, response.fill
        while True:
            try:
                packet = packets.next_packet()
            except ProtocolError as e:
                raise _OriginBroke(str(e)) from e
            if packet is None:
                if self.origin.eof:
                    raise _OriginBroke("the origin closed the connection")
                return False
            if response.first is None:
                response.first = packet.payload
            try:
                done = reader.feed(packet.payload)
            except ProtocolError as e:
                raise _OriginBroke(str(e)) from e
            if response.write and (done or len(reader.ok_packets) != response.oks):
                # Before the client can see the acknowledgement (DESIGN.md rule 3);
                # not when its OK says a transaction is still open: nothing was
                # committed, and _settle bumps it when the transaction ends.
                response.oks = len(reader.ok_packets)
                if not self._uncommitted(reader, response.stmt):
                    self._invalidate(response.stmt.writes)
            if fill is not None:
                fill.add(packet.raw)
            out.add(packet.raw)
            if done:
                self._response = None
                self._settle(reader, response.stmt, response.was_idle)
                self._finish(response)
                return True
            if reader.local_infile and not packet.continued:
                self._work = partial(self._upload, response)
                return False

    def _finish(self, response: _Response) -> None:
        """Store a clean response; run what waited for its end."""
        reader, fill = response.reader, response.fill
        if fill is not None:
            clean = (
                reader.error is None and not response.uploaded and not reader.cursor_opened
                and reader.warnings == 0 and not reader.status_flags & _SPOIL_STATUS
                and self.state.idle
            )  # fmt: skip
            self.cache.finish_fill(fill, clean)
        if response.then is not None:
            response.then(response)

    @staticmethod
    def _uncommitted(reader: m.ResultReader, stmt: Classification) -> bool:
        """Whether the OK just read leaves ``stmt``'s writes uncommitted: it came
        without error, says a transaction is open, and ``stmt`` neither begins
        nor ends one (a COMMIT AND CHAIN would say the same)."""
        return (
            reader.error is None
            and bool(reader.status_flags & m.SERVER_STATUS_IN_TRANS)
            and stmt.tx is TxEffect.NONE
        )

    def _settle(self, reader: m.ResultReader, stmt: Classification, was_idle: bool) -> None:
        """The response is complete: follow the transaction status and, when a
        transaction ended, invalidate what it wrote — before the client sees the
        last packet (the COMMIT's OK)."""
        state = self.state
        ended, tx_writes = False, frozenset()
        if reader.command not in _NO_STATUS and (reader.error is None or reader.result_sets):
            ended, tx_writes = state.status(reader.status_flags)
        if stmt.is_write and (not was_idle or state.in_transaction):
            state.note_write(stmt)
        if ended and tx_writes != frozenset():
            self._invalidate(tx_writes)

    async def _upload(self, response: _Response) -> None:
        """LOAD DATA LOCAL INFILE: the client's file, packet by packet, up to the
        empty packet that ends it; then the rest of the response is relayed."""
        while True:
            packet = await self.client.packet()
            await self.origin.send(packet.raw)
            if not packet.payload:
                break
        response.reader.local_infile = False  # a later statement may ask again
        response.uploaded = True  # never store the answer to an upload

    async def _origin_broke(self, reason: str) -> None:
        """The origin sent garbage or vanished mid-response: tell the client (after
        what it was owed already); the session ends."""
        self.log.warning("origin.protocol_error", error=reason)
        await self._try_send_client(
            m.err_packet(0, 2013, "HY000", f"wirecache: lost the origin of cache "
                         f'"{self.cache.id}" during a query: {reason}')
        )  # fmt: skip

    async def _refresh_catalog(self) -> None:
        """Read the catalog edges when they are due (see catalog.py for when it is safe)."""
        if self.cache.dependencies_due(NAMESPACE):
            deps = await catalog.read_dependencies(
                self.origin, self.caps, self.mcaps, self.cache.classify
            )
            self.cache.set_dependencies(NAMESPACE, deps)

    def _invalidate(self, tables: frozenset[str] | None) -> None:
        self.cache.invalidate(NAMESPACE, tables)
