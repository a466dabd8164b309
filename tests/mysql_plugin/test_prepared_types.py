"""An execute that leaves out its parameter types, after the one that sent them was
answered from the cache (regression).

libmariadb (like libmysqlclient) sends a prepared statement's parameter types only
with its first execute (new-params-bound 1); later executes send values alone and
the server reuses the types it was last given. On a new connection whose first
execute is a cache hit, the origin never received them: the next miss used to
reach it without types and fail with "Incorrect arguments to mysqld_stmt_execute"
(libmariadb's mysql_stmt_execute then failed, the bench's "execute id 28: 0").
The client here is the bench's load generator, a C program on libmariadb.
"""

from __future__ import annotations

import re
import subprocess
import uuid

import pymysql
import pytest
from wirecache.bench import mysql as mysql_bench

ROWS = 20


@pytest.fixture
def load_generator():
    try:
        return mysql_bench.load_generator()
    except RuntimeError as e:  # no compiler or no libmariadb-dev
        pytest.skip(str(e))


@pytest.fixture
def items_db(mariadb_server):
    """A fresh database with the load generator's table ``bench_items`` (ROWS rows)."""
    db = f"wc_{uuid.uuid4().hex[:12]}"
    conn = pymysql.connect(**mariadb_server.pymysql_kwargs(database="", autocommit=True))
    with conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{db}`")
        cur.execute(f"GRANT ALL PRIVILEGES ON `{db}`.* TO 'native_user'@'%'")
        cur.execute(f"CREATE TABLE `{db}`.bench_items "
                    "(id INT PRIMARY KEY, k INT NOT NULL, v VARCHAR(32) NOT NULL)")  # fmt: skip
        cur.executemany(f"INSERT INTO `{db}`.bench_items VALUES (%s, %s, %s)",
                        [(i, i * 10, f"v{i}") for i in range(1, ROWS + 1)])  # fmt: skip
    yield db
    conn = pymysql.connect(**mariadb_server.pymysql_kwargs(database="", autocommit=True))
    with conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE `{db}`")


def _load(binary, mariadb_server, proxy, db, executes: int) -> tuple[int, str]:
    """One connection: prepare, then ``executes`` executes of random ids in 1..ROWS
    (the same sequence every run); returns the failed count and stderr."""
    user = "native_user"
    cmd = [str(binary), proxy.host, str(proxy.port), user, mariadb_server.users[user], db,
           "prepared", "1", "0", str(executes), str(ROWS), "/dev/null"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    match = re.search(r"failed=(\d+)", proc.stdout)
    assert match is not None, proc.stderr or proc.stdout
    return int(match[1]), proc.stderr


def test_execute_after_a_hit_that_carried_the_types(
    mariadb_server, proxy, items_db, load_generator
):  # fmt: skip
    # The first connection stores the answer to its first execute only.
    assert _load(load_generator, mariadb_server, proxy, items_db, 1) == (0, "")
    since = mariadb_server.log_position()
    # A new connection: its first execute (the same id, with the types) is a hit; the
    # others go to the origin without types, which wirecache must add back.
    failed, errors = _load(load_generator, mariadb_server, proxy, items_db, 40)
    assert (failed, errors) == (0, "")
    executed = [s for s in mariadb_server.statements(since) if "bench_items" in s]
    assert 0 < len(executed) < 40  # some hits (the first execute), some misses
    # ...and the origin read every value with the right type.
    for statement in executed:
        ident = int(statement.rsplit("=", 1)[1])
        assert 1 <= ident <= ROWS, statement
