"""TLS contexts for both legs, built on the ssl module (trio.SSLStream does the I/O).

Client leg: wirecache terminates TLS with the configured certificate, or with
a self-signed one it makes once in the cache directory, so that clients using
``sslmode=require`` work out of the box (they do not verify the certificate;
``verify-full`` clients need a real certificate in the configuration).

Origin leg: ``disable`` / ``prefer`` / ``require`` / ``verify-full`` as libpq
means them: ``require`` encrypts without verifying, ``verify-full`` checks the
chain (the configured CA, else the system store) and the host name.
"""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """Context for terminating client TLS."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def origin_context(mode: str, ca: Path | None) -> ssl.SSLContext | None:
    """Context for connecting to the origin, or None when TLS is disabled."""
    if mode == "disable":
        return None
    ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    if mode != "verify-full":
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def self_signed(directory: Path) -> tuple[Path, Path]:
    """Return (cert, key) of a self-signed certificate kept in ``directory``, made once."""
    cert_path, key_path = directory / "selfsigned-cert.pem", directory / "selfsigned-key.pem"
    if cert_path.is_file() and key_path.is_file():
        return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wirecache")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    tmp_key = key_path.with_suffix(".tmp")
    tmp_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    tmp_key.chmod(0o600)
    tmp_key.replace(key_path)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
