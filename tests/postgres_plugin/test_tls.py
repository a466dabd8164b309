"""TLS on the client leg and on the origin leg, in every combination.

The client leg is checked from the client (libpq's ``ssl_in_use``), the origin
leg from the origin (``pg_stat_ssl`` of the backend serving the session).
"""

from __future__ import annotations

import psycopg
import pytest
import trustme

from postgres_plugin.util import connect

CLIENT_MODES = ["disable", "require", "verify-full"]
ORIGIN_MODES = ["disable", "require", "verify-full"]
ORIGIN_SSL = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


def origin_settings(mode: str, tls_files) -> dict:
    if mode == "verify-full":
        return {"origin_tls": mode, "origin_ca": tls_files.ca_path}
    return {"origin_tls": mode}


def client_settings(mode: str, tls_files) -> dict:
    if mode == "verify-full":
        return {"sslmode": mode, "sslrootcert": str(tls_files.ca_path)}
    return {"sslmode": mode}


@pytest.mark.parametrize("origin_mode", ORIGIN_MODES)
@pytest.mark.parametrize("client_mode", CLIENT_MODES)
def test_tls_matrix(pg_server, make_proxy, tls_files, client_mode, origin_mode, marker):
    proxy = make_proxy(
        client_tls_cert=tls_files.cert_chain_path,
        client_tls_key=tls_files.key_path,
        **origin_settings(origin_mode, tls_files),
    )
    params = client_settings(client_mode, tls_files)
    if client_mode != "disable" and origin_mode != "disable":
        params["channel_binding"] = "disable"  # see test_scram_channel_binding_*
    with connect(pg_server, proxy, "scram_user", **params) as conn:
        assert conn.pgconn.ssl_in_use is (client_mode != "disable")
        assert conn.execute(ORIGIN_SSL).fetchone() == (origin_mode != "disable",)
        # The cache works over any combination.
        query = f"SELECT 'tls' {marker}"
        assert conn.execute(query).fetchone() == ("tls",)
        assert conn.execute(query).fetchone() == ("tls",)
    assert pg_server.statement_count(marker) == 1


def test_self_signed_certificate_fails_verify_full(pg_server, proxy, tls_files):
    """Without a configured certificate, wirecache's own self-signed one serves
    ``sslmode=require`` but cannot pass verification."""
    with connect(pg_server, proxy, "scram_user", sslmode="require") as conn:
        assert conn.pgconn.ssl_in_use
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        connect(pg_server, proxy, "scram_user", **client_settings("verify-full", tls_files))


def test_origin_verify_full_with_wrong_ca(pg_server, make_proxy, tmp_path):
    """An origin certificate that does not chain to origin_ca is refused, and the client
    is told which cache and origin failed."""
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    proxy = make_proxy(id="verified", origin_tls="verify-full", origin_ca=other_ca)
    with pytest.raises(psycopg.OperationalError) as excinfo:
        connect(pg_server, proxy, "scram_user")
    message = str(excinfo.value)
    assert "verified" in message
    assert f"{pg_server.host}:{pg_server.port}" in message
    assert "certificate" in message.lower()


@pytest.mark.parametrize("user", ["md5_user", "plain_user", "trust_user"])
def test_other_methods_with_tls_on_both_legs(pg_server, make_proxy, user):
    """Channel binding is a SCRAM matter: other methods work with libpq's defaults."""
    proxy = make_proxy(origin_tls="require")
    with connect(pg_server, proxy, user, sslmode="require") as conn:
        assert conn.execute(ORIGIN_SSL).fetchone() == (True,)
        assert conn.execute("SELECT current_user").fetchone() == (user,)


def test_scram_channel_binding_prefer_explains_what_to_set(pg_server, make_proxy):
    """libpq's default channel_binding=prefer flags 'y' (client supports binding, server
    seems not to); the origin, reached over TLS, does support it and refuses. The error
    must say what to set."""
    proxy = make_proxy(origin_tls="require")
    with pytest.raises(psycopg.OperationalError) as excinfo:
        connect(pg_server, proxy, "scram_user", sslmode="require")
    message = str(excinfo.value)
    assert "channel binding" in message
    assert "channel_binding=disable" in message


def test_scram_channel_binding_disable_works(pg_server, make_proxy):
    proxy = make_proxy(origin_tls="require")
    with connect(pg_server, proxy, "scram_user", sslmode="require",
                 channel_binding="disable") as conn:  # fmt: skip
        assert conn.execute(ORIGIN_SSL).fetchone() == (True,)
        assert conn.execute("SELECT current_user").fetchone() == ("scram_user",)


@pytest.mark.parametrize("origin_mode", ["disable", "require"])
def test_scram_channel_binding_require_fails(pg_server, make_proxy, origin_mode):
    """SCRAM-SHA-256-PLUS is never offered to the client, so libpq refuses to go on."""
    proxy = make_proxy(origin_tls=origin_mode)
    with pytest.raises(psycopg.OperationalError) as excinfo:
        connect(pg_server, proxy, "scram_user", sslmode="require", channel_binding="require")
    assert "channel binding" in str(excinfo.value)


def test_scram_channel_binding_prefer_works_without_origin_tls(pg_server, proxy):
    """With a plain origin leg the origin accepts the 'y' flag: libpq's defaults work."""
    with connect(pg_server, proxy, "scram_user", sslmode="require") as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute(ORIGIN_SSL).fetchone() == (False,)
