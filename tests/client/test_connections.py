"""Connections over WebSocket: events, status, unsubscribe, dispose, rejection, reconnect."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from runtime import ActorError, Client
from runtime.drivers import MemoryDriver
from runtime.testing import eventually
from tests.client.actors import registry
from tests.client.helpers import free_port

pytestmark = pytest.mark.anyio


async def test_events_actions_and_status(client: Client) -> None:
    h = client.get_or_create("counter", "conn")
    conn = h.connect()
    assert conn.status == "connecting"
    async with conn:
        assert conn.status == "connected"
        assert conn.actor_id == await h.resolve()
        assert isinstance(conn.connection_id, str)
        seen: list[Any] = []
        conn.on("new_count", seen.append)
        assert await conn.increment(2) == 2
        await h.increment(3)                       # a broadcast from another caller
        await eventually(lambda: _eq(seen, [2, 5]))
        # several args arrive positionally, bytes intact
        pairs: list[tuple[Any, ...]] = []
        conn.on("multi", lambda *args: pairs.append(args))
        await h.shout("multi", 1, b"\x02", {"k": [3]})
        await eventually(lambda: _eq(pairs, [(1, b"\x02", {"k": [3]})]))
    assert conn.status == "disposed"


def _eq(a: Any, b: Any) -> None:
    assert a == b


async def test_unsubscribe_and_once(client: Client) -> None:
    h = client.get_or_create("counter", "subs")
    async with h.connect() as conn:
        a: list[int] = []
        b: list[int] = []
        once: list[int] = []
        unsubscribe_a = conn.on("new_count", a.append)
        conn.on("new_count", b.append)
        conn.once("new_count", once.append)
        await conn.increment(1)
        await eventually(lambda: _eq((a, b, once), ([1], [1], [1])))
        unsubscribe_a()
        await conn.increment(1)
        await eventually(lambda: _eq(b, [1, 2]))
        assert a == [1] and once == [1]


async def test_unsubscribed_events_are_not_sent(client: Client) -> None:
    h = client.get_or_create("counter", "unsub-server")
    async with h.connect() as conn:
        got: list[int] = []
        off = conn.on("new_count", got.append)
        await conn.increment(1)
        await eventually(lambda: _eq(got, [1]))
        off()  # last listener gone: the server is told to stop sending
        seen_raw: list[Any] = []
        original = conn._on_message

        def spy(message: Any) -> None:
            seen_raw.append(message)
            original(message)

        conn._link.on_message = spy  # type: ignore[union-attr]
        assert await conn.increment(1) == 2
        await anyio.sleep(0.1)
        assert [type(m).__name__ for m in seen_raw] == ["ActionResponse"]


async def test_action_errors_over_the_connection(client: Client) -> None:
    async with client.get_or_create("counter", "cerr").connect() as conn:
        with pytest.raises(ActorError) as info:
            await conn.fail_user("pears")
        assert (info.value.code, info.value.metadata) == ("out_of_stock", {"item": "pears", "left": 0})
        with pytest.raises(ActorError) as info:
            await conn.fail_internal()
        assert (info.value.group, info.value.code, info.value.message) == (
            "core", "internal_error", "An internal error occurred")
        with pytest.raises(ActorError) as info:
            await conn.missing_action()
        assert info.value.code == "action_not_found"
        assert await conn.echo(b"\x00", 2**63 - 1) == [b"\x00", 2**63 - 1]  # still usable


async def test_pipelined_actions_over_one_connection(client: Client) -> None:
    async with client.get_or_create("counter", "pipe").connect() as conn:
        results: list[int] = []

        async def one() -> None:
            results.append(await conn.increment(1))

        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(one)
        assert sorted(results) == list(range(1, 101))


async def test_connect_params_and_rejection(client: Client) -> None:
    h = client.get_or_create("guarded", "g")
    async with h.connect(params={"token": "secret", "bin": b"\x07"}) as conn:
        assert await conn.whoami() == {"token": "secret", "bin": b"\x07"}
    with pytest.raises(ActorError) as info:
        await h.connect(params={"token": "wrong"}).open()
    e = info.value
    assert (e.group, e.code, e.message, e.metadata) == ("user", "forbidden", "bad token", {"given": {"token": "wrong"}})
    # a handle's params are the default connection params
    h2 = client.get_or_create("guarded", "g", params={"token": "secret"})
    async with h2.connect() as conn:
        assert await conn.whoami() == {"token": "secret"}


async def test_dispose(client: Client) -> None:
    h = client.get_or_create("counter", "dispose")
    conn = h.connect()
    await conn.open()
    assert await h.conn_count() == 2  # this connection + the ephemeral one of the call
    await conn.dispose()
    assert conn.status == "disposed"
    with pytest.raises(ActorError) as info:
        await conn.increment(1)
    assert (info.value.group, info.value.code) == ("client", "disposed")
    await eventually(lambda: _check_count(h, 1))
    await conn.dispose()  # idempotent


async def _check_count(h: Any, n: int) -> None:
    assert await h.conn_count() == n


async def test_reconnect_after_server_side_close_resends_subscriptions(client: Client) -> None:
    h = client.get_or_create("counter", "kick")
    async with h.connect() as conn:
        got: list[int] = []
        conn.on("new_count", got.append)
        first_id = conn.connection_id
        statuses: list[str] = []

        async with h.connect() as kicker:
            assert await kicker.kick_others() == 1
            statuses.append(conn.status)
        await eventually(lambda: _assert_reconnected(conn, first_id))
        assert statuses == ["disconnected"] or statuses == ["connecting"] or statuses == ["connected"]
        await h.increment(1)                      # broadcast after the reconnect
        await eventually(lambda: _eq(got, [1]))
        assert await conn.increment(1) == 2
        await eventually(lambda: _eq(got, [1, 2]))


def _assert_reconnected(conn: Any, old_id: str | None) -> None:
    assert conn.status == "connected"
    assert conn.connection_id != old_id


async def test_status_goes_through_disconnected(client: Client) -> None:
    h = client.get_or_create("counter", "status")
    async with h.connect() as conn:
        seen: list[str] = []
        stop = anyio.Event()

        async def watch() -> None:
            while not stop.is_set():
                if not seen or seen[-1] != conn.status:
                    seen.append(conn.status)
                await anyio.sleep(0)

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await anyio.sleep(0.01)
            first_id = conn.connection_id
            async with h.connect() as kicker:
                await kicker.kick_others()
            await eventually(lambda: _assert_reconnected(conn, first_id))
            await anyio.sleep(0.01)
            stop.set()
        assert seen[0] == "connected" and "disconnected" in seen and seen[-1] == "connected"


async def test_reconnect_after_destroy_reaches_the_new_actor(client: Client) -> None:
    h = client.get_or_create("counter", "reborn")
    await h.increment(5)
    async with h.connect() as conn:
        got: list[int] = []
        conn.on("new_count", got.append)
        old_actor = conn.actor_id
        await h.destroy()
        await eventually(lambda: _new_actor(conn, old_actor), timeout=10)
        assert await conn.increment(1) == 1        # fresh state
        await eventually(lambda: _eq(got, [1]))


def _new_actor(conn: Any, old: str | None) -> None:
    assert conn.status == "connected" and conn.actor_id != old


@pytest.mark.timing
async def test_reconnect_after_server_restart(encoding: str) -> None:
    port = free_port()
    async with registry.serve(host="127.0.0.1", port=port, driver=MemoryDriver()) as srv:
        client = Client(srv.url, encoding=encoding)
        h = client.get_or_create("counter", "restart")
        await h.increment(3)
        conn = h.connect()
        await conn.open()
        got: list[int] = []
        conn.on("new_count", got.append)
        await conn.increment(1)
        await eventually(lambda: _eq(got, [4]))
    # server gone: the connection notices and keeps retrying
    await eventually(lambda: _assert_not_connected(conn))
    with pytest.raises(ActorError) as info:
        await h.increment(1)
    assert (info.value.group, info.value.code) == ("client", "unreachable")
    async with registry.serve(host="127.0.0.1", port=port, driver=MemoryDriver()):
        # a memory driver starts empty: the key-based connection re-resolves to a new actor
        await eventually(lambda: _eq(conn.status, "connected"), timeout=15)
        await h.increment(2)                       # a new actor; the broadcast reaches us
        await eventually(lambda: _eq(got, [4, 2]))
        await conn.dispose()
        await client.close()


def _assert_not_connected(conn: Any) -> None:
    assert conn.status in ("disconnected", "connecting")


async def test_client_close_disposes_connections(server: Any, encoding: str) -> None:
    c = Client(server.url, encoding=encoding)
    conn = c.get_or_create("counter", "cc").connect()
    await conn.open()
    assert conn.status == "connected"
    await c.close()
    assert conn.status == "disposed"
    async with Client(server.url, encoding=encoding) as other:
        await eventually(lambda: _check_count(other.get_or_create("counter", "cc"), 1))
