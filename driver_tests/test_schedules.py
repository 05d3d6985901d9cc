"""Schedules: c.schedule.after/at/cancel/get/list (API.md §3, §8)."""

from __future__ import annotations

import time

import anyio
import pytest

from driver_tests.helpers import event_names, eventually, observed
from runtime import ActorError

pytestmark = [pytest.mark.anyio, pytest.mark.timing]

ARGS = [1, "a", {"x": [1, None]}, b"\x00"]


def _fired(client, name, key, n=1):
    async def check():
        events = await observed(client, name, key)
        fired = [e[1] for e in events if isinstance(e, list) and e[0] == "fired"]
        assert len(fired) >= n, events
        return fired

    return check


async def test_after_fires_with_stored_args(client) -> None:
    h = client.get_or_create("sched", "after")
    before = time.time()
    sid = await h.after(0.3, "fired", *ARGS)
    assert isinstance(sid, str) and sid
    pending = await h.get_schedule(sid)
    assert pending["id"] == sid
    assert pending["action"] == "fired"
    assert pending["args"] == ARGS
    assert before + 0.3 - 0.05 <= pending["run_at"] <= time.time() + 0.3 + 0.05
    assert [e["id"] for e in await h.pending()] == [sid]
    fired = await eventually(_fired(client, "sched", "after"))
    assert fired == [ARGS]
    (args, at), *_ = await h.fired_list()
    assert args == ARGS
    assert at >= pending["run_at"] - 0.01
    assert at <= pending["run_at"] + 0.25
    # once fired it is gone
    assert await h.get_schedule(sid) is None
    assert await h.pending() == []
    await anyio.sleep(0.3)
    assert len(await h.fired_list()) == 1  # fired exactly once


async def test_at_fires_at_timestamp(client) -> None:
    h = client.get_or_create("sched", "at")
    run_at = time.time() + 0.3
    sid = await h.at(run_at, "fired", "at-arg")
    assert (await h.get_schedule(sid))["run_at"] == pytest.approx(run_at, abs=0.01)
    fired = await eventually(_fired(client, "sched", "at"))
    assert fired == [["at-arg"]]
    [[args, at]] = await h.fired_list()
    assert run_at - 0.01 <= at <= run_at + 0.25


async def test_at_in_the_past_fires_at_once(client) -> None:
    h = client.get_or_create("sched", "past")
    await h.at(time.time() - 10, "fired", "late")
    assert await eventually(_fired(client, "sched", "past"), timeout=2.0) == [["late"]]


async def test_cancel(client) -> None:
    h = client.get_or_create("sched", "cancel")
    sid = await h.after(0.3, "fired", "cancelled")
    keep = await h.after(0.4, "fired", "kept")
    assert await h.cancel(sid) is True
    assert await h.cancel(sid) is False
    assert await h.cancel("no-such-schedule") is False
    assert await h.get_schedule(sid) is None
    assert [e["id"] for e in await h.pending()] == [keep]
    assert await eventually(_fired(client, "sched", "cancel")) == [["kept"]]
    await anyio.sleep(0.2)
    assert [a for a, _ in await h.fired_list()] == [["kept"]]


async def test_list_is_pending_only_sorted_by_run_at(client) -> None:
    h = client.get_or_create("sched", "list")
    now = time.time()
    s3 = await h.at(now + 30, "fired", 3)
    s1 = await h.at(now + 10, "fired", 1)
    s2 = await h.after(20.0, "fired", 2)
    s0 = await h.after(0.2, "fired", 0)
    listed = await h.pending()
    assert [e["id"] for e in listed] == [s0, s1, s2, s3]
    assert [e["args"] for e in listed] == [[0], [1], [2], [3]]
    assert all(e["action"] == "fired" for e in listed)
    assert len({s0, s1, s2, s3}) == 4
    await eventually(_fired(client, "sched", "list"))
    assert [e["id"] for e in await h.pending()] == [s1, s2, s3]


async def test_failing_scheduled_action_is_not_retried(client) -> None:
    h = client.get_or_create("sched", "fail")
    await h.after(0.1, "fail_scheduled")

    async def attempted():
        assert event_names(await observed(client, "sched", "fail")).count("attempt") == 1

    await eventually(attempted)
    await anyio.sleep(0.5)
    assert event_names(await observed(client, "sched", "fail")).count("attempt") == 1
    assert await h.pending() == []
    assert await h.sched_ping() == "pong"  # the actor keeps serving


async def test_unknown_scheduled_action_does_not_break_actor(client) -> None:
    h = client.get_or_create("sched", "unknown")
    try:
        await h.after(0.1, "no_such_action")
    except ActorError as e:  # rejecting it up front is fine too
        assert e.code == "action_not_found"
    await h.after(0.2, "fired", "after-unknown")
    assert await eventually(_fired(client, "sched", "unknown")) == [["after-unknown"]]
    assert await h.sched_ping() == "pong"


async def test_max_schedules(client) -> None:
    h = client.get_or_create("sched_limited", "k")
    ids = [await h.after(60.0, "fired", i) for i in range(3)]
    with pytest.raises(ActorError) as ei:
        await h.after(60.0, "fired", 3)
    assert (ei.value.group, ei.value.code) == ("schedule", "max_schedules_exceeded")
    with pytest.raises(ActorError) as ei:
        await h.at(time.time() + 60, "fired", 3)
    assert ei.value.code == "max_schedules_exceeded"
    assert [e["id"] for e in await h.pending()] == ids
    assert await h.cancel(ids[0]) is True
    new = await h.after(60.0, "fired", 4)
    assert [e["id"] for e in await h.pending()] == [ids[1], ids[2], new]


async def test_schedule_wakes_sleeping_actor(client) -> None:
    h = client.get_or_create("sched_sleepy", "wake")
    await h.after(1.0, "fired", "woke-me")

    async def fired():
        events = await observed(client, "sched_sleepy", "wake")
        assert ["fired", ["woke-me"]] in events, events
        return events

    events = await eventually(fired)
    # it slept (sleep_timeout 0.3 s) and the alarm woke it
    assert event_names(events)[:4] == ["wake", "sleep", "wake", "fired"]


@pytest.mark.parametrize("driver_kind", ["file"])
async def test_overdue_schedule_fires_after_restart(open_rt) -> None:
    async with open_rt() as (_, client1):
        h = client1.get_or_create("sched", "restart")
        await h.after(0.3, "fired", "after-restart")
    await anyio.sleep(0.4)  # the schedule is overdue while no runtime runs
    async with open_rt() as (_, client):
        # nothing touches the actor: the runtime itself must wake it for the overdue alarm
        assert await eventually(_fired(client, "sched", "restart")) == [["after-restart"]]


@pytest.mark.parametrize("driver_kind", ["file"])
async def test_future_schedule_fires_after_restart(open_rt) -> None:
    async with open_rt() as (_, client1):
        h = client1.get_or_create("sched", "restart-future")
        await h.after(0.8, "fired", "future")
    async with open_rt() as (_, client):
        assert await eventually(_fired(client, "sched", "restart-future")) == [["future"]]


async def test_several_schedules_fire_in_run_at_order(client) -> None:
    h = client.get_or_create("sched", "order")
    await h.after(0.3, "fired", "third")
    await h.after(0.1, "fired", "first")
    await h.at(time.time() + 0.2, "fired", "second")

    async def all_fired():
        fired = [e for e in await observed(client, "sched", "order") if isinstance(e, list) and e[0] == "fired"]
        assert len(fired) == 3, fired
        return fired

    fired = await eventually(all_fired)
    assert [f[1] for f in fired] == [["first"], ["second"], ["third"]]
    assert [args for args, _ in await h.fired_list()] == [["first"], ["second"], ["third"]]
    assert await h.pending() == []
