"""The ``/connect`` WebSocket (RivetKit's client protocol v4) with the ``websockets`` client."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import httpx
import msgpack
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from runtime.protocol import encoding as enc
from runtime.protocol.messages import ActionRequest, ActionResponse, Error, Event, Init, SubscriptionRequest

pytestmark = pytest.mark.anyio


async def create(server, key: str) -> str:
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.put("/actors", json={"name": "counter", "key": key, "runner_name_selector": "default",
                                            "crash_policy": "sleep"})
        return r.json()["actor"]["actor_id"]


def ws_url(server, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


def protocols(encoding: str = "json", params=None) -> list[str]:
    out = ["rivet", f"rivet_encoding.{encoding}"]
    if params is not None:
        out.append("rivet_conn_params." + quote(json.dumps(params)))
    return out


class Peer:
    """A test client speaking the protocol over a raw ``websockets`` connection."""

    def __init__(self, ws, encoding: str) -> None:
        self.ws = ws
        self.encoding = encoding

    async def send(self, msg) -> None:
        await self.ws.send(enc.encode_to_server(self.encoding, msg))

    async def recv(self, timeout: float = 5.0):
        data = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(data, str if self.encoding == "json" else bytes)
        return enc.decode_to_client(self.encoding, data)

    async def closed(self, timeout: float = 5.0):
        """Read until the server closes; return (code, reason, messages seen before)."""
        seen = []
        try:
            while True:
                seen.append(await self.recv(timeout))
        except ConnectionClosed as exc:
            return exc.rcvd.code, exc.rcvd.reason, seen


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
async def test_session_init_action_subscribe_event_error(server, encoding):
    actor_id = await create(server, f"session-{encoding}")
    async with websockets.connect(ws_url(server, f"/gateway/{actor_id}/connect"),
                                  subprotocols=protocols(encoding)) as ws:
        assert ws.subprotocol == "rivet"
        peer = Peer(ws, encoding)
        init = await peer.recv()
        assert type(init) is Init and init.actor_id == actor_id and init.connection_id

        await peer.send(ActionRequest(1, "increment", [2]))
        assert await peer.recv() == ActionResponse(1, 2)  # not subscribed: no event

        await peer.send(SubscriptionRequest("new_count", True))
        await peer.send(ActionRequest(2, "increment", [3]))
        assert await peer.recv() == Event("new_count", [5])
        assert await peer.recv() == ActionResponse(2, 5)

        # a broadcast caused by another caller (an HTTP action) reaches the subscriber
        async with httpx.AsyncClient(base_url=server.url) as http:
            r = await http.post(f"/gateway/{actor_id}/action/increment", json={"args": [1]})
            assert r.json() == {"output": 6}
        assert await peer.recv() == Event("new_count", [6])

        await peer.send(ActionRequest(3, "echo", [b"\x00\x01", 2**62, {"k": ["$v", None]}]))
        assert await peer.recv() == ActionResponse(3, [b"\x00\x01", 2**62, {"k": ["$v", None]}])

        await peer.send(ActionRequest(4, "fail", []))
        assert await peer.recv() == Error("user", "bad_thing", "that went wrong", {"limit": 3}, 4)
        await peer.send(ActionRequest(5, "nope", []))
        err = await peer.recv()
        assert (err.group, err.code, err.action_id) == ("actor", "action_not_found", 5)

        await peer.send(SubscriptionRequest("new_count", False))
        await peer.send(ActionRequest(6, "increment", [1]))
        assert await peer.recv() == ActionResponse(6, 7)


async def test_json_frames_use_rivetkit_tags(server):
    actor_id = await create(server, "tags")
    async with websockets.connect(ws_url(server, f"/gateway/{actor_id}/connect"), subprotocols=protocols()) as ws:
        init = json.loads(await ws.recv())
        assert init == {"body": {"tag": "Init", "val": {"actorId": actor_id, "connectionId": init["body"]["val"]["connectionId"]}}}
        await ws.send(json.dumps({"body": {"tag": "ActionRequest", "val": {"id": ["$BigInt", "41"], "name": "echo",
                                                                             "args": [["$Uint8Array", "AQ=="]]}}}))
        assert json.loads(await ws.recv()) == {
            "body": {"tag": "ActionResponse", "val": {"id": ["$BigInt", "41"], "output": [["$Uint8Array", "AQ=="]]}}}


async def test_connect_by_name_and_conn_params(server):
    path = "/gateway/counter/connect?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=x,y"
    async with websockets.connect(ws_url(server, path), subprotocols=protocols(params={"token": "abc"})) as ws:
        peer = Peer(ws, "json")
        init = await peer.recv()
        assert type(init) is Init
        await peer.send(ActionRequest(1, "whoami", []))
        assert await peer.recv() == ActionResponse(1, {"token": "abc"})
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.get("/actors", params={"name": "counter", "key": "x/y"})
        assert [a["actor_id"] for a in r.json()["actors"]] == [init.actor_id]


async def test_connect_rejected_by_on_before_connect(server):
    actor_id = await create(server, "reject")
    async with websockets.connect(ws_url(server, f"/gateway/{actor_id}/connect"),
                                  subprotocols=protocols(params={"token": "reject"})) as ws:
        code, reason, seen = await Peer(ws, "json").closed()
    assert seen == [Error("user", "forbidden", "not allowed in", {"why": "token"}, None)]
    assert (code, reason) == (1011, "user.forbidden")


@pytest.mark.parametrize("path,expected", [
    ("/gateway/no-such-actor/connect", "actor.not_found"),
    ("/gateway/counter/connect?rvt-namespace=default&rvt-method=get&rvt-key=missing", "actor.not_found"),
    ("/gateway/nope/connect?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default", "actor.not_registered"),
    ("/gateway/counter/connect?rvt-namespace=default&rvt-method=bogus", "actor.invalid_request"),
])
async def test_connect_failures(server, path, expected):
    async with websockets.connect(ws_url(server, path), subprotocols=protocols()) as ws:
        code, reason, seen = await Peer(ws, "json").closed()
    assert (code, reason) == (1011, expected)
    assert len(seen) == 1 and type(seen[0]) is Error
    assert f"{seen[0].group}.{seen[0].code}" == expected and seen[0].action_id is None


async def test_connect_bad_encoding_and_params(server):
    actor_id = await create(server, "bad-proto")
    url = ws_url(server, f"/gateway/{actor_id}/connect")
    async with websockets.connect(url, subprotocols=["rivet", "rivet_encoding.cbor"]) as ws:
        code, reason, seen = await Peer(ws, "json").closed()
    assert (code, reason) == (1011, "protocol.unsupported_encoding")
    assert seen[0].code == "unsupported_encoding"
    async with websockets.connect(url, subprotocols=["rivet", "rivet_encoding.json", "rivet_conn_params.%7Bnope"]) as ws:
        code, reason, _ = await Peer(ws, "json").closed()
    assert (code, reason) == (1011, "actor.invalid_request")


async def test_oversized_message_closes_the_socket(server):
    actor_id = await create(server, "big")
    async with websockets.connect(ws_url(server, f"/gateway/{actor_id}/connect"), subprotocols=protocols()) as ws:
        peer = Peer(ws, "json")
        await peer.recv()  # Init
        await peer.send(ActionRequest(1, "echo", ["x" * (65 * 1024)]))
        code, reason, seen = await peer.closed()
    assert (code, reason) == (1011, "message.incoming_too_long")
    assert [(m.group, m.code) for m in seen] == [("message", "incoming_too_long")]
    # the server and the actor are fine
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post(f"/gateway/{actor_id}/action/get_count", json={"args": []})
        assert r.json() == {"output": 0}


@pytest.mark.parametrize("frame", ["garbage", b"\x00\x01", '{"body": {"tag": "Init", "val": {}}}', "[]"])
async def test_undecodable_message_closes_the_socket(server, frame):
    actor_id = await create(server, "garbage")
    async with websockets.connect(ws_url(server, f"/gateway/{actor_id}/connect"), subprotocols=protocols()) as ws:
        peer = Peer(ws, "json")
        await peer.recv()
        await ws.send(frame)
        code, reason, seen = await peer.closed()
    assert (code, reason) == (1011, "actor.invalid_request")
    assert [(m.code, m.action_id) for m in seen] == [("invalid_request", None)]


async def test_bad_action_request_answers_its_id_and_keeps_the_socket(server):
    actor_id = await create(server, "bad-args")
    async with websockets.connect(ws_url(server, f"/gateway/{actor_id}/connect"), subprotocols=protocols()) as ws:
        peer = Peer(ws, "json")
        await peer.recv()
        await ws.send(json.dumps({"body": {"tag": "ActionRequest", "val": {"id": 7, "name": "increment", "args": 5}}}))
        err = await peer.recv()
        assert (err.group, err.code, err.action_id) == ("actor", "invalid_request", 7)
        await peer.send(ActionRequest(8, "increment", [1]))
        assert await peer.recv() == ActionResponse(8, 1)


async def test_outgoing_too_long_over_socket(server):
    actor_id = await create(server, "big-out")
    async with websockets.connect(ws_url(server, f"/gateway/{actor_id}/connect"),
                                  subprotocols=protocols("msgpack")) as ws:
        peer = Peer(ws, "msgpack")
        await peer.recv()
        await peer.send(ActionRequest(1, "big", [2 * 1024 * 1024]))
        err = await peer.recv()
        assert (err.group, err.code, err.action_id) == ("message", "outgoing_too_long", 1)
        await peer.send(ActionRequest(2, "big", [3]))
        assert await peer.recv() == ActionResponse(2, "xxx")


async def test_destroy_closes_connections(server):
    actor_id = await create(server, "destroy")
    async with websockets.connect(ws_url(server, f"/gateway/{actor_id}/connect"), subprotocols=protocols()) as ws:
        peer = Peer(ws, "json")
        await peer.recv()
        async with httpx.AsyncClient(base_url=server.url) as http:
            r = await http.delete(f"/actors/{actor_id}")
            assert r.status_code == 200
        code, _, _ = await peer.closed()
        assert code in (1000, 1011)


async def test_msgpack_frames_are_binary(server):
    actor_id = await create(server, "mp-frames")
    async with websockets.connect(ws_url(server, f"/gateway/{actor_id}/connect"),
                                  subprotocols=protocols("msgpack")) as ws:
        raw = await ws.recv()
        assert isinstance(raw, bytes)
        assert msgpack.unpackb(raw)["body"]["tag"] == "Init"
        await ws.send(msgpack.packb({"body": {"tag": "ActionRequest", "val": {"id": 1, "name": "increment",
                                                                             "args": [4]}}}))
        assert msgpack.unpackb(await ws.recv()) == {"body": {"tag": "ActionResponse", "val": {"id": 1, "output": 4}}}
