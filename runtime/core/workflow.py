"""Durable workflows: an actor's ``run`` written as steps that survive crashes, sleeps and reloads.

The workflow function runs from the top on every start; each ``step``/``sleep``/``loop`` looks
its name up in the recorded history first, so completed work returns its recorded result instead
of running again. History rows live in the actor's own KV space (prefix ``[6]``) and are written
by the actor's one flush, in the same atomic transaction as the state the step produced.

Order is part of the contract: every entry records its position in its scope, so a step that was
renamed or moved between versions is reported (``workflow.history_mismatch``) instead of silently
re-running work.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runtime.core import keys as K
from runtime.errors import WorkflowDuplicateName as DuplicateName
from runtime.errors import WorkflowHistoryMismatch as HistoryMismatch
from runtime.protocol.plain import plain_copy

if TYPE_CHECKING:
    from runtime.core.instance import ActorInstance

WAKE_ACTION = "__rivet_workflow_wake"
"""Internal schedule that wakes a sleeping actor when a durable ``wf.sleep`` is due."""

DONE = "__done__"


class _Suspended(BaseException):
    """The actor is shutting down: the workflow stops here and resumes from history at wake."""


@dataclass(frozen=True)
class LoopResult:
    done: bool
    value: Any


class Loop:
    """What a ``wf.loop`` body returns: ``Loop.next(state)`` or ``Loop.done(value)``."""

    @staticmethod
    def next(state: Any = None) -> LoopResult:
        return LoopResult(False, state)

    @staticmethod
    def done(value: Any = None) -> LoopResult:
        return LoopResult(True, value)


def _join(scope: str, name: str) -> str:
    if not isinstance(name, str) or not name or "/" in name:
        raise TypeError(f"a workflow entry name must be a non-empty str without '/', got {name!r}")
    return f"{scope}/{name}" if scope else name


def _row_key(path: str) -> bytes:
    return K.WORKFLOW + path.encode("utf-8")


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    out = fn(*args)
    if inspect.isawaitable(out):
        out = await out
    return out


class WorkflowRunner:
    """Replays and extends one actor's workflow history."""

    def __init__(self, inst: ActorInstance) -> None:
        self.inst = inst
        self.history: dict[str, dict[str, Any]] = {}
        self._seq: dict[str, int] = {}
        self._seen: set[str] = set()

    async def load(self) -> None:
        rows = await self.inst.driver.scan(self.inst.actor_id, K.WORKFLOW, K.prefix_end(K.WORKFLOW))
        n = len(K.WORKFLOW)
        self.history = {k[n:].decode("utf-8"): K.unpack(v) for k, v in rows}

    # ---- history rows (written by the actor's flush) --------------------------------------------

    def _put(self, path: str, entry: dict[str, Any]) -> None:
        self.history[path] = entry
        self.inst.workflow_write(_row_key(path), K.pack(entry))

    def _delete(self, path: str) -> None:
        if self.history.pop(path, None) is not None:
            self.inst.workflow_write(_row_key(path), None)

    async def _durable(self) -> None:
        await self.inst.save_state(immediate=True)

    def entries(self) -> list[dict[str, Any]]:
        """History in execution order (scope, then position), for the inspector."""
        out = [{"name": p, **e} for p, e in self.history.items() if p != DONE]
        out.sort(key=lambda e: (e["name"].count("/"), e.get("scope", ""), e.get("seq", 0)))
        done = self.history.get(DONE)
        if done is not None:
            out.append({"name": DONE, **done})
        return out

    def _claim(self, scope: str, name: str, kind: str) -> tuple[str, int, dict[str, Any] | None]:
        path = _join(scope, name)
        if path in self._seen:
            raise DuplicateName(f"The workflow entry {path!r} is used twice; names must be unique in a scope")
        self._seen.add(path)
        seq = self._seq.get(scope, 0)
        self._seq[scope] = seq + 1
        entry = self.history.get(path)
        if entry is not None and (entry.get("seq") != seq or entry.get("kind") != kind):
            raise HistoryMismatch(
                f"The workflow asks for {kind} {path!r} at position {seq}, but the history recorded it as "
                f"{entry.get('kind')} at position {entry.get('seq')}; the code changed order since it ran"
            )
        if entry is None:
            for other_path, other in self.history.items():
                if other.get("scope") == scope and other.get("seq") == seq and other_path != path:
                    raise HistoryMismatch(
                        f"The workflow asks for {kind} {path!r} at position {seq}, but the history recorded "
                        f"{other.get('kind')} {other_path!r} there: it was renamed or replaced. Keep the old "
                        "name, or replay the workflow from that entry"
                    )
        return path, seq, entry

    def _check_abort(self) -> None:
        if self.inst.abort_event.is_set():
            raise _Suspended()

    # ---- the workflow operations ---------------------------------------------------------------

    async def step(self, scope: str, name: str, fn: Callable[[], Any], retries: int, backoff: float,
                   max_backoff: float) -> Any:
        path, seq, entry = self._claim(scope, name, "step")
        if entry is not None and entry.get("status") == "completed":
            return entry.get("result")
        self._check_abort()
        attempts = int(entry.get("attempts", 0)) if entry else 0
        started = time.time()
        while True:
            try:
                result = plain_copy(await _call(fn), f"step {path!r} result")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                attempts += 1
                if attempts > retries:
                    self._put(path, {"kind": "step", "scope": scope, "seq": seq, "status": "failed",
                                     "attempts": attempts, "error": f"{type(exc).__name__}: {exc}",
                                     "started_at": started, "completed_at": time.time()})
                    await self._durable()
                    raise
                await self._pause(min(backoff * (2 ** (attempts - 1)), max_backoff))
                continue
            self._put(path, {"kind": "step", "scope": scope, "seq": seq, "status": "completed",
                             "attempts": attempts + 1, "result": result, "started_at": started,
                             "completed_at": time.time()})
            await self._durable()
            return result

    async def _pause(self, seconds: float) -> None:
        """Wait, but give way at once when the actor shuts down."""
        abort = asyncio.ensure_future(self.inst.abort_event.wait())
        try:
            await asyncio.wait([abort], timeout=seconds)
        finally:
            abort.cancel()
        self._check_abort()

    async def sleep(self, scope: str, name: str, seconds: float) -> None:
        path, seq, entry = self._claim(scope, name, "sleep")
        if entry is not None and entry.get("status") == "completed":
            return
        self._check_abort()
        if entry is None:
            wake_at = time.time() + float(seconds)
            self._put(path, {"kind": "sleep", "scope": scope, "seq": seq, "status": "sleeping",
                             "wake_at": wake_at})
            await self.inst.schedule_internal(wake_at, WAKE_ACTION, path)  # durable with the entry
        else:
            wake_at = float(entry["wake_at"])
        remaining = wake_at - time.time()
        if remaining > 0:
            # a durable sleep does not keep the actor awake: the schedule wakes it when due
            with self.inst.released("run"):
                await self._pause(remaining)
        self._put(path, {"kind": "sleep", "scope": scope, "seq": seq, "status": "completed",
                         "wake_at": wake_at, "completed_at": time.time()})
        await self._durable()

    async def loop(self, scope: str, name: str, body: Callable[..., Any], state: Any) -> Any:
        path, seq, entry = self._claim(scope, name, "loop")
        if entry is not None and entry.get("status") == "completed":
            return entry.get("result")
        iteration = int(entry.get("iteration", 0)) if entry else 0
        current = entry.get("state") if entry else plain_copy(state, f"loop {path!r} state")
        while True:
            self._check_abort()
            inner = f"{path}/{iteration}"
            out = await _call(body, WorkflowContext(self, inner), current)
            for p in [p for p in self.history if p.startswith(inner + "/")]:
                self._delete(p)  # history stays bounded: only the loop's progress is kept
            self._seen = {p for p in self._seen if not p.startswith(inner + "/")}
            self._seq.pop(inner, None)
            if isinstance(out, LoopResult) and out.done:
                result = plain_copy(out.value, f"loop {path!r} result")
                self._put(path, {"kind": "loop", "scope": scope, "seq": seq, "status": "completed",
                                 "iteration": iteration + 1, "result": result})
                await self._durable()
                return result
            current = plain_copy(out.value if isinstance(out, LoopResult) else out, f"loop {path!r} state")
            iteration += 1
            self._put(path, {"kind": "loop", "scope": scope, "seq": seq, "status": "running",
                             "iteration": iteration, "state": current})
            await self._durable()

    # ---- running and replaying ---------------------------------------------------------------

    async def run(self, fn: Callable[..., Any], ctx: Any) -> None:
        if DONE in self.history:
            return
        self._seq.clear()
        self._seen.clear()
        try:
            result = await _call(fn, ctx, WorkflowContext(self, ""))
        except _Suspended:
            return
        self._put(DONE, {"kind": "done", "result": plain_copy(result, "workflow result"),
                         "completed_at": time.time()})
        await self._durable()

    def rewind(self, path: str) -> int:
        """Forget ``path`` and everything recorded after it in execution order, so the next run
        re-executes from there. Returns how many entries were removed."""
        target = self.history.get(path)
        if target is None or path == DONE:
            raise KeyError(path)
        scope, seq = target.get("scope", ""), int(target.get("seq", 0))
        doomed = {DONE} if DONE in self.history else set()
        doomed |= {p for p, e in self.history.items() if e.get("scope") == scope and int(e.get("seq", 0)) >= seq}
        # inside a loop iteration ("L/3"): what follows the loop L in its own scope goes too
        current = scope
        while current:
            loop_path = current.rpartition("/")[0]
            loop_entry = self.history.get(loop_path)
            if loop_entry is None:
                break
            outer, at = loop_entry.get("scope", ""), int(loop_entry.get("seq", 0))
            doomed |= {p for p, e in self.history.items() if e.get("scope") == outer and int(e.get("seq", 0)) > at}
            current = outer
        for p in list(doomed):
            doomed |= {q for q in self.history if q.startswith(p + "/")}
        for p in doomed:
            self._delete(p)
        return len(doomed)


class WorkflowContext:
    """``wf`` in ``@a.workflow async def run(c, wf)``."""

    __slots__ = ("_runner", "_scope")

    def __init__(self, runner: WorkflowRunner, scope: str) -> None:
        self._runner = runner
        self._scope = scope

    async def step(self, name: str, fn: Callable[[], Any], *, retries: int = 0, backoff: float = 0.5,
                   max_backoff: float = 30.0) -> Any:
        """Run ``fn()`` (sync or async) once and record its plain-data result; on replay return the
        recorded result. On an exception retry up to ``retries`` times with exponential backoff."""
        return await self._runner.step(self._scope, name, fn, retries, backoff, max_backoff)

    async def sleep(self, name: str, seconds: float) -> None:
        """A durable timer: the actor may sleep meanwhile; a schedule wakes it when it is due."""
        await self._runner.sleep(self._scope, name, seconds)

    async def loop(self, name: str, body: Callable[..., Any], *, state: Any = None) -> Any:
        """Run ``body(wf, state)`` until it returns ``Loop.done(value)``; each iteration's
        progress is durable and only the current iteration's history is kept."""
        return await self._runner.loop(self._scope, name, body, state)
