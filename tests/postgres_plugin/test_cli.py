"""The ``wirecache`` command, run as a subprocess the way a user runs it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from importlib.metadata import version

import psycopg
import pytest
from wirecache import cli

from postgres_plugin.cli import WIRECACHE, free_port, run_cli, serve

PSQL = shutil.which("psql") or "/usr/bin/psql"


def psql(served, pg_server, *commands: str, user: str = "scram_user", sslmode: str = "require",
         password: str | None = None, background: bool = False):  # fmt: skip
    """Run psql against ``served`` with ``-c`` for each command (unaligned, tuples only)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGPASSWORD"] = password or pg_server.users[user]
    env["PGCONNECT_TIMEOUT"] = "10"
    conninfo = (f"host={served.host} port={served.port} user={user} dbname=app "
                f"sslmode={sslmode}")  # fmt: skip
    args = [PSQL, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", conninfo]
    for command in commands:
        args += ["-c", command]
    if background:
        return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)  # fmt: skip
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=30)


@pytest.fixture
def served(pg_server, tmp_path):
    with serve(pg_server.host, pg_server.port, tmp_path / "serve") as s:
        yield s


def test_psql_through_serve_caches(pg_server, served, marker):
    query = f"SELECT 'via psql', current_user {marker}"
    first = psql(served, pg_server, query, "SHOW ssl")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["via psql|scram_user", "on"]
    # Another psql, another connection: answered by wirecache.
    second = psql(served, pg_server, query)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "via psql|scram_user"
    assert pg_server.statement_count(marker) == 1


def test_psql_md5_and_wrong_password(pg_server, served):
    result = psql(served, pg_server, "SELECT current_user", user="md5_user", sslmode="disable")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "md5_user"
    bad = psql(served, pg_server, "SELECT 1", user="scram_user", password="wrong")
    assert bad.returncode != 0
    assert 'password authentication failed for user "scram_user"' in bad.stderr


def test_sigterm_exits_cleanly(pg_server, served):
    with psycopg.connect(pg_server.dsn("scram_user", host=served.host, port=served.port,
                                       sslmode="require"), autocommit=True) as idle:  # fmt: skip
        assert idle.execute("SELECT 1").fetchone() == (1,)
        started = time.monotonic()
        assert served.stop() == 0
        # An idle session does not hold the shutdown up.
        assert time.monotonic() - started < 5
        with pytest.raises(psycopg.OperationalError):
            idle.execute("SELECT 1")
    assert "server.stopped" in served.log()


def test_sigterm_lets_statement_in_flight_finish(pg_server, served, marker):
    slow = psql(served, pg_server, f"SELECT pg_sleep(1), 'finished' {marker}", background=True)
    deadline = time.monotonic() + 10
    while pg_server.statement_count(marker) == 0:
        assert time.monotonic() < deadline, "the slow statement never reached the origin"
        time.sleep(0.02)
    served.process.send_signal(signal.SIGTERM)
    # wirecache stops accepting at once...
    refused = False
    while not refused and slow.poll() is None:
        try:
            socket.create_connection((served.host, served.port), timeout=1).close()
            time.sleep(0.02)
        except OSError:
            refused = True
    assert refused, "wirecache still accepted connections after SIGTERM"
    # ...and the statement in flight still completes.
    out, err = slow.communicate(timeout=20)
    assert slow.returncode == 0, err
    assert out.strip() == "|finished"
    assert served.process.wait(20) == 0


def test_plugins_lists_postgres():
    result = run_cli("plugins")
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("wirecache-postgres "))
    assert version("wirecache-postgres") in line
    assert "postgres" in line.split("dialects:", 1)[1]


GOOD = """\
[server]
cache_dir = "cache"
log_format = "json"

[[cache]]
id = "orders"
dialect = "postgres"
origin = "db.example.com:5433"
listen = "127.0.0.1:6432"
origin_tls = "verify-full"
origin_ca = "ca.pem"
default_ttl = 60
max_entry_bytes = "1MiB"
default = true

[[cache]]
id = "reports"
dialect = "postgres"
origin = "db.example.com"
listen = "127.0.0.1:6432"
"""


@pytest.fixture
def config_dir(tmp_path, tls_files):
    shutil.copyfile(tls_files.ca_path, tmp_path / "ca.pem")
    return tmp_path


def test_check_config_accepts_good_file(config_dir):
    path = config_dir / "good.toml"
    path.write_text(GOOD)
    result = run_cli("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ok: cache orders (postgres) 127.0.0.1:6432 -> db.example.com:5433",
        "ok: cache reports (postgres) 127.0.0.1:6432 -> db.example.com:5432",
    ]


#: (text in GOOD, replacement, what the error must say). The first four run the real
#: command; the rest call the same entry point in-process to keep the suite fast.
BAD = [
    ('default_ttl = 60', 'default_ttl = 60\ncolour = "blue"', ["cache[0]", "'colour'"]),
    ('"db.example.com:5433"', '"db.example.com:notaport"', ["cache[0] (orders).origin"]),
    ('origin_tls = "verify-full"', 'origin_tls = "sometimes"',
     ["cache[0] (orders).origin_tls", "sometimes", "verify-full"]),
    ('id = "orders"\n', '', ["cache[0].id"]),
    ('"db.example.com:5433"', '"db.example.com:70000"', ["cache[0] (orders).origin",
                                                          "out of range"]),
    ('id = "reports"', 'id = "has-dash"', ["cache[1].id", "has-dash"]),
    ('id = "reports"', 'id = "ORDERS"', ["ORDERS", "used by two caches"]),
    ('origin_ca = "ca.pem"', 'origin_ca = "missing.pem"', ["cache[0] (orders).origin_ca",
                                                            "missing.pem"]),
    ('dialect = "postgres"\norigin = "db.example.com:5433"', 'dialect = "oracle"\n'
     'origin = "db.example.com:5433"', ["cache[0] (orders).dialect", "oracle"]),
    ('log_format = "json"', 'log_format = "xml"', ["server.log_format"]),
    ('[server]', '[server]\nthreads = 4', ["server", "threads"]),
    ('id = "reports"\ndialect = "postgres"\norigin = "db.example.com"\n',
     'id = "reports"\ndialect = "postgres"\n', ["cache[1] (reports).origin", "missing"]),
    ('default = true', 'default = "yes"', ["cache[0] (orders).default"]),
    ('id = "reports"', 'id = "reports"\ndefault = true', ["127.0.0.1:6432", "default"]),
    ('default_ttl = 60', 'default_ttl = [', ["not valid TOML"]),
]


@pytest.mark.parametrize(("index", "old", "new", "expected"),
                         [(i, *case) for i, case in enumerate(BAD)])  # fmt: skip
def test_check_config_rejects_bad_file(config_dir, capsys, index, old, new, expected):
    assert old in GOOD
    path = config_dir / "bad.toml"
    path.write_text(GOOD.replace(old, new, 1))
    if index < 4:
        result = run_cli("check-config", str(path))
        code, out, err = result.returncode, result.stdout, result.stderr
    else:
        code = cli.main(["check-config", str(path)])
        out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    for text in expected:
        assert text in err


def test_serve_rejects_bad_flags(tmp_path):
    result = run_cli("serve", "--origin", "db:notaport", "--cache-dir", str(tmp_path))
    assert result.returncode == 2
    assert "--origin" in result.stderr


def test_serve_with_config_file(pg_server, tmp_path, tls_files, marker):
    """``wirecache serve --config``: two caches on one port, routed by application_name."""
    port = free_port()
    path = tmp_path / "wirecache.toml"
    path.write_text(f"""\
[server]
cache_dir = "cache"

[[cache]]
id = "plain"
dialect = "postgres"
origin = "{pg_server.host}:{pg_server.port}"
listen = "127.0.0.1:{port}"
default = true

[[cache]]
id = "secure"
dialect = "postgres"
origin = "{pg_server.host}:{pg_server.port}"
listen = "127.0.0.1:{port}"
origin_tls = "verify-full"
origin_ca = "{tls_files.ca_path}"
""")
    process = subprocess.Popen(
        [*WIRECACHE, "serve", "--config", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, process.stdout.read().decode()
                assert time.monotonic() < deadline
                time.sleep(0.05)
        origin_ssl = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        for cache_id, encrypted in (("plain", False), ("secure", True)):
            dsn = pg_server.dsn("scram_user", host="127.0.0.1", port=port, sslmode="disable",
                                application_name=cache_id)  # fmt: skip
            with psycopg.connect(dsn, autocommit=True) as conn:
                assert conn.execute(origin_ssl).fetchone() == (encrypted,)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    assert (tmp_path / "cache" / "plain").is_dir()
