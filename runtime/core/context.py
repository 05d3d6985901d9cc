"""What actor code sees: the context ``c``, connections, ``c.kv`` and ``c.schedule``.

These objects are thin views over :class:`~runtime.core.instance.ActorInstance`; they hold no
state of their own so that a context captured by user code can never disagree with the actor.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runtime.core import keys as K
from runtime.errors import (
    KvBatchTooLarge,
    KvKeyTooLarge,
    KvValueTooLarge,
    MaxSchedulesExceeded,
    StateNotEnabled,
)
from runtime.protocol.messages import Event
from runtime.protocol.plain import plain_copy

if TYPE_CHECKING:
    from runtime.core.instance import ActorInstance, ConnInfo

MAX_KV_KEY = 2048
MAX_KV_VALUE = 128 * 1024
MAX_KV_BATCH = 128


class Conn:
    """A connection as actor code sees it (``c.conn``, ``c.conns[id]``)."""

    __slots__ = ("_info", "_inst")

    def __init__(self, inst: ActorInstance, info: ConnInfo) -> None:
        self._inst = inst
        self._info = info

    @property
    def id(self) -> str:
        return self._info.id

    @property
    def params(self) -> Any:
        return self._info.params

    @property
    def state(self) -> Any:
        return self._info.state

    @state.setter
    def state(self, value: Any) -> None:
        self._info.state = plain_copy(value, "conn.state")

    @property
    def is_hibernatable(self) -> bool:
        return self._info.hibernatable

    def send(self, event: str, *args: Any) -> None:
        """Send ``event`` to this connection only (whether or not it subscribed)."""
        self._info.deliver(Event(event, plain_copy(list(args), "args")))

    async def disconnect(self, reason: str | None = None) -> None:
        await self._inst.disconnect(self._info.id, reason)

    def __repr__(self) -> str:
        return f"Conn(id={self.id!r})"


class ConnsView(Mapping[str, Conn]):
    __slots__ = ("_inst",)

    def __init__(self, inst: ActorInstance) -> None:
        self._inst = inst

    def __getitem__(self, key: str) -> Conn:
        return Conn(self._inst, self._inst.conns[key])

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._inst.conns))

    def __len__(self) -> int:
        return len(self._inst.conns)


class _KeepAwake:
    """``with c.keep_awake():`` / ``async with``: blocks idle sleep and holds shutdown open."""

    __slots__ = ("_inst", "_region")

    def __init__(self, inst: ActorInstance) -> None:
        self._inst = inst
        self._region: Any = None

    def __enter__(self) -> _KeepAwake:
        self._region = self._inst.activity("keep_awake")
        self._region.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._region.__exit__(*exc)

    async def __aenter__(self) -> _KeepAwake:
        return self.__enter__()

    async def __aexit__(self, *exc: Any) -> None:
        self.__exit__(*exc)


class Context:
    """The ``c`` passed to every action and hook."""

    __slots__ = ("_inst", "conn")

    def __init__(self, inst: ActorInstance, conn: Conn | None = None) -> None:
        self._inst = inst
        self.conn = conn

    # ---- identity & data -------------------------------------------------------------------

    @property
    def actor_id(self) -> str:
        return self._inst.actor_id

    @property
    def name(self) -> str:
        return self._inst.name

    @property
    def key(self) -> tuple[str, ...]:
        return self._inst.key

    @property
    def state(self) -> Any:
        if not self._inst.definition.has_state:
            raise StateNotEnabled()
        return self._inst.state

    @state.setter
    def state(self, value: Any) -> None:
        if not self._inst.definition.has_state:
            raise StateNotEnabled()
        self._inst.assign_state(value)

    @property
    def vars(self) -> Any:
        return self._inst.vars

    @vars.setter
    def vars(self, value: Any) -> None:
        self._inst.vars = value

    @property
    def conns(self) -> Mapping[str, Conn]:
        return ConnsView(self._inst)

    @property
    def kv(self) -> Kv:
        return Kv(self._inst)

    @property
    def schedule(self) -> Schedule:
        return Schedule(self._inst)

    @property
    def log(self) -> Any:
        return self._inst.log

    @property
    def metrics(self) -> Any:
        return self._inst.metrics

    @property
    def aborted(self) -> bool:
        return self._inst.abort_event.is_set()

    @property
    def abort_event(self) -> asyncio.Event:
        return self._inst.abort_event

    # ---- behaviour -------------------------------------------------------------------------

    def broadcast(self, event: str, *args: Any) -> None:
        self._inst.broadcast(event, args)

    async def save_state(self, immediate: bool = False, max_wait: float | None = None) -> None:
        await self._inst.save_state(immediate=immediate, max_wait=max_wait)

    def sleep(self) -> None:
        self._inst.request_stop(destroy=False)

    def destroy(self) -> None:
        self._inst.request_stop(destroy=True)

    def keep_awake(self) -> _KeepAwake:
        return _KeepAwake(self._inst)

    def wait_until(self, awaitable: Awaitable[Any]) -> None:
        self._inst.wait_until(awaitable)

    def client(self) -> Any:
        return self._inst.manager.client()


class Kv:
    """``c.kv``: the actor's own key-value space. Every call is one atomic driver write."""

    __slots__ = ("_inst",)

    def __init__(self, inst: ActorInstance) -> None:
        self._inst = inst

    @staticmethod
    def _key(key: Any) -> bytes:
        if isinstance(key, str):
            raw = key.encode("utf-8")
        elif isinstance(key, (bytes, bytearray, memoryview)):
            raw = bytes(key)
        else:
            raise TypeError(f"a KV key must be str or bytes, got {type(key).__name__}")
        if len(raw) > MAX_KV_KEY:
            raise KvKeyTooLarge(f"A KV key is {len(raw)} bytes; the limit is {MAX_KV_KEY} bytes")
        return K.USER_KV + raw

    @staticmethod
    def _value(value: Any) -> bytes:
        if isinstance(value, str):
            kind, raw = 1, value.encode("utf-8")
        elif isinstance(value, (bytes, bytearray, memoryview)):
            kind, raw = 0, bytes(value)
        else:
            raise TypeError(f"a KV value must be str or bytes, got {type(value).__name__}")
        if len(raw) > MAX_KV_VALUE:
            raise KvValueTooLarge(f"A KV value is {len(raw)} bytes; the limit is {MAX_KV_VALUE} bytes")
        return bytes([kind]) + raw

    @staticmethod
    def _decode_value(stored: bytes) -> Any:
        body = stored[2:]  # [key-is-str][value-is-str] + raw
        return body.decode("utf-8") if stored[1] == 1 else body

    @staticmethod
    def _decode_key(stored: bytes, raw_key: bytes) -> Any:
        return raw_key.decode("utf-8") if stored[0] == 1 else raw_key

    def _row(self, key: Any, value: Any) -> tuple[bytes, bytes]:
        k = self._key(key)
        return k, bytes([1 if isinstance(key, str) else 0]) + self._value(value)

    @staticmethod
    def _batch(n: int) -> None:
        if n > MAX_KV_BATCH:
            raise KvBatchTooLarge(f"A KV batch has {n} keys; the limit is {MAX_KV_BATCH}")

    async def get(self, key: Any) -> Any:
        return (await self.get_many([key]))[0]

    async def get_many(self, keys: Sequence[Any]) -> list[Any]:
        keys = list(keys)
        self._batch(len(keys))
        stored = await self._inst.driver.get(self._inst.actor_id, [self._key(k) for k in keys])
        return [None if s is None else self._decode_value(s) for s in stored]

    async def put(self, key: Any, value: Any) -> None:
        await self.put_many([(key, value)])

    async def put_many(self, items: Any) -> None:
        pairs = list(items.items()) if isinstance(items, Mapping) else [tuple(p) for p in items]
        self._batch(len(pairs))
        rows = [self._row(k, v) for k, v in pairs]
        await self._inst.driver.apply(self._inst.actor_id, puts=rows)

    async def delete(self, key: Any) -> None:
        await self.delete_many([key])

    async def delete_many(self, keys: Sequence[Any]) -> None:
        keys = list(keys)
        self._batch(len(keys))
        await self._inst.driver.apply(self._inst.actor_id, deletes=[self._key(k) for k in keys])

    async def list(
        self,
        prefix: Any = None,
        start: Any = None,
        end: Any = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[Any, Any]]:
        lo = K.USER_KV
        hi = K.prefix_end(K.USER_KV)
        if prefix is not None:
            p = self._key(prefix)
            lo = p
            hi = K.prefix_end(p)
        if start is not None:
            lo = max(lo, self._key(start))
        if end is not None:
            e = self._key(end)
            hi = e if hi is None else min(hi, e)
        if limit is not None and limit <= 0:
            return []
        rows = await self._inst.driver.scan(self._inst.actor_id, lo, hi, reverse=reverse, limit=limit)
        n = len(K.USER_KV)
        return [(self._decode_key(v, k[n:]), self._decode_value(v)) for k, v in rows]

    async def delete_range(self, start: Any, end: Any) -> None:
        await self._inst.driver.apply(
            self._inst.actor_id, delete_ranges=[(self._key(start), self._key(end))]
        )


@dataclass
class ScheduledEvent:
    id: str
    action: str
    args: list[Any]
    run_at: float

    def to_row(self) -> dict[str, Any]:
        return {"id": self.id, "action": self.action, "args": self.args, "run_at": self.run_at}


class Schedule:
    """``c.schedule``: durable alarms. An entry is written before ``after``/``at`` returns."""

    __slots__ = ("_inst",)

    def __init__(self, inst: ActorInstance) -> None:
        self._inst = inst

    async def after(self, delay: float, action: str, *args: Any) -> str:
        return await self.at(time.time() + float(delay), action, *args)

    async def at(self, timestamp: float, action: str, *args: Any) -> str:
        inst = self._inst
        if not isinstance(action, str):
            raise TypeError("a scheduled action name must be a str")
        pending = len(inst.user_schedules())
        if pending >= inst.options.max_schedules:
            raise MaxSchedulesExceeded(
                f"The actor already has {pending} pending schedules (max_schedules="
                f"{inst.options.max_schedules}); cancel some or raise max_schedules"
            )
        event = ScheduledEvent(uuid.uuid4().hex, action, plain_copy(list(args), "args"), float(timestamp))
        await inst.add_schedule(event)
        return event.id

    async def cancel(self, schedule_id: str) -> bool:
        return await self._inst.cancel_schedule(schedule_id)

    async def get(self, schedule_id: str) -> ScheduledEvent | None:
        ev = self._inst.schedules.get(schedule_id)
        if ev is None or ev.action.startswith("__rivet_"):
            return None
        return ScheduledEvent(ev.id, ev.action, list(ev.args), ev.run_at)

    async def list(self) -> list[ScheduledEvent]:
        return [
            ScheduledEvent(e.id, e.action, list(e.args), e.run_at)
            for e in sorted(self._inst.user_schedules(), key=lambda e: (e.run_at, e.id))
        ]
