"""Raw HTTP: ``on_request`` and the client's ``h.fetch`` (API.md §2.1, §6, §7).

``h.fetch`` exists only on the networked client, so these tests pin the http transport (the raw
route does not depend on the action encoding; JSON is enough)."""

from __future__ import annotations

import anyio
import pytest

from runtime import ActorError

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("transport_kind", ["http-json"])]


async def test_get_passes_method_path_query_and_headers(client) -> None:
    h = client.get_or_create("rawhttp", "props")
    resp = await h.fetch("/echo/items/3?color=red&size=10", headers={"X-Custom-Header": "Value-1"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    got = resp.json()
    assert got["method"] == "GET"
    assert got["path"] == "/echo/items/3"  # without the /request prefix
    assert got["query"] == {"color": "red", "size": "10"}
    assert got["headers"]["x-custom-header"] == "Value-1"
    assert got["body_len"] == 0
    assert got["requests"] == 1


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_methods_with_body(client, method) -> None:
    h = client.get_or_create("rawhttp", "methods")
    resp = await h.fetch("/echo", method=method, body="payload-" + method,
                         headers={"content-type": "text/plain"})
    assert resp.status_code == 200
    got = resp.json()
    assert got["method"] == method
    assert got["body"] == "payload-" + method
    assert got["body_len"] == len("payload-" + method)
    assert got["headers"]["content-type"] == "text/plain"


async def test_method_is_upper_case_and_head_like_methods(client) -> None:
    h = client.get_or_create("rawhttp", "lower")
    resp = await h.fetch("/echo", method="post", body="x")
    assert resp.json()["method"] == "POST"
    resp = await h.fetch("/echo", method="OPTIONS")
    assert resp.status_code == 200
    assert resp.json()["method"] == "OPTIONS"


async def test_headers_are_case_insensitive(client) -> None:
    h = client.get_or_create("rawhttp", "headers")
    resp = await h.fetch("/header?name=X-Mixed-Case", headers={"x-MIXED-case": "v1", "Cookie": "a=1; b=2"})
    assert resp.json() == {"exact": "v1", "upper": "v1", "lower": "v1", "present": True}
    resp = await h.fetch("/header?name=Cookie", headers={"Cookie": "a=1; b=2"})
    assert resp.json()["exact"] == "a=1; b=2"
    resp = await h.fetch("/header?name=X-Absent")
    assert resp.json() == {"exact": None, "upper": None, "lower": None, "present": False}


async def test_json_body_and_json_answer(client) -> None:
    h = client.get_or_create("rawhttp", "json")
    resp = await h.fetch("/json", method="POST", body={"a": [1, 2, {"b": None}], "ü": "ß"})
    assert resp.status_code == 200
    assert resp.json() == {"got": {"a": [1, 2, {"b": None}], "ü": "ß"}, "method": "POST"}
    resp = await h.fetch("/list")
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json() == [1, "two", {"three": 3}]


async def test_invalid_json_body_is_a_client_error(client) -> None:
    h = client.get_or_create("rawhttp", "badjson")
    resp = await h.fetch("/json", method="POST", body=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["group"] == "actor"
    assert resp.json()["code"] == "invalid_request"
    assert set(resp.json()) == {"group", "code", "message", "metadata"}


async def test_text_answer(client) -> None:
    resp = await client.get_or_create("rawhttp", "text").fetch("/text")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.text == "plain text réponse"


async def test_response_status_and_headers(client) -> None:
    resp = await client.get_or_create("rawhttp", "status").fetch("/status")
    assert resp.status_code == 418
    assert resp.headers["X-Reply"] == "short-and-stout"
    assert resp.text == "I am a teapot"


async def test_binary_body_round_trip(client) -> None:
    data = bytes(range(256)) * 4
    resp = await client.get_or_create("rawhttp", "binary").fetch("/binary", method="POST", body=data)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/octet-stream"
    assert resp.content == bytes(reversed(data))


async def test_large_body(client) -> None:
    data = b"0123456789abcdef" * (256 * 1024 // 16)  # 256 KiB: raw bodies are not protocol messages
    resp = await client.get_or_create("rawhttp", "large").fetch("/binary", method="POST", body=data)
    assert resp.status_code == 200
    assert len(resp.content) == len(data)
    assert resp.content == bytes(reversed(data))


async def test_empty_body(client) -> None:
    resp = await client.get_or_create("rawhttp", "empty").fetch("/echo", method="POST", body=b"")
    assert resp.json()["body_len"] == 0
    assert resp.json()["body"] == ""


async def test_url_encoding_of_path_and_query(client) -> None:
    h = client.get_or_create("rawhttp", "encoding")
    resp = await h.fetch("/echo/a%20b/caf%C3%A9?q=hello%20world&sym=%26%3D%3F&empty=")
    got = resp.json()
    assert got["path"] == "/echo/a b/café"
    assert got["query"] == {"q": "hello world", "sym": "&=?", "empty": ""}


async def test_path_without_leading_slash_and_root_path(client) -> None:
    h = client.get_or_create("rawhttp", "slashes")
    assert (await h.fetch("echo/x")).json()["path"] == "/echo/x"
    resp = await h.fetch("/")
    assert resp.status_code == 404  # the handler's own 404 for an unknown route
    assert resp.text == "no route /"


async def test_long_url(client) -> None:
    long_value = "v" * 4000
    got = (await client.get_or_create("rawhttp", "long").fetch(f"/echo/long?x={long_value}")).json()
    assert got["query"] == {"x": long_value}


async def test_state_is_shared_with_actions(client) -> None:
    h = client.get_or_create("rawhttp", "state")
    for expected in (1, 2, 3):
        assert (await h.fetch("/count")).json() == {"requests": expected}
    assert await h.rawhttp_requests() == 3
    ident = (await h.fetch("/identity")).json()
    assert ident == {"actor_id": await h.resolve(), "name": "rawhttp", "key": ["state"]}


async def test_handler_routes_unknown_paths_itself(client) -> None:
    resp = await client.get_or_create("rawhttp", "unknown").fetch("/nothing/here")
    assert resp.status_code == 404
    assert resp.text == "no route /nothing/here"


async def test_actor_without_on_request_answers_404_not_found(client) -> None:
    h = client.get_or_create("basic", "no-raw")
    assert await h.increment() == 1
    resp = await h.fetch("/anything")
    assert resp.status_code == 404
    body = resp.json()
    assert set(body) == {"group", "code", "message", "metadata"}
    assert (body["group"], body["code"]) == ("actor", "not_found")
    assert await h.get_count() == 1  # the actor is untouched


async def test_exception_in_handler_is_500_sanitized(client, monkeypatch) -> None:
    monkeypatch.delenv("RIVET_EXPOSE_ERRORS", raising=False)
    h = client.get_or_create("rawhttp", "boom")
    resp = await h.fetch("/boom")
    assert resp.status_code == 500
    body = resp.json()
    assert set(body) == {"group", "code", "message", "metadata"}
    assert (body["group"], body["code"], body["message"]) == ("core", "internal_error", "An internal error occurred")
    assert not body["metadata"]
    assert "secret" not in resp.text
    # the actor keeps serving
    assert (await h.fetch("/count")).json() == {"requests": 2}


async def test_concurrent_requests_keep_their_own_context(client) -> None:
    h = client.get_or_create("rawhttp", "concurrent")
    results: dict[int, dict] = {}

    async def one(i: int) -> None:
        resp = await h.fetch(f"/slow?seconds=0.05&n={i}")
        results[i] = resp.json()

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(one, i)
    assert {i: r["n"] for i, r in results.items()} == {i: str(i) for i in range(8)}
    assert (await h.fetch("/count")).json() == {"requests": 9}


async def test_get_handle_for_missing_actor(client) -> None:
    with pytest.raises(ActorError) as ei:
        await client.get("rawhttp", "never-created").fetch("/count")
    assert (ei.value.group, ei.value.code) == ("actor", "not_found")


async def test_stale_key_handle_fetch_after_destroy(client) -> None:
    h = client.get_or_create("rawhttp", "stale")
    assert (await h.fetch("/count")).json() == {"requests": 1}
    first = await h.resolve()
    await client.get_or_create("rawhttp", "stale").destroy()
    # the same key-based handle reaches the new actor (fresh state)
    assert (await h.fetch("/count")).json() == {"requests": 1}
    assert await h.resolve() != first
