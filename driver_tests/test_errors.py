"""Errors as callers see them (API.md §4)."""

from __future__ import annotations

import pytest

from runtime import ActorError, RivetError

pytestmark = pytest.mark.anyio


async def test_user_error_reaches_caller_intact(client) -> None:
    h = client.get_or_create("basic", "k")
    with pytest.raises(ActorError) as ei:
        await h.fail_user()
    e = ei.value
    assert isinstance(e, RivetError)
    assert (e.group, e.code, e.message) == ("user", "forbidden_path", "You shall not pass")
    assert e.metadata == {"path": "/x", "n": [1, 2]}


async def test_user_error_default_code(client) -> None:
    h = client.get_or_create("basic", "k")
    with pytest.raises(ActorError) as ei:
        await h.fail_user_default()
    assert (ei.value.group, ei.value.code, ei.value.message) == ("user", "user_error", "plain user error")
    assert ei.value.metadata is None


async def test_declared_user_error_subclass(client) -> None:
    h = client.get_or_create("basic", "k")
    with pytest.raises(ActorError) as ei:
        await h.fail_declared()
    assert (ei.value.group, ei.value.code, ei.value.message) == ("user", "out_of_stock", "The item is out of stock")
    with pytest.raises(ActorError) as ei:
        await h.fail_declared("only 0 left")
    assert (ei.value.group, ei.value.code, ei.value.message) == ("user", "out_of_stock", "only 0 left")
    assert ei.value.metadata == {"sku": "a-1"}


async def test_internal_error_is_sanitized(client, monkeypatch) -> None:
    monkeypatch.delenv("RIVET_EXPOSE_ERRORS", raising=False)
    h = client.get_or_create("basic", "k")
    for action in ("fail_internal", "fail_internal_rivet"):
        with pytest.raises(ActorError) as ei:
            await h.action(action)
        e = ei.value
        assert (e.group, e.code, e.message, e.metadata) == (
            "core",
            "internal_error",
            "An internal error occurred",
            None,
        ), action
        assert "hunter2" not in str(e) and "secret" not in str(e)
    # the actor keeps serving after an error
    assert await h.increment() == 1


async def test_internal_error_exposed_with_env(client, monkeypatch) -> None:
    monkeypatch.setenv("RIVET_EXPOSE_ERRORS", "1")
    h = client.get_or_create("basic", "k")
    with pytest.raises(ActorError) as ei:
        await h.fail_internal()
    assert "hunter2" in ei.value.message
    with pytest.raises(ActorError) as ei:
        await h.fail_internal_rivet()
    assert "a secret internal detail" in ei.value.message


async def test_unknown_action(client) -> None:
    h = client.get_or_create("basic", "k")
    with pytest.raises(ActorError) as ei:
        await h.action("no_such_action")
    assert (ei.value.group, ei.value.code) == ("actor", "action_not_found")
    with pytest.raises(ActorError) as ei:
        await h.no_such_action_either(1)
    assert (ei.value.group, ei.value.code) == ("actor", "action_not_found")
    assert await h.increment() == 1


async def test_unknown_actor_name(client) -> None:
    with pytest.raises(ActorError) as ei:
        await client.get_or_create("not_a_registered_actor", "k").resolve()
    assert (ei.value.group, ei.value.code) == ("actor", "not_registered")
    with pytest.raises(ActorError) as ei:
        await client.get_or_create("not_a_registered_actor", "k").ping()
    assert (ei.value.group, ei.value.code) == ("actor", "not_registered")
    with pytest.raises(ActorError) as ei:
        await client.create("not_a_registered_actor", "k")
    assert (ei.value.group, ei.value.code) == ("actor", "not_registered")


async def test_get_missing_actor(client) -> None:
    h = client.get("basic", "missing")
    with pytest.raises(ActorError) as ei:
        await h.resolve()
    assert (ei.value.group, ei.value.code) == ("actor", "not_found")
    with pytest.raises(ActorError) as ei:
        await h.increment()
    assert (ei.value.group, ei.value.code) == ("actor", "not_found")
    # get never creates
    with pytest.raises(ActorError) as ei:
        await client.get("basic", "missing").resolve()
    assert ei.value.code == "not_found"


async def test_get_for_unknown_id(client) -> None:
    with pytest.raises(ActorError) as ei:
        await client.get_for_id("basic", "no-such-actor-id").increment()
    assert (ei.value.group, ei.value.code) == ("actor", "not_found")


async def test_create_twice_is_duplicate_key(client) -> None:
    h = await client.create("basic", "dup")
    assert await h.increment() == 1
    with pytest.raises(ActorError) as ei:
        await client.create("basic", "dup")
    assert (ei.value.group, ei.value.code) == ("actor", "duplicate_key")
    # the existing actor is untouched
    assert await client.get("basic", "dup").get_count() == 1
    # get_or_create of an existing key is fine
    assert await client.get_or_create("basic", "dup").get_count() == 1


async def test_key_too_large(client) -> None:
    ok_part = "p" * 128
    assert await client.get_or_create("basic", [ok_part]).increment() == 1
    with pytest.raises(ActorError) as ei:
        await client.get_or_create("basic", ["p" * 129]).resolve()
    assert (ei.value.group, ei.value.code) == ("actor", "key_too_large")
    # 2-byte characters: 65 × 2 = 130 bytes in one part
    with pytest.raises(ActorError) as ei:
        await client.get_or_create("basic", ["é" * 65]).resolve()
    assert ei.value.code == "key_too_large"
    # whole key: 8 × 128 = 1024 bytes is fine, 9 × 120 = 1080 is not
    assert await client.get_or_create("basic", ["q" * 128] * 8).increment() == 1
    with pytest.raises(ActorError) as ei:
        await client.get_or_create("basic", ["r" * 120] * 9).resolve()
    assert (ei.value.group, ei.value.code) == ("actor", "key_too_large")
    with pytest.raises(ActorError) as ei:
        await client.create("basic", ["r" * 120] * 9)
    assert ei.value.code == "key_too_large"


async def test_failing_on_create_fails_the_call_and_creation_reruns(client, monkeypatch) -> None:
    from driver_tests import actors

    monkeypatch.delenv("RIVET_EXPOSE_ERRORS", raising=False)
    monkeypatch.setitem(actors.FLAKY_CREATE, "fail", True)
    h = client.get_or_create("flaky_create", "k", input={"v": 1})
    with pytest.raises(ActorError) as ei:
        await h.flaky_read()
    assert (ei.value.group, ei.value.code, ei.value.message) == (
        "core",
        "internal_error",
        "An internal error occurred",
    )
    monkeypatch.setitem(actors.FLAKY_CREATE, "fail", False)
    # the next call runs creation again, with the input stored by the first call
    assert await client.get_or_create("flaky_create", "k").flaky_read() == {"input": {"v": 1}, "creations": 1}
