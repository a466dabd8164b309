"""Authentication passed through to the origin: wirecache relays, it never knows a password.

The origin asks, the client answers, wirecache forwards both ways and looks
at just enough to keep its promises:

* SCRAM channel binding binds the exchange to the TLS channel the client
  sees, which ends at wirecache, so ``SCRAM-SHA-256-PLUS`` is never offered to
  the client. A client that still insists (libpq's ``channel_binding=require``,
  or a client flagging ``y`` against an origin reached over TLS) gets an error
  that says to set ``channel_binding=disable``.
* md5 hashes the user name; when the cache id was taken off the user name the
  client hashes the wrong name, so wirecache stops with an error that says to
  route with ``application_name`` instead.
* Only AuthenticationOk from the origin makes the session usable (DESIGN.md
  rule 1: no result before authentication).
"""

from __future__ import annotations

from wirecache_postgres import messages as m
from wirecache_postgres.messages import Auth, Backend, Frontend
from wirecache_postgres.wire import MessageStream

PLUS_SUFFIX = "-PLUS"
CHANNEL_BINDING_HINT = (
    "wirecache terminates TLS, so SCRAM channel binding cannot reach the origin. "
    "Set channel_binding=disable in the client's connection settings."
)
MD5_PREFIX_MESSAGE = (
    "md5 authentication hashes the user name, and the cache id in front of the user name "
    "changes it, so the origin would reject the password. Route with "
    "application_name=CACHEID instead of the user-name prefix, or use scram-sha-256."
)


class AuthFailed(Exception):
    """Authentication ended without success; ``response`` is what the client already got
    or must get (an ErrorResponse), ``reason`` is for the log."""

    def __init__(self, reason: str, response: bytes | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.response = response


def without_channel_binding(auth: m.Authentication) -> bytes:
    """The AuthenticationSASL message to show the client: PLUS mechanisms removed."""
    mechanisms = [x for x in auth.mechanisms if not x.endswith(PLUS_SUFFIX)]
    if not mechanisms:
        raise AuthFailed(
            "origin offers only SCRAM with channel binding",
            m.error_response("FATAL", "28000", "the origin requires SCRAM channel binding, "
                             "which cannot pass through a TLS-terminating proxy",
                             hint=CHANNEL_BINDING_HINT),
        )  # fmt: skip
    return m.auth_sasl(mechanisms)


def channel_binding_error(error_body: bytes) -> bytes:
    """The origin's ErrorResponse with the hint that says what to set."""
    err = m.parse_error_response(error_body)
    return m.error_response(
        err.severity or "FATAL", err.code or "28000", err.message or "authentication failed",
        detail=err.detail, hint=CHANNEL_BINDING_HINT,
    )  # fmt: skip


async def relay(client: MessageStream, origin: MessageStream, user_rewritten: bool) -> None:
    """Relay the authentication exchange until the origin says AuthenticationOk.

    Raises :class:`AuthFailed` with the response the client should get when
    authentication fails or cannot pass through.
    """
    gs2_flag = "n"
    while True:
        kind, body, raw = await origin.message()
        if kind == Backend.ERROR_RESPONSE:
            if gs2_flag != "n":
                raise AuthFailed("origin refused the SCRAM exchange", channel_binding_error(body))
            err = m.parse_error_response(body)
            raise AuthFailed(f"origin refused: {err.code} {err.message}", raw)
        if kind == Backend.NEGOTIATE_PROTOCOL_VERSION or kind == Backend.NOTICE_RESPONSE:
            await client.send(raw)
            continue
        if kind != Backend.AUTHENTICATION:
            raise AuthFailed(
                f"unexpected message {chr(kind)!r} from the origin during authentication",
                m.error_response("FATAL", "08P01", "wirecache: the origin sent an unexpected "
                                 "message during authentication"),
            )  # fmt: skip
        auth = m.parse_authentication(body)
        if auth.code == Auth.OK:
            await client.send(raw)
            return
        if auth.code == Auth.MD5_PASSWORD and user_rewritten:
            raise AuthFailed(
                "md5 with a user-name prefix",
                m.error_response("FATAL", "28000", MD5_PREFIX_MESSAGE),
            )
        if auth.code in (Auth.CLEARTEXT_PASSWORD, Auth.MD5_PASSWORD):
            await client.send(raw)
            await _forward_password(client, origin)
        elif auth.code == Auth.SASL:
            await client.send(without_channel_binding(auth))
            kind, body, raw = await _client_password(client)
            initial = m.parse_sasl_initial_response(body)
            if initial.data is not None and initial.mechanism.startswith("SCRAM"):
                gs2_flag = m.parse_gs2_header(initial.data).flag
            await origin.send(raw)
        elif auth.code == Auth.SASL_CONTINUE:
            await client.send(raw)
            await _forward_password(client, origin)
        elif auth.code == Auth.SASL_FINAL:
            await client.send(raw)
        else:
            raise AuthFailed(
                f"unsupported authentication request {auth.code}",
                m.error_response("FATAL", "28000", "wirecache cannot pass through this "
                                 f"authentication method (request code {auth.code}); use "
                                 "scram-sha-256, md5, password or trust"),
            )  # fmt: skip


async def _client_password(client: MessageStream) -> tuple[int, bytes, bytes]:
    msg = await client.message()
    if msg[0] != Frontend.PASSWORD:
        raise AuthFailed(
            f"client sent {chr(msg[0])!r} instead of a password message",
            m.error_response("FATAL", "08P01", "expected a password response"),
        )
    return msg


async def _forward_password(client: MessageStream, origin: MessageStream) -> None:
    _, _, raw = await _client_password(client)
    await origin.send(raw)
