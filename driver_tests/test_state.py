"""Durable state: change detection, throttled saves, on_state_change, vars (API.md §3, §8)."""

from __future__ import annotations

import copy

import anyio
import pytest

from driver_tests.helpers import event_names, eventually, observed, saves
from runtime import ActorError

pytestmark = pytest.mark.anyio


def _apply(kind: str, s: dict) -> None:
    """What ``nested.mutate(kind)`` does, on a plain dict (the expected result)."""
    if kind == "append":
        s["a"]["b"].append(3)
    elif kind == "set_deep":
        s["d"]["x"]["y"] = {"z": [True]}
    elif kind == "augment":
        s["items"][0]["n"] += 5
    elif kind == "del_item":
        del s["a"]["b"][0]
    elif kind == "extend":
        s["a"]["b"].extend([7, 8])
    elif kind == "insert":
        s["a"]["b"].insert(0, 0)
    elif kind == "pop":
        s["a"]["b"].pop()
    elif kind == "setdefault":
        s["d"].setdefault("w", []).append("w1")
    elif kind == "update":
        s["d"]["x"].update({"u": 1})
    elif kind == "alias_after_await":
        s["items"].append({"n": 1})
    elif kind == "assign_top":
        s["assigned"] = {"k": []}
    elif kind == "after_assign":
        s["assigned"]["k"].append("v")
    elif kind == "slice":
        s["a"]["b"][0:1] = [100]
    elif kind == "sort":
        s["a"]["b"].sort(reverse=True)
    elif kind == "del_key":
        del s["d"]["x"]["u"]


KINDS = [
    "append",
    "set_deep",
    "augment",
    "del_item",
    "extend",
    "insert",
    "pop",
    "setdefault",
    "update",
    "alias_after_await",
    "assign_top",
    "after_assign",
    "slice",
    "sort",
    "del_key",
]
INITIAL = {"a": {"b": [1, 2]}, "items": [{"n": 0}], "d": {"x": {}}, "t": 0}


@pytest.mark.timing
async def test_nested_in_place_mutations_are_detected(rt, client) -> None:
    """Every in-place mutation of nested dicts/lists marks the state dirty: it triggers
    on_state_change and a throttled save, without any explicit save call."""
    h = client.get_or_create("nested", "k")
    expected = copy.deepcopy(INITIAL)
    assert await h.read_state() == expected
    await anyio.sleep(0.25)  # let any save caused by creation pass (save interval 0.1 s)
    for kind in KINDS:
        before_changes = await h.changes()
        before_saves = saves(rt, "nested")
        _apply(kind, expected)
        assert await h.mutate(kind) == expected, kind

        async def detected(kind=kind, before_changes=before_changes, before_saves=before_saves):
            assert await h.changes() == before_changes + 1, f"on_state_change did not run for {kind}"
            assert saves(rt, "nested") == before_saves + 1, f"no save after {kind}"

        await eventually(detected, timeout=3.0)
    assert await h.read_state() == expected


async def test_static_state_is_deep_copied_per_actor(client) -> None:
    a = client.get_or_create("nested", "copy-a")
    b = client.get_or_create("nested", "copy-b")
    await a.mutate("append")
    await a.mutate("set_deep")
    assert await b.read_state() == INITIAL
    assert await client.get_or_create("nested", "copy-c").read_state() == INITIAL


@pytest.mark.timing
async def test_nested_mutations_survive_sleep_and_wake(client) -> None:
    h = client.get_or_create("nested", "sleep")
    expected = copy.deepcopy(INITIAL)
    for kind in ("append", "set_deep", "augment", "setdefault", "alias_after_await"):
        _apply(kind, expected)
        await h.mutate(kind)
    id_before = await h.resolve()
    assert await h.go_to_sleep_nested() is True

    async def slept():
        assert await observed(client, "nested", "sleep") == ["sleep"]

    await eventually(slept)
    h2 = client.get_or_create("nested", "sleep")
    assert await h2.read_state() == expected
    assert await h2.resolve() == id_before
    # vars were rebuilt at wake: the change counter starts again from 0
    assert await h2.changes() == 0


@pytest.mark.parametrize("driver_kind", ["file"])
async def test_nested_mutations_survive_restart(open_rt) -> None:
    expected = copy.deepcopy(INITIAL)
    async with open_rt() as (_, client1):
        h = client1.get_or_create("nested", "restart")
        for kind in KINDS:
            _apply(kind, expected)
            assert await h.mutate(kind) == expected
    async with open_rt() as (_, client2):
        assert await client2.get_or_create("nested", "restart").read_state() == expected


@pytest.mark.timing
async def test_burst_of_mutations_is_one_save(rt, client) -> None:
    h = client.get_or_create("saver", "burst")
    assert await h.read_count() == 0
    await anyio.sleep(0.5)  # past one save interval (0.3 s): creation writes are done
    base = saves(rt, "saver")
    assert await h.burst(1000) == 1000
    for _ in range(20):  # more changes inside the same throttle window coalesce into the same write
        await h.bump()

    async def one_save():
        assert saves(rt, "saver") == base + 1

    await eventually(one_save, timeout=3.0)
    await anyio.sleep(0.5)  # nothing else is pending: still exactly one write
    assert saves(rt, "saver") == base + 1
    assert await h.read_count() == 1020


@pytest.mark.timing
async def test_save_is_throttled_not_immediate(rt, client) -> None:
    h = client.get_or_create("saver", "throttle")
    await h.read_count()
    await anyio.sleep(0.5)
    base = saves(rt, "saver")
    start = anyio.current_time()
    await h.bump()
    assert saves(rt, "saver") == base  # the write is scheduled state_save_interval later

    async def saved():
        assert saves(rt, "saver") == base + 1

    await eventually(saved, timeout=3.0)
    assert anyio.current_time() - start >= 0.2


@pytest.mark.timing
async def test_reads_do_not_save(rt, client) -> None:
    h = client.get_or_create("saver", "reads")
    await h.read_count()
    await anyio.sleep(0.5)
    base = saves(rt, "saver")
    for _ in range(10):
        await h.read_count()
    await anyio.sleep(0.45)
    assert saves(rt, "saver") == base


@pytest.mark.timing
async def test_save_state_waits_for_pending_save(rt, client) -> None:
    h = client.get_or_create("saver", "wait")
    await h.read_count()
    await anyio.sleep(0.5)
    base = saves(rt, "saver")
    elapsed = await h.bump_and_save(False)
    # returned only once the throttled write was done
    assert saves(rt, "saver") == base + 1
    assert elapsed < 2.0


@pytest.mark.timing
async def test_save_state_immediate_writes_now(rt, client) -> None:
    h = client.get_or_create("durable", "now")
    await h.read_durable()
    base = saves(rt, "durable")
    elapsed = await h.write_durably(5)
    assert saves(rt, "durable") == base + 1
    assert elapsed < 1.0  # far below the 30 s save interval
    # a lazy change is not written (interval 30 s)
    await h.write_lazily(6)
    await anyio.sleep(0.3)
    assert saves(rt, "durable") == base + 1


@pytest.mark.parametrize("driver_kind", ["file"])
async def test_save_state_immediate_durable_across_restart(open_rt) -> None:
    async with open_rt() as (_, client1):
        h = client1.get_or_create("durable", "restart")
        await h.write_durably(41)
        await h.write_durably(42)
        actor_id = await h.resolve()
    async with open_rt() as (_, client2):
        h = client2.get_or_create("durable", "restart")
        assert await h.resolve() == actor_id
        assert await h.read_durable() == {"count": 42, "log": [41, 42]}


# ---- on_state_change ----------------------------------------------------------------------------


async def _settled_changes(h, n):
    async def check():
        got = await h.seen_changes()
        assert len(got["changes"]) == n, got
        return got

    return await eventually(check, timeout=3.0)


async def test_on_state_change_not_for_creation_or_reads(client) -> None:
    h = client.get_or_create("watcher", "create")
    # on_create mutated the state ("created"), which must not count
    assert await h.watched_read() == {"count": 0, "items": ["created"]}
    await h.watched_read()
    await h.set_var(5)
    await anyio.sleep(0.2)
    assert (await h.seen_changes())["changes"] == []


async def test_on_state_change_once_per_burst_with_final_state(client) -> None:
    h = client.get_or_create("watcher", "burst")
    assert await h.add_many(50) == 50
    got = await _settled_changes(h, 1)
    assert got["changes"] == [{"count": 50, "items": ["created", 50]}]
    await h.add_many(3)
    got = await _settled_changes(h, 2)
    assert got["changes"][1] == {"count": 53, "items": ["created", 50, 3]}
    # reads and vars do not trigger it
    await h.watched_read()
    await h.set_var(1)
    await anyio.sleep(0.2)
    assert len((await h.seen_changes())["changes"]) == 2


async def test_on_state_change_after_action_with_awaits(client) -> None:
    h = client.get_or_create("watcher", "awaits")
    assert await h.add_across_awaits(5) == 5

    async def check():
        got = await h.seen_changes()
        assert got["changes"], got
        assert got["changes"][-1] == {"count": 5, "items": ["created"]}
        assert 1 <= len(got["changes"]) <= 5

    await eventually(check, timeout=3.0)


async def test_on_state_change_cannot_mutate_state(client) -> None:
    h = client.get_or_create("watcher", "reentrant")
    await h.add_many(2)
    await _settled_changes(h, 1)
    await h.trigger_reentrant()
    got = await _settled_changes(h, 2)
    assert got["errors"] == [["actor", "state_mutation_reentrant"]] * 3
    assert got["changes"][1] == {"count": 2, "items": ["created", 2], "reentrant": True}
    await anyio.sleep(0.2)
    # state unchanged by the attempted mutations, and no further callback runs
    assert await h.watched_read() == {"count": 2, "items": ["created", 2], "reentrant": True}
    assert len((await h.seen_changes())["changes"]) == 2


# ---- vars -----------------------------------------------------------------------------------------


@pytest.mark.timing
async def test_vars_rebuilt_on_wake_and_not_persisted(client) -> None:
    h = client.get_or_create("varsy", "k")
    assert await h.bump_var() == [1, True]
    assert await h.bump_var() == [2, True]
    assert await h.bump_state() == 1
    assert await h.varsy_sleep() is True

    async def slept():
        assert "sleep" in event_names(await observed(client, "varsy", "k"))

    await eventually(slept)
    h2 = client.get_or_create("varsy", "k")
    # vars start over (built by create_vars again, an object() that could never be persisted)
    assert await h2.bump_var() == [1, True]
    assert await h2.bump_state() == 2
    assert event_names(await observed(client, "varsy", "k")) == ["wake", "sleep", "wake"]


async def test_static_vars_are_copied_per_actor(client) -> None:
    a = client.get_or_create("static_vars", "a")
    b = client.get_or_create("static_vars", "b")
    assert await a.push_var("x") == {"n": 1, "list": ["x"]}
    assert await a.push_var("y") == {"n": 2, "list": ["x", "y"]}
    assert await b.push_var("z") == {"n": 1, "list": ["z"]}


# ---- state errors ----------------------------------------------------------------------------------


async def test_state_not_enabled(client) -> None:
    h = client.get_or_create("stateless", "k")
    assert await h.probe_state() == ["actor", "state_not_enabled"]
    with pytest.raises(ActorError) as ei:
        await h.read_missing_state()
    assert (ei.value.group, ei.value.code) == ("actor", "state_not_enabled")
    assert await h.stateless_ping() == "pong"


async def test_non_plain_state_raises_type_error_at_mutation(client, monkeypatch) -> None:
    monkeypatch.delenv("RIVET_EXPOSE_ERRORS", raising=False)
    h = client.get_or_create("plaincheck", "k")
    msg = await h.set_bad_caught()
    assert msg is not None, "assigning object() into state did not raise TypeError"
    assert "x" in msg
    msg = await h.set_bad_nested_caught()
    assert msg is not None, "appending a dict with an int key did not raise TypeError"
    assert "items" in msg
    with pytest.raises(ActorError) as ei:
        await h.set_bad_uncaught()
    assert (ei.value.group, ei.value.code, ei.value.message) == (
        "core",
        "internal_error",
        "An internal error occurred",
    )
    # the actor keeps serving and its state is still plain
    assert await h.plain_bump() == 2
    state = await h.plain_read()
    assert state["ok"] == 2


async def test_non_plain_state_exposed(client, monkeypatch) -> None:
    monkeypatch.setenv("RIVET_EXPOSE_ERRORS", "1")
    h = client.get_or_create("plaincheck", "exposed")
    with pytest.raises(ActorError) as ei:
        await h.set_bad_uncaught()
    assert "TypeError" in ei.value.message or "plain" in ei.value.message
    assert "x" in ei.value.message
