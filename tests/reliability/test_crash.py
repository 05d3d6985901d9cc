"""Crash consistency (API.md §5): SIGKILL a real file-driver server at random points, restart it,
verify every acknowledgement. The harness is ``crash_harness.py``; see README.md."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from runtime import actor, setup
from runtime.core import keys as K
from runtime.drivers import FileDriver
from tests.reliability import crash_harness


@pytest.mark.timing
def test_sigkill_at_random_points_loses_nothing_acknowledged(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    kills = int(os.environ.get("RIVET_CRASH_KILLS", "20"))
    with capsys.disabled():
        stats = crash_harness.run(tmp_path / "state", kills=kills)
    assert stats.kills >= kills and stats.restarts == kills
    assert stats.durable_verified > 0 and stats.batches_verified > 0 and stats.schedules_acked > 0
    assert stats.schedules_fired_once == stats.schedules_acked


slow = actor(state={"done": [], "n": 0}, state_save_interval=0.05, sleep_timeout=60.0)


@slow.action
async def plan(c, delay):
    return await c.schedule.after(delay, "work", "job")


@slow.action
async def work(c, tag):
    await asyncio.sleep(0.4)
    c.state["done"].append(tag)


@slow.action
def bump(c):
    c.state["n"] += 1


slow_registry = setup(use={"slow": slow})


@pytest.mark.anyio
@pytest.mark.timing
async def test_a_schedule_row_outlives_its_action_until_the_effects_are_flushed(tmp_path: Path):
    """Found by the crash harness's reasoning: the fired entry's removal used to be queued before
    the action ran, so any flush during the action (here a throttled save of another action's
    change) wrote the removal without the action's effects. A crash then lost the schedule."""
    driver = FileDriver(tmp_path / "state")
    async with slow_registry.run(driver=driver) as rt:
        h = rt.client().get_or_create("slow", "x")
        actor_id = await h.resolve()
        await h.plan(0.0)
        await asyncio.sleep(0.1)  # the action is running now
        await h.bump()  # a throttled save lands while it runs
        await asyncio.sleep(0.15)
        rows = await driver.scan(actor_id, K.SCHEDULE, K.prefix_end(K.SCHEDULE))
        record = K.unpack((await driver.get(actor_id, [K.RECORD]))[0])
        assert record["state"]["n"] == 1  # the throttled save happened...
        assert record["state"]["done"] == []  # ...before the scheduled action finished...
        assert len(rows) == 1  # ...so its entry must still be stored
        alarms = dict(await driver.list_alarms())
        assert actor_id in alarms  # and a restart would wake the actor for it
        await asyncio.sleep(0.4)
        rows = await driver.scan(actor_id, K.SCHEDULE, K.prefix_end(K.SCHEDULE))
        record = K.unpack((await driver.get(actor_id, [K.RECORD]))[0])
        assert rows == [] and record["state"]["done"] == ["job"]  # gone together with the effect
