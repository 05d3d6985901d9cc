"""The per-actor key-value store `c.kv` (API.md §3)."""

from __future__ import annotations

import pytest

from runtime import ActorError

pytestmark = pytest.mark.anyio


async def test_get_put_delete(client) -> None:
    h = client.get_or_create("kvstore", "k")
    assert await h.kv_get("missing") is None
    assert await h.kv_put("a", "1") is True
    assert await h.kv_get("a") == "1"
    await h.kv_put("a", "2")  # overwrite
    assert await h.kv_get("a") == "2"
    await h.kv_delete("a")
    assert await h.kv_get("a") is None
    await h.kv_delete("a")  # deleting a missing key is fine
    await h.kv_delete("never-existed")


async def test_types_come_back_as_stored(client) -> None:
    h = client.get_or_create("kvstore", "types")
    await h.kv_put("str-key", "str-value")
    await h.kv_put("str-key-bytes", b"\x00\xffbytes")
    await h.kv_put(b"\x01bytes-key", "text")
    await h.kv_put(b"\x02bytes-key-2", b"raw")
    assert await h.kv_get("str-key") == "str-value"
    assert await h.kv_get("str-key-bytes") == b"\x00\xffbytes"
    assert await h.kv_get(b"\x01bytes-key") == "text"
    assert await h.kv_get(b"\x02bytes-key-2") == b"raw"
    assert await h.kv_types() == [
        ["bytes", "str"],
        ["bytes", "bytes"],
        ["str", "str"],
        ["str", "bytes"],
    ]
    rows = await h.kv_list()
    assert rows == [
        [b"\x01bytes-key", "text"],
        [b"\x02bytes-key-2", b"raw"],
        ["str-key", "str-value"],
        ["str-key-bytes", b"\x00\xffbytes"],
    ]
    assert await h.kv_put("empty", "") is True
    assert await h.kv_get("empty") == ""
    await h.kv_put("empty-bytes", b"")
    assert await h.kv_get("empty-bytes") == b""


async def test_get_many_put_many_delete_many(client) -> None:
    h = client.get_or_create("kvstore", "many")
    await h.kv_put_many_pairs([["a", "1"], ["b", b"2"], [b"c", "3"]])
    assert await h.kv_get_many(["b", "missing", "a", b"c"]) == [b"2", None, "1", "3"]
    await h.kv_put_many_map({"d": "4", "e": "5"})
    assert await h.kv_get_many(["d", "e"]) == ["4", "5"]
    await h.kv_delete_many(["a", "d", "missing"])
    assert await h.kv_get_many(["a", "b", b"c", "d", "e"]) == [None, b"2", "3", None, "5"]
    assert await h.kv_get_many([]) == []


async def test_list_is_sorted_by_key_bytes(client) -> None:
    h = client.get_or_create("kvstore", "order")
    # insertion order differs from byte order; "é" (0xC3 0xA9) sorts after "z" (0x7A),
    # "B" (0x42) before "a" (0x61), and b"\xff" after everything
    await h.kv_put_many_pairs([["z", "1"], ["é", "2"], ["a", "3"], ["B", "4"], [b"\xff", "5"], ["aa", "6"]])
    rows = await h.kv_list()
    assert [r[0] for r in rows] == ["B", "a", "aa", "z", "é", b"\xff"]
    rows = await h.kv_list(None, None, None, True)
    assert [r[0] for r in rows] == [b"\xff", "é", "z", "aa", "a", "B"]


async def test_list_prefix_start_end_reverse_limit(client) -> None:
    h = client.get_or_create("kvstore", "range")
    keys = ["a", "b", "c", "d", "e", "p/1", "p/2", "p/3", "q"]
    await h.kv_put_many_pairs([[k, k.upper()] for k in keys])

    def ks(rows):
        return [r[0] for r in rows]

    assert ks(await h.kv_list("p/")) == ["p/1", "p/2", "p/3"]
    assert [r[1] for r in await h.kv_list("p/")] == ["P/1", "P/2", "P/3"]
    assert ks(await h.kv_list("p/", None, None, True)) == ["p/3", "p/2", "p/1"]
    assert ks(await h.kv_list("p/", None, None, False, 2)) == ["p/1", "p/2"]
    assert ks(await h.kv_list("p/", None, None, True, 2)) == ["p/3", "p/2"]
    assert ks(await h.kv_list(None, "b", "d")) == ["b", "c"]  # start inclusive, end exclusive
    assert ks(await h.kv_list(None, "b", "d", True)) == ["c", "b"]
    assert ks(await h.kv_list(None, "d")) == ["d", "e", "p/1", "p/2", "p/3", "q"]
    assert ks(await h.kv_list(None, None, "c")) == ["a", "b"]
    assert ks(await h.kv_list(None, "b", None, False, 3)) == ["b", "c", "d"]
    assert ks(await h.kv_list(None, None, None, True, 1)) == ["q"]
    assert ks(await h.kv_list("zz")) == []
    assert ks(await h.kv_list(b"p/")) == ["p/1", "p/2", "p/3"]


async def test_delete_range(client) -> None:
    h = client.get_or_create("kvstore", "delrange")
    await h.kv_put_many_pairs([[k, "v"] for k in ["a", "b", "c", "d", "e"]])
    await h.kv_delete_range("b", "d")
    assert [r[0] for r in await h.kv_list()] == ["a", "d", "e"]
    await h.kv_delete_range("x", "z")  # empty range is fine
    assert [r[0] for r in await h.kv_list()] == ["a", "d", "e"]
    await h.kv_delete_range("a", "e")
    assert [r[0] for r in await h.kv_list()] == ["e"]


async def test_kv_is_per_actor(client) -> None:
    a = client.get_or_create("kvstore", "one")
    b = client.get_or_create("kvstore", "two")
    await a.kv_put("shared-name", "from-a")
    assert await b.kv_get("shared-name") is None
    await b.kv_put("shared-name", "from-b")
    assert await a.kv_get("shared-name") == "from-a"


async def test_key_size_limit(client) -> None:
    h = client.get_or_create("kvstore", "keysize")
    assert await h.kv_put_sized(2048, 1) == 1
    assert await h.kv_get_sized(2048) == "v"
    with pytest.raises(ActorError) as ei:
        await h.kv_put_sized(2049, 1)
    assert (ei.value.group, ei.value.code) == ("kv", "key_too_large")
    with pytest.raises(ActorError) as ei:
        await h.kv_get_sized(2049)
    assert (ei.value.group, ei.value.code) == ("kv", "key_too_large")


async def test_value_size_limit(client) -> None:
    h = client.get_or_create("kvstore", "valsize")
    assert await h.kv_put_sized(1, 128 * 1024) == 128 * 1024
    assert await h.kv_put_sized(2, 128 * 1024, True) == 128 * 1024
    with pytest.raises(ActorError) as ei:
        await h.kv_put_sized(3, 128 * 1024 + 1)
    assert (ei.value.group, ei.value.code) == ("kv", "value_too_large")
    with pytest.raises(ActorError) as ei:
        await h.kv_put_sized(4, 128 * 1024 + 1, True)
    assert (ei.value.group, ei.value.code) == ("kv", "value_too_large")
    # the failed puts wrote nothing
    assert await h.kv_get_sized(3) is None


@pytest.mark.parametrize("op", ["put_many", "get_many", "delete_many"])
async def test_batch_size_limit(client, op) -> None:
    h = client.get_or_create("kvstore", f"batch-{op}")
    if op == "put_many":
        assert await h.kv_batch("put_many", 128) == 128
    else:
        await h.kv_batch("put_many", 128)
        assert await h.kv_batch(op, 128) == (128 if op == "get_many" else 0)
    with pytest.raises(ActorError) as ei:
        await h.kv_batch(op, 129)
    assert (ei.value.group, ei.value.code) == ("kv", "batch_too_large")


async def test_failed_batch_writes_nothing(client) -> None:
    h = client.get_or_create("kvstore", "atomic")
    big = "k" * 2049
    with pytest.raises(ActorError) as ei:
        await h.kv_put_many_pairs([["ok-1", "v"], [big, "v"], ["ok-2", "v"]])
    assert ei.value.code == "key_too_large"
    assert await h.kv_list() == []
