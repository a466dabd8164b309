"""Reading relation dependencies from the origin's catalog (see wirecache's Dependencies).

Run on a fresh session right after authentication, before the client gets its
first ReadyForQuery: the origin connection is idle and authenticated as the
client, and every role may read pg_catalog. The rows come back in the text
format of the simple protocol, which is all this module parses.
"""

from __future__ import annotations

from wirecache.api import Dependencies

from wirecache_postgres import messages as m
from wirecache_postgres.messages import Backend
from wirecache_postgres.wire import MessageStream

#: One row per relation with something to say: its kind, the relations a
#: view reads, the children a delete/update cascades into, its partitions or
#: parents, and whether triggers or rules make its writes unpredictable.
QUERY = """/* wirecache: relation dependencies */
SELECT name, kind, base, cascades, family, opaque FROM (
  SELECT lower(c.relname) AS name, c.relkind::text AS kind,
    (SELECT string_agg(DISTINCT lower(b.relname), ',') FROM pg_rewrite r
       JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                       AND d.refclassid = 'pg_class'::regclass
       JOIN pg_class b ON b.oid = d.refobjid
      WHERE r.ev_class = c.oid AND b.oid <> c.oid) AS base,
    (SELECT string_agg(DISTINCT lower(ch.relname), ',') FROM pg_constraint k
       JOIN pg_class ch ON ch.oid = k.conrelid
      WHERE k.contype = 'f' AND k.confrelid = c.oid
        AND (k.confdeltype IN ('c', 'n', 'd') OR k.confupdtype IN ('c', 'n', 'd'))) AS cascades,
    (SELECT string_agg(DISTINCT lower(o.relname), ',') FROM pg_inherits i
       JOIN pg_class o ON o.oid = CASE WHEN i.inhrelid = c.oid THEN i.inhparent
                                       ELSE i.inhrelid END
      WHERE i.inhrelid = c.oid OR i.inhparent = c.oid) AS family,
    (EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal)
     OR EXISTS (SELECT 1 FROM pg_rewrite r WHERE r.ev_class = c.oid
                  AND r.rulename <> '_RETURN'))::text AS opaque
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%'
) rel
WHERE kind IN ('v', 'm', 'f') OR cascades IS NOT NULL OR family IS NOT NULL OR opaque = 'true'
"""


def _names(value: bytes | None) -> list[str]:
    return value.decode().split(",") if value else []


def parse_rows(rows: list[list[bytes | None]]) -> Dependencies:
    """Build Dependencies from the query's text rows."""
    views: dict[str, list[str]] = {}
    writes: dict[str, set[str]] = {}
    opaque: list[str] = []
    external: list[str] = []
    for name_b, kind_b, base, cascades, family, opaque_b in rows:
        name = (name_b or b"").decode()
        kind = (kind_b or b"").decode()
        if kind in ("v", "m"):
            views[name] = _names(base)
        if kind == "f":
            external.append(name)
        edges = writes.setdefault(name, set())
        edges.update(_names(cascades))
        edges.update(_names(family))
        if opaque_b == b"true":
            opaque.append(name)
    return Dependencies.build(views, {k: v for k, v in writes.items() if v}, opaque, external)


async def read_dependencies(origin: MessageStream) -> tuple[Dependencies | None, str]:
    """Run :data:`QUERY` on an idle origin session; (None, why) when it failed."""
    await origin.send(m.query(QUERY))
    rows: list[list[bytes | None]] = []
    error = ""
    while True:
        kind, body, _ = await origin.message()
        if kind == Backend.DATA_ROW:
            rows.append(list(m.parse_data_row(body).values))
        elif kind == Backend.ERROR_RESPONSE:
            error = m.parse_error_response(body).message or "error"
        elif kind == Backend.READY_FOR_QUERY:
            break
    if error:
        return None, error
    return parse_rows(rows), ""
