"""The client: handles, connections, and the networked ``Client``. Never imports the core."""

from __future__ import annotations

from typing import Any

from runtime.client.base import ActorQuery, Transport
from runtime.client.connection import ActorConnection
from runtime.client.handle import ActorHandle, BaseClient

__all__ = ["ActorConnection", "ActorHandle", "ActorQuery", "BaseClient", "Client", "Transport"]


class Client(BaseClient):
    """The networked client: ``async with Client("http://127.0.0.1:6420") as client``.

    The HTTP/WebSocket transport arrives with the server; until then only the in-process
    client (``rt.client()``) exists, and this constructor says so instead of failing later.
    """

    def __init__(self, url: str = "http://127.0.0.1:6420", encoding: str = "msgpack", **_: Any) -> None:
        raise NotImplementedError(
            "The networked Client needs the HTTP server, which is not built yet; "
            "use the in-process client: `async with registry.run() as rt: client = rt.client()`"
        )
