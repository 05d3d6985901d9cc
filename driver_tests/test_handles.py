"""Actor handles and the manager's key semantics (API.md §5, §6; docs/decisions.md)."""

from __future__ import annotations

import pytest

from driver_tests.helpers import eventually
from runtime import ActorError

pytestmark = pytest.mark.anyio


# ---- access methods ------------------------------------------------------------------------------


async def test_get_reaches_an_existing_actor(client) -> None:
    created = client.get_or_create("basic", "access-get")
    assert await created.increment(4) == 4
    h = client.get("basic", "access-get")
    assert await h.get_count() == 4
    assert await h.resolve() == await created.resolve()


async def test_get_for_id_and_create_handles(client) -> None:
    h = await client.create("basic", "access-create", input=None)
    actor_id = await h.resolve()
    assert await h.increment() == 1
    by_id = client.get_for_id("basic", actor_id)
    assert await by_id.increment() == 2
    assert await by_id.resolve() == actor_id
    assert (await by_id.identity())["key"] == ["access-create"]


async def test_independent_handles_share_one_actor(client) -> None:
    a = client.get_or_create("basic", "shared")
    b = client.get_or_create("basic", "shared")
    c = client.get("basic", "shared")
    assert await a.increment(1) == 1
    assert await b.increment(10) == 11
    assert await c.increment(100) == 111
    assert await client.get_for_id("basic", await a.resolve()).get_count() == 111
    assert len({await a.resolve(), await b.resolve(), await c.resolve()}) == 1


async def test_connect_through_every_kind_of_handle(client) -> None:
    made = await client.create("basic", "conn-kinds")
    actor_id = await made.resolve()
    handles = [made, client.get("basic", "conn-kinds"), client.get_or_create("basic", "conn-kinds"),
               client.get_for_id("basic", actor_id)]
    for i, h in enumerate(handles, start=1):
        async with h.connect() as conn:
            assert (await conn.identity())["actor_id"] == actor_id
            assert await conn.increment() == i
            assert conn.status == "connected"


async def test_get_never_creates_even_on_connect(client) -> None:
    with pytest.raises(ActorError) as ei:
        async with client.get("basic", "ghost").connect() as conn:
            await conn.get_count()
    assert (ei.value.group, ei.value.code) == ("actor", "not_found")
    with pytest.raises(ActorError) as ei:
        await client.get("basic", "ghost").resolve()
    assert ei.value.code == "not_found"


async def test_hooks_run_for_each_call_across_handles(client) -> None:
    """Every call through a handle is its own ephemeral connection (decisions.md)."""
    a = client.get_or_create("connecty", "per-call", params={"user": "a"})
    b = client.get_or_create("connecty", "per-call", params={"user": "b"})
    ids = [(await a.whoami())["id"], (await b.whoami())["id"], (await a.whoami())["id"]]
    assert len(set(ids)) == 3

    async def settled():
        log = await client.get_or_create("connecty", "per-call", params={"user": "z"}).conn_log()
        for conn_id in ids:
            assert ["on_disconnect", conn_id] in log
        users = [e[1]["user"] for e in log if e[0] == "on_before_connect" and e[1]["user"] in ("a", "b")]
        assert users == ["a", "b", "a"]

    await eventually(settled)


# ---- keys ----------------------------------------------------------------------------------------


async def test_multi_part_keys_reach_the_actor_intact(client) -> None:
    key = ["tenant-1", "room/with/slashes", "", "ünïcödé ✓", "a,b"]
    ident = await client.get_or_create("basic", key).identity()
    assert ident["key"] == key
    assert (await client.get("basic", key).identity())["actor_id"] == ident["actor_id"]


async def test_keys_match_exactly(client) -> None:
    ids = {}
    for key in (["a"], ["a", "b"], ["a", "b", "c"], ["b", "a"], ["a", ""], [""], ["a/b"], ["a\\", "b"]):
        ids[tuple(key)] = await client.get_or_create("basic", key).resolve()
    assert len(set(ids.values())) == len(ids)
    # each resolves again to the same actor
    for key, actor_id in ids.items():
        assert await client.get("basic", list(key)).resolve() == actor_id


async def test_no_key_is_its_own_actor(client) -> None:
    keyed = await client.get_or_create("basic", ["x"]).resolve()
    unkeyed = await client.get_or_create("basic").resolve()
    assert keyed != unkeyed
    assert await client.get("basic", None).resolve() == unkeyed
    assert await client.get("basic", []).resolve() == unkeyed
    with pytest.raises(ActorError) as ei:
        await client.get("basic", ["y"]).resolve()
    assert ei.value.code == "not_found"


async def test_same_key_under_two_names_is_two_actors(client) -> None:
    a = client.get_or_create("basic", "same-key")
    b = client.get_or_create("payload", "same-key")
    assert await a.resolve() != await b.resolve()
    assert (await a.identity())["name"] == "basic"
    with pytest.raises(ActorError) as ei:
        await client.get("with_input", "same-key").resolve()
    assert ei.value.code == "not_found"


async def test_many_instances_of_one_type(client) -> None:
    handles = [client.get_or_create("basic", ["multi", str(i)]) for i in range(6)]
    for i, h in enumerate(handles):
        assert await h.increment(i) == i
    assert [await h.get_count() for h in handles] == list(range(6))
    assert len({await h.resolve() for h in handles}) == 6


async def test_input_reaches_creation_only(client) -> None:
    h = client.get_or_create("with_input", "input-once", input={"v": 1})
    assert (await h.read())["input"] == {"v": 1}
    assert (await client.get_or_create("with_input", "input-once", input={"v": 2}).read())["input"] == {"v": 1}
    with pytest.raises(ActorError) as ei:
        await client.create("with_input", "input-once", input={"v": 3})
    assert ei.value.code == "duplicate_key"
    assert (await client.get("with_input", "input-once").read())["input"] == {"v": 1}
    assert (await (await client.create("with_input", "input-none")).read())["input"] is None
