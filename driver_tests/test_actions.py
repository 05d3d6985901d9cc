"""Actions: sync/async, input, hook order, concurrency, timeouts, response hook, identity, keys."""

from __future__ import annotations

import anyio
import pytest

from driver_tests.helpers import eventually, observed
from runtime import ActorError

pytestmark = pytest.mark.anyio


async def test_async_and_sync_actions(client) -> None:
    h = client.get_or_create("basic", "k")
    assert await h.echo(1, "two", [3], {"four": 4}, None, b"\x00") == [1, "two", [3], {"four": 4}, None, b"\x00"]
    assert await h.sync_add(2, 3) == 5
    assert await h.action("sync_add", 10, 20) == 30
    assert await h.increment() == 1
    assert await h.increment(5) == 6
    assert await h.get_count() == 6


async def test_tuple_comes_back_as_list(client) -> None:
    h = client.get_or_create("basic", "k")
    assert await h.echo((1, 2), {"t": (3,)}) == [[1, 2], {"t": [3]}]


async def test_renamed_action(client) -> None:
    h = client.get_or_create("basic", "k")
    assert await h.renamed() == "renamed-ok"
    with pytest.raises(ActorError) as ei:
        await h.renamed_impl()
    assert (ei.value.group, ei.value.code) == ("actor", "action_not_found")


async def test_identity_and_stable_id(client) -> None:
    h = client.get_or_create("basic", ["room", "1"])
    actor_id = await h.resolve()
    assert isinstance(actor_id, str) and actor_id
    ident = await h.identity()
    assert ident == {"actor_id": actor_id, "name": "basic", "key": ["room", "1"]}
    assert await client.get_or_create("basic", ["room", "1"]).resolve() == actor_id
    assert await client.get("basic", ["room", "1"]).resolve() == actor_id
    assert await client.get_for_id("basic", actor_id).identity() == ident
    other = await client.get_or_create("basic", ["room", "2"]).resolve()
    assert other != actor_id


async def test_key_forms_are_equivalent(client) -> None:
    none_id = await client.get_or_create("basic", None).resolve()
    assert await client.get_or_create("basic", []).resolve() == none_id
    assert await client.get_or_create("basic").resolve() == none_id
    assert (await client.get_or_create("basic").identity())["key"] == []
    k_id = await client.get_or_create("basic", "k").resolve()
    assert await client.get_or_create("basic", ["k"]).resolve() == k_id
    assert k_id != none_id
    # a key with two parts is not the same as the parts joined
    assert await client.get_or_create("basic", ["a", "b"]).resolve() != await client.get_or_create(
        "basic", "a/b"
    ).resolve()


async def test_state_is_per_actor(client) -> None:
    a = client.get_or_create("basic", "a")
    b = client.get_or_create("basic", "b")
    await a.increment(3)
    await b.increment(7)
    assert await a.get_count() == 3
    assert await b.get_count() == 7


async def test_create_with_input(client) -> None:
    h = await client.create("with_input", "k1", input={"name": "alpha", "n": [1, 2]})
    assert await h.read() == {
        "input": {"name": "alpha", "n": [1, 2]},
        "on_create_input": {"name": "alpha", "n": [1, 2]},
        "log": ["create_state", "on_create"],
    }
    h2 = client.get_or_create("with_input", "k2", input="beta")
    assert await h2.read() == {"input": "beta", "on_create_input": "beta", "log": ["create_state", "on_create"]}
    # input is used only at creation
    h3 = client.get_or_create("with_input", "k2", input="gamma")
    assert (await h3.read())["input"] == "beta"
    h4 = client.get_or_create("with_input", "k3")
    assert (await h4.read())["input"] is None


async def test_create_hook_order(client) -> None:
    h = client.get_or_create("ordered", "k")
    await h.resolve()

    async def check():
        assert await observed(client, "ordered", "k") == ["create_state", "on_create", "create_vars", "on_wake", "run"]

    await eventually(check)


async def test_run_handler_runs_in_background(client) -> None:
    h = client.get_or_create("ordered", "bg")

    async def ticking():
        first = await h.ticks()
        assert first > 0
        return first

    first = await eventually(ticking)

    async def more():
        assert await h.ticks() > first

    await eventually(more)


async def test_sync_hooks(client) -> None:
    h = client.get_or_create("syncy", "k", input={"x": 1})
    got = await h.sync_read()
    assert got == {"log": ["create_state", "on_create", "on_wake"], "input": {"x": 1}, "built": True}
    assert await h.sync_append("a") == 4

    async def check():
        v = await h.sync_vars()
        # every HTTP/handle call is an ephemeral connection: the sync on_connect ran for each call
        assert v["connects"] >= 3
        # the sync on_state_change ran for the sync_append change (on_wake's change may count too)
        assert v["changes"] >= 1

    await eventually(check)


async def test_action_calling_same_actor_does_not_deadlock(client) -> None:
    h = client.get_or_create("basic", "self")
    with anyio.fail_after(5):
        assert await h.call_self_by_id() == ["inner"]
        assert await h.call_self_by_key() == 10
        assert await h.get_count() == 10


async def test_action_calling_other_actor(client) -> None:
    h = client.get_or_create("basic", "one")
    with anyio.fail_after(5):
        assert await h.call_other("two") == 100
    assert await client.get_or_create("basic", "two").get_count() == 100
    assert await h.get_count() == 0


async def test_actions_run_concurrently(client) -> None:
    h = client.get_or_create("basic", "conc")
    await h.resolve()
    results = {}

    async def call(me, other):
        results[me] = await h.rendezvous(me, other)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "left", "right")
            tg.start_soon(call, "right", "left")
    assert results == {"left": "left", "right": "right"}


@pytest.mark.timing
async def test_slow_actions_overlap_in_time(client) -> None:
    h = client.get_or_create("basic", "overlap")
    await h.resolve()
    spans = []

    async def call():
        spans.append(await h.slow(0.3))

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        tg.start_soon(call)
    (s1, e1), (s2, e2) = sorted(spans)
    assert s2 < e1, f"second action started only after the first ended: {spans}"


@pytest.mark.timing
async def test_action_timeout(client) -> None:
    h = client.get_or_create("timeouts", "k")
    assert await h.nap(0.01) == "done"
    start = anyio.current_time()
    with pytest.raises(ActorError) as ei:
        await h.nap(3.0)
    assert (ei.value.group, ei.value.code) == ("actor", "action_timed_out")
    assert anyio.current_time() - start < 2.0
    # the actor keeps serving
    assert await h.nap(0.01) == "done"


async def test_on_before_action_response_replaces_output(client) -> None:
    h = client.get_or_create("basic", "resp")
    assert await h.echo_wrapped(1, 2, 3) == {"wrapped": 6, "name": "echo_wrapped", "args": [1, 2, 3]}
    # other actions pass through untouched
    assert await h.sync_add(1, 1) == 2


async def test_failing_response_hook_is_sanitized_and_actor_keeps_serving(client, monkeypatch) -> None:
    monkeypatch.delenv("RIVET_EXPOSE_ERRORS", raising=False)
    h = client.get_or_create("basic", "resp-fail")
    with pytest.raises(ActorError) as ei:
        await h.bad_response_hook()
    assert (ei.value.group, ei.value.code) == ("core", "internal_error")
    assert ei.value.message == "An internal error occurred"
    assert "secret-hook-detail" not in str(ei.value)
    assert await h.increment() == 1


async def test_client_rejects_keyword_arguments(client) -> None:
    h = client.get("basic", "never-created")
    with pytest.raises(TypeError):
        await h.sync_add(a=1, b=2)
    with pytest.raises(TypeError):
        await h.action("sync_add", 1, b=2)


async def test_client_rejects_non_plain_arguments_before_sending(client) -> None:
    # `get` never creates: if anything were sent, the caller would see actor.not_found instead
    h = client.get("basic", "never-created")
    for bad in (object(), {1: "int key"}, {1, 2}, [1, object()], 2**70):
        with pytest.raises(TypeError):
            await h.echo(bad)
    g = client.get_or_create("basic", "not-created-by-bad-call")
    with pytest.raises(TypeError):
        await g.echo({"ok": [object()]})
    with pytest.raises(ActorError) as ei:
        await client.get("basic", "not-created-by-bad-call").resolve()
    assert ei.value.code == "not_found"
