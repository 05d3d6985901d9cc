"""A client connection: event listeners, actions over the socket, status and reconnect.

The connection owns its subscriptions, so when the socket is replaced (reconnect after a network
drop, or the actor was destroyed and a key-based handle re-resolved) it re-sends them and the
caller's ``conn.on(...)`` callbacks keep working without doing anything.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runtime.client.base import ActionProxies
from runtime.errors import ActorError, ClientDisposed, ConnectionLost, from_wire, to_wire
from runtime.protocol.messages import (
    ActionRequest,
    ActionResponse,
    Error,
    Event,
    Init,
    SubscriptionRequest,
    ToClient,
)
from runtime.protocol.plain import plain_copy

if TYPE_CHECKING:
    from runtime.client.base import ActorQuery, Link, Transport

log = logging.getLogger("rivet.client")

_INITIAL_BACKOFF = 0.05
_MAX_BACKOFF = 5.0


class ActorConnection(ActionProxies):
    """``async with handle.connect(params=...) as conn``."""

    def __init__(self, transport: Transport, query: ActorQuery, params: Any) -> None:
        self._transport = transport
        self._query = query
        self._params = params
        self._link: Link | None = None
        self._status = "connecting"
        self._listeners: dict[str, list[Callable[..., Any]]] = {}
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._queued: list[ActionRequest] = []
        self._next_id = 0
        self._connected = asyncio.Event()
        self._reconnect_task: asyncio.Task[Any] | None = None
        self._last_error: ActorError | None = None
        self.actor_id: str | None = None
        self.connection_id: str | None = None

    # ---- public API ------------------------------------------------------------------------

    @property
    def status(self) -> str:
        """``connecting`` | ``connected`` | ``disconnected`` | ``disposed``."""
        return self._status

    def on(self, event: str, callback: Callable[..., Any]) -> Callable[[], None]:
        """Call ``callback(*args)`` for each ``event``; returns a plain unsubscribe callable."""
        listeners = self._listeners.setdefault(event, [])
        first = not listeners
        listeners.append(callback)
        if first:
            self._send(SubscriptionRequest(event, True))

        def unsubscribe() -> None:
            current = self._listeners.get(event)
            if current and callback in current:
                current.remove(callback)
                if not current:
                    del self._listeners[event]
                    self._send(SubscriptionRequest(event, False))

        return unsubscribe

    def once(self, event: str, callback: Callable[..., Any]) -> Callable[[], None]:
        unsubscribe: Callable[[], None]

        def wrapper(*args: Any) -> Any:
            unsubscribe()
            return callback(*args)

        unsubscribe = self.on(event, wrapper)
        return unsubscribe

    async def action(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            raise TypeError(f"actions take positional arguments only; got keyword(s) {', '.join(kwargs)}")
        if self._status == "disposed":
            raise from_wire(to_wire(ClientDisposed()))
        payload = plain_copy(list(args), "args")
        self._next_id += 1
        request = ActionRequest(self._next_id, name, payload)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request.id] = fut
        if self._status == "connected" and self._link is not None:
            self._link.send(request)
        else:
            self._queued.append(request)
        return await fut

    async def dispose(self) -> None:
        if self._status == "disposed":
            return
        self._status = "disposed"
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        link, self._link = self._link, None
        if link is not None:
            link.close()
        self._fail_pending(from_wire(to_wire(ClientDisposed("The connection was disposed before the reply"))))

    async def __aenter__(self) -> ActorConnection:
        await self.open()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.dispose()

    # ---- internals -------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect once; the first failure is raised to the caller (bad params, rejected)."""
        await self._connect_once()

    async def _connect_once(self) -> None:
        self._status = "connecting"
        self._connected.clear()
        link = await self._transport.connect(self._query, self._params, self._on_message, self._on_close)
        if self._status == "disposed":
            link.close()
            return
        self._link = link
        if self._connected.is_set():
            # the in-process transport delivers Init inside connect(), before the link was known
            self._after_init()
        else:
            await self._connected.wait()

    def _send(self, message: Any) -> None:
        if self._link is not None and self._status == "connected":
            self._link.send(message)

    def _on_message(self, message: ToClient) -> None:
        if isinstance(message, Event):
            for cb in list(self._listeners.get(message.name, ())):
                try:
                    out = cb(*message.args)
                    if asyncio.iscoroutine(out):
                        asyncio.ensure_future(out)
                except Exception:  # noqa: BLE001 - a listener's bug must not kill the connection
                    log.exception("event listener for %r failed", message.name)
        elif isinstance(message, ActionResponse):
            fut = self._pending.pop(message.id, None)
            if fut is not None and not fut.done():
                fut.set_result(message.output)
        elif isinstance(message, Error):
            err = ActorError(message.group, message.code, message.message, message.metadata)
            if message.action_id is not None:
                fut = self._pending.pop(message.action_id, None)
                if fut is not None and not fut.done():
                    fut.set_exception(err)
            else:
                self._last_error = err
        elif isinstance(message, Init):
            self._last_error = None
            self.actor_id = message.actor_id
            self.connection_id = message.connection_id
            self._status = "connected"
            if self._link is not None:
                self._after_init()
            self._connected.set()

    def _after_init(self) -> None:
        """Re-send what this connection owns on a new socket: subscriptions, then queued actions."""
        assert self._link is not None
        for event in self._listeners:
            self._link.send(SubscriptionRequest(event, True))
        queued, self._queued = self._queued, []
        for req in queued:
            self._link.send(req)

    def _on_close(self, reason: str | None) -> None:
        if self._status == "disposed":
            return
        self._link = None
        self._status = "disconnected"
        # actions sent on the dead socket will never be answered; if the server said why it closed
        # the socket (an Error without action id, e.g. message.incoming_too_long), they get that
        err, self._last_error = self._last_error, None
        self._fail_pending(err or from_wire(to_wire(ConnectionLost(
            f"The connection closed before the reply ({reason or 'closed'}); the call may or may not have run"
        ))))
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        delay = _INITIAL_BACKOFF
        while self._status not in ("disposed", "connected"):
            try:
                await self._connect_once()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                log.debug("reconnect failed: %s", exc)
                self._status = "disconnected"
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, _MAX_BACKOFF)

    def _fail_pending(self, err: ActorError) -> None:
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(err)
        self._queued.clear()
