"""More Python drivers through wirecache: aiomysql (asyncio) and mysql-connector-python's
C extension (libmysqlclient underneath, text and binary protocol).

Hits are proven from MariaDB's general log; each test also reads its own write back
(read-your-writes) through the same connection.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import mysql.connector
import pytest

#: The OpenSSL that mysql-connector-python's C extension was built against.
VENDOR = Path(mysql.connector.__file__).parent.parent / "vendor"


def _cext_error() -> str:
    """Why the C extension cannot run here (empty when it can)."""
    if importlib.util.find_spec("_mysql_connector") is None:
        return "mysql-connector-python's C extension (_mysql_connector) is not installed"
    env = {**os.environ, "LD_LIBRARY_PATH": str(VENDOR)}
    probe = subprocess.run([sys.executable, "-c", "import _mysql_connector"], env=env,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    if probe.returncode:
        return f"mysql-connector-python's C extension cannot load: {probe.stderr[-300:]}"
    return ""


CEXT_ERROR = _cext_error()

aiomysql = pytest.importorskip("aiomysql", reason="aiomysql is not installed")


def test_aiomysql_text_protocol(mariadb_server, proxy, table, marker):
    q = f"SELECT v FROM {table} WHERE id = %s {marker}"

    async def run() -> list:
        conn = await aiomysql.connect(
            host=proxy.host, port=proxy.port, user="native_user",
            password=mariadb_server.users["native_user"], db="app", autocommit=True,
        )  # fmt: skip
        seen = []
        try:
            async with conn.cursor() as cur:
                for _ in range(3):
                    await cur.execute(q, (1,))
                    seen.append(await cur.fetchall())
                await cur.execute(f"UPDATE {table} SET v = %s WHERE id = %s", ("aio", 1))
                await cur.execute(q, (1,))
                seen.append(await cur.fetchall())
                await cur.execute(q, (1,))
                seen.append(await cur.fetchall())
        finally:
            conn.close()
        return seen

    seen = asyncio.run(run())
    assert seen == [(("one",),)] * 3 + [(("aio",),)] * 2
    assert mariadb_server.statement_count(marker) == 2  # the miss, and once after the write


def test_aiomysql_pool_sees_writes_of_other_connections(mariadb_server, proxy, table, marker):
    q = f"SELECT COUNT(*) FROM {table} {marker}"

    async def run() -> list[int]:
        pool = await aiomysql.create_pool(
            host=proxy.host, port=proxy.port, user="native_user",
            password=mariadb_server.users["native_user"], db="app", autocommit=True,
            minsize=3, maxsize=3,
        )  # fmt: skip
        counts = []
        try:

            async def count() -> int:
                async with pool.acquire() as conn, conn.cursor() as cur:
                    await cur.execute(q)
                    ((n,),) = await cur.fetchall()
                    return n

            async def insert(i: int) -> None:
                async with pool.acquire() as conn, conn.cursor() as cur:
                    await cur.execute(f"INSERT INTO {table} VALUES (%s, 'p')", (i,))

            counts += await asyncio.gather(count(), count(), count())
            for i in range(10, 13):
                await insert(i)
                counts.append(await count())
        finally:
            pool.close()
            await pool.wait_closed()
        return counts

    counts = asyncio.run(run())
    assert counts == [2, 2, 2, 3, 4, 5]


CEXT_CLIENT = Path(__file__).with_name("cext_client.py")


def run_cext(mariadb_server, proxy, steps, **connect) -> dict:
    """Run ``steps`` with the C extension in a child process (see cext_client.py)."""
    spec = {
        "connect": {"host": proxy.host, "port": proxy.port, "user": "native_user",
                    "password": mariadb_server.users["native_user"], "database": "app",
                    **connect},
        "steps": steps,
    }  # fmt: skip
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(
        p for p in (str(VENDOR), os.environ.get("LD_LIBRARY_PATH", "")) if p)}  # fmt: skip
    done = subprocess.run([sys.executable, str(CEXT_CLIENT), json.dumps(spec)], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.skipif(bool(CEXT_ERROR), reason=CEXT_ERROR or "C extension available")
def test_connector_c_extension_text_and_prepared(mariadb_server, proxy, table, marker):
    text_q = f"SELECT v FROM {table} WHERE id = 2 {marker}"
    prep_q = f"SELECT v FROM {table} WHERE id = %s {marker}"
    steps = [["text", text_q, None]] * 3 + [["prepared", prep_q, [1]]] * 3
    steps += [["prepared", f"UPDATE {table} SET v = %s WHERE id = %s", ["cext", 1]],
              ["prepared", prep_q, [1]],
              ["text", f"UPDATE {table} SET v = 'c2' WHERE id = 2", None],
              ["text", text_q, None]]  # fmt: skip
    out = run_cext(mariadb_server, proxy, steps)
    assert out["results"] == [[["two"]]] * 3 + [[["one"]]] * 3 + [[], [["cext"]], [], [["c2"]]]
    executed = [s for s in mariadb_server.statements() if marker in s]
    assert sum("WHERE id = 2" in s for s in executed) == 2  # text: miss, after the write
    assert sum("WHERE id = 1" in s for s in executed) == 2  # binary: miss, after the write


@pytest.mark.skipif(bool(CEXT_ERROR), reason=CEXT_ERROR or "C extension available")
def test_connector_c_extension_over_tls(mariadb_server, proxy, marker):
    q = f"SELECT 41 + 1 {marker}"
    out = run_cext(mariadb_server, proxy, [["text", q, None]] * 2,
                   ssl_ca=str(mariadb_server.ca_path), ssl_verify_identity=True)  # fmt: skip
    assert out["results"] == [[[42]], [[42]]]
    assert mariadb_server.statement_count(marker) == 1
