"""Sleep and wake (issue #3, API.md §2, §3, §8). Waits for sleep go through the observer actor."""

from __future__ import annotations

import anyio
import pytest

from driver_tests.helpers import event_names, eventually, observed

pytestmark = [pytest.mark.anyio, pytest.mark.timing]


def _slept(client, name, key, times=1):
    async def check():
        events = event_names(await observed(client, name, key))
        assert events.count("sleep") >= times, events
        return events

    return check


async def test_idle_sleep_and_wake_with_last_state(client) -> None:
    h = client.get_or_create("sleepy", "idle")
    actor_id = await h.sleepy_id()
    assert await h.sleepy_bump() == 1
    assert await h.sleepy_bump() == 2
    # not asleep right after activity (sleep_timeout 0.3 s)
    assert "sleep" not in event_names(await observed(client, "sleepy", "idle"))
    await eventually(_slept(client, "sleepy", "idle"))
    events = await observed(client, "sleepy", "idle")
    assert events == ["create", "wake", ["sleep", True]]  # on_sleep saw c.aborted == True
    h2 = client.get_or_create("sleepy", "idle")
    assert await h2.sleepy_bump() == 3  # the last state came back
    assert await h2.sleepy_id() == actor_id  # same identity
    assert (await observed(client, "sleepy", "idle"))[:4] == ["create", "wake", ["sleep", True], "wake"]


async def test_sleeps_again_after_wake(client) -> None:
    h = client.get_or_create("sleepy", "twice")
    await h.sleepy_bump()
    await eventually(_slept(client, "sleepy", "twice", 1))
    await client.get_or_create("sleepy", "twice").sleepy_bump()
    await eventually(_slept(client, "sleepy", "twice", 2))
    assert event_names(await observed(client, "sleepy", "twice")) == ["create", "wake", "sleep", "wake", "sleep"]
    assert (await client.get_or_create("sleepy", "twice").sleepy_read())["count"] == 2


async def test_explicit_sleep(client) -> None:
    h = client.get_or_create("slowsleep", "explicit")
    assert await h.slowsleep_bump() == 1
    assert await h.slowsleep_sleep() is True  # sleep_timeout is 30 s: only c.sleep() can do this

    async def slept():
        assert event_names(await observed(client, "slowsleep", "explicit")) == ["wake", "sleep_start", "sleep_end"]

    await eventually(slept)
    assert await client.get_or_create("slowsleep", "explicit").slowsleep_bump() == 2
    assert event_names(await observed(client, "slowsleep", "explicit")) == [
        "wake",
        "sleep_start",
        "sleep_end",
        "wake",
    ]


async def test_keep_awake_blocks_sleep(client) -> None:
    h = client.get_or_create("sleepy", "keep")
    await h.sleepy_bump()
    assert await h.hold_awake(1.0) is True

    async def released_then_slept():
        events = event_names(await observed(client, "sleepy", "keep"))
        assert "sleep" in events, events
        return events

    events = await eventually(released_then_slept)
    # with keep_awake broken, the actor would sleep at ~0.3 s, before the region ended at 1.0 s
    assert events == ["create", "wake", "released", "sleep"]


async def test_keep_awake_sync_context_manager(client) -> None:
    h = client.get_or_create("sleepy", "keep-sync")
    await h.sleepy_bump()
    assert await h.hold_awake_sync_cm(0.9) is True
    events = await eventually(_slept(client, "sleepy", "keep-sync"))
    assert events == ["create", "wake", "released", "sleep"]


async def test_no_sleep(client) -> None:
    h = client.get_or_create("insomniac", "k")
    assert await h.insomniac_bump() == 1
    await anyio.sleep(0.7)  # sleep_timeout is 0.2 s; with no_sleep it must stay awake
    assert event_names(await observed(client, "insomniac", "k")) == ["wake"]
    assert await h.insomniac_bump() == 2
    assert event_names(await observed(client, "insomniac", "k")) == ["wake"]


async def test_call_during_shutdown_is_served_by_next_instance(client) -> None:
    h = client.get_or_create("slowsleep", "during")
    assert await h.slowsleep_bump() == 1
    assert await h.slowsleep_sleep() is True

    async def sleeping():
        assert "sleep_start" in event_names(await observed(client, "slowsleep", "during"))

    await eventually(sleeping)
    # on_sleep is still running (it takes 0.5 s): this call must wait for the wake, not fail
    with anyio.fail_after(5):
        assert await client.get_or_create("slowsleep", "during").slowsleep_bump() == 2
    assert event_names(await observed(client, "slowsleep", "during")) == [
        "wake",
        "sleep_start",
        "sleep_end",
        "wake",
    ]


async def test_run_handler_restarts_on_wake(client) -> None:
    h = client.get_or_create("ordered", "run")
    await h.resolve()

    async def started():
        assert await observed(client, "ordered", "run") == ["create_state", "on_create", "create_vars", "on_wake", "run"]

    await eventually(started)
    assert await h.go_to_sleep() is True

    async def slept():
        events = event_names(await observed(client, "ordered", "run"))
        assert "on_sleep" in events, events

    await eventually(slept)
    assert (await observed(client, "ordered", "run"))[5] == ["on_sleep", True]
    assert await client.get_or_create("ordered", "run").ticks() >= 0

    async def woke():
        events = event_names(await observed(client, "ordered", "run"))
        # wake order: create_vars → on_wake → run; no create_state / on_create again
        assert events[6:] == ["create_vars", "on_wake", "run"], events

    await eventually(woke)


def _has(client, name, key, *wanted):
    async def check():
        events = event_names(await observed(client, name, key))
        for w in wanted:
            assert w in events, events
        return events

    return check


async def test_wait_until_finishes_before_final_save(client) -> None:
    h = client.get_or_create("sleepy", "wait")
    assert await h.defer_then_sleep(0.3, "late-value") is True
    events = await eventually(_has(client, "sleepy", "wait", "sleep", "deferred_done"))
    assert events == ["create", "wake", "sleep", "deferred_done"]
    # state_save_interval is 30 s: only the final flush of the sleep can have written this value,
    # so it must come after the wait_until work
    state = await client.get_or_create("sleepy", "wait").sleepy_read()
    assert state["deferred"] == "late-value"
    assert event_names(await observed(client, "sleepy", "wait")) == ["create", "wake", "sleep", "deferred_done", "wake"]


async def test_wait_until_does_not_block_idle_sleep(client) -> None:
    h = client.get_or_create("sleepy", "wait-idle")
    assert await h.defer_write(0.8, "v") is True
    events = await eventually(_has(client, "sleepy", "wait-idle", "sleep", "deferred_done"))
    # idle sleep began (~0.3 s) before the 0.8 s background work finished; the work was then
    # drained before the final save
    assert events == ["create", "wake", "sleep", "deferred_done"]
    state = await client.get_or_create("sleepy", "wait-idle").sleepy_read()
    assert state["deferred"] == "v"


async def test_sleep_grace_period_bounds_shutdown(client) -> None:
    h = client.get_or_create("graceful", "k")
    assert await h.graceful_bump() == 1
    start = anyio.current_time()
    assert await h.graceful_sleep() is True

    async def started():
        assert "sleep_start" in event_names(await observed(client, "graceful", "k"))

    await eventually(started)
    # on_sleep hangs for 10 s; the grace period (0.5 s) ends the shutdown, then the next call wakes it
    with anyio.fail_after(5):
        assert await client.get_or_create("graceful", "k").graceful_bump() == 2
    assert anyio.current_time() - start < 3.0
    assert event_names(await observed(client, "graceful", "k")) == ["wake", "sleep_start", "wake"]
