"""A private PostgreSQL 15 cluster for the test session.

The cluster is configured for what the proxy tests need to observe: one login
role per password authentication method, TLS with the test CA, and every
statement written to a log file so tests can prove whether a query was
answered from the cache or reached the origin.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from . import (
    MissingBinaryError,
    ServerStartError,
    die_with_parent,
    log_tail,
    start_with_retries,
    stop_process,
    wait_until_ready,
)
from .tls import TLSFiles

PACKAGE = "postgresql-15"
CONTRIB_PACKAGE = "postgresql-contrib"
BINDIR_CANDIDATES = (Path("/usr/lib/postgresql/15/bin"),)
TEST_OS_USER = "wirecache-test"

SUPERUSER = "postgres"
# Login role -> pg_hba.conf auth method. The superuser is included so admin
# connections exercise scram too.
AUTH_METHODS: Mapping[str, str] = {
    SUPERUSER: "scram-sha-256",
    "scram_user": "scram-sha-256",
    "md5_user": "md5",
    "plain_user": "password",
    "trust_user": "trust",
}
DATABASES = ("app", "other")

# The prefix starts every log entry, so multi-line entries can be told apart
# from continuation lines. UTC and the C locale keep it stable.
LOG_LINE_PREFIX = "%m [%p] %q%u@%d "
_ENTRY_RE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC \[\d+\] (?:\S*@\S* )?"
    r"(?P<level>[A-Z0-9]+):  (?P<message>.*)$"
)
# "statement: ..." is a simple-protocol Query message; "execute <name>: ..."
# is an extended-protocol Execute. "execute fetch from ..." is a further
# Execute on an already-running portal, i.e. not a new statement.
_STATEMENT_RE = re.compile(r"^(?:statement|execute (?!fetch from )\S+): (?P<sql>.*)$", re.DOTALL)


@dataclass(frozen=True)
class PostgresServer:
    """Connection details of the running test cluster, and log inspection.

    ``users`` maps every login role (including the superuser) to its password;
    ``trust_user`` has one too, but the server never asks for it.
    """

    host: str
    port: int
    ca_path: Path
    superuser: str
    superuser_password: str
    users: Mapping[str, str] = field(hash=False)
    log_path: Path
    data_dir: Path
    socket_dir: Path

    def dsn(self, user: str = SUPERUSER, dbname: str = "app", **params: str | int) -> str:
        """Return a libpq ``key=value`` string for ``user`` over TCP.

        The user's password is filled in unless ``params`` gives one (tests of
        wrong passwords pass ``password=...``). TLS is left to the caller, e.g.
        ``sslmode="verify-full", sslrootcert=str(server.ca_path)``.
        """
        if user in self.users:
            params.setdefault("password", self.users[user])
        params.setdefault("host", self.host)
        params.setdefault("port", self.port)
        return make_conninfo(user=user, dbname=dbname, **params)

    def log_position(self) -> int:
        """Return the current end of the statement log, to pass as ``since``."""
        return self.log_path.stat().st_size

    def statements(self, since: int = 0) -> list[str]:
        """Return the SQL text of each statement that reached the server.

        Reads the ``log_statement=all`` log from byte offset ``since``. Both
        protocols are covered: the simple protocol logs ``statement: <sql>``,
        the extended protocol ``execute <unnamed>: <sql>`` or
        ``execute S_1: <sql>`` (bind values follow in a separate DETAIL
        entry, so ``<sql>`` keeps its ``$1`` placeholders). The server writes
        the entry before running the statement, so it is in the file by the
        time the client has its result.
        """
        with self.log_path.open("rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", errors="replace")
        found: list[str] = []
        entry: list[str] | None = None
        for line in text.splitlines():
            match = _ENTRY_RE.match(line)
            if match is None:
                # Continuation of a multi-line message; the server indents
                # these lines with a tab.
                if entry is not None:
                    entry.append(line.removeprefix("\t"))
                continue
            if entry is not None:
                found.append("\n".join(entry))
            entry = None
            if match["level"] == "LOG":
                stmt = _STATEMENT_RE.match(match["message"])
                if stmt is not None:
                    entry = [stmt["sql"]]
        if entry is not None:
            found.append("\n".join(entry))
        return found

    def statement_count(self, sql_substring: str, *, since: int = 0) -> int:
        """Count statements containing ``sql_substring`` that reached the server.

        Uses the statement log rather than pg_stat_statements: the log keeps
        each statement's literal text and every execution, whereas
        pg_stat_statements normalizes constants to ``$n`` (so a substring with
        a literal would not match) and its counters are only updated once a
        statement finishes. Use a unique marker (e.g. a comment) per test, or
        ``since=server.log_position()``, because the cluster is shared by the
        whole session.
        """
        return sum(sql_substring in stmt for stmt in self.statements(since))


def _bindir() -> Path:
    """Locate PostgreSQL 15's server binaries (they are not on ``PATH``)."""
    candidates = list(BINDIR_CANDIDATES)
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "postgres").exists():
            return bindir
    raise MissingBinaryError(
        f"PostgreSQL 15 server binaries (initdb, postgres) not found in "
        f"{', '.join(map(str, candidates))}; install the Debian package {PACKAGE!r} "
        f"(apt-get install -y {PACKAGE} {CONTRIB_PACKAGE})"
    )


def _check_pg_stat_statements(bindir: Path) -> None:
    """Fail early and clearly if the preloaded extension is missing."""
    libdir = bindir.parent / "lib"
    if not (libdir / "pg_stat_statements.so").exists():
        raise ServerStartError(
            f"pg_stat_statements.so is missing from {libdir}; install the Debian "
            f"packages {PACKAGE!r} and {CONTRIB_PACKAGE!r}"
        )


def _server_identity() -> tuple[int, int] | None:
    """Return (uid, gid) to run PostgreSQL as, or None to run as ourselves.

    PostgreSQL refuses to run as root, and the tests run as root in CI. A
    dedicated system user is created if possible so the cluster's files are
    not owned by ``nobody`` (which other services may use); ``nobody`` is the
    fallback when ``useradd`` is unavailable.
    """
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(TEST_OS_USER)
        return entry.pw_uid, entry.pw_gid
    useradd = shutil.which("useradd")
    if useradd is not None:
        # A concurrent session may create it first; getpwnam below decides.
        subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home",
             "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", TEST_OS_USER],
            capture_output=True,
        )
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(TEST_OS_USER)
            return entry.pw_uid, entry.pw_gid
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def _run_as(identity: tuple[int, int] | None) -> dict[str, object]:
    """Popen arguments that drop to ``identity`` (and its groups only)."""
    if identity is None:
        return {}
    uid, gid = identity
    return {"user": uid, "group": gid, "extra_groups": []}


def _hba_conf() -> str:
    """pg_hba.conf giving each test role its auth method over TCP, with or without TLS.

    ``hostssl`` lines come first so TLS connections match them; the ``host``
    lines then cover plain TCP. Roles that tests create themselves fall
    through to scram-sha-256.
    """
    lines = ["# Generated by tests/servers/postgres.py", "local all all scram-sha-256"]
    for conn_type in ("hostssl", "host"):
        for address in ("127.0.0.1/32", "::1/128"):
            for role, method in AUTH_METHODS.items():
                lines.append(f"{conn_type} all {role} {address} {method}")
            lines.append(f"{conn_type} all all {address} scram-sha-256")
    return "\n".join(lines) + "\n"


def _postgresql_conf(root: Path, cert: Path, key: Path, ca: Path) -> str:
    settings = {
        "listen_addresses": "'127.0.0.1'",
        "unix_socket_directories": f"'{root}'",
        "max_connections": "200",
        "ssl": "on",
        "ssl_cert_file": f"'{cert}'",
        "ssl_key_file": f"'{key}'",
        "ssl_ca_file": f"'{ca}'",
        "password_encryption": "'scram-sha-256'",
        "shared_preload_libraries": "'pg_stat_statements'",
        "pg_stat_statements.track": "all",
        # Every statement goes to stderr, which we redirect to a file; see
        # PostgresServer.statements for why the log is the source of truth.
        "log_statement": "'all'",
        "log_destination": "'stderr'",
        "logging_collector": "off",
        "log_line_prefix": f"'{LOG_LINE_PREFIX}'",
        "log_timezone": "'UTC'",
        "log_connections": "on",
        "lc_messages": "'C'",
        # Durability is pointless for a throwaway cluster and costs CI time.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    return "\n# Added by tests/servers/postgres.py\n" + "".join(
        f"{name} = {value}\n" for name, value in settings.items()
    )


def _setup_roles_and_databases(server: PostgresServer) -> None:
    """Create the test roles and databases, and let every role use them.

    ``md5_user`` is created while ``password_encryption`` is md5 because the
    md5 auth method can only check passwords stored as md5 hashes.
    """
    roles = [role for role in AUTH_METHODS if role != SUPERUSER]
    with psycopg.connect(server.dsn(dbname="postgres"), autocommit=True) as conn:
        for role in roles:
            encryption = "md5" if AUTH_METHODS[role] == "md5" else "scram-sha-256"
            conn.execute(sql.SQL("SET password_encryption = {}").format(sql.Literal(encryption)))
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(server.users[role])
                )
            )
        for db in DATABASES:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(db), sql.Identifier(SUPERUSER)
                )
            )
    grantees = sql.SQL(", ").join(sql.Identifier(role) for role in roles)
    for db in DATABASES:
        with psycopg.connect(server.dsn(dbname=db), autocommit=True) as conn:
            # PostgreSQL 15 no longer lets everyone create in schema public.
            conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(db), grantees))
            conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(grantees))
            if db == "app":
                conn.execute("CREATE EXTENSION pg_stat_statements")


@contextlib.contextmanager
def start_postgres(log_dir: Path, tls: TLSFiles) -> Iterator[PostgresServer]:
    """Run a fresh cluster until the ``with`` block ends (also on errors).

    The data dir is made with ``tempfile`` rather than under ``log_dir``
    (pytest's tmp dir): pytest keeps its tmp root at mode 0700, which the
    unprivileged server user cannot enter. The log stays in ``log_dir``, which
    the server never opens itself (it inherits the file as stderr), so it
    survives the run for post-mortems alongside pytest's other tmp files.
    """
    bindir = _bindir()
    _check_pg_stat_statements(bindir)
    identity = _server_identity()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "postgres.log"
    root = Path(tempfile.mkdtemp(prefix="wirecache-pg-"))
    try:
        os.chmod(root, 0o700)
        if identity is not None:
            os.chown(root, *identity)
        data_dir = root / "data"
        # Private copies: the server user must own its key (PostgreSQL checks)
        # and cannot read pytest's tmp dir.
        cert, key, ca = root / "server.crt", root / "server.key", root / "ca.crt"
        shutil.copyfile(tls.cert_chain_path, cert)
        shutil.copyfile(tls.key_path, key)
        shutil.copyfile(tls.ca_path, ca)
        os.chmod(key, 0o600)
        superuser_password = secrets.token_urlsafe(16)
        pwfile = root / "pwfile"
        pwfile.write_text(superuser_password + "\n")
        if identity is not None:
            for path in (cert, key, ca, pwfile):
                os.chown(path, *identity)

        with log_path.open("ab") as log:
            initdb = subprocess.run(
                [str(bindir / "initdb"), "--pgdata", str(data_dir), "--username", SUPERUSER,
                 "--pwfile", str(pwfile), "--auth", "scram-sha-256", "--encoding", "UTF8",
                 "--no-locale", "--no-sync"],
                cwd=root, stdout=log, stderr=subprocess.STDOUT, **_run_as(identity),
            )
        pwfile.unlink()
        if initdb.returncode != 0:
            raise ServerStartError(
                f"initdb failed with code {initdb.returncode}; log {log_path}:\n"
                f"{log_tail(log_path)}"
            )
        with (data_dir / "postgresql.conf").open("a") as conf:
            conf.write(_postgresql_conf(root, cert, key, ca))
        (data_dir / "pg_hba.conf").write_text(_hba_conf())

        passwords = {role: secrets.token_urlsafe(16) for role in AUTH_METHODS}
        passwords[SUPERUSER] = superuser_password

        def start(port: int) -> tuple[PostgresServer, subprocess.Popen[bytes]]:
            server = PostgresServer(
                host="127.0.0.1", port=port, ca_path=tls.ca_path, superuser=SUPERUSER,
                superuser_password=superuser_password, users=passwords, log_path=log_path,
                data_dir=data_dir, socket_dir=root,
            )
            offset = log_path.stat().st_size
            with log_path.open("ab") as log:
                proc = subprocess.Popen(
                    [str(bindir / "postgres"), "-D", str(data_dir), "-p", str(port)],
                    cwd=root, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    preexec_fn=die_with_parent(signal.SIGQUIT), **_run_as(identity),
                )
            try:
                wait_until_ready(
                    proc,
                    lambda: psycopg.connect(
                        server.dsn(dbname="postgres"), connect_timeout=5
                    ).close(),
                    what="postgres", log_path=log_path, log_offset=offset,
                )
            except BaseException:
                stop_process(proc, signal.SIGQUIT)
                raise
            return server, proc

        server, proc = start_with_retries(start)
        try:
            _setup_roles_and_databases(server)
            yield server
        finally:
            # SIGINT is PostgreSQL's "fast" shutdown: disconnect clients, stop.
            stop_process(proc, signal.SIGINT)
    finally:
        shutil.rmtree(root, ignore_errors=True)
