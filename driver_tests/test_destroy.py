"""Destroy (API.md §3, §5, §6, §8)."""

from __future__ import annotations

import anyio
import pytest

from driver_tests.helpers import event_names, eventually, observed
from runtime import ActorError

pytestmark = pytest.mark.anyio


async def _not_found(coro) -> None:
    with pytest.raises(ActorError) as ei:
        await coro
    assert (ei.value.group, ei.value.code) == ("actor", "not_found")


async def test_destroy_from_client(client) -> None:
    h = client.get_or_create("doomed", "k")
    assert await h.doomed_bump() == 1
    assert await h.doomed_bump() == 2
    await h.doomed_kv_put("kv-key", "kv-value")
    await h.doomed_schedule(3600.0)
    old_id = await h.resolve()
    await h.destroy()
    # on_destroy ran (with the final state) before destroy() returned
    assert await observed(client, "doomed", "k") == ["create", ["destroy_start", 2], "destroy_end"]
    await _not_found(client.get_for_id("doomed", old_id).doomed_read())
    await _not_found(client.get("doomed", "k").resolve())
    await _not_found(client.get("doomed", "k").doomed_read())
    # the key is free: a new actor with fresh state, KV and schedules
    h2 = client.get_or_create("doomed", "k")
    new_id = await h2.resolve()
    assert new_id != old_id
    assert await h2.doomed_read() == {"count": 0, "slow": False}
    assert await h2.doomed_kv_list() == []
    assert await h2.doomed_pending() == []
    # the old id stays gone
    await _not_found(client.get_for_id("doomed", old_id).doomed_read())
    assert event_names(await observed(client, "doomed", "k")) == ["create", "destroy_start", "destroy_end", "create"]


async def test_key_handle_reresolves_after_destroy(client) -> None:
    h = client.get_or_create("doomed", "reresolve")
    assert await h.doomed_bump() == 1
    first = await h.resolve()
    await client.get_for_id("doomed", first).destroy()
    # the same key-based handle re-resolves: a new actor with fresh state
    assert await h.doomed_bump() == 1
    assert await h.resolve() != first


async def test_id_bound_handle_stays_bound_after_destroy(client) -> None:
    h = await client.create("doomed", "bound")  # create() returns a handle bound to the new id
    await h.doomed_bump()
    await client.get("doomed", "bound").destroy()
    await _not_found(h.doomed_read())
    # the key is free again, but the bound handle does not follow it
    assert await client.get_or_create("doomed", "bound").doomed_bump() == 1
    await _not_found(h.doomed_read())


async def test_create_after_destroy(client) -> None:
    h = await client.create("doomed", "recreate")
    await h.doomed_bump()
    await h.destroy()
    h2 = await client.create("doomed", "recreate")
    assert await h2.doomed_read() == {"count": 0, "slow": False}


async def test_destroy_from_inside(client) -> None:
    h = client.get_or_create("doomed", "self")
    await h.doomed_bump()
    old_id = await h.resolve()
    # c.destroy() returns at once; the action still answers
    assert await h.doomed_self_destroy() == "bye"

    async def destroyed():
        assert event_names(await observed(client, "doomed", "self")) == ["create", "destroy_start", "destroy_end"]

    await eventually(destroyed)

    async def gone():
        with pytest.raises(ActorError) as ei:
            await client.get_for_id("doomed", old_id).doomed_read()
        assert ei.value.code == "not_found", ei.value

    await eventually(gone)
    await _not_found(client.get("doomed", "self").resolve())


async def test_destroy_twice_raises_stopping(client) -> None:
    h = client.get_or_create("doomed", "twice")
    assert await h.doomed_destroy_twice() == ["actor", "stopping"]

    async def destroyed():
        assert "destroy_end" in event_names(await observed(client, "doomed", "twice"))

    await eventually(destroyed)


@pytest.mark.timing
async def test_calls_during_destroy_answer_destroying(client) -> None:
    h = client.get_or_create("doomed", "slow")
    await h.doomed_slow()  # on_destroy will take 0.6 s
    old_id = await h.resolve()
    async with anyio.create_task_group() as tg:
        tg.start_soon(h.destroy)

        async def destroying():
            assert "destroy_start" in event_names(await observed(client, "doomed", "slow"))

        await eventually(destroying)
        with pytest.raises(ActorError) as ei:
            await client.get_for_id("doomed", old_id).doomed_read()
        assert (ei.value.group, ei.value.code) == ("actor", "destroying")
    await _not_found(client.get_for_id("doomed", old_id).doomed_read())


@pytest.mark.timing
async def test_schedules_of_destroyed_actor_never_fire(client) -> None:
    h = client.get_or_create("doomed", "sched")
    await h.doomed_schedule(0.3)
    await h.destroy()
    await anyio.sleep(0.6)
    assert event_names(await observed(client, "doomed", "sched")) == ["create", "destroy_start", "destroy_end"]


async def test_destroy_from_inside_does_not_abort_the_running_action(client) -> None:
    """``c.destroy()`` returns at once; the destroy follows the current action (API.md §6)."""
    h = client.get_or_create("doomed", "not-yet")
    assert await h.doomed_destroy_then_aborted() is False

    async def gone():
        assert "destroy_end" in event_names(await observed(client, "doomed", "not-yet"))

    await eventually(gone)


async def test_stale_get_handle_reaches_the_recreated_actor(client) -> None:
    stale = client.get("doomed", "recreated")
    await client.get_or_create("doomed", "recreated").doomed_bump()
    assert await stale.doomed_bump() == 2
    old_id = await stale.resolve()
    await stale.destroy()
    await _not_found(stale.doomed_read())
    new = await client.create("doomed", "recreated")
    assert await new.resolve() != old_id
    # the key-based get handle follows the key to the new actor, with fresh state
    assert await stale.doomed_read() == {"count": 0, "slow": False}
    assert await stale.resolve() == await new.resolve()


async def test_destroy_with_an_open_connection(client) -> None:
    h = client.get_or_create("doomed", "connected")
    async with h.connect() as conn:
        assert await conn.doomed_bump() == 1
        await client.get_or_create("doomed", "connected").destroy()
        # destroy() returned after on_destroy; the connection may already have created the next actor
        assert event_names(await observed(client, "doomed", "connected"))[:3] == [
            "create", "destroy_start", "destroy_end"]

        async def fresh():
            try:
                state = await conn.doomed_read()
            except ActorError as e:  # the closing socket of the destroyed actor
                raise AssertionError(e.code) from None
            assert state == {"count": 0, "slow": False}

        await eventually(fresh)
