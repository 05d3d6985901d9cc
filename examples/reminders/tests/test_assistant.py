"""Memory in KV and reminders that wake the actor, on both drivers; restarts on the file driver."""

import pytest

from runtime import ActorError
from runtime.testing import eventually

pytestmark = pytest.mark.anyio


async def test_remember_and_recall(rivet_client):
    me = rivet_client.get_or_create("assistant", "test-ada")
    assert await me.remember("Ada likes green tea") == 1
    assert await me.remember("Ada's cat is called Turing") == 2
    assert await me.remember("The Friday meeting moved to 3 pm") == 3
    assert await me.recall("what tea does she like?") == ["Ada likes green tea"]
    assert await me.recall("") == ["The Friday meeting moved to 3 pm", "Ada's cat is called Turing",
                                   "Ada likes green tea"]
    assert await rivet_client.get_or_create("assistant", "test-bob").recall("") == []  # per user
    with pytest.raises(ActorError) as info:
        await me.remember("   ")
    assert info.value.code == "empty_fact"
    await me.forget_everything()
    assert await me.recall("") == []


@pytest.mark.parametrize("rivet_driver_kind", ["file"])
async def test_memory_survives_a_restart(rivet_registry, make_rivet_driver):
    async with rivet_registry.run(driver=make_rivet_driver()) as rt:
        await rt.client().get_or_create("assistant", "test-durable").remember("the wifi password is on the fridge")
    async with rivet_registry.run(driver=make_rivet_driver()) as rt:
        assert await rt.client().get_or_create("assistant", "test-durable").recall("wifi") == [
            "the wifi password is on the fridge"]


@pytest.mark.timing
async def test_a_reminder_wakes_the_sleeping_assistant(rivet_client):
    me = rivet_client.get_or_create("assistant", "test-wake")
    seen = []
    async with me.connect() as conn:
        conn.on("reminder", seen.append)
        await conn.remind("drink water", 1.0)
        await conn.nap()

        def delivered():
            assert seen == ["drink water"]

        await eventually(delivered)
    assert await me.inbox() == ["drink water"]
    assert await me.wakes() == 2


@pytest.mark.timing
@pytest.mark.parametrize("rivet_driver_kind", ["file"])
async def test_a_reminder_survives_a_restart(rivet_registry, make_rivet_driver):
    async with rivet_registry.run(driver=make_rivet_driver()) as rt:
        await rt.client().get_or_create("assistant", "test-restart").remind("call mum", 0.5)
    async with rivet_registry.run(driver=make_rivet_driver()) as rt:
        me = rt.client().get_or_create("assistant", "test-restart")

        async def delivered():
            assert await me.inbox() == ["call mum"]

        await eventually(delivered)
