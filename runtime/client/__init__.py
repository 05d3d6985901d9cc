"""The client: handles, connections, and the networked ``Client``. Never imports the core."""

from __future__ import annotations

from runtime.client.base import ActorQuery, Transport
from runtime.client.connection import ActorConnection
from runtime.client.handle import ActorHandle, BaseClient
from runtime.client.http import DEFAULT_URL, HttpTransport, RawWebSocket, WebSocketClosed
from runtime.client.sync import SyncClient

__all__ = [
    "ActorConnection",
    "ActorHandle",
    "ActorQuery",
    "BaseClient",
    "Client",
    "RawWebSocket",
    "SyncClient",
    "Transport",
    "WebSocketClosed",
]


class Client(BaseClient):
    """The networked client: ``async with Client("http://127.0.0.1:6420", encoding="msgpack")``.

    Same API and errors as the in-process ``rt.client()``. ``encoding`` is ``"msgpack"`` or
    ``"json"``; ``timeout`` bounds one HTTP call (actions included, so keep it above the actors'
    ``action_timeout``); ``connect_timeout`` bounds opening a TCP connection or WebSocket;
    ``headers`` are sent with every request. Nothing touches the network until the first call.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        encoding: str = "msgpack",
        *,
        timeout: float | None = 120.0,
        connect_timeout: float = 10.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.transport = HttpTransport(
            url, encoding, timeout=timeout, connect_timeout=connect_timeout, headers=headers)
        super().__init__(self.transport)

    @property
    def url(self) -> str:
        return self.transport.url

    @property
    def encoding(self) -> str:
        return self.transport.encoding

    async def __aenter__(self) -> Client:
        return self

    def __repr__(self) -> str:
        return f"Client({self.url!r}, encoding={self.encoding!r})"

