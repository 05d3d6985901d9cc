"""A runtime (or server) restart on the same FileDriver path keeps everything (API.md §5, §8)."""

from __future__ import annotations

import pytest

from runtime import ActorError

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("driver_kind", ["file"])]


async def test_restart_keeps_state_kv_schedules_and_identity(open_rt) -> None:
    async with open_rt() as (_, client):
        h = client.get_or_create("persist", ["restart", "1"])
        schedule_id = await h.persist_write()
        first = await h.persist_read()
        assert first["fresh"] is False
        actor_id = first["id"]
        await client.get_or_create("kvstore", "restart").kv_put("x", b"y")

    async with open_rt() as (_, client):
        h = client.get_or_create("persist", ["restart", "1"])
        assert await h.resolve() == actor_id
        got = await h.persist_read()
        assert got["id"] == actor_id
        assert got["state"] == {
            "nested": {"list": [1, 2], "map": {"k": {"deep": [b"\x00\xff", 1.5, None, True]}}},
            "count": 1000,
        }
        assert got["fresh"] is True  # vars are rebuilt, never persisted
        assert got["kv"] == [[b"\x01bin-key", b"\x00\x01\x02"], ["text-key", "text-value"]]
        assert len(got["schedules"]) == 1
        ev = got["schedules"][0]
        assert ev["id"] == schedule_id
        assert ev["action"] == "persist_noop"
        assert ev["args"] == ["arg", 7]
        assert ev["run_at"] == first["schedules"][0]["run_at"]
        assert await client.get("kvstore", "restart").kv_get("x") == b"y"
        # the key is still taken
        with pytest.raises(ActorError) as ei:
            await client.create("persist", ["restart", "1"])
        assert ei.value.code == "duplicate_key"
        assert await client.get_for_id("persist", actor_id).persist_read() == got


async def test_restart_on_path_that_does_not_exist_yet(open_rt, tmp_path, driver_kind) -> None:
    from runtime.drivers import FileDriver

    path = tmp_path / "deep" / "er" / "state"
    async with open_rt(FileDriver(path)) as (_, client1):
        assert await client1.get_or_create("basic", "p").increment(3) == 3
    async with open_rt(FileDriver(path)) as (_, client2):
        assert await client2.get_or_create("basic", "p").increment(1) == 4


async def test_three_consecutive_runs(open_rt) -> None:
    for expected in (1, 2, 3):
        async with open_rt() as (_, client):
            assert await client.get_or_create("basic", "thrice").increment() == expected


async def test_leaving_run_flushes_unsaved_state(open_rt, driver_kind) -> None:
    # `durable` saves only every 30 s: the value below can only survive through the final flush
    # that leaving registry.run() / registry.serve() performs (every awake actor is put to sleep first)
    async with open_rt() as (_, client1):
        h = client1.get_or_create("durable", "exit-flush")
        await h.write_lazily(7)
        await client1.get_or_create("saver", "exit-flush").burst(250)
    async with open_rt() as (_, client2):
        assert (await client2.get_or_create("durable", "exit-flush").read_durable())["count"] == 7
        assert await client2.get_or_create("saver", "exit-flush").read_count() == 250
