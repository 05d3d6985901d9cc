"""HTTP routes of the server (API.md §7) over a real socket, with raw httpx requests."""

from __future__ import annotations

import json

import msgpack
import pytest

from runtime.protocol import encoding as enc

pytestmark = pytest.mark.anyio

ERROR_KEYS = {"group", "code", "message", "metadata"}


def by_name(name: str, method: str = "getOrCreate", key: str | None = None, input_: str | None = None,
            extra: str = "") -> str:
    q = f"rvt-namespace=default&rvt-method={method}"
    if method == "getOrCreate":
        q += "&rvt-runner=default&rvt-crash-policy=sleep"
    if key is not None:
        q += f"&rvt-key={key}"
    if input_ is not None:
        q += f"&rvt-input={input_}"
    return f"/gateway/{name}{extra}?{q}"


def assert_error(r, status: int, group: str, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == ERROR_KEYS, body
    assert (body["group"], body["code"]) == (group, code), body
    assert isinstance(body["message"], str) and body["message"]
    return body


async def put_actor(http, name: str, key: str, input_=None) -> dict:
    body = {"name": name, "key": key, "runner_name_selector": "default", "crash_policy": "sleep"}
    if input_ is not None:
        body["input"] = enc.encode_input(input_)
    r = await http.put("/actors", json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def count_actors(http, name: str) -> int:
    r = await http.get(f"/actors?name={name}")
    return len(r.json()["actors"])


# ------------------------------------------------------------------------------ service routes


async def test_metadata_health_metrics(http):
    r = await http.get("/metadata", params={"namespace": "default"})
    assert r.status_code == 200
    meta = r.json()
    assert meta["actorNames"] == {"counter": {"metadata": {}}, "plain": {"metadata": {}}, "web": {"metadata": {}}}
    assert meta["clientProtocolVersion"] == 4
    assert "clientEndpoint" not in meta  # the client keeps the endpoint it was given

    r = await http.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"

    actor = (await put_actor(http, "counter", "metrics"))["actor"]
    r = await http.post(f"/gateway/{actor['actor_id']}/action/increment", json={"args": [1]})
    assert r.json() == {"output": 1}
    r = await http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert 'rivet_actor_active{actor_name="counter"} 1.0' in r.text
    assert 'rivet_actor_actions_total{actor_name="counter",outcome="ok"}' in r.text

    assert_error(await http.post("/health"), 405, "actor", "method_not_allowed")


# ------------------------------------------------------------------------------ /actors


async def test_actors_get_or_create_create_list_delete(http):
    first = await put_actor(http, "counter", "room/1", input_={"start": 10})
    assert first["created"] is True
    actor = first["actor"]
    assert actor["name"] == "counter" and actor["key"] == "room/1"
    assert isinstance(actor["create_ts"], int)
    again = await put_actor(http, "counter", "room/1", input_={"start": 99})
    assert again == {"actor": actor, "created": False}

    actor_id = actor["actor_id"]
    r = await http.post(f"/gateway/{actor_id}/action/get_count", json={"args": []})
    assert r.json() == {"output": 10}  # the input reached create_state
    r = await http.post(f"/gateway/{actor_id}/action/get_input", json={"args": []})
    assert r.json() == {"output": {"start": 10}}

    r = await http.post("/actors", json={"name": "counter", "key": "room/1", "runner_name_selector": "default",
                                         "crash_policy": "sleep"})
    assert_error(r, 400, "actor", "duplicate_key")
    r = await http.post("/actors", json={"name": "counter", "key": "room/2", "runner_name_selector": "default",
                                         "crash_policy": "sleep"})
    assert r.status_code == 200 and set(r.json()) == {"actor"}
    second = r.json()["actor"]
    assert second["key"] == "room/2" and second["actor_id"] != actor_id

    r = await http.get("/actors", params={"name": "counter", "key": "room/1"})
    assert [a["actor_id"] for a in r.json()["actors"]] == [actor_id]
    r = await http.get("/actors", params={"name": "counter", "key": "nope"})
    assert r.json() == {"actors": []}
    r = await http.get("/actors", params={"actor_ids": f"{actor_id},{second['actor_id']},missing"})
    assert sorted(a["actor_id"] for a in r.json()["actors"]) == sorted([actor_id, second["actor_id"]])
    r = await http.get("/actors", params={"name": "counter"})
    assert {a["actor_id"] for a in r.json()["actors"]} == {actor_id, second["actor_id"]}

    r = await http.get("/actors/names")
    assert r.json() == {"names": {"counter": {"metadata": {}}, "plain": {"metadata": {}}, "web": {"metadata": {}}}}

    r = await http.delete(f"/actors/{actor_id}")
    assert r.status_code == 200 and r.json() == {}
    r = await http.get("/actors", params={"actor_ids": actor_id})
    assert r.json() == {"actors": []}
    assert_error(await http.post(f"/gateway/{actor_id}/action/get_count", json={"args": []}), 404, "actor", "not_found")
    assert_error(await http.delete(f"/actors/{actor_id}"), 404, "actor", "not_found")
    # the key is free again and names a new actor with fresh state
    fresh = await put_actor(http, "counter", "room/1")
    assert fresh["created"] is True and fresh["actor"]["actor_id"] != actor_id


@pytest.mark.parametrize("body", [
    b"", b"{", b"[]", b'"counter"', b'{"key": "a"}', b'{"name": 5}', b'{"name": "counter", "key": 5}',
    b'{"name": "counter", "key": "a", "input": "***"}', b'{"name": "counter", "key": "a", "input": 5}',
])
async def test_actors_bad_bodies(http, body):
    assert_error(await http.put("/actors", content=body), 400, "actor", "invalid_request")
    assert await count_actors(http, "counter") == 0


async def test_actors_unknown_name_and_method(http):
    r = await http.put("/actors", json={"name": "nope", "key": "a", "runner_name_selector": "default",
                                        "crash_policy": "sleep"})
    assert_error(r, 404, "actor", "not_registered")
    assert_error(await http.patch("/actors"), 405, "actor", "method_not_allowed")
    assert_error(await http.get("/actors/some-id"), 405, "actor", "method_not_allowed")


# ------------------------------------------------------------------------------ actions


async def test_action_by_id_json_plain_data(http):
    actor_id = (await put_actor(http, "counter", "json"))["actor"]["actor_id"]
    args = [b"\x00\xff", 2**60, -(2**63), 1.5, None, ["$tag", 1], {"nested": [True, "s"]}]
    r = await http.post(f"/gateway/{actor_id}/action/echo",
                        content=json.dumps({"args": enc.to_json_compat(args)}),
                        headers={"x-rivet-encoding": "json"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["output"][0] == ["$Uint8Array", "AP8="]
    assert body["output"][1] == ["$BigInt", str(2**60)]
    assert body["output"][5] == ["$$tag", 1]
    assert enc.from_json_compat(body["output"]) == args


async def test_action_by_id_msgpack(http):
    actor_id = (await put_actor(http, "counter", "mp"))["actor"]["actor_id"]
    r = await http.post(f"/gateway/{actor_id}/action/increment", content=msgpack.packb({"args": [7]}),
                        headers={"x-rivet-encoding": "msgpack"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-msgpack"
    assert msgpack.unpackb(r.content) == {"output": 7}
    r = await http.post(f"/gateway/{actor_id}/action/echo", content=msgpack.packb({"args": [b"\x01", 2**63]}),
                        headers={"x-rivet-encoding": "msgpack"})
    assert msgpack.unpackb(r.content) == {"output": [b"\x01", 2**63]}
    # errors come back in the request's encoding
    r = await http.post(f"/gateway/{actor_id}/action/fail", content=msgpack.packb({"args": []}),
                        headers={"x-rivet-encoding": "msgpack"})
    assert r.status_code == 400
    assert msgpack.unpackb(r.content) == {"group": "user", "code": "bad_thing", "message": "that went wrong",
                                          "metadata": {"limit": 3}}


async def test_action_conn_params_header(http):
    actor_id = (await put_actor(http, "counter", "params"))["actor"]["actor_id"]
    r = await http.post(f"/gateway/{actor_id}/action/whoami", json={"args": []},
                        headers={"x-rivet-conn-params": json.dumps({"token": "t1", "n": 2})})
    assert r.json() == {"output": {"token": "t1", "n": 2}}
    r = await http.post(f"/gateway/{actor_id}/action/whoami", json={"args": []})
    assert r.json() == {"output": None}
    r = await http.post(f"/gateway/{actor_id}/action/whoami", json={"args": []},
                        headers={"x-rivet-conn-params": "{not json"})
    assert_error(r, 400, "actor", "invalid_request")
    # the HTTP call is an ephemeral connection: on_before_connect can reject it
    r = await http.post(f"/gateway/{actor_id}/action/whoami", json={"args": []},
                        headers={"x-rivet-conn-params": json.dumps({"token": "reject"})})
    body = assert_error(r, 400, "user", "forbidden")
    assert body["metadata"] == {"why": "token"}


async def test_action_by_name_with_rvt_params(http):
    r = await http.post(by_name("counter", "get", key="a,b", extra="/action/get_count"), json={"args": []})
    assert_error(r, 404, "actor", "not_found")
    assert await count_actors(http, "counter") == 0

    r = await http.post(by_name("counter", key="a,b", input_=enc.encode_input({"start": 3}, urlsafe=True),
                                extra="/action/increment"), json={"args": [2]})
    assert r.json() == {"output": 5}
    r = await http.post(by_name("counter", "get", key="a,b", extra="/action/increment"), json={"args": [1]})
    assert r.json() == {"output": 6}
    # rvt-key "a,b" is the key ["a", "b"], which RivetKit's /actors API writes as "a/b"
    r = await http.get("/actors", params={"name": "counter", "key": "a/b"})
    assert len(r.json()["actors"]) == 1
    # no key is the empty key
    r = await http.post(by_name("counter", extra="/action/increment"), json={"args": [1]})
    assert r.json() == {"output": 1}
    r = await http.get("/actors", params={"name": "counter", "key": "/"})
    assert len(r.json()["actors"]) == 1

    assert_error(await http.post(by_name("nope", extra="/action/x"), json={"args": []}), 404, "actor", "not_registered")
    assert_error(await http.post(by_name("counter", "create", extra="/action/x"), json={"args": []}),
                 400, "actor", "invalid_request")
    assert_error(await http.post(by_name("counter", key="z", input_="***", extra="/action/increment"),
                                 json={"args": [1]}), 400, "actor", "invalid_request")
    assert_error(await http.post(by_name("counter", "get", key="a,b", input_="AA", extra="/action/get_count"),
                                 json={"args": []}), 400, "actor", "invalid_request")
    assert_error(await http.post(by_name("counter", key="a,b", extra="/action/get_count") + "&rvt-key=c",
                                 json={"args": []}), 400, "actor", "invalid_request")
    assert await count_actors(http, "counter") == 2


async def test_action_errors(http):
    actor_id = (await put_actor(http, "counter", "errors"))["actor"]["actor_id"]
    body = assert_error(await http.post(f"/gateway/{actor_id}/action/fail", json={"args": []}), 400, "user", "bad_thing")
    assert body == {"group": "user", "code": "bad_thing", "message": "that went wrong", "metadata": {"limit": 3}}
    body = assert_error(await http.post(f"/gateway/{actor_id}/action/crash", json={"args": []}),
                        500, "core", "internal_error")
    assert "secret" not in body["message"] and body["metadata"] is None
    assert_error(await http.post(f"/gateway/{actor_id}/action/missing", json={"args": []}),
                 404, "actor", "action_not_found")
    assert_error(await http.post(f"/gateway/{actor_id}/action/get_count", json={"args": [1, 2, 3]}),
                 500, "core", "internal_error")  # a TypeError in the action (wrong arity) is internal
    assert_error(await http.post("/gateway/no-such-id/action/get_count", json={"args": []}), 404, "actor", "not_found")
    body = assert_error(await http.post(f"/gateway/{actor_id}/action/big", json={"args": [2 * 1024 * 1024]}),
                        400, "message", "outgoing_too_long")
    r = await http.post(f"/gateway/{actor_id}/action/get_count", json={"args": []})
    assert r.json() == {"output": 0}


# ------------------------------------------------------------------------------ bad input


BAD_BODIES = [
    pytest.param(b"", id="empty"),
    pytest.param(b"{", id="undecodable"),
    pytest.param(b'{"args": 5}', id="args-not-a-list"),
    pytest.param(b'"hello"', id="bare-string"),
    pytest.param(b"[1, 2]", id="list"),
    pytest.param(b'{"argz": []}', id="wrong-key"),
    pytest.param(b'{"args": [["$Nope", 1]]}', id="unknown-tag"),
    pytest.param(b'{"args": [123456789012345678901234567890]}', id="int-too-big"),
    pytest.param(b"\xff\xfe\x00", id="not-utf8"),
]


@pytest.mark.parametrize("body", BAD_BODIES)
async def test_bad_json_bodies_touch_nothing(http, body):
    actor_id = (await put_actor(http, "counter", "bad"))["actor"]["actor_id"]
    r = await http.post(f"/gateway/{actor_id}/action/increment", content=body)
    assert_error(r, 400, "actor", "invalid_request")
    # by name with getOrCreate: the bad body is refused before anything is created
    r = await http.post(by_name("counter", key="never-created", extra="/action/increment"), content=body)
    assert_error(r, 400, "actor", "invalid_request")
    assert await count_actors(http, "counter") == 1
    r = await http.post(f"/gateway/{actor_id}/action/get_count", json={"args": []})
    assert r.json() == {"output": 0}


@pytest.mark.parametrize("body", [b"", b"\xc1", msgpack.packb("hello"), msgpack.packb({"args": 5}),
                                  msgpack.packb({"args": [msgpack.ExtType(1, b"x")]}),
                                  msgpack.packb({"args": []}) + b"trailing"])
async def test_bad_msgpack_bodies(http, body):
    actor_id = (await put_actor(http, "counter", "badmp"))["actor"]["actor_id"]
    r = await http.post(f"/gateway/{actor_id}/action/increment", content=body, headers={"x-rivet-encoding": "msgpack"})
    assert r.status_code == 400
    assert msgpack.unpackb(r.content)["code"] == "invalid_request"


async def test_unknown_encoding_oversized_and_wrong_method(http):
    actor_id = (await put_actor(http, "counter", "limits"))["actor"]["actor_id"]
    url = f"/gateway/{actor_id}/action/increment"
    r = await http.post(url, json={"args": [1]}, headers={"x-rivet-encoding": "cbor"})
    assert r.headers["content-type"] == "application/json"
    assert_error(r, 400, "protocol", "unsupported_encoding")
    r = await http.post(url, content=json.dumps({"args": ["x" * (65 * 1024)]}))
    assert_error(r, 400, "message", "incoming_too_long")

    async def chunks():
        for _ in range(100):
            yield b" " * 1024  # no content-length: the stream itself is cut off

    r = await http.post(url, content=chunks())
    assert_error(r, 400, "message", "incoming_too_long")
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        assert_error(await http.request(method, url), 405, "actor", "method_not_allowed")
    r = await http.post(f"/gateway/{actor_id}/action/get_count", json={"args": []})
    assert r.json() == {"output": 0}


@pytest.mark.parametrize("path", ["/nope", "/gateway/", "/gateway/x/unknown", "/actorsx", "/gateway/x"])
async def test_unknown_routes(http, path):
    assert_error(await http.get(path), 404, "core", "route_not_found")


async def test_websocket_routes_refuse_plain_http(http):
    actor_id = (await put_actor(http, "counter", "ws-http"))["actor"]["actor_id"]
    assert_error(await http.get(f"/gateway/{actor_id}/connect"), 400, "actor", "invalid_request")
