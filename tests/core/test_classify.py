"""The shared sqlglot classifier, driven by PostgreSQL's rules (DESIGN.md rule 5)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wirecache.classify import (
    CATALOG,
    Classification,
    Classifier,
    StatementKind,
    TxEffect,
    literal_shape,
)
from wirecache_postgres.classify import RULES


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(RULES)


def classify(classifier: Classifier, sql: str) -> Classification:
    return classifier.classify_uncached(sql)


# -- first-keyword guards: sqlglot parses these as something else -----------


@pytest.mark.parametrize(
    ("sql", "tx"),
    [
        ("SAVEPOINT a", TxEffect.OTHER),
        ("  savepoint a", TxEffect.OTHER),
        ("-- a comment\nSAVEPOINT a", TxEffect.OTHER),
        ("RELEASE SAVEPOINT a", TxEffect.OTHER),
        ("BEGIN", TxEffect.BEGIN),
        ("/* leading */ BEGIN", TxEffect.BEGIN),
        ("START TRANSACTION ISOLATION LEVEL SERIALIZABLE", TxEffect.BEGIN),
        ("COMMIT", TxEffect.END),
        ("END", TxEffect.END),
        ("ROLLBACK", TxEffect.END),
        ("ABORT", TxEffect.END),
        ("PREPARE TRANSACTION 'x'", TxEffect.OTHER),
    ],
)
def test_transaction_control(classifier, sql, tx):
    result = classify(classifier, sql)
    assert result.kind is StatementKind.TRANSACTION
    assert result.tx is tx
    assert not result.cacheable


@pytest.mark.parametrize(
    "sql", ["DISCARD ALL", "discard all", "DISCARD PLANS", "SET search_path = x", "RESET ALL",
            "SET ROLE someone", "DEALLOCATE ALL"],
)  # fmt: skip
def test_session_statements(classifier, sql):
    result = classify(classifier, sql)
    assert result.kind is StatementKind.SESSION
    assert result.changes_session
    assert not result.cacheable
    assert not result.is_write


@pytest.mark.parametrize(
    "sql", ["LISTEN ch", 'LISTEN "Ch"', "UNLISTEN *", "NOTIFY ch, 'x'", "SHOW TimeZone",
            "VACUUM t", "EXPLAIN SELECT 1", "EXPLAIN DELETE FROM t",
            "explain (costs off) select 1"],
)  # fmt: skip
def test_harmless_statements_are_forwarded_without_invalidation(classifier, sql):
    result = classify(classifier, sql)
    assert not result.cacheable
    assert result.writes == frozenset()
    assert not result.is_write


@pytest.mark.parametrize(
    "sql", ["EXPLAIN ANALYZE DELETE FROM t", "explain analyse insert into t values (1)",
            "EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1", "EXPLAIN (ANALYZE) SELECT f()"],
)  # fmt: skip
def test_explain_analyze_runs_its_statement(classifier, sql):
    result = classify(classifier, sql)
    assert not result.cacheable
    assert result.is_write


# -- writes with their tables -------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "writes"),
    [
        ("INSERT INTO t VALUES (1)", {"t"}),
        ("insert into Public.T (a) values (1)", {"t"}),
        ("INSERT INTO t SELECT * FROM u", {"t", "u"}),
        ("UPDATE public.t SET a = 1", {"t"}),
        ("UPDATE t SET a = 1 FROM u WHERE t.b = u.b", {"t", "u"}),
        ("DELETE FROM t WHERE a = 1", {"t"}),
        ("DELETE FROM t USING u WHERE t.id = u.id", {"t", "u"}),
        ("TRUNCATE t", {"t"}),
        ("TRUNCATE TABLE t, u", {"t", "u"}),
        ("MERGE INTO t USING u ON t.a = u.a WHEN MATCHED THEN DELETE", {"t", "u"}),
        ("COPY t FROM STDIN", {"t"}),
    ],
)
def test_writes_name_their_tables(classifier, sql, writes):
    result = classify(classifier, sql)
    assert result.kind is StatementKind.WRITE
    assert not result.cacheable
    assert result.writes is not None and writes <= result.writes
    assert result.is_write


def test_copy_to_is_an_uncached_read(classifier):
    result = classify(classifier, "COPY t TO STDOUT")
    assert not result.cacheable
    assert not result.is_write
    assert result.reads == {"t"}


# -- DDL ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        ("CREATE TABLE t (a int)", {"t"}),
        ("ALTER TABLE t ADD COLUMN c int", {"t"}),
        ("ALTER TABLE t RENAME TO u", {"t", "u"}),
        ("DROP TABLE t", {"t"}),
        ("DROP TABLE IF EXISTS public.t CASCADE", {"t"}),
        ("CREATE INDEX i ON t (a)", {"t"}),
        ("CREATE VIEW v AS SELECT * FROM t", {"v"}),
        ("COMMENT ON TABLE t IS 'x'", {"t"}),
        ("GRANT SELECT ON t TO someone", {"t"}),
    ],
)
def test_ddl_bumps_its_tables_and_the_catalog(classifier, sql, tables):
    result = classify(classifier, sql)
    assert result.kind is StatementKind.DDL
    assert not result.cacheable
    assert result.writes is not None
    assert tables | {CATALOG} <= result.writes


def test_temporary_table_changes_the_session(classifier):
    assert classify(classifier, "CREATE TEMP TABLE z (a int)").changes_session
    assert not classify(classifier, "CREATE TABLE z (a int)").changes_session


# -- reads that must not be cached --------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
        "WITH x AS (UPDATE t SET a = 1 RETURNING a) SELECT * FROM x",
        "WITH x AS (INSERT INTO t VALUES (1) RETURNING a) SELECT * FROM u",
    ],
)
def test_data_modifying_cte_is_a_write(classifier, sql):
    result = classify(classifier, sql)
    assert not result.cacheable
    assert result.writes is not None and "t" in result.writes


@pytest.mark.parametrize(
    "sql",
    ["SELECT * FROM t FOR UPDATE", "SELECT * FROM t FOR UPDATE OF t", "select 1 for share",
     "SELECT * FROM t FOR NO KEY UPDATE", "SELECT * FROM t FOR KEY SHARE SKIP LOCKED"],
)  # fmt: skip
def test_row_locks_are_not_cached(classifier, sql):
    result = classify(classifier, sql)
    assert not result.cacheable
    assert not result.is_write


@pytest.mark.parametrize("sql", ["SELECT * INTO u FROM t", "SELECT a INTO TEMP u FROM t"])
def test_select_into_writes_an_unknown_target(classifier, sql):
    result = classify(classifier, sql)
    assert not result.cacheable
    assert result.is_write


@pytest.mark.parametrize(
    "sql", ["SELECT now()", "SELECT random()", "SELECT clock_timestamp()", "SELECT pg_sleep(1)",
            "SELECT gen_random_uuid()", "SELECT current_timestamp", "SELECT txid_current()",
            "SELECT a FROM t WHERE b < now() - interval '1 day'",
            "SELECT current_setting('TimeZone')"],
)  # fmt: skip
def test_volatile_functions_are_not_cached_and_invalidate_nothing(classifier, sql):
    result = classify(classifier, sql)
    assert not result.cacheable
    assert not result.is_write


@pytest.mark.parametrize(
    "sql", ["SELECT my_func(a) FROM t", "SELECT nextval('s')", "SELECT pg_notify('c', 'x')",
            "SELECT * FROM t WHERE a = some_udf(1)"],
)  # fmt: skip
def test_unknown_functions_may_write_anything(classifier, sql):
    result = classify(classifier, sql)
    assert not result.cacheable
    assert result.writes is None  # whole database invalidated after it


@pytest.mark.parametrize("sql", ["SELECT set_config('a', 'b', false)",
                                 "SELECT pg_advisory_lock(1)"])  # fmt: skip
def test_session_functions(classifier, sql):
    result = classify(classifier, sql)
    assert not result.cacheable
    assert result.changes_session


@pytest.mark.parametrize(
    "sql", ["CALL p()", "DO $$ BEGIN END $$", "REFRESH MATERIALIZED VIEW mv", "LOCK TABLE t",
            "(SELECT 1)", "this is not sql at all"],
)  # fmt: skip
def test_unknown_statements_pass_through_and_invalidate_everything(classifier, sql):
    result = classify(classifier, sql)
    assert not result.cacheable
    assert result.writes is None


# -- cacheable reads --------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "reads"),
    [
        ("SELECT 1", set()),
        ("SELECT a FROM t", {"t"}),
        ("SELECT a FROM s.T", {"t"}),
        ("TABLE t", {"t"}),
        ("VALUES (1)", set()),
        ("SELECT * FROM t JOIN u ON t.a = u.a", {"t", "u"}),
        ("SELECT 1 UNION SELECT a FROM t", {"t"}),
        ("WITH c AS (SELECT a FROM t) SELECT * FROM c", {"t"}),
        ("SELECT count(*), upper(b), coalesce(a, 1) FROM t", {"t"}),
        ("SELECT * FROM generate_series(1, 3)", set()),
        ("SELECT relname FROM pg_class", {"pg_class", CATALOG}),
        ("select * from t where a = $1", {"t"}),
    ],
)
def test_cacheable_reads_name_what_they_read(classifier, sql, reads):
    result = classify(classifier, sql)
    assert result.kind is StatementKind.READ
    assert result.cacheable, result.reason
    assert result.reads == reads
    assert not result.is_write
    assert result.fingerprint


# -- multi-statement texts and comments ------------------------------------------


def test_multi_statement_reads_are_cacheable(classifier):
    result = classify(classifier, "SELECT a FROM t; SELECT b FROM u")
    assert result.cacheable
    assert result.reads == {"t", "u"}


@pytest.mark.parametrize(
    ("sql", "writes"),
    [
        ("SELECT 1; INSERT INTO t VALUES (1)", {"t"}),
        ("SELECT a FROM t; DELETE FROM u", {"u"}),
        ("INSERT INTO t VALUES (1); SELECT a FROM t", {"t"}),
        ("BEGIN; INSERT INTO t VALUES (1); COMMIT", {"t"}),
        ("DROP TABLE t; CREATE TABLE t (a int)", {"t", CATALOG}),
    ],
)
def test_any_write_in_a_multi_statement_text_invalidates(classifier, sql, writes):
    result = classify(classifier, sql)
    assert not result.cacheable
    assert result.writes is not None and writes <= result.writes


def test_multi_statement_with_unknown_invalidates_everything(classifier):
    result = classify(classifier, "SELECT 1; CALL p()")
    assert not result.cacheable
    assert result.writes is None


def test_multi_statement_transaction_effect(classifier):
    assert classify(classifier, "BEGIN; SELECT 1").tx is TxEffect.BEGIN
    assert classify(classifier, "SELECT 1; COMMIT").tx is TxEffect.END
    # A COMMIT between two BEGINs still commits: what was written must be bumped.
    assert classify(classifier, "BEGIN; COMMIT; BEGIN").tx is TxEffect.END


@pytest.mark.parametrize(
    "sql",
    ["SELECT 1 -- ; DELETE FROM t", "SELECT '; DELETE FROM t'", "SELECT $$;$$",
     "SELECT 1 /* ; DROP TABLE t */", "SELECT \"a;b\" FROM t"],
)  # fmt: skip
def test_semicolons_in_comments_and_literals_do_not_split(classifier, sql):
    result = classify(classifier, sql)
    assert result.cacheable, result.reason
    assert not result.is_write


def test_comments_do_not_hide_a_write(classifier):
    result = classify(classifier, "/* SELECT */ -- SELECT\n DELETE FROM t")
    assert result.kind is StatementKind.WRITE
    assert result.writes == {"t"}


@pytest.mark.parametrize("sql", ["", "   ", ";", ";;"])
def test_empty_texts(classifier, sql):
    result = classify(classifier, sql)
    assert result.kind is StatementKind.EMPTY
    assert not result.cacheable
    assert not result.is_write


@pytest.mark.parametrize("sql", ["-- only a comment", "/* c */"])
def test_comment_only_texts_are_not_cached(classifier, sql):
    assert not classify(classifier, sql).cacheable


def test_same_template_same_fingerprint(classifier):
    a = classify(classifier, "SELECT a FROM t WHERE id = 1")
    b = classify(classifier, "SELECT a FROM t WHERE id = 2")
    c = classify(classifier, "SELECT b FROM t WHERE id = 1")
    assert a.fingerprint == b.fingerprint != c.fingerprint


# -- memoisation --------------------------------------------------------------------


def test_memoised_by_exact_text():
    classifier = Classifier(RULES)
    first = classifier.classify("SELECT a FROM t")
    assert classifier.classify("SELECT a FROM t") is first
    assert classifier.classify(b"SELECT a FROM t") == first  # wire bytes, same verdict
    assert classifier.classify(b"SELECT a FROM t") is classifier.classify(b"SELECT a FROM t")
    assert classifier.classify("SELECT a FROM t ") is not first


def test_policy_runs_once_per_text():
    calls: list[Classification] = []

    def policy(stmt: Classification) -> Classification:
        calls.append(stmt)
        return stmt

    classifier = Classifier(RULES, policy=policy)
    for _ in range(3):
        classifier.classify("SELECT a FROM t")
        classifier.classify("INSERT INTO t VALUES (1)")  # not cacheable: no policy
    assert len(calls) == 1


def test_memo_is_bounded():
    classifier = Classifier(RULES, memo_size=3)
    first = classifier.classify("SELECT a FROM t0")
    for i in range(1, 5):
        classifier.classify(f"SELECT a FROM t{i}")
    assert classifier.classify("SELECT a FROM t0") is not first
    assert classifier.classify("SELECT a FROM t0") == first


def test_a_shape_in_use_stays_in_the_memo():
    """Texts with new literals each time (the simple protocol) fill the memo with
    texts; the shape they share must not be pushed out by them, or sqlglot parses
    the template again every ``memo_size`` statements."""
    classifier = Classifier(RULES, memo_size=3)
    first = classifier.classify("UPDATE t SET a = a + 1 WHERE id = 0")
    for i in range(1, 20):
        assert classifier.classify(f"UPDATE t SET a = a + {i} WHERE id = {i}") is first


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("UPDATE t SET a = a + -41 WHERE id = 7;", "UPDATE t SET a = a + -5 WHERE id = 90210;"),
        ("SELECT * FROM t WHERE n = 'it''s' AND x=1.5e3", "SELECT * FROM t WHERE n = '' AND x=2"),
    ],
)
def test_texts_differing_in_literals_share_a_shape(a, b):
    assert literal_shape(a.encode()) == literal_shape(b.encode()) is not None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("SELECT a FROM t1", "SELECT a FROM t2"),  # digits of a name
        ("SELECT a.1 FROM t", "SELECT a.2 FROM t"),
    ],
)
def test_digits_of_names_are_not_literals(a, b):
    assert literal_shape(a.encode()) != literal_shape(b.encode())


@pytest.mark.parametrize(
    "sql",
    ["SELECT E'\\'' FROM t", "SELECT u&'x' FROM t", "SELECT 1 -- '", "SELECT /* 1 */ 2",
     'SELECT "a1" FROM t', "SELECT $$x$$", "SELECT $1 FROM t", "SELECT x'1f'", "SELECT n'a'"],
)  # fmt: skip
def test_texts_the_simple_lexing_cannot_read_have_no_shape(sql):
    assert literal_shape(sql.encode()) is None


_SHAPE_TEMPLATES = [
    "SELECT {c} FROM {t} WHERE {c} = {v}",
    "SELECT {c}, {v} FROM {t} WHERE {c} IN ({v}, {v}) LIMIT {v}",
    "SELECT {c} FROM {t} WHERE {c} > {v} FOR UPDATE",
    "UPDATE {t} SET {c} = {c} + {v} WHERE {c} = {v};",
    "INSERT INTO {t} ({c}) VALUES ({v})",
    "DELETE FROM {t} WHERE {c} = -{v}",
    "SELECT {c} FROM {t}{v}",
    "SELECT {t}.{c}{v} FROM {t}",
    "SELECT now() + {v} FROM {t}",
]
_SHAPE_NAMES = st.sampled_from(["t", "t1", "t2", "x_9", "e", "E"])
_LITERALS = st.one_of(
    st.integers(0, 10**12).map(str),
    st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(repr),
    st.text(alphabet="ab' \\é1", max_size=6).map(lambda v: "'" + v.replace("'", "''") + "'"),
)


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_texts_sharing_a_shape_share_a_classification(data):
    """The memo hands a text the verdict of another of the same shape: two texts of
    one shape must classify alike, or a write could be missed or a read cached
    under the wrong tables. The two texts come from one template with names and
    literals drawn independently (names from a small set, so that shapes often
    match)."""
    template = data.draw(st.sampled_from(_SHAPE_TEMPLATES))

    def fill() -> str:
        text = template
        while "{" in text:
            head, _, rest = text.partition("{")
            field, rest = rest[0], rest[2:]
            value = data.draw(_LITERALS if field == "v" else _SHAPE_NAMES)
            text = head + value + rest
        return text

    a, b = fill(), fill()
    shape = literal_shape(a.encode())
    if shape is None or shape != literal_shape(b.encode()):
        return
    classifier = Classifier(RULES)
    first, second = classifier.classify_uncached(a), classifier.classify_uncached(b)
    for field in ("kind", "cacheable", "reads", "writes", "tx", "changes_session"):
        assert getattr(first, field) == getattr(second, field), (a, b, field)


# -- robustness ---------------------------------------------------------------------

_TOKENS = ["SELECT", "INSERT", "INTO", "FROM", "t", "(", ")", ";", "'", '"', "$$", "--", "/*",
           "*/", "WITH", "AS", "DELETE", "1", ",", "*", "\n", " ", "BEGIN", "SAVEPOINT", "FOR",
           "UPDATE", "E'\\'", "$1", "::", "[", "]", "\x00", "é"]  # fmt: skip
_SQLISH = st.lists(st.sampled_from(_TOKENS), max_size=30).map(" ".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), _SQLISH))
def test_arbitrary_text_never_raises(text):
    classifier = Classifier(RULES)
    result = classifier.classify(text)
    assert isinstance(result, Classification)
    if result.cacheable:
        assert result.kind is StatementKind.READ
        assert not result.is_write


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data):
    result = Classifier(RULES).classify(data)
    assert isinstance(result, Classification)


@pytest.mark.parametrize(
    "sql",
    ["SELECT * FROM t WHERE id IN ($1,$2)", "SELECT $1+$2", "SELECT ARRAY[$1,$2] FROM t",
     "SELECT $1::int,$2 FROM t"],
)  # fmt: skip
def test_placeholders_without_spaces_are_cacheable_reads(sql):
    """sqlglot alone takes "$1,$2" for a dollar-quoted string (as Prisma writes IN lists)."""
    result = Classifier(RULES).classify(sql)
    assert result.kind is StatementKind.READ and result.cacheable, result.reason


def test_placeholders_without_spaces_in_a_write_name_its_table():
    assert Classifier(RULES).classify("INSERT INTO t VALUES ($1,$2)").writes == {"t"}


def test_unparsable_query_with_builtin_functions_reads_and_invalidates_nothing():
    """A query sqlglot cannot parse must not count as a write when its tokens show
    a plain query calling built-ins (the unclosed parenthesis breaks the parse)."""
    result = Classifier(RULES).classify("SELECT coalesce(a, 1), array_agg(b) FROM t WHERE ((")
    assert result.kind is StatementKind.READ
    assert not result.cacheable
    assert result.writes == frozenset()


def test_asyncpg_type_introspection_is_a_cacheable_catalog_read():
    import asyncpg.introspection

    result = Classifier(RULES).classify(asyncpg.introspection.INTRO_LOOKUP_TYPES_13)
    assert result.kind is StatementKind.READ and result.cacheable
    assert CATALOG in result.reads  # DDL through wirecache invalidates it


@pytest.mark.parametrize(
    "sql",
    ["SELECT myfn(a) FROM t WHERE x = ((", "SELECT a FROM t WHERE x = (( FOR UPDATE",
     "SELECT set_config('a', 'b', false) FROM t WHERE ((",
     "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d WHERE (("],
)  # fmt: skip
def test_unparsable_query_that_may_write_invalidates_everything(sql):
    result = Classifier(RULES).classify(sql)
    assert result.reason.startswith("cannot parse")
    assert not result.cacheable
    assert result.writes is None


@pytest.mark.parametrize("sql", ["SELECT x::oid[] FROM t", "SELECT CAST($1 AS regtype[]) FROM t",
                                 "SELECT 1 FROM t WHERE id = any($1::oid[])"])  # fmt: skip
def test_arrays_of_types_sqlglot_does_not_know_are_read(sql):
    result = Classifier(RULES).classify(sql)
    assert result.kind is StatementKind.READ and result.cacheable and result.reads == {"t"}
