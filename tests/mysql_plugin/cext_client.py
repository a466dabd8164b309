"""Run statements with mysql-connector-python's C extension and print the rows as JSON.

Run in a child process by test_drivers.py: the extension needs the OpenSSL it
vendors (``mysql/vendor``) on LD_LIBRARY_PATH, which only works if no other
libssl was loaded first, and pytest's process has already loaded the system's.

Usage: python cext_client.py '{"connect": {...}, "steps": [["text"|"prepared", sql, params]]}'
"""

from __future__ import annotations

import json
import sys

import mysql.connector
from mysql.connector.connection_cext import CMySQLConnection


def main() -> None:
    spec = json.loads(sys.argv[1])
    conn = mysql.connector.connect(use_pure=False, autocommit=True, **spec["connect"])
    assert isinstance(conn, CMySQLConnection), type(conn)
    results = []
    try:
        text, prepared = conn.cursor(), conn.cursor(prepared=True)
        for kind, sql, params in spec["steps"]:
            cur = prepared if kind == "prepared" else text
            cur.execute(sql, params or ())
            rows = cur.fetchall() if cur.with_rows else []
            results.append([list(r) for r in rows])
        text.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        tls = bool(text.fetchall()[0][1])
    finally:
        conn.close()
    print(json.dumps({"results": results, "origin_leg_tls": tls}, default=str))


if __name__ == "__main__":
    main()
