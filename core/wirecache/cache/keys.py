"""Cache keys: blake2b digests of everything that can change an answer.

DESIGN.md rule 2: the key says everything that can change the answer. A
dialect folds the session part (database, user, role, settings) into one
digest whenever the session state changes, and per request adds only the
statement and its parameters, so a hit hashes a few hundred bytes once.
"""

from __future__ import annotations

from hashlib import blake2b

KEY_SIZE = 16


def session_digest(*parts: str | bytes) -> bytes:
    """Digest of session-state parts; each part is length-prefixed so parts cannot run together."""
    h = blake2b(digest_size=KEY_SIZE)
    for part in parts:
        data = part.encode("utf-8", "surrogateescape") if isinstance(part, str) else part
        h.update(len(data).to_bytes(4, "big"))
        h.update(data)
    return h.digest()


def request_key(session: bytes, *request: bytes) -> bytes:
    """Key of one request: the session digest plus the request's own bytes."""
    h = blake2b(session, digest_size=KEY_SIZE)
    for part in request:
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.digest()


def statement_hash(session: bytes, *statement: bytes) -> object:
    """A hash state over the session digest and a statement's own parts.

    Requests of a prepared statement differ only in their parameters; keeping
    this state and deriving each key from a copy hashes the statement once.
    """
    h = blake2b(session, digest_size=KEY_SIZE)
    for part in statement:
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h


def derive_key(base: object, tag: bytes, extra: bytes = b"") -> bytes:
    """The key of one request of a statement hashed by :func:`statement_hash`."""
    h = base.copy()  # type: ignore[attr-defined]
    h.update(tag)
    h.update(extra)
    return h.digest()
