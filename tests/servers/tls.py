"""A throwaway certificate authority and server certificate for the test servers.

Both origins and (later) wirecache itself serve TLS with certificates from one
test CA, so every client in the tests can verify the peer fully
(``sslmode=verify-full``, ``check_hostname``) instead of turning
verification off and leaving the verifying code paths untested.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trustme

# Names a client may use to reach a loopback test server. The IP addresses
# matter: libpq checks IP SANs when the host is given as an address.
DEFAULT_IDENTITIES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class TLSFiles:
    """PEM files for a server certificate and the CA that signed it.

    ``ca`` is kept so tests can issue more certificates (for the proxy, or
    client certificates) that chain to the same trusted root.
    """

    ca: trustme.CA = field(repr=False, compare=False)
    ca_path: Path
    cert_chain_path: Path
    key_path: Path


def make_tls_files(directory: Path, identities: Sequence[str] = DEFAULT_IDENTITIES) -> TLSFiles:
    """Create a CA and a server certificate for ``identities`` in ``directory``.

    RSA rather than trustme's default ECDSA: every TLS stack on both sides
    accepts RSA, while ECDSA support varies across older client libraries.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    cert = ca.issue_cert(*identities, key_type=trustme.KeyType.RSA)

    ca_path = directory / "ca.pem"
    cert_chain_path = directory / "server-chain.pem"
    key_path = directory / "server-key.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert_chain_path.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_path))
    # Servers refuse keys that others can read.
    os.chmod(key_path, 0o600)
    return TLSFiles(ca=ca, ca_path=ca_path, cert_chain_path=cert_chain_path, key_path=key_path)
