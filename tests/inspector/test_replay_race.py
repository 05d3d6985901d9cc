"""Replay while the workflow is running: whatever the running workflow does after the rewind
must not survive into the replayed history (the old run is stopped before anything is awaited)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from driver_tests.helpers import eventually
from runtime import actor, setup
from runtime.core import keys as K
from runtime.core.inspector import TRUSTED
from runtime.drivers import MemoryDriver

pytestmark = pytest.mark.anyio

GATE = asyncio.Event()
RUNS: list[str] = []


class SlowRewindDriver(MemoryDriver):
    """When a flush deletes workflow rows (the rewind), open the gate and take a moment: a step
    that was waiting on the gate finishes while the rewind is being written."""

    async def apply(self, actor_id: str, puts: Any = (), deletes: Any = (), delete_ranges: Any = (),
                    **kw: Any) -> None:
        if any(k.startswith(K.WORKFLOW) for k in deletes) and not GATE.is_set():
            GATE.set()
            await asyncio.sleep(0.05)
        await super().apply(actor_id, puts, deletes, delete_ranges, **kw)


def make_registry() -> Any:
    a = actor(state={}, no_sleep=True)

    @a.workflow
    async def run(c, wf):
        def one() -> str:
            RUNS.append("one")
            return f"one#{RUNS.count('one')}"

        async def two() -> str:
            RUNS.append("two:start")
            if RUNS.count("two:start") == 1:
                await GATE.wait()  # the first run of "two" is still going when the replay comes
            RUNS.append("two")
            return f"two#{RUNS.count('two')}"

        return [await wf.step("one", one), await wf.step("two", two)]

    return setup(use={"a": a})


async def test_replay_stops_the_running_workflow_before_the_rewind_is_written() -> None:
    GATE.clear()
    RUNS.clear()
    async with make_registry().run(driver=SlowRewindDriver()) as rt:
        actor_id = await rt.client().get_or_create("a", "x").resolve()

        async def in_two() -> None:
            assert RUNS == ["one", "two:start"]

        await eventually(in_two)
        out = await rt.manager.dispatch(actor_id, "inspector", (TRUSTED, "workflow_replay", {"entry": "one"}))
        assert out["removed"] == 1

        async def done() -> list[dict[str, Any]]:
            entries = await rt.manager.dispatch(actor_id, "inspector", (TRUSTED, "workflow_history", {}))
            assert entries[-1]["name"] == "__done__"
            return list(entries)

        entries = await eventually(done)
        # the old run was stopped at once (its "two" never finished); the replay ran "one", then "two"
        assert RUNS == ["one", "two:start", "one", "two:start", "two"]
        assert entries[-1]["result"] == ["one#2", "two#1"]
