"""``setup()``, the registry, and the in-process runtime.

This module sits above both the core and the client: it is where the in-process transport plugs
the client's :class:`Transport` seam into the core's manager, so the core never imports the
client and the client never imports the core.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, TypeVar

from runtime.client.base import ActorQuery, Link
from runtime.client.handle import BaseClient
from runtime.core.definition import ActorDefinition
from runtime.core.manager import Manager, Socket, caller_error
from runtime.core.metrics import RuntimeMetrics
from runtime.drivers.base import Driver
from runtime.errors import ActorError
from runtime.protocol.messages import ToClient
from runtime.protocol.plain import plain_copy

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _as_caller_error(fn: Callable[_P, Coroutine[Any, Any, _R]]) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """Whatever goes wrong in the core reaches an in-process caller exactly as it would reach a
    networked one: a sanitized ``ActorError``."""

    @functools.wraps(fn)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await fn(*args, **kwargs)
        except ActorError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise caller_error(exc) from None

    return wrapper


class InlineTransport:
    """The in-process transport: calls go straight to the manager, with the same copying and
    the same errors a networked call would have."""

    def __init__(self, manager: Manager) -> None:
        self._m = manager

    @_as_caller_error
    async def resolve(self, query: ActorQuery) -> str:
        return await self._m.resolve(query.mode, query.name, query.key, query.input, query.actor_id)

    @_as_caller_error
    async def action(self, query: ActorQuery, name: str, args: list[Any], params: Any) -> Any:
        actor_id = await self.resolve(query)
        return plain_copy(await self._m.call_action(actor_id, name, args, params), "output")

    @_as_caller_error
    async def destroy(self, query: ActorQuery) -> None:
        actor_id = await self.resolve(query)
        await self._m.destroy(actor_id)

    async def connect(
        self,
        query: ActorQuery,
        params: Any,
        on_message: Callable[[ToClient], None],
        on_close: Callable[[str | None], None],
    ) -> Link:
        return await self._connect(query, params, on_message, on_close)

    @_as_caller_error
    async def _connect(
        self,
        query: ActorQuery,
        params: Any,
        on_message: Callable[[ToClient], None],
        on_close: Callable[[str | None], None],
    ) -> Link:
        actor_id = await self.resolve(query)
        return _InlineLink(await self._m.connect(actor_id, params, on_message, on_close))

    async def close(self) -> None:
        return None


class _InlineLink:
    def __init__(self, socket: Socket) -> None:
        self._socket = socket

    def send(self, message: Any) -> None:
        self._socket.send(message)

    def close(self) -> None:
        self._socket.close()


class Runtime:
    """What ``registry.run()`` yields: the manager, a client factory and metrics."""

    def __init__(self, registry: Registry, driver: Driver) -> None:
        self.registry = registry
        self.driver = driver
        self.metrics = RuntimeMetrics()
        self.manager = Manager(dict(registry.actors), driver, self.client, self.metrics)

    def client(self) -> BaseClient:
        """An in-process client with exactly the API and errors of the networked one."""
        return BaseClient(InlineTransport(self.manager))

    def metrics_text(self) -> str:
        """Prometheus text exposition of this runtime's metrics."""
        return self.metrics.text()

    async def start(self) -> None:
        await self.manager.start()

    async def stop(self) -> None:
        await self.manager.stop()


class Registry:
    """The set of actor types an application serves."""

    def __init__(self, actors: dict[str, ActorDefinition]) -> None:
        self.actors = actors

    @asynccontextmanager
    async def run(self, driver: Driver | None = None) -> AsyncIterator[Runtime]:
        """Run in-process (no sockets). Leaving puts every awake actor to sleep (final flush)."""
        if driver is None:
            from runtime.drivers.memory import MemoryDriver

            driver = MemoryDriver()
        rt = Runtime(self, driver)
        await rt.start()
        try:
            yield rt
        finally:
            await rt.stop()

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 6420,
                    driver: Driver | None = None) -> AsyncIterator[Any]:
        """Serve over HTTP/WebSocket (RivetKit's client protocol) until the block is left; then
        every awake actor sleeps (final flush). ``port=0`` picks a free port; the yielded server
        has ``url``. The driver defaults to a ``MemoryDriver``."""
        from runtime.server import serve

        async with serve(self, host, port, driver) as server:
            yield server

    def start(self, host: str = "127.0.0.1", port: int = 6420, state_dir: str = ".rivet") -> None:
        """Serve with the file driver under ``state_dir`` until SIGINT/SIGTERM; then every awake
        actor sleeps (final flush) and this returns. Blocking."""
        from runtime.drivers.file import FileDriver
        from runtime.server import run_forever

        run_forever(self, host, port, FileDriver(state_dir))


def setup(use: dict[str, ActorDefinition]) -> Registry:
    """Build the registry. Names are ``[a-z][a-z0-9_]*``, at most 64 characters."""
    if not isinstance(use, dict):
        raise TypeError("setup(use=...) takes a dict of name → actor definition")
    for name, definition in use.items():
        if not isinstance(name, str) or len(name) > 64 or not _NAME.match(name):
            raise ValueError(
                f"invalid actor name {name!r}: use lowercase letters, digits and underscores, "
                "starting with a letter, at most 64 characters (e.g. 'chat_room')"
            )
        if not isinstance(definition, ActorDefinition):
            raise TypeError(f"setup(use={{{name!r}: ...}}) needs an actor(...) definition, got {type(definition).__name__}")
    return Registry(dict(use))
