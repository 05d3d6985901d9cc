"""Raw HTTP and WebSocket handlers (``on_request`` / ``on_websocket``, API.md §2.1).

The classes here know nothing about HTTP servers: a :class:`Request` is built from plain values
(method, path, query, headers, body bytes) and a :class:`WebSocket` wraps any *endpoint* with
``receive`` / ``send`` / ``close`` coroutines. The server builds them from ASGI; an in-process
transport could build them from queues. They reach the actor as the dispatch kinds
``"request"`` and ``"websocket"`` (so they count against ``max_inbox`` like any dispatch), and
:func:`dispatch` serves them inside the actor task:

- ``request``: runs ``on_request`` inside an ``activity("request")`` region and normalizes what
  it returns into a :class:`Response`.
- ``websocket``: runs ``on_websocket`` for the socket's whole life inside an
  ``activity("raw_socket")`` region (an open raw socket keeps the actor awake). When the actor
  shuts down, the socket is closed (1001) so the handler's ``receive`` ends and it can return.
"""

from __future__ import annotations

import asyncio
import json as _json
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from runtime.errors import ActorNotFound, InvalidRequest

if TYPE_CHECKING:
    from runtime.core.instance import ActorInstance, Dispatch

__all__ = [
    "Headers",
    "Request",
    "Response",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketEndpoint",
    "dispatch",
    "to_response",
]


class Headers(Mapping[str, str]):
    """A read-only, case-insensitive header mapping (the first value wins for a repeated name)."""

    __slots__ = ("_items", "_map")

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        pairs: list[tuple[str, str]] = []
        if items is not None:
            source = items.items() if isinstance(items, Mapping) else items
            for k, v in source:
                pairs.append((str(k), str(v)))
        self._items = pairs
        self._map: dict[str, str] = {}
        for k, v in pairs:
            self._map.setdefault(k.lower(), v)

    def __getitem__(self, key: str) -> str:
        return self._map[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def get_all(self, key: str) -> list[str]:
        k = key.lower()
        return [v for n, v in self._items if n.lower() == k]

    def __repr__(self) -> str:
        return f"Headers({self._map!r})"


class Request:
    """What ``on_request`` receives: ``method``, ``path`` (without the ``/request`` prefix),
    ``query``, ``headers``, ``await body()`` and ``await json()``."""

    __slots__ = ("method", "path", "query", "headers", "_body")

    def __init__(self, method: str = "GET", path: str = "/", query: Mapping[str, str] | None = None,
                 headers: Any = None, body: bytes = b"") -> None:
        self.method = method.upper()
        self.path = path or "/"
        self.query: dict[str, str] = dict(query or {})
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self._body = bytes(body)

    async def body(self) -> bytes:
        return self._body

    async def json(self) -> Any:
        try:
            return _json.loads(self._body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise InvalidRequest("the request body is not valid JSON") from None

    def __repr__(self) -> str:
        return f"Request({self.method} {self.path})"


class Response:
    """What ``on_request`` may return: ``Response(body=b"", status=200, headers=None)``."""

    __slots__ = ("body", "status", "headers")

    def __init__(self, body: bytes | str = b"", status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError(f"Response body must be bytes or str, got {type(body).__name__}")
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise TypeError(f"Response status must be an int between 100 and 599, got {status!r}")
        self.body = bytes(body)
        self.status = status
        self.headers: dict[str, str] = {str(k): str(v) for k, v in (headers or {}).items()}

    def __repr__(self) -> str:
        return f"Response({self.status}, {len(self.body)} bytes)"


def to_response(out: Any) -> Response:
    """Normalize what ``on_request`` returned: a Response, a dict/list (JSON), a str (text),
    bytes (binary), or None (an empty 204)."""
    if isinstance(out, Response):
        return out
    if isinstance(out, (dict, list)):
        from runtime.protocol.plain import plain_copy

        body = _json.dumps(plain_copy(out, "response"), separators=(",", ":"), ensure_ascii=False,
                           default=_json_default)
        return Response(body, 200, {"content-type": "application/json"})
    if isinstance(out, str):
        return Response(out, 200, {"content-type": "text/plain; charset=utf-8"})
    if isinstance(out, (bytes, bytearray, memoryview)):
        return Response(bytes(out), 200, {"content-type": "application/octet-stream"})
    if out is None:
        return Response(b"", 204)
    raise TypeError(
        f"on_request must return a runtime.Response, a dict or list (JSON), a str or bytes; got {type(out).__name__}"
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class WebSocketDisconnect(Exception):
    """Raised by :meth:`WebSocket.receive` once the socket is closed."""

    def __init__(self, code: int = 1000, reason: str = "") -> None:
        super().__init__(f"WebSocket closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


class WebSocketEndpoint(Protocol):
    """The transport side of a raw socket (the server's, or an in-process one)."""

    async def receive(self) -> str | bytes: ...  # raises WebSocketDisconnect when closed

    async def send(self, data: str | bytes) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class WebSocket:
    """What ``on_websocket`` receives: ``path`` (without the ``/websocket`` prefix), ``query``,
    ``headers``, ``await receive()``, ``await send(data)``, ``await close(code, reason)`` and
    ``async for message in websocket``."""

    def __init__(self, endpoint: WebSocketEndpoint, path: str = "/", query: Mapping[str, str] | None = None,
                 headers: Any = None) -> None:
        self._endpoint = endpoint
        self.path = path or "/"
        self.query: dict[str, str] = dict(query or {})
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.closed = False

    async def receive(self) -> str | bytes:
        try:
            return await self._endpoint.receive()
        except WebSocketDisconnect:
            self.closed = True
            raise

    async def send(self, data: str | bytes) -> None:
        if not isinstance(data, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"WebSocket.send takes str or bytes, got {type(data).__name__}")
        if self.closed:
            raise WebSocketDisconnect(1006, "the socket is closed")
        await self._endpoint.send(data if isinstance(data, str) else bytes(data))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        await self._endpoint.close(code, reason)

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> str | bytes:
        try:
            return await self.receive()
        except WebSocketDisconnect:
            raise StopAsyncIteration from None

    def __repr__(self) -> str:
        return f"WebSocket({self.path})"


# ============================================================================ serving in the actor


async def dispatch(inst: ActorInstance, msg: Dispatch) -> Any:
    """Serve a ``request`` / ``websocket`` dispatch inside the actor task."""
    if msg.kind == "request":
        return await _serve_request(inst, msg.payload)
    if msg.kind == "websocket":
        return await _serve_websocket(inst, msg.payload)
    raise InvalidRequest(f"unsupported dispatch {msg.kind!r}")


async def _serve_request(inst: ActorInstance, request: Request) -> Response:
    from runtime.core.context import Context
    from runtime.core.instance import call_hook

    hook = inst.definition.hooks.get("on_request")
    if hook is None:
        raise ActorNotFound(f"The actor {inst.name!r} has no on_request handler")
    with inst.activity("request"):
        try:
            out = await call_hook(hook, Context(inst), request)
        finally:
            inst._after_callback()
    return to_response(out)


async def _serve_websocket(inst: ActorInstance, ws: WebSocket) -> None:
    from runtime.core.context import Context
    from runtime.core.instance import call_hook

    hook = inst.definition.hooks.get("on_websocket")
    if hook is None:
        raise ActorNotFound(f"The actor {inst.name!r} has no on_websocket handler")
    with inst.activity("raw_socket"):
        handler = asyncio.ensure_future(call_hook(hook, Context(inst), ws))
        aborted = asyncio.ensure_future(inst.abort_event.wait())
        try:
            await asyncio.wait({handler, aborted}, return_when=asyncio.FIRST_COMPLETED)
            if not handler.done():
                # the actor is shutting down: end the socket so the handler's receive returns
                try:
                    await ws.close(1001, "actor.stopping")
                except Exception:  # noqa: BLE001 - the peer may be gone already
                    pass
                await asyncio.wait({handler})
            handler.result()
        except WebSocketDisconnect:
            pass  # the peer went away while the handler was receiving: a normal end
        finally:
            aborted.cancel()
            if not handler.done():
                handler.cancel()
            inst._after_callback()
    return None
