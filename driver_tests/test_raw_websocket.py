"""Raw WebSocket: ``on_websocket`` and the client's ``h.websocket`` (API.md §2.1, §6, §7).

``h.websocket`` exists only on the networked client, so these tests pin the http transport."""

from __future__ import annotations

import json

import anyio
import pytest

from driver_tests.helpers import eventually, observed
from runtime import ActorError

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("transport_kind", ["http-json"])]


async def _recv_json(ws):
    with anyio.fail_after(5):
        return json.loads(await ws.receive())


async def _recv(ws):
    with anyio.fail_after(5):
        return await ws.receive()


async def _closed(client, key, path):
    async def check():
        assert ["ws_closed", path] in await observed(client, "rawws", key)

    await eventually(check)


async def test_connect_and_welcome(client) -> None:
    h = client.get_or_create("rawws", "welcome")
    ws = await h.websocket()
    try:
        welcome = await _recv_json(ws)
        assert welcome == {"type": "welcome", "path": "/", "query": {}, "connections": 1,
                           "actor": ["rawws", ["welcome"]]}
    finally:
        await ws.close()
    await _closed(client, "welcome", "/")


async def test_echo_text_in_order(client) -> None:
    ws = await client.get_or_create("rawws", "echo").websocket()
    try:
        await _recv_json(ws)
        for i in range(20):
            await ws.send(f"m{i}")
        assert [await _recv(ws) for _ in range(20)] == [f"echo:m{i}" for i in range(20)]
    finally:
        await ws.close()


async def test_binary_messages(client) -> None:
    ws = await client.get_or_create("rawws", "binary").websocket()
    try:
        await _recv_json(ws)
        data = bytes(range(256))
        await ws.send(data)
        got = await _recv(ws)
        assert isinstance(got, bytes)
        assert got == bytes(reversed(data))
        await ws.send("text-after-binary")
        assert await _recv(ws) == "echo:text-after-binary"
    finally:
        await ws.close()


async def test_path_and_query(client) -> None:
    h = client.get_or_create("rawws", "paths")
    ws = await h.websocket("/rooms/lobby?user=ann&mode=fast")
    try:
        welcome = await _recv_json(ws)
        assert welcome["path"] == "/rooms/lobby"
        assert welcome["query"] == {"user": "ann", "mode": "fast"}
    finally:
        await ws.close()
    ws = await h.websocket("?only=query")
    try:
        welcome = await _recv_json(ws)
        assert welcome["path"] == "/"
        assert welcome["query"] == {"only": "query"}
    finally:
        await ws.close()
    ws = await h.websocket("plain")  # no leading slash
    try:
        assert (await _recv_json(ws))["path"] == "/plain"
    finally:
        await ws.close()


async def test_stats_across_connections_and_close_runs_handler_end(client) -> None:
    h = client.get_or_create("rawws", "stats")
    a = await h.websocket("/a")
    b = await h.websocket("/b")
    try:
        assert (await _recv_json(a))["connections"] in (1, 2)
        assert (await _recv_json(b))["connections"] in (1, 2)
        await a.send("hello")
        assert await _recv(a) == "echo:hello"
        await b.send("stats")
        assert await _recv_json(b) == {"type": "stats", "connections": 2, "messages": 2, "open": 2}
        await a.close()
        await _closed(client, "stats", "/a")
        await b.send("stats")
        assert await _recv_json(b) == {"type": "stats", "connections": 2, "messages": 3, "open": 1}
    finally:
        await b.close()
    await _closed(client, "stats", "/b")
    assert await h.rawws_stats() == {"connections": 2, "messages": 3, "open": 0}


async def test_async_iteration_ends_when_actor_closes(client) -> None:
    ws = await client.get_or_create("rawws", "server-close").websocket()
    await _recv_json(ws)
    await ws.send("burst:3")
    await ws.send("close-me")
    got = []
    with anyio.fail_after(5):
        async for message in ws:
            got.append(message)
    assert got == ["item-0", "item-1", "item-2"]
    await _closed(client, "server-close", "/")


async def test_many_messages_keep_order(client) -> None:
    ws = await client.get_or_create("rawws", "order").websocket()
    try:
        await _recv_json(ws)
        await ws.send("burst:200")
        assert [await _recv(ws) for _ in range(200)] == [f"item-{i}" for i in range(200)]
    finally:
        await ws.close()


async def test_actor_without_on_websocket_refuses(client) -> None:
    h = client.get_or_create("basic", "no-ws")
    assert await h.increment() == 1
    with anyio.fail_after(5):
        try:
            ws = await h.websocket()
        except ActorError as e:
            assert (e.group, e.code) == ("actor", "not_found")
        else:
            # the refusal may arrive as the socket's close instead of a failed handshake
            with pytest.raises(Exception):  # noqa: B017 - closed socket, any client error type
                await ws.receive()
    assert await h.get_count() == 1


async def test_stale_key_handle_websocket_after_destroy(client) -> None:
    h = client.get_or_create("rawws", "stale")
    ws = await h.websocket()
    assert (await _recv_json(ws))["connections"] == 1
    await ws.close()
    first = await h.resolve()
    await client.get_or_create("rawws", "stale").destroy()
    ws = await h.websocket()
    try:
        welcome = await _recv_json(ws)
        assert welcome["connections"] == 1  # a new actor with fresh state
    finally:
        await ws.close()
    assert await h.resolve() != first


async def test_destroy_closes_open_socket(client) -> None:
    h = client.get_or_create("rawws", "destroyed")
    ws = await h.websocket()
    await _recv_json(ws)
    await client.get_or_create("rawws", "destroyed").destroy()
    got = []
    with anyio.fail_after(5):
        async for message in ws:
            got.append(message)
    assert got == []
