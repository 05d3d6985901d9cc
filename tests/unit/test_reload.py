"""``Manager.reload``: new code, same state, connections kept, no caller error (what ``rivet dev``
builds on)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from driver_tests.helpers import eventually
from runtime import actor, setup
from runtime.drivers import FileDriver

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_counter(step: int):
    counter = actor(state={"count": 0}, sleep_timeout=30.0)

    @counter.action
    async def increment(c) -> int:
        await asyncio.sleep(0.01)
        c.state["count"] += step
        c.broadcast("count", c.state["count"])
        return c.state["count"]

    @counter.action
    def version(c) -> int:
        return step

    return counter


async def test_reload_swaps_code_and_keeps_state_and_connections(tmp_path: Path) -> None:
    v1 = setup(use={"counter": make_counter(1)})
    v2 = make_counter(100)
    events: list[dict] = []
    async with v1.run(driver=FileDriver(tmp_path / "state")) as rt:
        rt.manager.listeners.append(events.append)
        client = rt.client()
        h = client.get_or_create("counter", "a")
        assert await h.increment() == 1
        seen: list[int] = []
        async with h.connect() as conn:
            conn.on("count", seen.append)
            await conn.version()
            # calls in flight while the reload happens must all succeed
            calls = [asyncio.ensure_future(h.increment()) for _ in range(20)]
            await asyncio.sleep(0)
            carried = await rt.manager.reload({"counter": v2})
            results = await asyncio.gather(*calls)
            assert carried == 1
            assert len(results) == 20 and all(isinstance(r, int) for r in results)
            assert await h.version() == 100
            before = await h.increment()
            assert before == max(results) + 100
            # the hibernated connection came back on the new code without reconnecting
            assert conn.status == "connected"
            assert await conn.version() == 100

            async def event_seen():
                assert before in seen

            await eventually(event_seen)
    kinds = [e["event"] for e in events]
    assert "sleep" in kinds and kinds.count("wake") >= 1
    actions = [e for e in events if e["event"] == "action"]
    assert actions and all(e["outcome"] == "ok" for e in actions)
    assert {"actor", "action", "duration_ms", "outcome"} <= set(actions[0])
