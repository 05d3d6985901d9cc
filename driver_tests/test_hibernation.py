"""Hibernatable connections: action connections survive sleep (API.md §8)."""

from __future__ import annotations

import anyio
import pytest

from driver_tests.helpers import event_names, eventually, observed

pytestmark = [pytest.mark.anyio, pytest.mark.timing]

WS = {"who": "ws"}


def _count(events, name):
    return event_names(events).count(name)


def _sleeps(client, key, n):
    async def check():
        events = await observed(client, "hib", key)
        assert _count(events, "sleep") >= n, events
        return events

    return check


def _connects(events):
    return [e for e in events if isinstance(e, list) and e[0] == "connect" and e[1] == WS]


async def test_connection_survives_sleep_and_message_wakes_actor(client) -> None:
    h = client.get_or_create("hib", "wake-by-message")
    async with h.connect(params=WS) as conn:
        with anyio.fail_after(5):
            first = await conn.hib_bump_conn()
        assert first == {"count": 1, "who": "ws"}
        info = await conn.hib_conn_state()
        assert info["hibernatable"] is True
        # an open action connection does not keep the actor awake
        await eventually(_sleeps(client, "wake-by-message", 1))
        assert conn.status == "connected"
        # a message on the hibernated connection wakes the actor; conn state came back
        with anyio.fail_after(5):
            assert await conn.hib_bump_conn() == {"count": 2, "who": "ws"}
        after = await conn.hib_conn_state()
        assert after["id"] == info["id"]
        events = await observed(client, "hib", "wake-by-message")
        assert event_names(events)[-2:] == ["sleep", "wake"]
        # no second on_connect for the restored connection
        assert len(_connects(events)) == 1
        # and it can sleep again with the connection still open
        await eventually(_sleeps(client, "wake-by-message", 2))
        with anyio.fail_after(5):
            assert await conn.hib_bump_conn() == {"count": 3, "who": "ws"}
        assert len(_connects(await observed(client, "hib", "wake-by-message"))) == 1


async def test_subscriptions_survive_sleep(client) -> None:
    h = client.get_or_create("hib", "events")
    got = []
    async with h.connect(params=WS) as conn:
        conn.on("news", lambda *args: got.append(list(args)))
        with anyio.fail_after(5):
            await conn.hib_conn_state()
        await h.hib_emit("news", "before")

        async def before():
            assert got == [["before"]]

        await eventually(before)
        await eventually(_sleeps(client, "events", 1))
        # another caller wakes the actor and broadcasts: the restored connection still gets it
        await client.get_or_create("hib", "events").hib_emit("news", "after", 2)

        async def after():
            assert got == [["before"], ["after", 2]]

        await eventually(after)
        events = await observed(client, "hib", "events")
        assert len(_connects(events)) == 1
        # the restored connection is in c.conns (alongside the ephemeral caller's own connection)
        params = await client.get_or_create("hib", "events").hib_conn_params()
        assert WS in params


async def test_connection_gone_while_asleep_is_dropped_at_wake(client) -> None:
    h = client.get_or_create("hib", "gone")
    async with h.connect(params=WS) as conn:
        with anyio.fail_after(5):
            await conn.hib_conn_state()
        await eventually(_sleeps(client, "gone", 1))
    # the client went away while the actor slept; the next wake drops the connection
    assert ["disconnect", WS] not in await observed(client, "hib", "gone")
    params = await client.get_or_create("hib", "gone").hib_conn_params()
    assert WS not in params

    async def dropped():
        events = await observed(client, "hib", "gone")
        assert ["disconnect", WS] in events, events
        names = event_names(events)
        # on_disconnect ran after the wake
        assert names.index("disconnect", names.index("sleep")) > names.index("wake", names.index("sleep"))

    await eventually(dropped)


async def test_call_on_a_connection_during_on_sleep_is_answered_after_wake(client) -> None:
    h = client.get_or_create("slowsleep", "hib-during")
    async with h.connect() as conn:
        assert await conn.slowsleep_bump() == 1
        assert await conn.slowsleep_sleep() is True

        async def sleeping():
            assert "sleep_start" in event_names(await observed(client, "slowsleep", "hib-during"))

        await eventually(sleeping)
        # on_sleep takes 0.5 s; this message waits for the next instance instead of failing
        with anyio.fail_after(5):
            assert await conn.slowsleep_bump() == 2
        assert event_names(await observed(client, "slowsleep", "hib-during")) == [
            "wake", "sleep_start", "sleep_end", "wake"]
        assert conn.status == "connected"
