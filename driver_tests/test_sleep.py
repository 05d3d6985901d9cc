"""What holds idle sleep off, and what sleep keeps (API.md §3, §8; docs/decisions.md).

``napper`` and ``runner`` sleep after 0.3 s idle and note ``[event, wall time]`` in their observer,
so a test checks *when* the sleep began relative to the end of the work that must block it: with
a blocker broken, the sleep would begin during the work, not a full timeout after it."""

from __future__ import annotations

import time

import anyio
import pytest

from driver_tests.actors import NAP_TIMEOUT
from driver_tests.helpers import event_names, eventually, observed

pytestmark = [pytest.mark.anyio, pytest.mark.timing]

HTTP = ["http-json"]
SLACK = 0.05  # timer and clock granularity


def _at(events, name, nth=0):
    return [e[1] for e in events if isinstance(e, list) and e[0] == name][nth]


def _slept(client, name, key, times=1):
    async def check():
        events = await observed(client, name, key)
        assert event_names(events).count("sleep") >= times, events
        return events

    return check


async def test_calls_reset_the_idle_timer(client) -> None:
    h = client.get_or_create("napper", "calls")
    assert await h.nap_counts() == {"starts": 1, "sleeps": 0}
    last = time.time()
    deadline = anyio.current_time() + 2 * NAP_TIMEOUT
    while anyio.current_time() < deadline:  # calls 0.1 s apart for twice the sleep timeout
        await anyio.sleep(0.1)
        assert await h.nap_counts() == {"starts": 1, "sleeps": 0}
        last = time.time()
    events = await eventually(_slept(client, "napper", "calls"))
    assert event_names(events) == ["wake", "sleep"]
    assert _at(events, "sleep") - last >= NAP_TIMEOUT - SLACK
    assert await client.get_or_create("napper", "calls").nap_counts() == {"starts": 2, "sleeps": 1}


async def test_in_flight_action_blocks_sleep(client) -> None:
    h = client.get_or_create("napper", "long-action")
    ended = await h.nap_long(3 * NAP_TIMEOUT)
    events = await eventually(_slept(client, "napper", "long-action"))
    assert event_names(events) == ["wake", "sleep"]
    assert _at(events, "sleep") - ended >= NAP_TIMEOUT - SLACK


async def test_in_flight_action_on_a_connection_blocks_sleep(client) -> None:
    h = client.get_or_create("napper", "conn-action")
    async with h.connect() as conn:
        waiting = anyio.Event()
        conn.once("waiting", lambda *args: waiting.set())
        await conn.nap_counts()
        async with anyio.create_task_group() as tg:
            results = []

            async def run_long() -> None:
                results.append(await conn.nap_wait_release())

            tg.start_soon(run_long)
            with anyio.fail_after(5):
                await waiting.wait()
            await anyio.sleep(NAP_TIMEOUT + 0.2)  # past the timeout: must not have slept
            assert event_names(await observed(client, "napper", "conn-action")) == ["wake"]
            assert await client.get_or_create("napper", "conn-action").nap_release() is True
        ended = results[0]
        events = await eventually(_slept(client, "napper", "conn-action"))
        assert event_names(events) == ["wake", "sleep"]
        assert _at(events, "sleep") - ended >= NAP_TIMEOUT - SLACK
        # the hibernatable connection survived the sleep and wakes the actor
        assert await conn.nap_counts() == {"starts": 2, "sleeps": 1}


async def test_scheduled_action_counts_as_activity(client) -> None:
    h = client.get_or_create("napper", "schedule")
    await h.nap_schedule(0.2)
    events = await eventually(_slept(client, "napper", "schedule"))
    assert event_names(events) == ["wake", "fired", "sleep"]
    assert _at(events, "sleep") - _at(events, "fired") >= NAP_TIMEOUT - SLACK


async def test_run_handler_blocks_sleep_until_it_returns(client) -> None:
    h = client.get_or_create("runner", "k")
    assert await h.runner_runs() == 1
    events = await eventually(_slept(client, "runner", "k"))
    assert event_names(events) == ["wake", "run_done", "sleep"]
    assert _at(events, "sleep") - _at(events, "run_done") >= NAP_TIMEOUT - SLACK
    assert await client.get_or_create("runner", "k").runner_runs() == 2  # run again at wake
    events = await eventually(_slept(client, "runner", "k", 2))
    assert event_names(events) == ["wake", "run_done", "sleep", "wake", "run_done", "sleep"]


@pytest.mark.parametrize("transport_kind", HTTP)
async def test_in_flight_raw_request_blocks_sleep(client) -> None:
    h = client.get_or_create("napper", "raw-request")
    resp = await h.fetch(f"/slow?seconds={3 * NAP_TIMEOUT}")
    assert resp.status_code == 200
    body = resp.json()
    assert body["completed"] is True
    events = await eventually(_slept(client, "napper", "raw-request"))
    assert event_names(events) == ["wake", "sleep"]
    assert _at(events, "sleep") - body["at"] >= NAP_TIMEOUT - SLACK


@pytest.mark.parametrize("transport_kind", HTTP)
async def test_open_raw_websocket_blocks_sleep(client) -> None:
    h = client.get_or_create("napper", "raw-ws")
    ws = await h.websocket("/hold")
    with anyio.fail_after(5):
        assert await ws.receive() == "ready"
    await anyio.sleep(NAP_TIMEOUT + 0.3)  # past the timeout with the socket open: still awake
    await ws.send("still-there")
    with anyio.fail_after(5):
        assert await ws.receive() == "echo:still-there"
    assert event_names(await observed(client, "napper", "raw-ws")) == ["wake"]
    await ws.close()
    events = await eventually(_slept(client, "napper", "raw-ws"))
    assert event_names(events) == ["wake", "ws_closed", "sleep"]
    assert _at(events, "sleep") - _at(events, "ws_closed") >= NAP_TIMEOUT - SLACK
    assert await client.get_or_create("napper", "raw-ws").nap_counts() == {"starts": 2, "sleeps": 1}


@pytest.mark.parametrize("transport_kind", HTTP)
async def test_raw_websocket_handler_finishing_after_close_blocks_sleep(client) -> None:
    h = client.get_or_create("napper", "raw-linger")
    ws = await h.websocket("/linger")
    with anyio.fail_after(5):
        assert await ws.receive() == "ready"
    await ws.close()
    events = await eventually(_slept(client, "napper", "raw-linger"))
    # the handler kept working 0.6 s after the client left; the sleep waited for it
    assert event_names(events) == ["wake", "linger_start", "linger_end", "sleep"]
    assert _at(events, "sleep") - _at(events, "linger_end") >= NAP_TIMEOUT - SLACK


async def test_state_and_connection_survive_explicit_sleep(client) -> None:
    h = client.get_or_create("napper", "explicit")
    async with h.connect() as conn:
        assert await conn.nap_counts() == {"starts": 1, "sleeps": 0}
        assert await conn.nap_sleep() is True
        await eventually(_slept(client, "napper", "explicit"))
        # state_save_interval is 30 s: the counters came back through the sleep's final flush
        assert await conn.nap_counts() == {"starts": 2, "sleeps": 1}
    assert await client.get_or_create("napper", "explicit").nap_counts() == {"starts": 2, "sleeps": 1}


async def test_failing_on_sleep_still_flushes_and_wakes(client) -> None:
    h = client.get_or_create("fragile_sleep", "k")
    assert await h.fragile_bump() == 1
    assert await h.fragile_sleep_now() is True

    async def slept():
        events = await observed(client, "fragile_sleep", "k")
        assert ["sleep", "woke"] in events, events  # on_sleep saw the vars built at wake
        return events

    await eventually(slept)
    # on_sleep raised after adding 100; the final flush still wrote it, and the actor wakes
    assert await client.get_or_create("fragile_sleep", "k").fragile_bump() == 102
    assert event_names(await observed(client, "fragile_sleep", "k")) == ["wake", "sleep", "wake"]


async def test_wait_until_started_in_on_wake_finishes_before_the_final_save(client) -> None:
    h = client.get_or_create("wake_worker", "k")
    assert await h.wake_worker_sleep() is True
    await eventually(_slept(client, "wake_worker", "k"))
    done = await client.get_or_create("wake_worker", "k").wake_worker_read()
    # state_save_interval is 30 s: only the sleep's final flush, after the work, wrote this
    assert done[0] == "from_on_wake"
    assert event_names(await observed(client, "wake_worker", "k"))[:3] == ["wake", "sleep", "wake"]


async def test_on_sleep_can_broadcast_to_open_connections(client) -> None:
    h = client.get_or_create("farewell", "k")
    got = []
    async with h.connect() as conn:
        conn.on("sleeping", lambda *args: got.append(list(args)))
        assert await conn.farewell_bump() == 1
        assert await conn.farewell_sleep() is True

        async def told():
            assert got == [[1]]

        await eventually(told)
        await eventually(_slept(client, "farewell", "k"))
        assert await conn.farewell_bump() == 2
