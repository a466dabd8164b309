"""MySQL/MariaDB classification rules for the shared sqlglot classifier.

What MySQL adds to the generic rules, in :func:`refine`:

* user variables (``@x``) hold per-connection values the key cannot see, so a
  statement reading one is not cached; assigning one (``@x := …``,
  ``SELECT … INTO @x``) changes the session;
* system variables (``@@time_zone``, ``@@global.x``) may be global and change
  under the cache, so reading one is not cached;
* ``REPLACE`` and ``RENAME TABLE`` are statements sqlglot does not model: they
  are given their real targets instead of "unknown, the whole database".

``CALL``, ``LOCK TABLES``, ``LOAD DATA``, ``DO``, ``HANDLER`` and ``EXECUTE``
stay unknown: forwarded, never cached, and the whole database is invalidated
after them, because they may write anything.
"""

from __future__ import annotations

import re
from dataclasses import replace

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from wirecache.api import CATALOG, Classification, ClassifierRules, StatementKind, TxEffect

TRANSACTION_KEYWORDS = {
    "BEGIN": TxEffect.BEGIN,
    "START": TxEffect.BEGIN,
    "COMMIT": TxEffect.END,
    "ROLLBACK": TxEffect.END,
    "SAVEPOINT": TxEffect.OTHER,
    "RELEASE": TxEffect.OTHER,
    "XA": TxEffect.OTHER,
}

#: Statements that change session state only: folded into the session key.
#: ``EXECUTE`` is not here: the statement it runs may write.
SESSION_KEYWORDS = frozenset({"SET", "USE", "RESET", "PREPARE", "DEALLOCATE"})

#: Forwarded, not cached, change no table data. ``ANALYZE`` is not here
#: (MariaDB's ``ANALYZE UPDATE`` runs the update), nor ``EXPLAIN``/``DESCRIBE``
#: (MySQL 8's ``EXPLAIN ANALYZE`` runs its statement: see :func:`refine`), nor
#: ``DO`` (it may call a function that writes).
HARMLESS_KEYWORDS = frozenset(
    {"SHOW", "HELP", "KILL", "CHECK", "CHECKSUM", "OPTIMIZE",
     "REPAIR", "FLUSH", "SIGNAL", "RESIGNAL", "GET", "BINLOG", "PURGE", "CACHE"}
)  # fmt: skip

#: Built-ins whose result changes from call to call, with time, or with what
#: the connection did before (LAST_INSERT_ID, FOUND_ROWS, ROW_COUNT).
VOLATILE_FUNCTIONS = frozenset(
    {
        "now", "sysdate", "rand", "uuid", "uuid_short", "sys_guid", "last_insert_id",
        "found_rows", "row_count", "connection_id", "current_timestamp", "current_date",
        "current_time", "curdate", "curtime", "localtime", "localtimestamp", "unix_timestamp",
        "utc_timestamp", "utc_date", "utc_time", "sleep", "benchmark", "random_bytes",
        "last_value", "lastval", "master_pos_wait", "master_gtid_wait", "source_pos_wait",
        "is_free_lock", "is_used_lock", "version", "current_version", "user", "session_user",
        "system_user", "current_user", "current_role", "load_file", "values",
    }
)  # fmt: skip

#: Built-ins that change session state (locks held by the connection).
SESSION_FUNCTIONS = frozenset(
    {"get_lock", "release_lock", "release_all_locks", "setval", "set_config"}
)  # fmt: skip

#: Built-ins sqlglot leaves as anonymous functions that depend only on their
#: arguments, the data and the session (all in the key or the table versions).
DETERMINISTIC_FUNCTIONS = frozenset(
    {
        "find_in_set", "field", "elt", "make_set", "export_set", "inet_aton", "inet_ntoa",
        "inet6_aton", "inet6_ntoa", "is_ipv4", "is_ipv6", "bin", "oct", "conv", "crc32",
        "soundex", "quote", "strcmp", "substring_index", "mid", "ifnull", "isnull", "nvl",
        "nvl2", "char", "ord", "space", "weight_string", "format", "time_format",
        "date_format", "str_to_date", "from_days", "to_days", "to_seconds", "sec_to_time",
        "time_to_sec", "makedate", "maketime", "period_add", "period_diff", "dayname",
        "monthname", "dayofweek", "dayofmonth", "dayofyear", "weekday", "weekofyear",
        "yearweek", "quarter", "hour", "minute", "second", "microsecond", "last_day",
        "timestampadd", "timestampdiff", "convert_tz", "addtime", "subtime", "timediff",
        "json_extract", "json_unquote", "json_object", "json_array", "json_contains",
        "json_length", "json_keys", "json_valid", "json_value", "json_query", "json_set",
        "json_insert", "json_replace", "json_remove", "json_merge", "json_merge_patch",
        "json_merge_preserve", "json_search", "json_type", "json_depth", "json_quote",
        "json_arrayagg", "json_objectagg", "json_contains_path", "json_overlaps",
        "regexp_like", "regexp_instr", "regexp_substr", "regexp_replace", "bit_count",
        "aes_encrypt", "aes_decrypt", "to_base64", "from_base64", "compress", "uncompress",
        "uncompressed_length", "sha", "sha2", "password", "database", "schema",
        "charset", "collation", "coercibility", "natural_sort_key", "octet_length",
        "char_length", "character_length", "length", "locate", "position", "instr",
        "insert", "lcase", "ucase", "rpad", "lpad", "ltrim", "rtrim", "reverse", "repeat",
        "left", "right", "format_bytes", "format_pico_time", "row_number", "rank",
        "dense_rank", "ntile", "lag", "lead", "first_value", "nth_value", "cume_dist",
        "percent_rank", "bit_and", "bit_or", "bit_xor", "std", "stddev", "variance",
        "group_concat", "any_value", "grouping", "st_astext", "st_geomfromtext",
    }
)  # fmt: skip

#: Schemas of server state and catalogs: read live, never cached.
SYSTEM_SCHEMAS = frozenset({"information_schema", "mysql", "performance_schema", "sys"})

_RENAME = re.compile(r"^\s*RENAME\s+TABLES?\s+(?P<body>.+)$", re.IGNORECASE | re.DOTALL)
_NAME = r"(?:`[^`]+`|[\w$]+)(?:\s*\.\s*(?:`[^`]+`|[\w$]+))?"
_PAIR = re.compile(rf"({_NAME})\s+TO\s+({_NAME})", re.IGNORECASE)


def _bare(name: str) -> str:
    return name.rsplit(".", 1)[-1].strip().strip("`").lower()


def _refine_command(tree: exp.Command, result: Classification) -> Classification | None:
    name = tree.name.upper()
    rest = tree.expression.name if isinstance(tree.expression, exp.Literal) else ""
    if name == "REPLACE":
        # REPLACE INTO t … is INSERT INTO t … that may delete conflicting rows first.
        try:
            insert = sqlglot.parse_one("INSERT " + rest, dialect="mysql")
        except SqlglotError:
            return None
        tables = frozenset(t.name.lower() for t in insert.find_all(exp.Table) if t.name)
        if not isinstance(insert, exp.Insert) or not tables:
            return None
        return Classification(StatementKind.WRITE, False, reads=tables, writes=tables,
                              reason="REPLACE")  # fmt: skip
    if name == "RENAME":
        m = _RENAME.match(f"RENAME {rest}")
        pairs = _PAIR.findall(m.group("body")) if m else []
        if not pairs:
            return None
        tables = frozenset(_bare(n) for pair in pairs for n in pair)
        return Classification(StatementKind.DDL, False, writes=tables | {CATALOG},
                              reason="RENAME TABLE")  # fmt: skip
    return None


_EXPLAIN = Classification(StatementKind.UNKNOWN, False, reason="EXPLAIN is not cached")
_ANALYZE_TABLE = Classification(StatementKind.UNKNOWN, False, reason="ANALYZE TABLE is not cached")


def _refine_explain(tree: exp.Expression) -> Classification | None:
    """``EXPLAIN``/``DESCRIBE`` of a statement or a table writes nothing, but
    MySQL 8's ``EXPLAIN ANALYZE <stmt>`` (and MariaDB's ``ANALYZE <stmt>``,
    which sqlglot cannot parse and so stays unknown) executes the statement:
    it keeps the generic verdict, unknown, and the whole database is
    invalidated after it. Any mention of ANALYZE counts, which can only
    over-invalidate."""
    if isinstance(tree, exp.Describe):
        style = str(tree.args.get("style") or "").upper()
        if "ANALY" in style or "ANALY" in tree.sql(dialect="mysql").upper():
            return None
        return _EXPLAIN
    if isinstance(tree, exp.Analyze) and str(tree.args.get("kind") or "").upper() == "TABLE":
        # ANALYZE TABLE t only refreshes index statistics.
        return _ANALYZE_TABLE
    return None


def refine(tree: exp.Expression, result: Classification) -> Classification | None:
    """MySQL's corrections to the generic classification (see the module docstring)."""
    if isinstance(tree, (exp.Describe, exp.Analyze)):
        return _refine_explain(tree)
    if isinstance(tree, exp.Command):
        return _refine_command(tree, result)
    if isinstance(tree, exp.Select) and isinstance(tree.args.get("into"), exp.Into):
        into = tree.args["into"]
        if into.find(exp.Parameter) is not None or not into.find(exp.Table):
            # SELECT … INTO @var / OUTFILE: no table is written.
            return Classification(StatementKind.SESSION, False, reads=result.reads,
                                  reason="SELECT … INTO a variable or file",
                                  changes_session=True)  # fmt: skip
    if (
        result.kind is StatementKind.READ
        and result.cacheable
        and any(t.db.lower() in SYSTEM_SCHEMAS for t in tree.find_all(exp.Table))
    ):
        # Row counts, timestamps and live server state: they change with no
        # write wirecache could see.
        return replace(result, cacheable=False, reason="reads a system schema")
    user_var = tree.find(exp.Parameter) is not None
    system_var = tree.find(exp.SessionParameter) is not None
    if not (user_var or system_var):
        return None
    assigns = tree.find(exp.PropertyEQ) is not None
    if result.kind is StatementKind.READ:
        return replace(
            result, cacheable=False, changes_session=result.changes_session or assigns,
            reason="reads a user variable" if user_var else "reads a system variable",
        )  # fmt: skip
    if assigns:
        return replace(result, changes_session=True)
    return None


RULES = ClassifierRules(
    sqlglot_dialect="mysql",
    transaction_keywords=TRANSACTION_KEYWORDS,
    session_keywords=SESSION_KEYWORDS,
    harmless_keywords=HARMLESS_KEYWORDS,
    volatile_functions=VOLATILE_FUNCTIONS,
    session_functions=SESSION_FUNCTIONS,
    deterministic_functions=DETERMINISTIC_FUNCTIONS,
    catalog_schemas=SYSTEM_SCHEMAS,
    refine=refine,
)
