"""Actions over HTTP: proxies, plain-data round trips, errors, client-side checks."""

from __future__ import annotations

import pytest

from runtime import ActorError, Client
from tests.client.helpers import free_port

pytestmark = pytest.mark.anyio


async def test_action_proxy_and_action_are_the_same_call(client: Client) -> None:
    h = client.get_or_create("counter", "a")
    assert await h.increment(5) == 5
    assert await h.action("increment", 2) == 7
    assert await h.increment() == 8
    assert await h.get_count() == 8
    # the accessor style reaches the same actor
    assert await client.counter.get_or_create("a").get_count() == 8


async def test_plain_data_round_trips(client: Client) -> None:
    h = client.get_or_create("counter", "data")
    values = [
        None, True, False, 0, -1, 2**53 + 1, -(2**63), 2**63 - 1, 1.5, "héllo ✓", b"\x00\xffbytes",
        [1, [2, [3]]], (4, 5), {"a": {"b": [b"x", None]}}, ["$Uint8Array", "not a tag"], ["$BigInt", "7"],
        {"$": 1}, [], {},
    ]
    out = await h.echo(*values)
    expected = [list(v) if isinstance(v, tuple) else v for v in values]
    assert out == expected
    assert type(out[10]) is bytes
    assert out[5] == 2**53 + 1 and type(out[5]) is int


async def test_keywords_and_non_plain_args_fail_before_sending() -> None:
    # nothing listens on this port: a TypeError proves nothing was sent
    async with Client(f"http://127.0.0.1:{free_port()}") as c:
        h = c.get_or_create("counter", "x")
        with pytest.raises(TypeError, match="positional"):
            await h.increment(amount=1)
        with pytest.raises(TypeError, match=r"args\[1\]\['s'\]"):
            await h.echo(1, {"s": {1, 2}})
        with pytest.raises(TypeError):
            c.get_or_create("counter", "x", input=object())
        with pytest.raises(TypeError):
            c.get_or_create("counter", 5)


async def test_user_error_keeps_code_message_metadata(client: Client) -> None:
    h = client.get_or_create("counter", "errors")
    with pytest.raises(ActorError) as info:
        await h.fail_user("apples")
    e = info.value
    assert (e.group, e.code, e.message, e.metadata) == ("user", "out_of_stock", "no apples left",
                                                        {"item": "apples", "left": 0})
    with pytest.raises(ActorError) as info:
        await h.fail_adhoc()
    assert (info.value.group, info.value.code, info.value.metadata) == ("user", "rate_limited", {"retry_after": 2.5})
    assert info.value.message == "slow down"


async def test_internal_error_is_sanitized(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RIVET_EXPOSE_ERRORS", raising=False)
    with pytest.raises(ActorError) as info:
        await client.get_or_create("counter", "errors").fail_internal()
    e = info.value
    assert (e.group, e.code, e.message, e.metadata) == ("core", "internal_error", "An internal error occurred", None)
    assert "secret" not in str(e)


async def test_unknown_action_and_unknown_actor_name(client: Client) -> None:
    with pytest.raises(ActorError) as info:
        await client.get_or_create("counter", "a").no_such_action()
    assert (info.value.group, info.value.code) == ("actor", "action_not_found")
    with pytest.raises(ActorError) as info:
        await client.get_or_create("nope", "a").anything()
    assert (info.value.group, info.value.code) == ("actor", "not_registered")


async def test_handle_params_reach_the_actor(client: Client) -> None:
    h = client.get_or_create("counter", "p", params={"token": "t", "n": 2**60, "raw": b"\x01"})
    assert await h.my_params() == {"token": "t", "n": 2**60, "raw": b"\x01"}
    assert await client.get_or_create("counter", "p").my_params() is None


async def test_unreachable_server_is_a_catalogued_client_error() -> None:
    port = free_port()
    async with Client(f"http://127.0.0.1:{port}", connect_timeout=2.0) as c:
        with pytest.raises(ActorError) as info:
            await c.get_or_create("counter", "x").increment(1)
        assert (info.value.group, info.value.code) == ("client", "unreachable")
        assert f"127.0.0.1:{port}" in info.value.message
        with pytest.raises(ActorError) as info:
            await c.get_for_id("counter", "some-id").connect().open()
        assert (info.value.group, info.value.code) == ("client", "unreachable")


async def test_closed_client_refuses_calls(server, encoding) -> None:
    c = Client(server.url, encoding=encoding)
    h = c.get_or_create("counter", "closed")
    assert await h.increment(1) == 1
    await c.close()
    with pytest.raises(ActorError) as info:
        await h.increment(1)
    assert (info.value.group, info.value.code) == ("client", "disposed")


async def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="encoding"):
        Client("http://127.0.0.1:6420", encoding="cbor")
    with pytest.raises(ValueError, match="URL"):
        Client("127.0.0.1:6420")


async def test_concurrent_calls(client: Client) -> None:
    import anyio

    h = client.get_or_create("counter", "many")
    results: list[int] = []

    async def one() -> None:
        results.append(await h.increment(1))

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(one)
    assert sorted(results) == list(range(1, 51))
    assert await h.get_count() == 50
