"""A private MariaDB server for the test session.

Configured like the PostgreSQL one, for what the proxy tests observe: a user
per password plugin, TLS with the test CA, and a general query log so tests
can prove whether a query reached the origin.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import signal
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

from . import (
    ServerStartError,
    die_with_parent,
    find_binary,
    log_tail,
    start_with_retries,
    stop_process,
    wait_until_ready,
)
from .tls import TLSFiles

PACKAGE = "mariadb-server"
ADMIN_USER = "root"
# User -> the CREATE USER clause for its authentication plugin; %s is the password.
AUTH_CLAUSES: Mapping[str, str] = {
    "native_user": "IDENTIFIED VIA mysql_native_password USING PASSWORD(%s)",
    "ed25519_user": "IDENTIFIED VIA ed25519 USING PASSWORD(%s)",
}
DATABASES = ("app", "other")

# A general-log entry: "<yymmdd hh:mm:ss>" only when the second changed, then
# "\t <thread id> <command>\t<argument>". Continuation lines of a multi-line
# query carry no such header.
_ENTRY_RE = re.compile(
    r"^(?:\d{6} [ \d]\d:\d\d:\d\d)?\t\s*\d+ (?P<command>[A-Za-z][A-Za-z ]*)\t(?P<argument>.*)$"
)
# The banner the server writes when it opens the log (at start, FLUSH LOGS).
_BANNER_RE = re.compile(r"^(?:\S+, Version: |Tcp port: |Time\s+Id\s+Command)")
# COM_QUERY is logged as "Query", COM_STMT_EXECUTE as "Execute" (with the
# bound values substituted); "Prepare" alone runs nothing.
_COUNTED_COMMANDS = frozenset({"Query", "Execute"})


@dataclass(frozen=True)
class MariaDBServer:
    """Connection details of the running test server, and log inspection.

    ``users`` maps every user, including the admin ``root``, to its password.
    Users may connect with or without TLS; the server offers it and does not
    require it, so tests can cover both.
    """

    host: str
    port: int
    ca_path: Path
    admin_user: str
    admin_password: str
    users: Mapping[str, str] = field(hash=False)
    general_log_path: Path
    error_log_path: Path
    data_dir: Path
    socket_path: Path

    def pymysql_kwargs(
        self, user: str = ADMIN_USER, database: str = "app", *, tls: bool = True, **overrides: Any
    ) -> dict[str, Any]:
        """Keyword arguments for ``pymysql.connect`` as ``user`` over TCP.

        With ``tls`` the server certificate is verified against the test CA,
        host name included. ``overrides`` win, e.g. ``password="wrong"``.
        """
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": user,
            "password": self.users.get(user, ""),
            "database": database,
        }
        if tls:
            kwargs["ssl"] = {"ca": str(self.ca_path), "check_hostname": True}
        kwargs.update(overrides)
        return kwargs

    def log_position(self) -> int:
        """Return the current end of the general log, to pass as ``since``."""
        return self.general_log_path.stat().st_size

    def statements(self, since: int = 0) -> list[str]:
        """Return the SQL of each statement that reached the server.

        Reads the general log from byte offset ``since`` and keeps ``Query``
        (text protocol) and ``Execute`` (binary protocol, values substituted)
        entries. The server writes and flushes an entry before running the
        statement, so it is in the file by the time the client has a result.
        """
        with self.general_log_path.open("rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", errors="replace")
        found: list[str] = []
        entry: list[str] | None = None
        for line in text.splitlines():
            match = _ENTRY_RE.match(line)
            if match is None and not _BANNER_RE.match(line):
                if entry is not None:
                    entry.append(line)
                continue
            if entry is not None:
                found.append("\n".join(entry))
            entry = None
            if match is not None and match["command"] in _COUNTED_COMMANDS:
                entry = [match["argument"]]
        if entry is not None:
            found.append("\n".join(entry))
        return found

    def statement_count(self, sql_substring: str, *, since: int = 0) -> int:
        """Count statements containing ``sql_substring`` that reached the server.

        The server is shared by the whole session, so use a unique marker
        (e.g. a comment) per test or ``since=server.log_position()``.
        """
        return sum(sql_substring in stmt for stmt in self.statements(since))


def _common_options(data_dir: Path) -> list[str]:
    """Options both the bootstrap and the server need to agree on.

    ``--no-defaults`` keeps the machine's /etc/mysql config (and its shared
    server's port and socket) out; the charset lines restore what Debian's
    config would set, so the server behaves like a stock Debian install.
    """
    return [
        "--no-defaults",
        f"--datadir={data_dir}",
        "--user=root",
        "--skip-name-resolve",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_general_ci",
        "--innodb-buffer-pool-size=64M",
        # Durability is pointless for a throwaway server and costs CI time.
        "--innodb-flush-log-at-trx-commit=0",
        "--innodb-doublewrite=0",
    ]


def _setup_users_and_databases(server: MariaDBServer) -> None:
    """Set the admin password, create the test users and databases.

    Runs over the unix socket as the password-less root that
    ``mariadb-install-db --auth-root-authentication-method=normal`` leaves.
    """
    conn = pymysql.connect(unix_socket=str(server.socket_path), user=ADMIN_USER, autocommit=True)
    with conn, conn.cursor() as cur:
        cur.execute("INSTALL SONAME 'auth_ed25519'")
        # mariadb-install-db also makes root@<hostname>, which --skip-name-resolve
        # ignores (and refuses to ALTER); only the loopback accounts matter.
        cur.execute(
            "SELECT host FROM mysql.user WHERE user = %s AND host IN ('localhost', %s, '::1')",
            (ADMIN_USER, server.host),
        )
        for (host,) in cur.fetchall():
            cur.execute(
                "ALTER USER %s@%s IDENTIFIED BY %s", (ADMIN_USER, host, server.admin_password)
            )
        for db in DATABASES:
            cur.execute(f"CREATE DATABASE `{db}`")
        for user, clause in AUTH_CLAUSES.items():
            cur.execute(f"CREATE USER %s@'%%' {clause}", (user, server.users[user]))
            for db in DATABASES:
                cur.execute(f"GRANT ALL PRIVILEGES ON `{db}`.* TO %s@'%%'", (user,))


@contextlib.contextmanager
def start_mariadb(base_dir: Path, tls: TLSFiles) -> Iterator[MariaDBServer]:
    """Run a fresh server in ``base_dir`` until the ``with`` block ends (also on errors)."""
    mariadbd = find_binary(["/usr/sbin/mariadbd", "mariadbd"], PACKAGE)
    install_db = find_binary(["mariadb-install-db", "mysql_install_db"], PACKAGE)
    base_dir.mkdir(parents=True, exist_ok=True)
    data_dir = base_dir / "data"
    error_log = base_dir / "error.log"
    general_log = base_dir / "general.log"
    socket_path = base_dir / "mariadbd.sock"

    with error_log.open("ab") as log:
        install = subprocess.run(
            [str(install_db), *_common_options(data_dir),
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
    if install.returncode != 0:
        raise ServerStartError(
            f"mariadb-install-db failed with code {install.returncode}; log {error_log}:\n"
            f"{log_tail(error_log)}"
        )

    users = {user: secrets.token_urlsafe(16) for user in AUTH_CLAUSES}
    users[ADMIN_USER] = admin_password = secrets.token_urlsafe(16)

    def start(port: int) -> tuple[MariaDBServer, subprocess.Popen[bytes]]:
        server = MariaDBServer(
            host="127.0.0.1", port=port, ca_path=tls.ca_path, admin_user=ADMIN_USER,
            admin_password=admin_password, users=users, general_log_path=general_log,
            error_log_path=error_log, data_dir=data_dir, socket_path=socket_path,
        )
        offset = error_log.stat().st_size
        with error_log.open("ab") as log:
            proc = subprocess.Popen(
                [str(mariadbd), *_common_options(data_dir),
                 f"--port={port}", "--bind-address=127.0.0.1", f"--socket={socket_path}",
                 f"--pid-file={base_dir / 'mariadbd.pid'}", f"--log-error={error_log}",
                 "--general-log=ON", f"--general-log-file={general_log}",
                 "--performance-schema=ON", "--max-connections=200",
                 f"--ssl-cert={tls.cert_chain_path}", f"--ssl-key={tls.key_path}",
                 f"--ssl-ca={tls.ca_path}"],
                cwd=base_dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent(signal.SIGKILL),
            )
        try:
            wait_until_ready(
                proc,
                lambda: pymysql.connect(
                    unix_socket=str(socket_path), user=ADMIN_USER, connect_timeout=5
                ).close(),
                what="mariadbd", log_path=error_log, log_offset=offset,
            )
        except BaseException:
            stop_process(proc, signal.SIGKILL)
            raise
        return server, proc

    server, proc = start_with_retries(start)
    try:
        _setup_users_and_databases(server)
        yield server
    finally:
        stop_process(proc, signal.SIGTERM)
