"""Actor handles and the client front door, written once over :class:`Transport`."""

from __future__ import annotations

from typing import Any

from runtime.client.base import ActionProxies, ActorQuery, Transport
from runtime.client.connection import ActorConnection
from runtime.protocol.plain import plain_copy


def _key(key: Any) -> tuple[str, ...]:
    if key is None:
        return ()
    if isinstance(key, str):
        return (key,)
    if isinstance(key, (list, tuple)) and all(isinstance(p, str) for p in key):
        return tuple(key)
    raise TypeError(f"an actor key must be None, a str or a list of str, got {key!r}")


class ActorHandle(ActionProxies):
    """A reference to one actor. Attribute access gives action proxies: ``await h.increment(5)``."""

    def __init__(self, transport: Transport, query: ActorQuery, params: Any = None) -> None:
        self._transport = transport
        self._query = query
        self._params = params

    @property
    def query(self) -> ActorQuery:
        return self._query

    async def action(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            raise TypeError(f"actions take positional arguments only; got keyword(s) {', '.join(kwargs)}")
        payload = plain_copy(list(args), "args")
        return await self._transport.action(self._query, name, payload, self._params)

    async def resolve(self) -> str:
        return await self._transport.resolve(self._query)

    async def destroy(self) -> None:
        await self._transport.destroy(self._query)

    def connect(self, params: Any = None) -> ActorConnection:
        """``async with h.connect(params=...) as conn``; or ``conn = h.connect(); await conn.open()``."""
        return ActorConnection(self._transport, self._query, plain_copy(params, "params")
                               if params is not None else self._params)

    async def fetch(self, path: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        fetch = getattr(self._transport, "fetch", None)
        if fetch is None:
            raise TypeError("raw HTTP needs a transport that supports it")
        return await fetch(self._query, path, method, headers, body, self._params)

    async def websocket(self, path: str = "/") -> Any:
        ws = getattr(self._transport, "websocket", None)
        if ws is None:
            raise TypeError("raw WebSocket needs a transport that supports it")
        return await ws(self._query, path, self._params)

    def __repr__(self) -> str:
        q = self._query
        return f"ActorHandle({q.mode}, {q.name!r}, key={list(q.key)!r}, id={q.actor_id!r})"


class BaseClient:
    """What ``rt.client()`` and ``Client(url)`` share."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def get(self, name: str, key: Any = None, *, params: Any = None) -> ActorHandle:
        """A handle that never creates: calls fail with ``actor.not_found`` if it does not exist."""
        return ActorHandle(self._transport, ActorQuery("get", name, _key(key)), params)

    def get_or_create(self, name: str, key: Any = None, input: Any = None, params: Any = None) -> ActorHandle:
        return ActorHandle(
            self._transport,
            ActorQuery("getOrCreate", name, _key(key), plain_copy(input, "input")),
            params,
        )

    async def create(self, name: str, key: Any = None, input: Any = None, params: Any = None) -> ActorHandle:
        """Create now (``actor.duplicate_key`` if taken); the handle is bound to the new id."""
        query = ActorQuery("create", name, _key(key), plain_copy(input, "input"))
        actor_id = await self._transport.resolve(query)
        return ActorHandle(self._transport, ActorQuery("id", name, actor_id=actor_id), params)

    def get_for_id(self, name: str, actor_id: str, *, params: Any = None) -> ActorHandle:
        return ActorHandle(self._transport, ActorQuery("id", name, actor_id=actor_id), params)

    def __getattr__(self, name: str) -> Any:
        """``client.counter.get_or_create(key)`` — the accessor style of RivetKit's client."""
        if name.startswith("_"):
            raise AttributeError(name)
        return _Accessor(self, name)

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> BaseClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class _Accessor:
    def __init__(self, client: BaseClient, name: str) -> None:
        self._client = client
        self._name = name

    def get(self, key: Any = None, **kw: Any) -> ActorHandle:
        return self._client.get(self._name, key, **kw)

    def get_or_create(self, key: Any = None, input: Any = None, params: Any = None) -> ActorHandle:
        return self._client.get_or_create(self._name, key, input=input, params=params)

    async def create(self, key: Any = None, input: Any = None, params: Any = None) -> ActorHandle:
        return await self._client.create(self._name, key, input=input, params=params)

    def get_for_id(self, actor_id: str, **kw: Any) -> ActorHandle:
        return self._client.get_for_id(self._name, actor_id, **kw)
