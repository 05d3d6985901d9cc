"""The manager: actor directory, waking, routing, and alarms of sleeping actors.

Callers never talk to an :class:`ActorInstance` they found earlier; they ask the manager for the
*current* instance of an id each time. That is what lets a call that arrives while an actor is
going to sleep wait for the shutdown and be served by the next instance, so the caller never
sees an error for a sleep it did not ask for.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from runtime.core import keys as K
from runtime.core.definition import ActorDefinition
from runtime.core.instance import ActorInstance, ConnInfo, Dispatch, Phase
from runtime.core.metrics import ActorMetrics, RuntimeMetrics
from runtime.drivers.base import ActorRecord, Driver
from runtime.errors import (
    ActorNotFound,
    ActorNotRegistered,
    Destroying,
    DuplicateKey,
    InputTooLarge,
    InvalidRequest,
    Overloaded,
    RivetError,
    Stopping,
    from_wire,
    to_wire,
)
from runtime.protocol.messages import (
    ActionRequest,
    Error,
    Init,
    SubscriptionRequest,
    ToClient,
    ToServer,
)
from runtime.protocol.plain import plain_copy

log = logging.getLogger("rivet.manager")

MAX_INPUT = 1024 * 1024


def caller_error(exc: BaseException) -> Exception:
    """Every error leaving the core is the sanitized wire shape (an ``ActorError``)."""
    if not (isinstance(exc, RivetError) and exc.public):
        log.error("internal error", exc_info=exc)
    return from_wire(to_wire(exc))


class Socket:
    """A persistent connection's transport endpoint. It outlives actor instances, which is what
    makes connections hibernatable: the socket stays open while the actor sleeps, and at wake
    the manager can answer "is this connection's client still there?" for real."""

    def __init__(
        self,
        manager: Manager,
        actor_id: str,
        sink: Callable[[ToClient], None],
        on_close: Callable[[str | None], None],
    ) -> None:
        self.manager = manager
        self.actor_id = actor_id
        self.id: str | None = None
        self.closed = False
        self._sink = sink
        self._on_close = on_close
        self._instance: ActorInstance | None = None
        self._pending: list[ToServer] = []
        self._pump: asyncio.Task[Any] | None = None

    # actor side ---------------------------------------------------------------------------

    def deliver(self, message: ToClient) -> None:
        if not self.closed:
            try:
                self._sink(message)
            except Exception:  # noqa: BLE001 - a broken client must not break the actor
                log.exception("delivering to connection %s failed", self.id)

    def attach(self, inst: ActorInstance, info: ConnInfo) -> None:
        self._instance = inst
        self.id = info.id
        self.manager.sockets[info.id] = self

    def detach(self, inst: ActorInstance) -> None:
        if self._instance is inst:
            self._instance = None

    def close_from_actor(self, reason: str | None) -> None:
        if self.closed:
            return
        self.closed = True
        self._instance = None
        if self.id is not None:
            self.manager.sockets.pop(self.id, None)
        try:
            self._on_close(reason)
        except Exception:  # noqa: BLE001
            log.exception("closing connection %s failed", self.id)

    # client side --------------------------------------------------------------------------

    def send(self, message: ToServer) -> None:
        """Client → actor, in order. Never blocks; wakes a sleeping actor when needed."""
        if self.closed:
            return
        inst = self._instance
        if inst is not None and inst.accepting and not self._pending:
            self._admit(inst, message)
            return
        self._pending.append(message)
        if self._pump is None or self._pump.done():
            self._pump = self.manager.spawn(self._drain())

    def _admit(self, inst: ActorInstance, message: ToServer) -> None:
        try:
            inst.try_send("conn_message", (self.id, message))
        except Overloaded as exc:
            if type(message) is ActionRequest:
                w = to_wire(exc)
                self.deliver(Error(w["group"], w["code"], w["message"], w["metadata"], message.id))

    async def _drain(self) -> None:
        while self._pending and not self.closed:
            try:
                inst = await self.manager.instance_for(self.actor_id)
            except Exception as exc:  # noqa: BLE001 - the actor is gone: tell the client and close
                w = to_wire(exc)
                for m in self._pending:
                    if type(m) is ActionRequest:
                        self.deliver(Error(w["group"], w["code"], w["message"], w["metadata"], m.id))
                self._pending.clear()
                self.close_from_actor(f"{w['group']}.{w['code']}")
                return
            if self.id not in inst.conns:
                # not restored (it went away) - nothing can be answered on it
                self._pending.clear()
                self.close_from_actor("actor.not_found")
                return
            self._instance = inst
            while self._pending and inst.accepting:
                self._admit(inst, self._pending.pop(0))

    def close(self) -> None:
        """The client went away."""
        if self.closed:
            return
        self.closed = True
        if self.id is not None:
            self.manager.sockets.pop(self.id, None)
        inst = self._instance
        self._instance = None
        if inst is not None and self.id is not None and inst.phase is Phase.READY:
            inst.send_command("disconnect", self.id)


class Manager:
    def __init__(
        self,
        definitions: dict[str, ActorDefinition],
        driver: Driver,
        client_factory: Callable[[], Any],
        metrics: RuntimeMetrics,
    ) -> None:
        self.definitions = definitions
        self.driver = driver
        self.client = client_factory
        self.metrics = metrics
        self.instances: dict[str, ActorInstance] = {}
        self.sockets: dict[str, Socket] = {}
        self._ids: dict[tuple[str, tuple[str, ...]], str] = {}
        self._records: dict[str, ActorRecord] = {}
        self._create_lock = asyncio.Lock()
        self._alarms: dict[str, asyncio.TimerHandle] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._actor_metrics: dict[str, ActorMetrics] = {}
        self._closing = False
        self.liveness_override: Callable[[str], bool] | None = None
        """Test seam: when set, decides whether a hibernated connection's client is still there."""
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        """Observers of lifecycle and action events (``rivet dev``'s live log). Empty: no cost."""

    # ================================================================ events

    def _emit(self, event: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a broken observer must not break an actor
                log.exception("event listener failed")

    def emit_lifecycle(self, inst: ActorInstance, kind: str) -> None:
        if self.listeners:
            self._emit({"event": kind, "actor": inst.name, "actor_id": inst.actor_id, "key": list(inst.key)})

    def emit_action(self, inst: ActorInstance, action: str, seconds: float, exc: BaseException | None) -> None:
        outcome = "ok"
        if exc is not None:
            w = to_wire(exc)
            outcome = f"{w['group']}.{w['code']}"
        self._emit({"event": "action", "actor": inst.name, "actor_id": inst.actor_id, "key": list(inst.key),
                    "action": action, "duration_ms": round(seconds * 1000, 3), "outcome": outcome})

    # ================================================================ hot reload

    async def reload(self, definitions: dict[str, ActorDefinition]) -> int:
        """Swap in new actor code without losing anything.

        Every awake actor goes to sleep exactly as on idle (final flush; hibernatable connections
        stay open and are restored at wake), and the next wake runs the new definitions. Calls that
        arrive meanwhile wait for the sleep and are served by the new code, so callers never see an
        error. Returns how many awake actors were carried over."""
        self.definitions = definitions
        insts = list(self.instances.values())
        for inst in insts:
            if inst.phase is Phase.STARTING:
                try:
                    await asyncio.shield(inst.ready)
                except Exception:  # noqa: BLE001 - a failed start is already gone
                    continue
            if inst.phase is Phase.READY and inst._stop_requested is None:
                inst.request_stop(destroy=False)
        await asyncio.gather(*(i.stopped.wait() for i in insts))
        return len(insts)

    def actor_metrics(self, name: str) -> ActorMetrics:
        m = self._actor_metrics.get(name)
        if m is None:
            m = self._actor_metrics[name] = ActorMetrics(self.metrics, name)
        return m

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # ================================================================ lifecycle of the manager

    async def start(self) -> None:
        await self.driver.open()
        for actor_id, at in await self.driver.list_alarms():
            self._arm(actor_id, at)

    async def stop(self) -> None:
        """Put every awake actor to sleep (final flush), then close the driver."""
        self._closing = True
        for handle in self._alarms.values():
            handle.cancel()
        self._alarms.clear()
        for _ in range(3):
            insts = list(self.instances.values())
            if not insts:
                break
            for inst in insts:
                if inst.phase is Phase.STARTING:
                    try:
                        await asyncio.shield(inst.ready)
                    except Exception:  # noqa: BLE001
                        continue
                if inst.phase is Phase.READY:
                    inst.request_stop(destroy=False)
            await asyncio.gather(*(i.stopped.wait() for i in insts))
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.wait(list(self._background), timeout=1.0)
        await self.driver.close()

    # ================================================================ directory

    def definition(self, name: str) -> ActorDefinition:
        d = self.definitions.get(name)
        if d is None:
            raise ActorNotRegistered(
                f"No actor named {name!r} is registered (registered: {', '.join(sorted(self.definitions)) or 'none'})"
            )
        return d

    async def record(self, actor_id: str) -> ActorRecord:
        rec = self._records.get(actor_id)
        if rec is None:
            rec = await self.driver.get_actor(actor_id)
            if rec is None:
                raise ActorNotFound(f"The actor {actor_id!r} does not exist (never created, or destroyed)")
            self._records[actor_id] = rec
        return rec

    async def resolve(self, mode: str, name: str, key: Any = None, input: Any = None,
                      actor_id: str | None = None) -> str:
        """``mode``: get | getOrCreate | create | id. Returns the actor id; creates when asked."""
        self.definition(name)
        if mode == "id":
            if not isinstance(actor_id, str):
                raise InvalidRequest("an actor id must be a str")
            rec = await self.record(actor_id)
            if rec.name != name:
                raise ActorNotFound(f"The actor {actor_id!r} is not a {name!r} actor")
            return actor_id
        parts = K.normalize_key(key)
        if mode != "create":
            cached = self._ids.get((name, parts))
            if cached is not None:
                return cached
            found = await self.driver.lookup(name, parts)
            if found is not None:
                self._ids[(name, parts)] = found
                return found
            if mode == "get":
                raise ActorNotFound(f"No {name!r} actor with key {list(parts)!r} exists; use get_or_create to create it")
            if mode != "getOrCreate":
                raise InvalidRequest(f"unknown resolve mode {mode!r}")
        input = plain_copy(input, "input")
        packed = K.pack({"state": None, "input": input, "initialized": False})
        if len(packed) > MAX_INPUT:
            raise InputTooLarge(f"The input is {len(packed)} bytes; the limit is {MAX_INPUT} bytes")
        async with self._create_lock:
            found = await self.driver.lookup(name, parts)
            if found is not None:
                if mode == "create":
                    raise DuplicateKey(f"A {name!r} actor with key {list(parts)!r} already exists")
                self._ids[(name, parts)] = found
                return found
            new_id = uuid.uuid4().hex
            rec = ActorRecord(new_id, name, parts, time.time())
            await self.driver.create_actor(rec, [(K.RECORD, packed)])
            self._records[new_id] = rec
            self._ids[(name, parts)] = new_id
        await self.instance_for(new_id)  # run create_state / on_create now, surfacing their errors
        return new_id

    # ================================================================ instances

    async def instance_for(self, actor_id: str) -> ActorInstance:
        """The ready instance of ``actor_id``, waking it (and waiting out a sleep) as needed."""
        while True:
            inst = self.instances.get(actor_id)
            if inst is None:
                if self._closing:
                    raise Stopping("The runtime is shutting down")
                rec = await self.record(actor_id)
                inst = self.instances.get(actor_id)
                if inst is None:
                    inst = ActorInstance(self, self.definition(rec.name), rec.actor_id, rec.name, rec.key)
                    self.instances[actor_id] = inst
                    handle = self._alarms.pop(actor_id, None)
                    if handle is not None:
                        handle.cancel()
                    inst.launch()
            if inst.phase is Phase.READY and inst._stop_requested is None:
                return inst
            if inst.phase is Phase.STARTING:
                try:
                    await asyncio.shield(inst.ready)
                except Exception as exc:  # noqa: BLE001
                    raise caller_error(exc) from None
                continue
            if inst.destroying:
                raise Destroying()
            await inst.stopped.wait()

    def instance_stopped(self, inst: ActorInstance) -> None:
        if self.instances.get(inst.actor_id) is inst:
            del self.instances[inst.actor_id]
        if inst.destroying and inst.phase is Phase.STOPPED:
            self._records.pop(inst.actor_id, None)
            self._ids.pop((inst.name, inst.key), None)
            return
        at = inst.next_alarm()
        if at is not None and not self._closing:
            self._arm(inst.actor_id, at)

    def hand_over(self, actor_id: str, msg: Dispatch) -> None:
        """A dispatch queued on an instance that is going to sleep: serve it on the next one."""

        async def redo() -> None:
            try:
                inst = await self.instance_for(actor_id)
                fut = inst.try_send(msg.kind, msg.payload)
                out = await fut
                if not msg.reply.done():
                    msg.reply.set_result(out)
            except BaseException as exc:  # noqa: BLE001
                if not msg.reply.done():
                    msg.reply.set_exception(caller_error(exc) if not isinstance(exc, asyncio.CancelledError)
                                            else from_wire(to_wire(exc)))

        self.spawn(redo())

    def live_socket(self, conn_id: str, actor_id: str) -> Socket | None:
        """The liveness check for a hibernated connection: is its socket still open here?"""
        sock = self.sockets.get(conn_id)
        alive = sock is not None and not sock.closed and sock.actor_id == actor_id
        if self.liveness_override is not None:
            alive = alive and self.liveness_override(conn_id)
        return sock if alive else None

    # ================================================================ alarms of sleeping actors

    def _arm(self, actor_id: str, at: float) -> None:
        old = self._alarms.pop(actor_id, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._alarms[actor_id] = loop.call_later(max(0.0, at - time.time()), self._alarm_due, actor_id)

    def _alarm_due(self, actor_id: str) -> None:
        self._alarms.pop(actor_id, None)

        async def wake() -> None:
            try:
                await self.instance_for(actor_id)  # the instance fires its overdue entries once ready
            except Exception:  # noqa: BLE001
                log.exception("waking actor %s for a schedule failed", actor_id)

        self.spawn(wake())

    # ================================================================ calls

    async def call_action(self, actor_id: str, name: str, args: list[Any], params: Any) -> Any:
        return await self.dispatch(actor_id, "action", (name, args, params))

    async def dispatch(self, actor_id: str, kind: str, payload: Any) -> Any:
        inst = await self.instance_for(actor_id)
        try:
            fut = inst.try_send(kind, payload)
        except Overloaded as exc:
            raise caller_error(exc) from None
        return await fut

    async def destroy(self, actor_id: str) -> None:
        while True:
            try:
                inst = await self.instance_for(actor_id)
            except Exception as exc:
                if getattr(exc, "group", None) == "actor" and getattr(exc, "code", None) == "destroying":
                    inst2 = self.instances.get(actor_id)
                    if inst2 is not None:
                        await inst2.stopped.wait()
                    return
                raise
            try:
                inst.request_stop(destroy=True)
            except Stopping:
                pass
            await inst.stopped.wait()
            if inst.destroying:
                return

    async def connect(self, actor_id: str, params: Any, sink: Callable[[ToClient], None],
                      on_close: Callable[[str | None], None]) -> Socket:
        socket = Socket(self, actor_id, sink, on_close)
        conn_id = await self.dispatch(actor_id, "connect", (socket, params))
        socket.deliver(Init(actor_id, conn_id))
        return socket

    async def extension_dispatch(self, inst: ActorInstance, msg: Dispatch) -> Any:
        """Dispatch kinds beyond actions and connections: raw HTTP / WebSocket (``request`` /
        ``websocket``, served by ``on_request`` / ``on_websocket``; see runtime.core.raw)."""
        from runtime.core import raw

        return await raw.dispatch(inst, msg)


__all__ = ["Manager", "Socket", "SubscriptionRequest", "caller_error"]
