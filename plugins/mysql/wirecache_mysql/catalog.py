"""Reading relation dependencies from information_schema (see wirecache's Dependencies).

MySQL versions its tables in one namespace per origin server (bare names), so
one reading covers every schema. Views come with their definition, whose
tables the dialect's own classifier finds; a view whose definition this user
may not see is treated as external (its reads are not cached). Foreign keys
with cascading actions widen writes to the child table; tables with triggers
make writes invalidate everything.

The query runs on the session's own origin connection, only where the client
cannot observe it: before its first command, and right before a cacheable
read (which resets ROW_COUNT(), FOUND_ROWS() and the warnings anyway).
"""

from __future__ import annotations

from collections.abc import Callable

from wirecache.api import Classification, Dependencies

from wirecache_mysql import messages as m
from wirecache_mysql.packets import build_packet
from wirecache_mysql.wire import PacketStream

QUERY = b"""/* wirecache: relation dependencies */
SELECT 'v', LOWER(TABLE_NAME), VIEW_DEFINITION FROM information_schema.VIEWS
 WHERE TABLE_SCHEMA NOT IN ('mysql', 'sys', 'information_schema', 'performance_schema')
UNION ALL
SELECT 'c', LOWER(REFERENCED_TABLE_NAME), LOWER(TABLE_NAME)
  FROM information_schema.REFERENTIAL_CONSTRAINTS
 WHERE DELETE_RULE NOT IN ('RESTRICT', 'NO ACTION') OR UPDATE_RULE NOT IN ('RESTRICT', 'NO ACTION')
UNION ALL
SELECT 't', LOWER(EVENT_OBJECT_TABLE), '' FROM information_schema.TRIGGERS"""


def parse_text_row(payload: bytes) -> list[bytes | None]:
    """The values of a text-protocol row: length-encoded strings, 0xFB for NULL."""
    values: list[bytes | None] = []
    pos = 0
    while pos < len(payload):
        if payload[pos] == 0xFB:
            values.append(None)
            pos += 1
        else:
            value, pos = m.read_lenenc_bytes(payload, pos)
            values.append(bytes(value))
    return values


def build(
    rows: list[list[bytes | None]], classify: Callable[[bytes], Classification]
) -> Dependencies:
    views: dict[str, list[str]] = {}
    writes: dict[str, set[str]] = {}
    opaque: list[str] = []
    external: list[str] = []
    for row in rows:
        if len(row) != 3 or row[0] is None or row[1] is None:
            continue
        kind, name, other = row[0], row[1].decode(), row[2] or b""
        if kind == b"v":
            if other:
                views[name] = sorted(classify(other).reads)
            else:
                external.append(name)  # definition hidden from this user
        elif kind == b"c":
            writes.setdefault(name, set()).add(other.decode())
        elif kind == b"t":
            opaque.append(name)
    return Dependencies.build(views, writes, opaque, external)


async def read_dependencies(
    origin: PacketStream, caps: int, mcaps: int, classify: Callable[[bytes], Classification]
) -> Dependencies:
    """Run :data:`QUERY` on the idle origin connection; unknown edges if it fails."""
    await origin.send(build_packet(0, bytes([m.COM_QUERY]) + QUERY))
    reader = m.ResultReader(m.COM_QUERY, caps, mcaps)
    rows: list[list[bytes | None]] = []
    while True:
        packet = await origin.packet()
        before = reader.rows
        done = reader.feed(packet.payload)
        if reader.rows != before:
            rows.append(parse_text_row(packet.payload))
        if done:
            break
    if reader.error is not None:
        return Dependencies.unknown_edges()
    return build(rows, classify)
