"""The actor task: one per awake actor.

Everything that reaches an actor enters its mailbox as a message with a reply future. Admission
is a non-blocking try-send bounded by ``max_inbox`` (queued + running dispatches), so a flood is
answered with ``actor.overloaded`` at once instead of growing a queue. The main loop turns each
dispatch into a child task (actions run concurrently; there is no per-actor lock) and handles
lifecycle commands (sleep, destroy, fire-alarm) itself.

Saving is split: mutations only record intent; the save loop owns the tick and writes one atomic
flush (state + connection rows + schedules) through :meth:`Driver.apply`, the one write path.
Sleep readiness is counted by activity regions whose ``finally`` always decrements.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import secrets
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runtime.core import inspector
from runtime.core import keys as K
from runtime.core.context import Conn, Context, ScheduledEvent
from runtime.core.definition import ActorDefinition
from runtime.core.state import Tracker, wrap
from runtime.core.workflow import WAKE_ACTION, WorkflowRunner
from runtime.drivers.base import UNSET as K_UNSET
from runtime.errors import (
    Aborted,
    ActionNotFound,
    ActionTimedOut,
    CallbackTimedOut,
    Destroying,
    DroppedReply,
    Overloaded,
    RivetError,
    Stopping,
    from_wire,
    to_wire,
)
from runtime.protocol.messages import (
    ActionRequest,
    ActionResponse,
    Error,
    Event,
    SubscriptionRequest,
    ToClient,
)
from runtime.protocol.plain import plain_copy

if TYPE_CHECKING:
    from runtime.core.manager import Manager, Socket

log = logging.getLogger("rivet.actor")


class Phase(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass
class ConnInfo:
    """A connection's server-side record. Persistent connections have a socket; the ephemeral
    connection of an HTTP / handle call has none."""

    id: str
    params: Any
    state: Any
    hibernatable: bool
    socket: Socket | None = None
    subscriptions: set[str] = field(default_factory=set)

    def deliver(self, message: ToClient) -> None:
        if self.socket is not None:
            self.socket.deliver(message)

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "params": self.params,
            "state": self.state,
            "subscriptions": sorted(self.subscriptions),
        }


@dataclass
class Dispatch:
    """A message that counts against ``max_inbox``."""

    kind: str  # "action" | "connect" | "conn_message" | "request" | "websocket"
    payload: Any
    reply: asyncio.Future[Any]


@dataclass
class Command:
    """A lifecycle message; never refused for overload."""

    kind: str  # "sleep" | "destroy" | "alarm" | "disconnect"
    payload: Any = None


async def call_hook(fn: Callable[..., Any], *args: Any) -> Any:
    """Sync and async callables are both allowed for every hook and action."""
    out = fn(*args)
    if inspect.isawaitable(out):
        out = await out
    return out


class _Region:
    __slots__ = ("_inst", "_kind")

    def __init__(self, inst: ActorInstance, kind: str) -> None:
        self._inst = inst
        self._kind = kind

    def __enter__(self) -> _Region:
        self._inst._activity_add(self._kind, 1)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inst._activity_add(self._kind, -1)


class _Released:
    __slots__ = ("_inst", "_kind")

    def __init__(self, inst: ActorInstance, kind: str) -> None:
        self._inst = inst
        self._kind = kind

    def __enter__(self) -> _Released:
        self._inst._activity_add(self._kind, -1)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inst._activity_add(self._kind, 1)


class _ActorLogger(logging.Logger):
    """A logger that is not registered globally (so it dies with the actor) and stamps every
    record with the actor's identity."""

    def __init__(self, inst: ActorInstance) -> None:
        super().__init__(f"rivet.actor.{inst.name}")
        self.parent = logging.getLogger(f"rivet.actor.{inst.name}")
        self._ident = {"actor_id": inst.actor_id, "name": inst.name, "key": inst.key}

    def makeRecord(self, *args: Any, **kwargs: Any) -> logging.LogRecord:  # noqa: N802
        record = super().makeRecord(*args, **kwargs)
        for k, v in self._ident.items():
            setattr(record, k, v)
        return record


class ActorInstance:
    def __init__(self, manager: Manager, definition: ActorDefinition, actor_id: str, name: str,
                 key: tuple[str, ...]) -> None:
        self.manager = manager
        self.driver = manager.driver
        self.definition = definition
        self.options = definition.options
        self.actor_id = actor_id
        self.name = name
        self.key = key
        self.metrics = manager.actor_metrics(name)
        self.log = _ActorLogger(self)
        self.loop = asyncio.get_running_loop()

        self.phase = Phase.STARTING
        self.destroying = False
        self.ready: asyncio.Future[None] = self.loop.create_future()
        self.stopped = asyncio.Event()
        self.abort_event = asyncio.Event()

        self._inbox: deque[Dispatch | Command] = deque()
        self._inbox_wakeup = asyncio.Event()
        self._dispatches = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tracked: set[asyncio.Task[Any]] = set()
        self._run_task: asyncio.Task[Any] | None = None
        self._main: asyncio.Task[Any] | None = None

        # state
        self._tracker = Tracker(self._state_changed)
        self.state: Any = None
        self.vars: Any = None
        self._input: Any = None
        self._version = 0
        self._notified = 0
        self._assigns = 0
        self._mutations_reported = 0
        self._state_dirty = False

        # connections & schedules
        self.conns: dict[str, ConnInfo] = {}
        self._conn_rows: set[str] = set()  # ids that have a persisted row
        self._conn_writes: set[str] = set()  # ids whose row must be written or deleted
        self.schedules: dict[str, ScheduledEvent] = {}
        self._sched_puts: set[str] = set()
        self._sched_deletes: set[str] = set()
        self._firing: dict[str, ScheduledEvent] = {}  # out of `schedules`, row kept until the action ends
        self._alarm_dirty = False
        self._alarm_timer: asyncio.TimerHandle | None = None
        self._row_writes: dict[bytes, bytes | None] = {}  # workflow history, inspector token
        self.workflow: WorkflowRunner | None = None
        self.inspector_token = ""

        # saving
        self._save_deadline: float | None = None
        self._save_event = asyncio.Event()
        self._save_waiters: list[asyncio.Future[None]] = []
        self._saver: asyncio.Task[Any] | None = None

        # sleep readiness
        self._activity: dict[str, int] = dict.fromkeys(
            ("action", "request", "keep_awake", "raw_socket", "conn", "run", "wait_until"), 0
        )
        self._busy = 0
        self._idle_since: float | None = None
        self._sleep_timer: asyncio.TimerHandle | None = None
        self._stop_requested: str | None = None

    # ================================================================ start

    def launch(self, create_input: Any = None) -> None:
        self._main = self.loop.create_task(self._run(create_input), name=f"actor:{self.name}:{self.actor_id}")

    async def _run(self, create_input: Any) -> None:
        try:
            await self._start()
        except BaseException as exc:  # noqa: BLE001 - start failures go to every waiting caller
            self.phase = Phase.STOPPED
            self.abort_event.set()
            for t in list(self._tasks) + list(self._tracked):
                t.cancel()
            if self._run_task:
                self._run_task.cancel()
            if self._saver:
                self._saver.cancel()
            self._cancel_timers()
            if not isinstance(exc, RivetError) or not exc.public:
                log.exception("actor %s (%s) failed to start", self.name, self.actor_id)
            self.ready.set_exception(exc if isinstance(exc, Exception) else Aborted())
            self.ready.exception()  # mark retrieved: a start nobody awaits must not warn
            self._fail_inbox(exc)
            self.stopped.set()
            self.manager.instance_stopped(self)
            return
        self.metrics.active.inc()
        self.ready.set_result(None)
        try:
            await self._loop()
        finally:
            self.metrics.active.dec()
            self.stopped.set()
            self.manager.instance_stopped(self)

    async def _start(self) -> None:
        d = self.definition
        stored, stored_token = await self.driver.get(self.actor_id, [K.RECORD, K.INSPECTOR_TOKEN])
        record = K.unpack(stored) if stored is not None else {"state": None, "input": None, "initialized": False}
        if stored_token is None:  # created at first start, written with the first flush
            self.inspector_token = secrets.token_urlsafe(24)
            self.workflow_write(K.INSPECTOR_TOKEN, self.inspector_token.encode())
        else:
            self.inspector_token = stored_token.decode()
        self._input = record.get("input")
        self._saver = self.loop.create_task(self._save_loop())
        ctx = Context(self)
        if not record.get("initialized"):
            if d.create_state is not None:
                self._set_state(await call_hook(d.create_state, ctx, self._input))
            elif d.has_state:
                self._set_state(d.initial_state())
            if "on_create" in d.hooks:
                await call_hook(d.hooks["on_create"], ctx, self._input)
            self._notified = self._version  # never on_state_change for create
            self._state_dirty = True
            await self.save_state(immediate=True)
            self.metrics.lifecycle("create")
            self.manager.emit_lifecycle(self, "create")
        else:
            self._set_state(record.get("state"))
            self.metrics.lifecycle("wake")
            self.manager.emit_lifecycle(self, "wake")
        # schedules
        for _, v in await self.driver.scan(self.actor_id, K.SCHEDULE, K.prefix_end(K.SCHEDULE)):
            row = K.unpack(v)
            self.schedules[row["id"]] = ScheduledEvent(row["id"], row["action"], row["args"], row["run_at"])
        # hibernated connections: restore the live ones, drop the others in one flush
        dropped: list[ConnInfo] = []
        for _, v in await self.driver.scan(self.actor_id, K.CONN, K.prefix_end(K.CONN)):
            row = K.unpack(v)
            info = ConnInfo(row["id"], row.get("params"), row.get("state"), True,
                            subscriptions=set(row.get("subscriptions") or ()))
            self._conn_rows.add(info.id)
            socket = self.manager.live_socket(info.id, self.actor_id)
            if socket is not None:
                info.socket = socket
                socket.attach(self, info)
                self.conns[info.id] = info
            else:
                dropped.append(info)
                self._conn_writes.add(info.id)
        if "workflow" in d.hooks:
            self.workflow = WorkflowRunner(self)
            await self.workflow.load()
        # vars, on_wake, run
        if d.create_vars is not None:
            self.vars = await self._timed(call_hook(d.create_vars, ctx), self.options.create_vars_timeout,
                                          "create_vars")
        else:
            self.vars = d.initial_vars()
        if "on_wake" in d.hooks:
            await call_hook(d.hooks["on_wake"], ctx)
            self._after_callback()
        if "run" in d.hooks or "workflow" in d.hooks:
            self._run_task = self.loop.create_task(self._run_handler())
        if self._conn_writes or self._row_writes:
            await self.save_state(immediate=True)
        self.phase = Phase.READY
        self._arm_alarm()
        for info in dropped:
            self._spawn_tracked(self._on_disconnect(info))
        self._activity_changed()

    async def _timed(self, aw: Awaitable[Any], timeout: float, what: str) -> Any:
        try:
            return await asyncio.wait_for(aw, timeout)
        except asyncio.TimeoutError:
            raise CallbackTimedOut(f"{what} did not finish within {timeout} s") from None

    async def _run_handler(self) -> None:
        with self.activity("run"):
            try:
                if self.workflow is not None:
                    await self.workflow.run(self.definition.hooks["workflow"], Context(self))
                else:
                    await call_hook(self.definition.hooks["run"], Context(self))
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("%s of %s failed", "workflow" if self.workflow else "run handler", self.name)

    async def restart_run(self) -> None:
        """Stop the run handler (workflow) and start it again, e.g. after a replay request."""
        task = self._run_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        if self.accepting:
            self._run_task = self.loop.create_task(self._run_handler())

    async def inspector_action(self, name: str, args: list[Any]) -> Any:
        """Run an action for the inspector: no connection hooks, like a scheduled action."""
        return await self._call_action(name, args, ConnInfo("inspector", None, None, False))

    def workflow_write(self, key: bytes, value: bytes | None) -> None:
        """Record a row for the next flush (``None`` deletes it); nothing is written here."""
        self._row_writes[key] = value

    def released(self, kind: str) -> _Released:
        """The inverse of an activity region: lets the actor sleep while, e.g., a workflow waits
        on a durable timer inside its run handler."""
        return _Released(self, kind)

    # ================================================================ mailbox

    def try_send(self, kind: str, payload: Any) -> asyncio.Future[Any]:
        """Admit a dispatch or answer ``actor.overloaded`` at once. Never waits."""
        if self._dispatches >= self.options.max_inbox:
            raise Overloaded(
                f"The actor's inbox is full ({self.options.max_inbox} dispatches queued or running); "
                "retry later or raise max_inbox"
            )
        fut: asyncio.Future[Any] = self.loop.create_future()
        self._dispatches += 1
        self._inbox.append(Dispatch(kind, payload, fut))
        self._inbox_wakeup.set()
        return fut

    def send_command(self, kind: str, payload: Any = None) -> None:
        self._inbox.append(Command(kind, payload))
        self._inbox_wakeup.set()

    @property
    def accepting(self) -> bool:
        return self.phase is Phase.READY and self._stop_requested is None

    async def _loop(self) -> None:
        inbox = self._inbox
        while True:
            if not inbox:
                self._inbox_wakeup.clear()
                await self._inbox_wakeup.wait()
                continue
            msg = inbox.popleft()
            if type(msg) is Dispatch:
                if msg.kind == "conn_message" and type(msg.payload[1]) is SubscriptionRequest:
                    self._subscribe(msg)
                    continue
                task = self.loop.create_task(self._dispatch(msg))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                continue
            kind = msg.kind
            if kind in ("sleep", "destroy"):
                await self._shutdown(destroy=kind == "destroy")
                return
            if kind == "alarm":
                self._fire_due()
            elif kind == "disconnect":
                info = self.conns.get(msg.payload)
                if info is not None:
                    self._spawn_tracked(self._drop_conn(info, None))

    def _fail_inbox(self, exc: BaseException) -> None:
        while self._inbox:
            msg = self._inbox.popleft()
            if type(msg) is Dispatch:
                self._dispatches -= 1
                if not msg.reply.done():
                    msg.reply.set_exception(self._caller_error(exc))

    # ================================================================ dispatch

    async def _dispatch(self, msg: Dispatch) -> None:
        reply = msg.reply
        try:
            if msg.kind == "action":
                name, args, params = msg.payload
                out = await self._ephemeral_action(name, args, params)
            elif msg.kind == "connect":
                out = await self._connect(*msg.payload)
            elif msg.kind == "conn_message":
                await self._conn_action(*msg.payload)
                out = None
            elif msg.kind == "inspector":
                try:
                    out = await inspector.handle(self, *msg.payload)
                except inspector.Dropped:
                    # no reply at all: the caller learns it was dropped (actor.dropped_reply)
                    if not reply.done():
                        reply.set_exception(from_wire(to_wire(DroppedReply())))
                    return
            else:
                out = await self.manager.extension_dispatch(self, msg)
            if not reply.done():
                reply.set_result(out)
        except asyncio.CancelledError:
            if not reply.done():
                reply.set_exception(from_wire(to_wire(Aborted())))
        except BaseException as exc:  # noqa: BLE001
            if not reply.done():
                reply.set_exception(self._caller_error(exc))
        finally:
            self._dispatches -= 1

    def _caller_error(self, exc: BaseException) -> Exception:
        if not (isinstance(exc, RivetError) and exc.public):
            self.log.error("error in actor %s (%s)", self.name, self.actor_id, exc_info=exc)
        return from_wire(to_wire(exc))

    async def _call_action(self, name: str, args: list[Any], conn: ConnInfo) -> Any:
        action = self.definition.actions.get(name)
        if action is None:
            raise ActionNotFound(f"The actor {self.name!r} has no action {name!r}")
        ctx = Context(self, Conn(self, conn))
        watched = self.manager.listeners
        started = time.perf_counter() if watched else 0.0
        with self.activity("action"):
            try:
                if action.is_async:
                    out = await self._with_timeout(action.fn(ctx, *args))
                else:
                    out = action.fn(ctx, *args)
                    if inspect.isawaitable(out):
                        out = await self._with_timeout(out)
                hook = self.definition.hooks.get("on_before_action_response")
                if hook is not None:
                    out = await call_hook(hook, ctx, name, args, out)
                out = plain_copy(out, "output")
            except BaseException as exc:
                self.metrics.actions_error.inc()
                if watched:
                    self.manager.emit_action(self, name, time.perf_counter() - started, exc)
                raise
            finally:
                self._after_callback()
        self.metrics.actions_ok.inc()
        if watched:
            self.manager.emit_action(self, name, time.perf_counter() - started, None)
        return out

    async def _with_timeout(self, aw: Awaitable[Any]) -> Any:
        timeout = self.options.action_timeout
        task = asyncio.current_task()
        assert task is not None
        fired = False

        def expire() -> None:
            nonlocal fired
            fired = True
            task.cancel()

        handle = self.loop.call_later(timeout, expire)
        try:
            return await aw
        except asyncio.CancelledError:
            if fired:
                raise ActionTimedOut(f"The action did not finish within action_timeout={timeout} s") from None
            raise
        finally:
            handle.cancel()

    async def _ephemeral_action(self, name: str, args: list[Any], params: Any) -> Any:
        if name not in self.definition.actions:
            raise ActionNotFound(f"The actor {self.name!r} has no action {name!r}")
        info = await self._open_conn(params, socket=None)
        try:
            return await self._call_action(name, args, info)
        finally:
            await self._drop_conn(info, None)

    async def _conn_action(self, conn_id: str, request: ActionRequest) -> None:
        info = self.conns.get(conn_id)
        if info is None:
            return
        try:
            out = await self._call_action(request.name, list(request.args), info)
            info.deliver(ActionResponse(request.id, out))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001
            w = to_wire(self._caller_error(exc))
            info.deliver(Error(w["group"], w["code"], w["message"], w["metadata"], request.id))

    def _subscribe(self, msg: Dispatch) -> None:
        self._dispatches -= 1
        conn_id, sub = msg.payload
        info = self.conns.get(conn_id)
        if info is not None:
            if sub.subscribe:
                info.subscriptions.add(sub.event_name)
            else:
                info.subscriptions.discard(sub.event_name)
        if not msg.reply.done():
            msg.reply.set_result(None)

    # ================================================================ connections

    async def _open_conn(self, params: Any, socket: Socket | None) -> ConnInfo:
        d = self.definition
        o = self.options
        ctx = Context(self)
        if "on_before_connect" in d.hooks:
            await self._timed(call_hook(d.hooks["on_before_connect"], ctx, params), o.on_before_connect_timeout,
                              "on_before_connect")
        if d.create_conn_state is not None:
            state = await self._timed(call_hook(d.create_conn_state, ctx, params), o.create_conn_state_timeout,
                                      "create_conn_state")
            state = plain_copy(state, "conn_state")
        else:
            state = d.initial_conn_state()
        info = ConnInfo(uuid.uuid4().hex, params, state, socket is not None, socket)
        self.conns[info.id] = info
        if "on_connect" in d.hooks:
            try:
                await self._timed(call_hook(d.hooks["on_connect"], Context(self, Conn(self, info)), Conn(self, info)),
                                  o.on_connect_timeout, "on_connect")
                self._after_callback()
            except BaseException:
                self.conns.pop(info.id, None)
                raise
        return info

    async def _connect(self, socket: Socket, params: Any) -> str:
        info = await self._open_conn(params, socket)
        socket.attach(self, info)
        return info.id

    async def _drop_conn(self, info: ConnInfo, reason: str | None) -> None:
        if self.conns.pop(info.id, None) is None:
            return
        if info.id in self._conn_rows:
            self._conn_writes.add(info.id)
            self.request_save()
        if info.socket is not None:
            info.socket.close_from_actor(reason)
        await self._on_disconnect(info)

    async def _on_disconnect(self, info: ConnInfo) -> None:
        hook = self.definition.hooks.get("on_disconnect")
        if hook is not None:
            try:
                await call_hook(hook, Context(self, Conn(self, info)), Conn(self, info))
                self._after_callback()
            except Exception:
                self.log.exception("on_disconnect of %s failed", self.name)

    async def disconnect(self, conn_id: str, reason: str | None) -> None:
        info = self.conns.get(conn_id)
        if info is not None:
            await self._drop_conn(info, reason)

    def broadcast(self, event: str, args: tuple[Any, ...]) -> None:
        payload = plain_copy(list(args), "args")
        for info in list(self.conns.values()):
            if event in info.subscriptions:
                info.deliver(Event(event, payload))

    # ================================================================ state & saving

    def _set_state(self, value: Any) -> None:
        self.state = wrap(value, self._tracker, "state")

    def assign_state(self, value: Any) -> None:
        self._tracker.before()
        self.state = wrap(value, self._tracker, "state")
        self._assigns += 1
        self._tracker.after()

    def _state_changed(self) -> None:
        self._version += 1
        if not self._state_dirty:
            self._state_dirty = True
            self.request_save()

    def _after_callback(self) -> None:
        """Run ``on_state_change`` once for the burst of mutations that just ended."""
        if self._version == self._notified:
            return
        self._notified = self._version
        hook = self.definition.hooks.get("on_state_change")
        if hook is None:
            return
        self._tracker.frozen = True
        try:
            hook(Context(self), self.state)
        except Exception:
            self.log.exception("on_state_change of %s failed", self.name)
        finally:
            self._tracker.frozen = False

    def request_save(self, immediate: bool = False, max_wait: float | None = None) -> None:
        now = self.loop.time()
        if immediate:
            deadline = now
        elif max_wait is not None:
            deadline = now + min(max_wait, self.options.state_save_interval)
        else:
            deadline = now + self.options.state_save_interval
        if self._save_deadline is None or deadline < self._save_deadline:
            self._save_deadline = deadline
            self._save_event.set()

    async def save_state(self, immediate: bool = False, max_wait: float | None = None) -> None:
        fut: asyncio.Future[None] = self.loop.create_future()
        self._save_waiters.append(fut)
        self.request_save(immediate=immediate, max_wait=max_wait)
        await fut

    async def _save_loop(self) -> None:
        while True:
            await self._save_event.wait()
            self._save_event.clear()
            while self._save_deadline is not None:
                delay = self._save_deadline - self.loop.time()
                if delay > 0:
                    try:
                        await asyncio.wait_for(self._save_event.wait(), delay)
                    except asyncio.TimeoutError:
                        pass
                    self._save_event.clear()
                    continue
                self._save_deadline = None
                waiters, self._save_waiters = self._save_waiters, []
                try:
                    await self.flush()
                except Exception as exc:  # noqa: BLE001
                    self.log.error("saving actor %s failed", self.actor_id, exc_info=exc)
                    for w in waiters:
                        if not w.done():
                            w.set_exception(exc)
                    # the deltas were kept; without a new deadline they would wait for the next
                    # explicit save, since further mutations of a dirty state request none
                    self.request_save()
                    continue
                for w in waiters:
                    if not w.done():
                        w.set_result(None)

    async def flush(self) -> None:
        """The one write path: state, connection rows and schedules in one atomic apply."""
        puts: list[tuple[bytes, bytes]] = []
        deletes: list[bytes] = []
        state_dirty = self._state_dirty
        conn_writes, self._conn_writes = self._conn_writes, set()
        sched_puts, self._sched_puts = self._sched_puts, set()
        sched_deletes, self._sched_deletes = self._sched_deletes, set()
        alarm_dirty, self._alarm_dirty = self._alarm_dirty, False
        self._state_dirty = False
        if state_dirty:
            puts.append((K.RECORD, K.pack({"state": self.state, "input": self._input, "initialized": True})))
        for cid in conn_writes:
            info = self.conns.get(cid)
            if info is not None and info.hibernatable:
                puts.append((K.CONN + cid.encode(), K.pack(info.row())))
            else:
                deletes.append(K.CONN + cid.encode())
        for sid in sched_puts:
            ev = self.schedules.get(sid)
            if ev is not None:
                puts.append((K.SCHEDULE + sid.encode(), K.pack(ev.to_row())))
        for sid in sched_deletes:
            deletes.append(K.SCHEDULE + sid.encode())
        rows, self._row_writes = self._row_writes, {}
        for key, value in rows.items():
            if value is None:
                deletes.append(key)
            else:
                puts.append((key, value))
        alarm: Any = K_UNSET
        if alarm_dirty:
            # the stored alarm also covers entries being fired, whose rows are still stored
            alarm = min((e.run_at for e in (*self.schedules.values(), *self._firing.values())), default=None)
        if not puts and not deletes and alarm is K_UNSET:
            return
        started = time.perf_counter()
        try:
            await self.driver.apply(self.actor_id, puts=puts, deletes=deletes, alarm=alarm)
        except BaseException:
            # nothing was written: keep every delta for the next flush
            self._state_dirty = self._state_dirty or state_dirty
            self._conn_writes |= conn_writes
            self._sched_puts |= sched_puts
            self._sched_deletes |= sched_deletes
            self._alarm_dirty = self._alarm_dirty or alarm_dirty
            self._row_writes = {**rows, **self._row_writes}
            raise
        for cid in conn_writes:
            if any(p[0] == K.CONN + cid.encode() for p in puts):
                self._conn_rows.add(cid)
            else:
                self._conn_rows.discard(cid)
        self.metrics.saves.inc()
        self.metrics.save_seconds.observe(time.perf_counter() - started)
        mutations = self._tracker.mutations - self._assigns
        if mutations > self._mutations_reported:
            self.metrics.mutate.inc(mutations - self._mutations_reported)
            self._mutations_reported = mutations
        if self._assigns:
            self.metrics.assign.inc(self._assigns)
            self._tracker.mutations -= self._assigns
            self._mutations_reported = self._tracker.mutations
            self._assigns = 0

    # ================================================================ schedules

    def next_alarm(self) -> float | None:
        if not self.schedules:
            return None
        return min(e.run_at for e in self.schedules.values())

    async def add_schedule(self, event: ScheduledEvent) -> None:
        self.schedules[event.id] = event
        self._sched_puts.add(event.id)
        self._alarm_dirty = True
        try:
            await self.save_state(immediate=True)
        except Exception:
            # the write failed, so not acknowledged: it must not be written or fire later either
            if self.schedules.pop(event.id, None) is not None:
                self._sched_puts.discard(event.id)
            raise
        self._arm_alarm()

    async def schedule_internal(self, at: float, action: str, *args: Any) -> str:
        """A runtime-owned schedule (a workflow's durable timer): hidden from ``c.schedule``."""
        event = ScheduledEvent(uuid.uuid4().hex, action, list(args), float(at))
        await self.add_schedule(event)
        return event.id

    def user_schedules(self) -> list[ScheduledEvent]:
        return [e for e in self.schedules.values() if not e.action.startswith("__rivet_")]

    async def cancel_schedule(self, schedule_id: str) -> bool:
        event = self.schedules.pop(schedule_id, None)
        if event is None:
            return False
        self._sched_puts.discard(schedule_id)
        self._sched_deletes.add(schedule_id)
        self._alarm_dirty = True
        try:
            await self.save_state(immediate=True)
        except Exception:
            # the write failed, so the cancel is not acknowledged: the schedule stays
            if schedule_id in self._sched_deletes:
                self._sched_deletes.discard(schedule_id)
                self.schedules[schedule_id] = event
            raise
        self._arm_alarm()
        return True

    def _arm_alarm(self) -> None:
        if self._alarm_timer is not None:
            self._alarm_timer.cancel()
            self._alarm_timer = None
        if self.phase is not Phase.READY or self._stop_requested is not None:
            return
        at = self.next_alarm()
        if at is None:
            return
        delay = max(0.0, at - time.time())
        self._alarm_timer = self.loop.call_later(delay, self.send_command, "alarm")

    def _fire_due(self) -> None:
        if self.phase is not Phase.READY or self._stop_requested is not None:
            return
        now = time.time()
        due = sorted((e for e in self.schedules.values() if e.run_at <= now), key=lambda e: (e.run_at, e.id))
        for ev in due:
            # the stored row goes in the flush that follows the action (see _fire), so that a
            # crash before the action's effects are durable fires it again after the restart
            del self.schedules[ev.id]
            self._sched_puts.discard(ev.id)
            self._firing[ev.id] = ev
            task = self.loop.create_task(self._fire(ev))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._arm_alarm()

    async def _fire(self, ev: ScheduledEvent) -> None:
        info = ConnInfo("schedule:" + ev.id, None, None, False)
        try:
            if ev.action == WAKE_ACTION:
                return  # waking was the point: the workflow resumes from its history
            await self._call_action(ev.action, list(ev.args), info)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - logged, never retried
            self.log.error("scheduled action %r of actor %s failed (not retried)", ev.action, self.actor_id,
                           exc_info=exc)
        finally:
            # the removal of the entry is durable together with what the action changed
            self._firing.pop(ev.id, None)
            self._sched_deletes.add(ev.id)
            self._alarm_dirty = True
            if self.phase is not Phase.STOPPED:
                try:
                    await self.save_state(immediate=True)
                except Exception:  # noqa: BLE001 - already logged by the save loop
                    pass

    # ================================================================ sleep readiness

    def activity(self, kind: str) -> _Region:
        return _Region(self, kind)

    def _activity_add(self, kind: str, delta: int) -> None:
        self._activity[kind] += delta
        self.metrics.tasks[kind].inc(delta)
        if kind == "wait_until":  # shutdown waits for it, but it does not block idle sleep
            return
        self._busy += delta
        if self._busy == 0 or (delta > 0 and self._busy == 1):
            self._activity_changed()

    def _activity_changed(self) -> None:
        if self._busy > 0 or self.phase is not Phase.READY:
            self._idle_since = None
            return
        self._idle_since = self.loop.time()
        if self.options.no_sleep or self._sleep_timer is not None:
            return
        self._sleep_timer = self.loop.call_later(self.options.sleep_timeout, self._sleep_check)

    def _sleep_check(self) -> None:
        self._sleep_timer = None
        if self._idle_since is None or self._busy > 0 or not self.accepting:
            return
        due = self._idle_since + self.options.sleep_timeout
        if self.loop.time() + 0.001 >= due:
            self.request_stop(destroy=False)
        else:
            self._sleep_timer = self.loop.call_at(due, self._sleep_check)

    def idle_counters(self) -> dict[str, int]:
        return dict(self._activity)

    # ================================================================ shutdown

    def request_stop(self, destroy: bool) -> None:
        if self._stop_requested is not None or self.phase in (Phase.STOPPING, Phase.STOPPED):
            if destroy:
                raise Stopping("The actor is already stopping; destroy() cannot be requested again")
            return
        self._stop_requested = "destroy" if destroy else "sleep"
        if destroy:
            self.destroying = True
        self.send_command(self._stop_requested)

    def wait_until(self, awaitable: Awaitable[Any]) -> None:
        async def tracked() -> None:
            with self.activity("wait_until"):
                await awaitable

        self._spawn_tracked(tracked())

    def _spawn_tracked(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tracked.add(task)
        task.add_done_callback(self._tracked.discard)

    def _cancel_timers(self) -> None:
        for timer in (self._alarm_timer, self._sleep_timer):
            if timer is not None:
                timer.cancel()
        self._alarm_timer = self._sleep_timer = None

    async def _shutdown(self, destroy: bool) -> None:
        self.phase = Phase.STOPPING
        self.destroying = destroy
        self.abort_event.set()
        self._cancel_timers()
        # queued, not started: the next instance serves them (sleep) or they learn of the destroy
        while self._inbox:
            msg = self._inbox.popleft()
            if type(msg) is Dispatch:
                self._dispatches -= 1
                if destroy:
                    if not msg.reply.done():
                        msg.reply.set_exception(from_wire(to_wire(Destroying())))
                else:
                    self.manager.hand_over(self.actor_id, msg)
        deadline = self.loop.time() + self.options.sleep_grace_period
        d = self.definition
        ctx = Context(self)
        # non-hibernatable persistent connections go now
        for info in [i for i in self.conns.values() if i.socket is not None and not i.hibernatable]:
            await self._bounded(self._drop_conn(info, "sleep"), deadline)
        hook = d.hooks.get("on_destroy" if destroy else "on_sleep")
        if hook is not None:
            try:
                await self._bounded(call_hook(hook, ctx), deadline)
                self._after_callback()
            except Exception:
                self.log.exception("%s of %s failed", "on_destroy" if destroy else "on_sleep", self.name)
        pending = self._outstanding()
        while pending:
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                break
            await asyncio.wait(pending, timeout=remaining)
            pending = self._outstanding()
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        # finalize: the final flush comes from the shutdown itself
        if not destroy:
            for info in self.conns.values():
                if info.hibernatable and info.socket is not None:
                    self._conn_writes.add(info.id)
            self._state_dirty = self._state_dirty or self._version != 0
        try:
            await self._final_flush()
        except Exception:
            self.log.exception("final save of actor %s failed", self.actor_id)
        if self._saver is not None:
            self._saver.cancel()
        if destroy:
            for info in list(self.conns.values()):
                self.conns.pop(info.id, None)
                if info.socket is not None:
                    info.socket.close_from_actor("destroy")
            try:
                await self.driver.delete_actor(self.actor_id)
            except Exception:
                self.log.exception("deleting actor %s failed", self.actor_id)
            self.metrics.lifecycle("destroy")
            self.manager.emit_lifecycle(self, "destroy")
        else:
            for info in self.conns.values():
                if info.socket is not None:
                    info.socket.detach(self)
            self.metrics.lifecycle("sleep")
            self.manager.emit_lifecycle(self, "sleep")
        self.phase = Phase.STOPPED

    def _outstanding(self) -> set[asyncio.Task[Any]]:
        """Work shutdown waits for: in-flight dispatches, tracked work and the run handler."""
        tasks = self._tasks | self._tracked
        if self._run_task is not None:
            tasks = tasks | {self._run_task}
        return {t for t in tasks if not t.done()}

    async def _final_flush(self) -> None:
        waiters, self._save_waiters = self._save_waiters, []
        try:
            await self.flush()
        except BaseException as exc:
            for w in waiters:
                if not w.done():
                    w.set_exception(exc if isinstance(exc, Exception) else Aborted())
            raise
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def _bounded(self, aw: Awaitable[Any], deadline: float) -> Any:
        remaining = deadline - self.loop.time()
        if remaining <= 0:
            if inspect.iscoroutine(aw):
                aw.close()
            return None
        try:
            return await asyncio.wait_for(aw, remaining)
        except asyncio.TimeoutError:
            self.log.warning("shutdown of %s exceeded sleep_grace_period", self.actor_id)
            return None


