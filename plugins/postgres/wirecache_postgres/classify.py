"""PostgreSQL's classification rules for the shared sqlglot classifier."""

from __future__ import annotations

import re

from sqlglot import exp
from wirecache.api import Classification, ClassifierRules, StatementKind, TxEffect

#: First keywords of transaction control. ``PREPARE TRANSACTION`` ends the
#: transaction in the session; a plain ``PREPARE name AS`` is not transaction
#: control but is folded here too, which only means it is never cached.
TRANSACTION_KEYWORDS = {
    "BEGIN": TxEffect.BEGIN,
    "START": TxEffect.BEGIN,
    "COMMIT": TxEffect.END,
    "END": TxEffect.END,
    "ROLLBACK": TxEffect.END,
    "ABORT": TxEffect.END,
    "SAVEPOINT": TxEffect.OTHER,
    "RELEASE": TxEffect.OTHER,
    "PREPARE": TxEffect.OTHER,
}

SESSION_KEYWORDS = frozenset({"SET", "RESET", "DISCARD", "DEALLOCATE", "LOAD"})

#: Statements forwarded without caching that change no table data. EXPLAIN is
#: not here: EXPLAIN ANALYZE runs the statement it explains (see _refine).
HARMLESS_KEYWORDS = frozenset(
    {
        "LISTEN", "UNLISTEN", "NOTIFY", "SHOW", "CHECKPOINT", "VACUUM", "ANALYZE",
        "ANALYSE", "DECLARE", "FETCH", "MOVE", "CLOSE", "SECURITY",
    }
)  # fmt: skip

#: Built-in functions whose result changes from call to call or with time.
VOLATILE_FUNCTIONS = frozenset(
    {
        "now", "random", "clock_timestamp", "statement_timestamp", "transaction_timestamp",
        "timeofday", "gen_random_uuid", "uuid_generate_v4", "current_timestamp",
        "localtimestamp", "localtime", "current_time", "current_date", "setseed",
        "pg_backend_pid", "txid_current", "txid_current_if_assigned", "pg_current_xact_id",
        "inet_client_addr", "inet_client_port", "inet_server_addr", "inet_server_port",
        "pg_postmaster_start_time", "pg_conf_load_time", "current_setting", "pg_sleep",
        "pg_stat_get_activity", "age", "currval", "lastval", "pg_is_in_recovery",
        "pg_last_xact_replay_timestamp", "pg_notification_queue_usage", "pg_sleep_for",
        "pg_sleep_until", "random_normal",
    }
)  # fmt: skip

#: Built-in functions that change session state.
SESSION_FUNCTIONS = frozenset({"set_config", "pg_advisory_lock", "pg_advisory_unlock",
                               "pg_try_advisory_lock", "pg_advisory_unlock_all"})  # fmt: skip

#: Common built-ins sqlglot does not model that are deterministic for a
#: session (their result depends only on arguments, data and session state,
#: all of which are in the key or the table versions).
DETERMINISTIC_FUNCTIONS = frozenset(
    {
        "format_type", "pg_get_expr", "pg_get_constraintdef", "pg_get_indexdef",
        "pg_get_viewdef", "pg_get_userbyid", "pg_table_is_visible", "pg_type_is_visible",
        "pg_function_is_visible", "pg_get_function_arguments", "pg_get_function_result",
        "array_agg", "string_agg", "jsonb_build_object", "json_build_object", "jsonb_agg",
        "json_agg", "to_jsonb", "to_json", "row_to_json", "array_to_json", "jsonb_typeof",
        "jsonb_array_length", "jsonb_extract_path_text", "generate_series", "unnest",
        "array_length", "array_position", "array_remove", "array_append", "regexp_replace",
        "regexp_matches", "split_part", "btrim", "ltrim", "rtrim", "lpad", "rpad", "initcap",
        "md5", "encode", "decode", "to_char", "to_date", "to_timestamp", "to_number",
        "date_part", "extract", "justify_interval", "make_date", "make_interval",
        "string_to_array", "array_to_string", "quote_ident", "quote_literal", "chr", "ascii",
        "octet_length", "bit_length", "char_length", "character_length", "strpos", "translate",
        "reverse", "repeat", "left", "right", "nullif", "greatest", "least", "width_bucket",
        "row_number", "rank", "dense_rank", "lag", "lead", "first_value", "last_value",
        "ntile", "percent_rank", "cume_dist", "bool_and", "bool_or", "every", "count",
        "obj_description", "col_description", "has_table_privilege", "has_schema_privilege",
        "pg_has_role", "current_schema", "current_schemas", "current_user", "session_user",
        "current_database", "current_catalog", "version", "array_upper", "array_lower",
        "cardinality", "pg_typeof", "pg_encoding_to_char", "pg_relation_size",
        "pg_total_relation_size", "pg_size_pretty",
    }
)  # fmt: skip

_EXPLAIN = Classification(StatementKind.UNKNOWN, False, reason="EXPLAIN is not cached")


def _refine(tree: exp.Expression, result: Classification) -> Classification | None:
    """A plain EXPLAIN writes nothing; EXPLAIN ANALYZE executes its statement, so it
    keeps the generic verdict (unknown: the whole database is invalidated after it).
    Any mention of ANALYZE counts, which can only over-invalidate."""
    if (
        isinstance(tree, exp.Command)
        and tree.name.upper() == "EXPLAIN"
        and "ANALY" not in tree.sql(dialect="postgres").upper()
    ):
        return _EXPLAIN
    return None


# sqlglot reads "$1,$2" as the start of a dollar-quoted string; a dollar-quote
# tag cannot start with a digit, so a space after each placeholder is safe.
_PLACEHOLDER = re.compile(r"(?<![\w$])(\$\d+)(?=[^\d\s])")
# sqlglot parses arrays only of the types it knows ("x::int[]" but not
# "x::oid[]" or "CAST(x AS regtype[])", which asyncpg's type introspection
# uses); the element type does not change what a statement reads or writes.
_ARRAY_CAST = re.compile(r"(::\s*|\bAS\s+)(\"?[A-Za-z_][\w.]*\"?)\s*\[\]", re.IGNORECASE)


def _prepare_for_sqlglot(sql: str) -> str:
    """The text sqlglot classifies (the origin always gets the text as sent)."""
    if "$" in sql:
        sql = _PLACEHOLDER.sub(r"\1 ", sql)
    if "[]" in sql:
        sql = _ARRAY_CAST.sub(r"\1text[]", sql)
    return sql


RULES = ClassifierRules(
    sqlglot_dialect="postgres",
    transaction_keywords=TRANSACTION_KEYWORDS,
    session_keywords=SESSION_KEYWORDS,
    harmless_keywords=HARMLESS_KEYWORDS,
    volatile_functions=VOLATILE_FUNCTIONS,
    session_functions=SESSION_FUNCTIONS,
    deterministic_functions=DETERMINISTIC_FUNCTIONS,
    catalog_schemas=frozenset({"pg_catalog", "information_schema"}),
    catalog_prefixes=("pg_",),
    refine=_refine,
    prepare=_prepare_for_sqlglot,
)
