"""create / get / get_for_id / resolve / destroy, input, and key-based re-resolution."""

from __future__ import annotations

import anyio
import pytest

from runtime import ActorError, Client

pytestmark = pytest.mark.anyio


def code(e: pytest.ExceptionInfo[ActorError]) -> tuple[str, str]:
    return (e.value.group, e.value.code)


async def test_get_never_creates(client: Client) -> None:
    with pytest.raises(ActorError) as info:
        await client.get("counter", "missing").increment(1)
    assert code(info) == ("actor", "not_found")
    with pytest.raises(ActorError) as info:
        await client.get("counter", "missing").resolve()
    assert code(info) == ("actor", "not_found")
    await client.get_or_create("counter", "missing").increment(3)
    assert await client.get("counter", "missing").get_count() == 3


async def test_create_then_duplicate_key(client: Client) -> None:
    h = await client.create("counter", ["room", "1"])
    assert await h.increment(2) == 2
    with pytest.raises(ActorError) as info:
        await client.create("counter", ["room", "1"])
    assert code(info) == ("actor", "duplicate_key")
    assert await client.get("counter", ["room", "1"]).get_count() == 2


async def test_keys_are_exact_lists(client: Client) -> None:
    # parts that need escaping in RivetKit's key string, and keys that differ only by splitting
    keys = [None, "", ["a/b"], ["a", "b"], ["a\\", "b"], ["", ""], ["x"], "x/"]
    ids = []
    for i, key in enumerate(keys):
        h = client.get_or_create("counter", key)
        await h.increment(i + 1)
        ident = await h.identity()
        expected = [] if key is None else ([key] if isinstance(key, str) else key)
        assert ident["key"] == expected
        ids.append(ident["id"])
    assert len(set(ids)) == len(keys)
    assert await client.get("counter", ["a/b"]).get_count() == 3
    assert await client.get("counter", ["a", "b"]).get_count() == 4
    assert await client.get("counter").get_count() == 1


async def test_resolve_and_get_for_id(client: Client) -> None:
    h = client.get_or_create("counter", "ident")
    actor_id = await h.resolve()
    assert isinstance(actor_id, str) and actor_id
    assert (await h.identity()) == {"id": actor_id, "name": "counter", "key": ["ident"]}
    by_id = client.get_for_id("counter", actor_id)
    await by_id.increment(4)
    assert await h.get_count() == 4
    assert await by_id.resolve() == actor_id
    # an id of another actor type is not found
    with pytest.raises(ActorError) as info:
        await client.get_for_id("guarded", actor_id).whoami()
    assert code(info) == ("actor", "not_found")
    with pytest.raises(ActorError) as info:
        await client.get_for_id("counter", "no-such-id").increment(1)
    assert code(info) == ("actor", "not_found")


async def test_input_reaches_create_state(client: Client) -> None:
    data = {"title": "t", "blob": b"\x00\x01", "big": 2**62, "list": [1, "2", None]}
    h = client.get_or_create("with_input", "i", input=data)
    assert await h.read_input() == data
    # input only matters at creation
    assert await client.get_or_create("with_input", "i", input={"other": 1}).read_input() == data
    h2 = await client.create("with_input", "j", input=["x"])
    assert await h2.read_input() == ["x"]


async def test_destroy_then_key_handle_reaches_a_fresh_actor(client: Client) -> None:
    h = client.get_or_create("counter", "d")
    assert await h.increment(10) == 10
    old_id = await h.resolve()
    await h.destroy()
    # the same handle, with its cached id now stale, re-resolves to a new actor with fresh state
    assert await h.increment(1) == 1
    new_id = await h.resolve()
    assert new_id != old_id
    # an id-bound handle stays bound and fails
    with pytest.raises(ActorError) as info:
        await client.get_for_id("counter", old_id).get_count()
    assert code(info) == ("actor", "not_found")


async def test_get_handle_follows_a_recreated_key(server, client: Client, encoding: str) -> None:
    getter = client.get("counter", "g")
    await client.get_or_create("counter", "g").increment(5)
    assert await getter.get_count() == 5            # caches the id
    # another client destroys and re-creates the actor behind the key
    async with Client(server.url, encoding=encoding) as other:
        h = other.get_or_create("counter", "g")
        await h.destroy()
        with pytest.raises(ActorError) as info:
            await getter.get_count()                # re-resolution finds nothing: not_found
        assert code(info) == ("actor", "not_found")
        await h.increment(7)
    assert await getter.get_count() == 7            # the new actor


async def test_destroy_by_id_and_destroy_from_inside(client: Client) -> None:
    h = await client.create("counter", "inside")
    await h.increment(1)
    assert await h.destroy_me() is True

    async def gone() -> None:
        with pytest.raises(ActorError) as info:
            await h.get_count()
        assert code(info) in {("actor", "not_found"), ("actor", "destroying")}
        assert code(info) == ("actor", "not_found")

    from runtime.testing import eventually

    await eventually(gone)
    with pytest.raises(ActorError) as info:
        await h.destroy()
    assert code(info) == ("actor", "not_found")


async def test_key_handle_survives_sleep(client: Client) -> None:
    h = client.get_or_create("sleepy", "s")
    first = await h.bump()
    assert first["count"] == 1 and first["wakes"] == 1
    await anyio.sleep(0.6)  # sleep_timeout is 0.2 s
    second = await h.bump()
    assert second == {"count": 2, "wakes": 2, "id": first["id"]}
