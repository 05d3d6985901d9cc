"""The chat room over a real server: the page over HTTP, messages over raw WebSockets."""

import json

import pytest

from runtime import Client

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(rivet_registry, make_rivet_driver):
    async with rivet_registry.serve(host="127.0.0.1", port=0, driver=make_rivet_driver()) as server:
        async with Client(server.url, encoding="json") as client:
            yield client


async def test_the_page_is_served_by_on_request(client):
    resp = await client.get_or_create("room", "lobby").fetch("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "new WebSocket(url)" in resp.text


async def _receive_json(ws):
    return json.loads(await ws.receive())


async def test_messages_reach_every_socket_and_stay_in_history(client):
    room = client.get_or_create("room", "test-room")
    ada = await room.websocket("/?name=ada")
    assert await _receive_json(ada) == {"type": "history", "messages": []}
    assert (await _receive_json(ada))["type"] == "joined"
    bob = await room.websocket("/?name=bob")
    assert (await _receive_json(bob))["type"] == "history"
    assert await _receive_json(ada) == {"type": "joined", "name": "bob", "online": 2}
    assert await _receive_json(bob) == {"type": "joined", "name": "bob", "online": 2}

    await ada.send("hello bob")
    for ws in (ada, bob):
        msg = await _receive_json(ws)
        assert (msg["type"], msg["name"], msg["text"]) == ("message", "ada", "hello bob")
    await bob.close()
    assert await _receive_json(ada) == {"type": "left", "name": "bob", "online": 1}
    await ada.close()

    history = (await room.fetch("/history")).json()["messages"]
    assert [(m["name"], m["text"]) for m in history] == [("ada", "hello bob")]
    carol = await room.websocket("/?name=carol")  # a newcomer gets the history first
    assert [m["text"] for m in (await _receive_json(carol))["messages"]] == ["hello bob"]
    await carol.close()


async def test_rooms_are_separate(client):
    ws = await client.get_or_create("room", "test-a").websocket("/?name=ada")
    await _receive_json(ws)
    await _receive_json(ws)
    await ws.send("only in a")
    assert (await _receive_json(ws))["text"] == "only in a"
    await ws.close()
    assert (await client.get_or_create("room", "test-b").fetch("/history")).json()["messages"] == []
