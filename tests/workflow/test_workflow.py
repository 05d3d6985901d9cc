"""Durable workflows in-process: steps run once, durable sleeps outlive the actor's sleep, loops
keep bounded history, retries back off, renamed steps are reported, replay re-runs."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from driver_tests.helpers import eventually
from runtime import actor, setup
from runtime.core.inspector import TRUSTED
from runtime.core.workflow import Loop
from runtime.drivers import FileDriver, MemoryDriver

pytestmark = pytest.mark.anyio

RUNS: Counter[str] = Counter()
"""How often each step body really ran, per actor key (the test process is the only runner)."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _reset() -> None:
    RUNS.clear()


def body(key: str, name: str, value: Any) -> Any:
    def run() -> Any:
        RUNS[f"{key}:{name}"] += 1
        return value

    return run


def make_registry(nap: float = 0.6, rename: bool = False) -> Any:
    flow = actor(state={"log": []}, sleep_timeout=0.2)

    @flow.workflow
    async def run(c, wf):
        key = c.key[0]

        def logged(name: str, value: int) -> Any:
            def effect() -> int:
                body(key, name, value)()
                c.state["log"].append([name, value])  # side effects belong in steps: they run once
                return value

            return effect

        a = await wf.step("first" if not rename else "first-renamed", logged("first", 1))
        await wf.sleep("nap", nap)
        b = await wf.step("second", logged("second", 2))
        return a + b

    @flow.action
    def log(c):
        return c.state["log"]

    looper = actor(state={"total": 0}, no_sleep=True)

    @looper.workflow
    async def count(c, wf):
        key = c.key[0]

        async def iteration(w, state):
            n = await w.step("inc", body(key, f"inc{state['i']}", state["i"]))
            c.state["total"] += n
            if state["i"] >= 4:
                return Loop.done(state["i"])
            return Loop.next({"i": state["i"] + 1})

        return await wf.loop("counter", iteration, state={"i": 0})

    @looper.action
    def total(c):
        return c.state["total"]

    flaky = actor(state={}, no_sleep=True)

    @flaky.workflow
    async def retrying(c, wf):
        key = c.key[0]

        def sometimes():
            RUNS[f"{key}:try"] += 1
            if RUNS[f"{key}:try"] < 3:
                raise RuntimeError("not yet")
            return "ok"

        return await wf.step("unreliable", sometimes, retries=3, backoff=0.01)

    plain = actor(state={"n": 0})

    @plain.action
    def n(c):
        return c.state["n"]

    return setup(use={"flow": flow, "looper": looper, "flaky": flaky, "plain": plain})


async def history(rt: Any, actor_id: str) -> list[dict[str, Any]]:
    return await rt.manager.dispatch(actor_id, "inspector", (TRUSTED, "workflow_history", {}))


@pytest.mark.timing
@pytest.mark.parametrize("kind", ["memory", "file"])
async def test_durable_sleep_outlives_actor_sleep_and_steps_run_once(tmp_path: Path, kind: str) -> None:
    registry = make_registry()
    driver = MemoryDriver() if kind == "memory" else FileDriver(tmp_path / "state")
    slept: list[str] = []
    async with registry.run(driver=driver) as rt:
        rt.manager.listeners.append(lambda e: slept.append(e["event"]) if e["event"] == "sleep" else None)
        h = rt.client().get_or_create("flow", "a")
        actor_id = await h.resolve()

        def second_ran():  # observed from outside: polling the actor would keep it awake
            assert RUNS["a:second"] == 1

        await eventually(second_ran, timeout=5)
        # the actor slept during the 0.6 s nap (sleep_timeout 0.2) and its schedule woke it
        assert "sleep" in slept
        entries = await history(rt, actor_id)
        assert [e["name"] for e in entries] == ["first", "nap", "second", "__done__"]
        assert entries[-1]["result"] == 3
        assert RUNS["a:first"] == 1 and RUNS["a:second"] == 1
        assert await h.log() == [["first", 1], ["second", 2]]


async def test_loop_keeps_bounded_history_and_runs_each_iteration_once() -> None:
    async with make_registry().run() as rt:
        h = rt.client().get_or_create("looper", "l")
        actor_id = await h.resolve()

        async def finished():
            entries = await history(rt, actor_id)
            assert [e["name"] for e in entries] == ["counter", "__done__"]
            assert entries[0]["result"] == 4 and entries[0]["iteration"] == 5

        await eventually(finished)
        assert await h.total() == 0 + 1 + 2 + 3 + 4
        assert all(RUNS[f"l:inc{i}"] == 1 for i in range(5))


async def test_step_retries_with_backoff() -> None:
    async with make_registry().run() as rt:
        actor_id = await rt.client().get_or_create("flaky", "f").resolve()

        async def finished():
            entries = await history(rt, actor_id)
            assert entries and entries[0]["name"] == "unreliable"
            assert entries[0]["status"] == "completed" and entries[0]["attempts"] == 3
            assert entries[0]["result"] == "ok"

        await eventually(finished)
        assert RUNS["f:try"] == 3


async def test_actor_without_workflow_drops_history_requests() -> None:
    async with make_registry().run() as rt:
        actor_id = await rt.client().get_or_create("plain", "p").resolve()
        with pytest.raises(Exception) as info:
            await history(rt, actor_id)
        assert (info.value.group, info.value.code) == ("actor", "dropped_reply")


async def test_renamed_step_is_reported_not_rerun(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state"
    async with make_registry(nap=30).run(driver=FileDriver(path)) as rt:
        actor_id = await rt.client().get_or_create("flow", "r").resolve()

        async def napping():
            assert [e["name"] for e in await history(rt, actor_id)] == ["first", "nap"]

        await eventually(napping)
    caplog.set_level(logging.ERROR)
    async with make_registry(nap=30, rename=True).run(driver=FileDriver(path)) as rt:
        await rt.client().get_or_create("flow", "r").log()

        def reported():
            messages = [r.getMessage() + str(r.exc_info[1] if r.exc_info else "") for r in caplog.records]
            assert any("first-renamed" in m and "renamed or replaced" in m for m in messages), messages

        await eventually(reported)
        assert RUNS["r:first"] == 1  # never re-run under the new name


async def test_replay_from_an_entry_reruns_from_there() -> None:
    async with make_registry(nap=0.05).run() as rt:
        h = rt.client().get_or_create("flow", "x")
        actor_id = await h.resolve()

        async def done():
            assert [e["name"] for e in await history(rt, actor_id)][-1] == "__done__"

        await eventually(done)
        out = await rt.manager.dispatch(actor_id, "inspector", (TRUSTED, "workflow_replay", {"entry": "second"}))
        assert out["removed"] == 2  # "second" and the done marker

        async def rerun():
            entries = await history(rt, actor_id)
            assert [e["name"] for e in entries] == ["first", "nap", "second", "__done__"]
            assert RUNS["x:second"] == 2 and RUNS["x:first"] == 1

        await eventually(rerun)
        await asyncio.sleep(0)
