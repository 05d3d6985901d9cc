"""Raw HTTP (``fetch`` → ``on_request``) and raw WebSocket (``websocket`` → ``on_websocket``)."""

from __future__ import annotations

import pytest

from runtime import ActorError, Client
from runtime.client import WebSocketClosed

pytestmark = pytest.mark.anyio


async def test_fetch_json_and_bytes(client: Client) -> None:
    h = client.get_or_create("counter", "raw")
    await h.increment(3)
    resp = await h.fetch("/count?x=1&y=two")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json() == {"count": 3, "method": "GET", "query": {"x": "1", "y": "two"}}
    resp = await h.fetch("/echo", method="post", headers={"X-Custom": "yes"}, body=b"\x00\x01binary")
    assert (resp.status_code, resp.content, resp.headers["x-echo"]) == (201, b"\x00\x01binary", "yes")
    resp = await h.fetch("echo", method="PUT", body="text ✓")
    assert resp.text == "text ✓"
    resp = await h.fetch("/echo", method="POST", body={"a": [1, 2]})
    assert resp.json() == {"a": [1, 2]}


async def test_fetch_user_404_is_returned_not_raised(client: Client) -> None:
    resp = await client.get_or_create("counter", "raw404").fetch("/missing")
    assert (resp.status_code, resp.text) == (404, "nope")


async def test_fetch_without_on_request_answers_not_found(client: Client) -> None:
    resp = await client.get_or_create("with_input", "no-handler").fetch("/x")
    assert resp.status_code == 404
    assert (resp.json()["group"], resp.json()["code"]) == ("actor", "not_found")


async def test_fetch_resolution_errors_raise(client: Client) -> None:
    with pytest.raises(ActorError) as info:
        await client.get("counter", "never-made").fetch("/count")
    assert (info.value.group, info.value.code) == ("actor", "not_found")


async def test_fetch_follows_the_key_after_destroy(client: Client) -> None:
    h = client.get_or_create("counter", "raw-destroy")
    await h.increment(9)
    assert (await h.fetch("/count")).json()["count"] == 9
    await client.get_or_create("counter", "raw-destroy").destroy()
    assert (await h.fetch("/count")).json()["count"] == 0


async def test_websocket_send_receive_iterate_close(client: Client) -> None:
    h = client.get_or_create("counter", "ws")
    ws = await h.websocket("/room/1")
    assert await ws.receive() == "hello /room/1"
    await ws.send("abc")
    assert await ws.receive() == "ABC"
    await ws.send(b"\x01\x02\x03")
    assert await ws.receive() == b"\x03\x02\x01"
    await ws.send("close")
    with pytest.raises(WebSocketClosed) as info:
        await ws.receive()
    assert (info.value.code, info.value.reason) == (4000, "asked to")


async def test_websocket_async_iteration_ends_on_close(client: Client) -> None:
    ws = await client.get_or_create("counter", "ws-iter").websocket()
    got = []
    await ws.send("a")
    await ws.send("b")
    await ws.send("close")
    async for message in ws:
        got.append(message)
    assert got == ["hello /", "A", "B"]


async def test_websocket_client_close(client: Client) -> None:
    async with await client.get_or_create("counter", "ws-close").websocket("/x") as ws:
        assert await ws.receive() == "hello /x"
        await ws.send("q")
        assert await ws.receive() == "Q"
    assert ws.close_code == 1000
