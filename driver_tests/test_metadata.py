"""Actor metadata (``c.actor_id``, ``c.name``, ``c.key``) in hooks and actions, and vars built
from it (API.md §2, §3)."""

from __future__ import annotations

import pytest

from driver_tests.helpers import eventually

pytestmark = pytest.mark.anyio


async def test_identity_in_actions_and_on_create(client) -> None:
    h = client.get_or_create("meta", ["org", "team 7"], input={"seed": 1})
    actor_id = await h.resolve()
    got = await h.meta_read()
    me = {"actor_id": actor_id, "name": "meta", "key": ["org", "team 7"]}
    assert got["now"] == {**me, "key_is_tuple": True}
    assert got["created_as"] == {**me, "input": {"seed": 1}}
    assert got["woke_as"] == [me]


@pytest.mark.timing
async def test_identity_in_on_wake_after_sleep(client) -> None:
    h = client.get_or_create("meta", "sleeper")
    actor_id = await h.resolve()
    assert await h.meta_sleep() is True
    me = {"actor_id": actor_id, "name": "meta", "key": ["sleeper"]}

    async def woke_twice():
        got = await client.get_or_create("meta", "sleeper").meta_read()
        assert got["woke_as"] == [me, me], got

    await eventually(woke_twice)


async def test_create_vars_sees_identity_and_vars_are_per_instance(client) -> None:
    a = client.get_or_create("keyed_vars", ["a"])
    b = client.get_or_create("keyed_vars", ["b", "c"])
    va = await a.keyed_vars_read()
    vb = await b.keyed_vars_read()
    assert va == {"key": ["a"], "id": await a.resolve(), "calls": 1}
    assert vb == {"key": ["b", "c"], "id": await b.resolve(), "calls": 1}
    # vars live on across calls of the same instance
    assert (await a.keyed_vars_read())["calls"] == 2
    assert (await b.keyed_vars_read())["calls"] == 2


async def test_vars_are_fresh_after_destroy_and_recreation(client) -> None:
    h = client.get_or_create("static_vars", "recreate")
    assert await h.push_var("x") == {"n": 1, "list": ["x"]}
    assert await h.push_var("y") == {"n": 2, "list": ["x", "y"]}
    await h.destroy()
    assert await client.get_or_create("static_vars", "recreate").push_var("z") == {"n": 1, "list": ["z"]}
