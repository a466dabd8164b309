"""MySQL's classification rules: what is cached, what invalidates what."""

from __future__ import annotations

import pytest
from wirecache.api import CATALOG, StatementKind, TxEffect
from wirecache.classify import Classifier
from wirecache_mysql.classify import RULES


@pytest.fixture(scope="module")
def classify():
    return Classifier(RULES).classify_uncached


@pytest.mark.parametrize(
    "sql",
    ["SELECT * FROM t WHERE id = 1", "SELECT a, COUNT(*) FROM t GROUP BY a",
     "SELECT FIND_IN_SET('a', tags) FROM t", "SELECT * FROM t WHERE id = ?",
     "SELECT 1; SELECT 2 FROM u", "SELECT 1"],
)  # fmt: skip
def test_cacheable_reads(classify, sql):
    r = classify(sql)
    assert r.kind is StatementKind.READ and r.cacheable, r.reason


@pytest.mark.parametrize(
    "sql",
    ["SELECT NOW()", "SELECT RAND()", "SELECT UUID()", "SELECT LAST_INSERT_ID()",
     "SELECT FOUND_ROWS()", "SELECT CONNECTION_ID()", "SELECT SYSDATE()", "SELECT CURDATE()",
     "SELECT UNIX_TIMESTAMP()", "SELECT @x", "SELECT @@time_zone", "SELECT * FROM t FOR UPDATE",
     "SELECT * FROM t LOCK IN SHARE MODE", "SELECT * FROM information_schema.tables",
     "SELECT * FROM performance_schema.threads", "SELECT ROW_COUNT()"],
)  # fmt: skip
def test_uncacheable_reads(classify, sql):
    r = classify(sql)
    assert not r.cacheable
    assert r.writes == frozenset()  # nothing to invalidate


@pytest.mark.parametrize(
    ("sql", "writes"),
    [("INSERT INTO t VALUES (1)", {"t"}),
     ("INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 2", {"t"}),
     ("REPLACE INTO t VALUES (1)", {"t"}),
     ("REPLACE app.t SET a = 1", {"t"}),
     ("UPDATE a JOIN b ON a.id = b.id SET a.x = 1, b.y = 2", {"a", "b"}),
     ("DELETE a, b FROM a JOIN b ON a.id = b.id", {"a", "b"}),
     ("TRUNCATE TABLE t", {"t"}),
     ("ALTER TABLE t ADD c INT", {"t", CATALOG}),
     ("DROP TABLE t", {"t", CATALOG}),
     ("RENAME TABLE a TO b, other.c TO `d`", {"a", "b", "c", "d", CATALOG}),
     ("CALL p()", None), ("LOCK TABLES t WRITE", None),
     ("LOAD DATA LOCAL INFILE '/x' INTO TABLE t", None), ("DO my_function()", None),
     ("SELECT my_udf(1)", None), ("EXECUTE stmt", None)],
)  # fmt: skip
def test_writes(classify, sql, writes):
    r = classify(sql)
    assert not r.cacheable
    assert r.writes == (None if writes is None else frozenset(writes)), r.reason


@pytest.mark.parametrize(
    "sql", ["SET NAMES utf8mb4", "SET time_zone = '+02:00'", "SET @x = 1", "USE other",
            "SELECT 1 INTO @x", "SELECT @x := 2", "SET SESSION sql_mode = ''",
            "SELECT GET_LOCK('a', 1)", "CREATE TEMPORARY TABLE tmp (a INT)"],
)  # fmt: skip
def test_session_changes(classify, sql):
    r = classify(sql)
    assert r.changes_session and not r.cacheable


@pytest.mark.parametrize(
    ("sql", "tx"),
    [("BEGIN", TxEffect.BEGIN), ("START TRANSACTION READ ONLY", TxEffect.BEGIN),
     ("COMMIT", TxEffect.END), ("ROLLBACK", TxEffect.END), ("SAVEPOINT a", TxEffect.OTHER),
     ("RELEASE SAVEPOINT a", TxEffect.OTHER), ("XA START 'x'", TxEffect.OTHER)],
)  # fmt: skip
def test_transaction_control(classify, sql, tx):
    r = classify(sql)
    assert r.kind is StatementKind.TRANSACTION and r.tx is tx


@pytest.mark.parametrize("sql", ["SHOW TABLES", "DESCRIBE t", "EXPLAIN SELECT 1", "HELP 'x'"])
def test_harmless(classify, sql):
    r = classify(sql)
    assert not r.cacheable and r.writes == frozenset() and not r.changes_session


@pytest.mark.parametrize(
    "sql",
    ["EXPLAIN ANALYZE UPDATE t SET v = 1", "explain analyze delete from t where id = 2",
     "DESCRIBE ANALYZE INSERT INTO t VALUES (1)", "EXPLAIN ANALYZE FORMAT=TREE DELETE FROM t",
     "ANALYZE UPDATE t SET v = 1", "ANALYZE DELETE FROM t WHERE id = 2",
     "ANALYZE FORMAT=JSON DELETE FROM t", "EXPLAIN /* c */ ANALYZE DELETE FROM t"],
)  # fmt: skip
def test_explain_analyze_and_mariadb_analyze_run_their_statement(classify, sql):
    """MySQL 8's EXPLAIN ANALYZE and MariaDB's ANALYZE <stmt> execute the statement:
    never harmless, never cached; their targets are unknown, so the whole database
    is invalidated after them."""
    r = classify(sql)
    assert not r.cacheable and r.is_write and r.writes is None, r


@pytest.mark.parametrize(
    "sql",
    ["EXPLAIN UPDATE t SET v = 1", "EXPLAIN DELETE FROM t", "EXPLAIN FORMAT=JSON SELECT 1",
     "EXPLAIN EXTENDED SELECT * FROM t", "DESC t", "ANALYZE TABLE t"],
)  # fmt: skip
def test_plain_explain_writes_nothing(classify, sql):
    r = classify(sql)
    assert not r.cacheable and not r.is_write, r
