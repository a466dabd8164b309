"""Node drivers through wirecache: ``mysql2`` and ``mariadb``, each with ``query`` (text
protocol) and ``execute`` (binary protocol), driven by tests/node/mysql_query.js.

Hits are proven from MariaDB's general log; every scenario also reads its own
write back (read-your-writes). Install the drivers with
``npm install --prefix tests/node`` (scripts/setup does it from package.json).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from servers.node import NODE_DIR

NODE = shutil.which("node")
SCRIPT = NODE_DIR / "mysql_query.js"
DRIVERS = ("mysql2", "mariadb")


def run_node(driver: str, config: dict, steps: list) -> list:
    if NODE is None:
        pytest.skip("node is not installed")
    if not (NODE_DIR / "node_modules" / driver).is_dir():
        pytest.skip(f"Node {driver} is not installed: run `npm install --prefix {NODE_DIR}`")
    spec = json.dumps({"driver": driver, "config": config, "steps": steps})
    done = subprocess.run([NODE, str(SCRIPT), spec], capture_output=True, text=True,
                          timeout=60, cwd=NODE_DIR)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)["results"]


def config(mariadb_server, proxy, user: str = "native_user", **extra) -> dict:
    return {"host": proxy.host, "port": proxy.port, "user": user,
            "password": mariadb_server.users[user], "database": "app", **extra}  # fmt: skip


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("kind", ["query", "execute"])
def test_node_driver_hits_and_reads_its_writes(mariadb_server, proxy, table, marker, driver,
                                               kind):  # fmt: skip
    q = f"SELECT id, v FROM {table} WHERE id = ? {marker}"
    write = f"UPDATE {table} SET v = ? WHERE id = ?"
    steps = [[kind, q, [1]]] * 3 + [[kind, write, [f"{driver}-{kind}", 1]]]
    steps += [[kind, q, [1]]] * 2 + [[kind, q, [2]]] * 2
    results = run_node(driver, config(mariadb_server, proxy), steps)
    updated = f"{driver}-{kind}"
    assert results == [[[1, "one"]]] * 3 + [[]] + [[[1, updated]]] * 2 + [[[2, "two"]]] * 2
    executed = [s for s in mariadb_server.statements() if marker in s]
    # id 1: the miss, then once after the write; id 2: one miss.
    assert sum("id = 1" in s for s in executed) == 2, executed
    assert sum("id = 2" in s for s in executed) == 1, executed


@pytest.mark.parametrize("driver", DRIVERS)
def test_node_driver_sees_writes_of_another_connection(mariadb_server, proxy, table, marker,
                                                       driver):  # fmt: skip
    q = f"SELECT COUNT(*) FROM {table} {marker}"
    first = run_node(driver, config(mariadb_server, proxy), [["execute", q, []]] * 2)
    run_node(driver, config(mariadb_server, proxy),
             [["query", f"INSERT INTO {table} VALUES (3, 'three')", []]])  # fmt: skip
    after = run_node(driver, config(mariadb_server, proxy), [["execute", q, []]] * 2)
    assert first == [[[2]], [[2]]] and after == [[[3]], [[3]]]
    assert mariadb_server.statement_count(marker) == 2


def test_node_mariadb_ed25519_and_tls(mariadb_server, proxy, marker):
    """The mariadb connector speaks client_ed25519; TLS verified against the test CA."""
    ca = mariadb_server.ca_path.read_text()
    q = f"SELECT 40 + ? {marker}"
    cfg = config(mariadb_server, proxy, "ed25519_user", ssl={"ca": ca})
    assert run_node("mariadb", cfg, [["execute", q, [2]]] * 2) == [[[42]], [[42]]]
    assert mariadb_server.statement_count(marker) == 1


def test_node_mysql2_tls(mariadb_server, proxy, marker):
    ca = mariadb_server.ca_path.read_text()
    q = f"SELECT 40 + ? {marker}"
    cfg = config(mariadb_server, proxy, ssl={"ca": ca})
    assert run_node("mysql2", cfg, [["query", q, [2]]] * 2) == [[[42]], [[42]]]
    assert mariadb_server.statement_count(marker) == 1
