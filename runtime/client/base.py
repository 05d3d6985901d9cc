"""The transport seam of the client.

Handles and connections are written once against :class:`Transport`; the in-process runtime
and the HTTP/WebSocket client each implement it. That is how ``rt.client()`` and
``Client(url)`` keep exactly the same API and errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from runtime.protocol.messages import ToClient, ToServer


@dataclass(frozen=True)
class ActorQuery:
    """How a handle finds its actor: ``get`` / ``getOrCreate`` / ``create`` by name + key, or
    ``id``. Key-based queries re-resolve on each call, so they follow the key across a destroy;
    id-based ones stay bound to one actor."""

    mode: str
    name: str
    key: tuple[str, ...] = ()
    input: Any = None
    actor_id: str | None = None


class Link(Protocol):
    """One open connection as the transport sees it."""

    def send(self, message: ToServer) -> None: ...

    def close(self) -> None: ...


class Transport(Protocol):
    async def resolve(self, query: ActorQuery) -> str: ...

    async def action(self, query: ActorQuery, name: str, args: list[Any], params: Any) -> Any: ...

    async def destroy(self, query: ActorQuery) -> None: ...

    async def connect(
        self,
        query: ActorQuery,
        params: Any,
        on_message: Callable[[ToClient], None],
        on_close: Callable[[str | None], None],
    ) -> Link: ...

    async def close(self) -> None: ...


class ActionProxies:
    """``await x.increment(5)`` as ``await x.action("increment", 5)``, for handles and connections."""

    async def action(self, name: str, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self.action(name, *args, **kwargs)

        call.__name__ = name
        return call
