"""Action features: per-actor timeouts, sync/async, large payloads and the wire limits
(API.md §2, §4, §7). In-process calls have no wire, so no size limit; over http an incoming
message over 64 KiB answers ``message.incoming_too_long`` and an outgoing one over 1 MiB
``message.outgoing_too_long``."""

from __future__ import annotations

import anyio
import pytest

from runtime import ActorError

pytestmark = pytest.mark.anyio

KIB = 1024
HTTP = ["http-json", "http-msgpack"]


@pytest.mark.timing
async def test_timeouts_are_per_actor(client) -> None:
    # action_timeout=0.3 on "timeouts"; "basic" keeps the default (60 s)
    start = anyio.current_time()
    with pytest.raises(ActorError) as ei:
        await client.get_or_create("timeouts", "per-actor").nap(2.0)
    assert (ei.value.group, ei.value.code) == ("actor", "action_timed_out")
    assert anyio.current_time() - start < 1.5
    started, ended = await client.get_or_create("basic", "per-actor").slow(0.5)
    assert ended - started >= 0.5
    # a quick call on the actor with the short timeout is unaffected
    assert await client.get_or_create("timeouts", "per-actor").nap(0.01) == "done"


@pytest.mark.timing
async def test_timed_out_action_does_not_break_the_actor(client) -> None:
    h = client.get_or_create("timeouts", "after")
    with pytest.raises(ActorError):
        await h.nap(1.0)
    results = []

    async def one() -> None:
        results.append(await h.nap(0.05))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)
    assert results == ["done"] * 3


async def test_sync_and_async_actions_over_a_connection(client) -> None:
    h = client.get_or_create("basic", "conn-sync-async")
    async with h.connect() as conn:
        assert await conn.sync_add(2, 40) == 42
        assert await conn.echo("a", [1]) == ["a", [1]]
        assert await conn.increment(3) == 3
        # actions on one connection run concurrently too
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(conn.rendezvous, "x", "y")
                tg.start_soon(conn.rendezvous, "y", "x")


async def test_many_concurrent_calls_all_answered_in_full(client) -> None:
    h = client.get_or_create("basic", "many")
    results: list[int] = []

    async def one() -> None:
        results.append(await h.increment())

    async with anyio.create_task_group() as tg:
        for _ in range(25):
            tg.start_soon(one)
    assert sorted(results) == list(range(1, 26))
    assert await h.get_count() == 25


# ---- large payloads ------------------------------------------------------------------------------


async def test_large_request_within_limit(client) -> None:
    h = client.get_or_create("payload", "in-ok")
    data = "a" * (60 * KIB)
    assert await h.payload_size(data) == 60 * KIB
    blob = bytes(range(256)) * (40 * KIB // 256)  # base64 in JSON: 4/3 of this on the wire
    assert await h.payload_echo(blob) == blob


async def test_large_response_within_limit(client) -> None:
    h = client.get_or_create("payload", "out-ok")
    out = await h.payload_make(900 * KIB)
    assert out == "x" * (900 * KIB)
    items = await h.payload_items(5000)
    assert len(items) == 5000
    assert items[4999] == {"i": 4999, "s": "item-4999"}


async def test_large_payloads_over_a_connection(client) -> None:
    h = client.get_or_create("payload", "conn-ok")
    async with h.connect() as conn:
        assert await conn.payload_size("b" * (60 * KIB)) == 60 * KIB
        assert len(await conn.payload_make(900 * KIB)) == 900 * KIB


@pytest.mark.parametrize("transport_kind", ["inline"])
async def test_in_process_calls_have_no_wire_limit(client) -> None:
    h = client.get_or_create("payload", "inline-big")
    assert await h.payload_size("c" * (2 * 1024 * KIB)) == 2 * 1024 * KIB
    assert len(await h.payload_make(3 * 1024 * KIB)) == 3 * 1024 * KIB


@pytest.mark.parametrize("transport_kind", HTTP)
async def test_request_over_64_kib_is_incoming_too_long(client) -> None:
    h = client.get_or_create("payload", "in-big")
    with pytest.raises(ActorError) as ei:
        await h.payload_size("a" * (70 * KIB))
    e = ei.value
    assert (e.group, e.code) == ("message", "incoming_too_long")
    assert e.metadata["limit"] == 64 * KIB
    assert e.metadata["size"] > 64 * KIB
    # the actor and the client keep working
    assert await h.payload_size("ok") == 2


@pytest.mark.parametrize("transport_kind", HTTP)
async def test_response_over_1_mib_is_outgoing_too_long(client) -> None:
    h = client.get_or_create("payload", "out-big")
    with pytest.raises(ActorError) as ei:
        await h.payload_make(1100 * KIB)
    e = ei.value
    assert (e.group, e.code) == ("message", "outgoing_too_long")
    assert e.metadata["limit"] == 1024 * KIB
    assert e.metadata["size"] > 1024 * KIB
    assert await h.payload_make(3) == "xxx"


@pytest.mark.parametrize("transport_kind", HTTP)
async def test_connection_limits_fail_only_the_call(client) -> None:
    h = client.get_or_create("payload", "conn-big")
    async with h.connect() as conn:
        with pytest.raises(ActorError) as ei:
            await conn.payload_make(1100 * KIB)
        assert (ei.value.group, ei.value.code) == ("message", "outgoing_too_long")
        assert conn.status == "connected"  # an oversized reply fails that call only
        assert await conn.payload_size("fine") == 4
        with pytest.raises(ActorError) as ei:
            await conn.payload_size("a" * (70 * KIB))
        assert (ei.value.group, ei.value.code) == ("message", "incoming_too_long")
        assert ei.value.metadata["limit"] == 64 * KIB
        # the connection recovers by itself and serves the next call
        with anyio.fail_after(5):
            assert await conn.payload_size("again") == 5
