"""What a dialect plugin implements, and what the core hands it per connection.

A dialect speaks one database's wire protocol. The core accepts a client
connection on a listener and calls :meth:`Dialect.serve` with the client
stream and a :class:`~wirecache.connection.Connection`, which gives the
dialect everything it needs from the core: routing by cache id, the origin
connection (TCP and TLS per configuration), the TLS context for the client
leg, the cache of the chosen id, the cancel-key registry, draining on
shutdown and a bound logger. Protocol parsing stays sans-IO inside the plugin;
``serve`` is the thin glue that moves bytes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import trio

    from wirecache.classify import ClassifierRules
    from wirecache.connection import Connection


class Dialect(ABC):
    """Base class of a dialect; one instance serves every connection of its kind."""

    #: The name configuration files use (``dialect = "postgres"``).
    name: ClassVar[str]
    #: The origin's usual port, used when ``origin`` has none.
    default_origin_port: ClassVar[int]
    #: Where wirecache listens by default for this dialect.
    default_listen_port: ClassVar[int]

    @property
    @abstractmethod
    def rules(self) -> ClassifierRules:
        """The classification rules of this dialect's SQL."""

    @abstractmethod
    async def serve(self, client: trio.abc.Stream, conn: Connection) -> None:
        """Serve one client connection until it ends.

        Must never raise for bad client input: answer with the protocol's
        error and return. The core closes ``client`` afterwards.
        """
