"""``SyncClient``: the networked client for scripts and other synchronous code.

``SyncClient`` runs one asyncio event loop in a background (daemon) thread and drives the async
:class:`~runtime.client.Client` on it; every method blocks the calling thread until its result
is ready, and raises exactly what the async method raises (``ActorError``, ``TypeError``, ...)::

    with SyncClient("http://127.0.0.1:6420") as client:
        counter = client.get_or_create("counter", "k")
        counter.increment(1)                      # == counter.action("increment", 1)
        with counter.connect() as conn:
            conn.on("new_count", print)           # runs on the client's loop thread
            conn.increment(1)

Threading rules:

* Any thread may call a ``SyncClient``, its handles and connections (calls are serialised onto
  the loop thread).
* Event callbacks registered with ``conn.on`` / ``conn.once`` run **on the loop thread**. Keep them
  short; hand work to your own thread or queue if it is slow. A blocking client call made from
  inside a callback would wait on the very thread that must answer it, so it raises
  ``RuntimeError`` instead of deadlocking. (``async def`` callbacks are scheduled on the loop.)
* ``close()`` (or leaving ``with``) disposes every connection and raw socket of the client and
  stops the thread. Unlike the async client, ``connect()`` opens the connection at once, so a
  rejected connection raises from ``connect()``; ``with h.connect() as conn`` works as well.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from runtime.client.connection import ActorConnection
from runtime.client.handle import ActorHandle
from runtime.client.http import DEFAULT_URL, RawWebSocket, WebSocketClosed
from runtime.errors import ActorError

if TYPE_CHECKING:
    import httpx

    from runtime.client import Client
    from runtime.client.base import ActorQuery

__all__ = ["SyncActorHandle", "SyncClient", "SyncConnection", "SyncWebSocket"]

T = TypeVar("T")


class _LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._closed = False
        self._thread = threading.Thread(target=self._main, name="rivet-sync-client", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            finally:
                self.loop.close()

    def in_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread.ident

    def _guard(self) -> None:
        if self.in_loop_thread():
            raise RuntimeError(
                "a blocking SyncClient call was made on the client's own event-loop thread (from an "
                "event callback?); it would deadlock. Hand the work to another thread, or use the "
                "async Client inside async code."
            )
        if self._closed:
            raise ActorError("client", "disposed", "This SyncClient is closed; create a new one to make more calls")

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for its result in the calling thread."""
        try:
            self._guard()
        except BaseException:
            coro.close()
            raise
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result()
        except KeyboardInterrupt:
            fut.cancel()
            raise

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run the plain function ``fn(*args)`` on the loop thread (directly if already there)."""
        if self.in_loop_thread():
            return fn(*args)

        async def invoke() -> T:
            return fn(*args)

        return self.run(invoke())

    def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.loop.call_soon_threadsafe(self.loop.stop)
        if not self.in_loop_thread():
            self._thread.join(timeout=10.0)


class _SyncActionProxies:
    """``x.increment(5)`` as ``x.action("increment", 5)`` (blocking), for handles and connections."""

    def action(self, name: str, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.action(name, *args, **kwargs)

        call.__name__ = name
        return call


class SyncClient:
    """The synchronous mirror of :class:`~runtime.client.Client` (same arguments, same errors)."""

    def __init__(self, url: str = DEFAULT_URL, encoding: str = "msgpack", **options: Any) -> None:
        from runtime.client import Client

        self._client: Client = Client(url, encoding, **options)  # validates before a thread starts
        self._loop = _LoopThread()

    @property
    def url(self) -> str:
        return self._client.url

    @property
    def encoding(self) -> str:
        return self._client.encoding

    @property
    def async_client(self) -> Client:
        """The underlying async client (use it only on this client's loop thread)."""
        return self._client

    def get(self, name: str, key: Any = None, *, params: Any = None) -> SyncActorHandle:
        return SyncActorHandle(self._loop, self._client.get(name, key, params=params))

    def get_or_create(self, name: str, key: Any = None, input: Any = None, params: Any = None) -> SyncActorHandle:
        return SyncActorHandle(self._loop, self._client.get_or_create(name, key, input=input, params=params))

    def create(self, name: str, key: Any = None, input: Any = None, params: Any = None) -> SyncActorHandle:
        return SyncActorHandle(self._loop, self._loop.run(self._client.create(name, key, input=input, params=params)))

    def get_for_id(self, name: str, actor_id: str, *, params: Any = None) -> SyncActorHandle:
        return SyncActorHandle(self._loop, self._client.get_for_id(name, actor_id, params=params))

    def __getattr__(self, name: str) -> Any:
        """``client.counter.get_or_create(key)`` — the accessor style, as on ``Client``."""
        if name.startswith("_"):
            raise AttributeError(name)
        return _SyncAccessor(self, name)

    def close(self) -> None:
        """Dispose every connection and socket of this client and stop its thread. Idempotent."""
        if self._loop._closed:
            return
        try:
            self._loop.run(self._client.close())
        finally:
            self._loop.stop()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SyncClient({self.url!r}, encoding={self.encoding!r})"


class _SyncAccessor:
    def __init__(self, client: SyncClient, name: str) -> None:
        self._client = client
        self._name = name

    def get(self, key: Any = None, **kw: Any) -> SyncActorHandle:
        return self._client.get(self._name, key, **kw)

    def get_or_create(self, key: Any = None, input: Any = None, params: Any = None) -> SyncActorHandle:
        return self._client.get_or_create(self._name, key, input=input, params=params)

    def create(self, key: Any = None, input: Any = None, params: Any = None) -> SyncActorHandle:
        return self._client.create(self._name, key, input=input, params=params)

    def get_for_id(self, actor_id: str, **kw: Any) -> SyncActorHandle:
        return self._client.get_for_id(self._name, actor_id, **kw)


class SyncActorHandle(_SyncActionProxies):
    """A blocking actor handle: ``h.increment(5)``, ``h.action("increment", 5)``."""

    def __init__(self, loop: _LoopThread, handle: ActorHandle) -> None:
        self._loop = loop
        self._handle = handle

    @property
    def query(self) -> ActorQuery:
        return self._handle.query

    def action(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._loop.run(self._handle.action(name, *args, **kwargs))

    def resolve(self) -> str:
        return self._loop.run(self._handle.resolve())

    def destroy(self) -> None:
        self._loop.run(self._handle.destroy())

    def fetch(self, path: str, method: str = "GET", headers: Any = None, body: Any = None) -> httpx.Response:
        return self._loop.run(self._handle.fetch(path, method=method, headers=headers, body=body))

    def websocket(self, path: str = "/") -> SyncWebSocket:
        return SyncWebSocket(self._loop, self._loop.run(self._handle.websocket(path)))

    def connect(self, params: Any = None) -> SyncConnection:
        """Open a connection now (errors raise here); use it with ``with`` or ``dispose()`` it."""
        handle = self._handle

        async def open_conn() -> ActorConnection:
            conn = handle.connect(params)
            await conn.open()
            return conn

        return SyncConnection(self._loop, self._loop.run(open_conn()))

    def __repr__(self) -> str:
        return f"Sync{self._handle!r}"


class SyncConnection(_SyncActionProxies):
    """A blocking view of an :class:`ActorConnection`. Callbacks run on the loop thread."""

    def __init__(self, loop: _LoopThread, conn: ActorConnection) -> None:
        self._loop = loop
        self._conn = conn

    @property
    def status(self) -> str:
        return self._conn.status

    @property
    def actor_id(self) -> str | None:
        return self._conn.actor_id

    @property
    def connection_id(self) -> str | None:
        return self._conn.connection_id

    def on(self, event: str, callback: Callable[..., Any]) -> Callable[[], None]:
        unsubscribe = self._loop.call(self._conn.on, event, callback)
        return lambda: self._loop.call(unsubscribe)

    def once(self, event: str, callback: Callable[..., Any]) -> Callable[[], None]:
        unsubscribe = self._loop.call(self._conn.once, event, callback)
        return lambda: self._loop.call(unsubscribe)

    def action(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._loop.run(self._conn.action(name, *args, **kwargs))

    def dispose(self) -> None:
        if self._conn.status == "disposed" or self._loop._closed:
            return
        self._loop.run(self._conn.dispose())

    def __enter__(self) -> SyncConnection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.dispose()


class SyncWebSocket:
    """A blocking raw WebSocket: ``send``, ``receive``, ``close`` and ``for message in ws``."""

    def __init__(self, loop: _LoopThread, ws: RawWebSocket) -> None:
        self._loop = loop
        self._ws = ws

    def send(self, data: str | bytes) -> None:
        self._loop.run(self._ws.send(data))

    def receive(self) -> str | bytes:
        """The next message; raises :class:`WebSocketClosed` once the socket is closed."""
        return self._loop.run(self._ws.receive())

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self._loop._closed:
            return
        self._loop.run(self._ws.close(code, reason))

    def __iter__(self) -> Iterator[str | bytes]:
        while True:
            try:
                yield self.receive()
            except WebSocketClosed:
                return

    def __enter__(self) -> SyncWebSocket:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
