"""Connections: hooks, params, conn state, events, c.conns, status (API.md §2, §3, §6)."""

from __future__ import annotations

import anyio
import pytest

from driver_tests.helpers import eventually
from runtime import ActorError

pytestmark = pytest.mark.anyio


async def _ready(conn):
    """Wait until the connection is open, via its own first action."""
    with anyio.fail_after(5):
        me = await conn.whoami()
    return me


async def test_connect_hook_order_and_params(client) -> None:
    h = client.get_or_create("connecty", "order")
    async with h.connect(params={"user": "ann", "token": "ok"}) as conn:
        me = await _ready(conn)
        assert conn.status == "connected"
        assert me["params"] == {"user": "ann", "token": "ok"}
        assert me["state"] == {"user": "ann", "count": 0}
        assert me["hibernatable"] is True
        log = await conn.conn_log()
        mine = [e for e in log if e[1] in ({"user": "ann", "token": "ok"}, me["id"])]
        assert mine == [
            ["on_before_connect", {"user": "ann", "token": "ok"}],
            ["create_conn_state", {"user": "ann", "token": "ok"}],
            # the conn was already in c.conns, and c.conn was this conn, during on_connect
            ["on_connect", me["id"], True, True],
        ]
    assert conn.status == "disposed"


async def test_conn_state_is_per_connection(client) -> None:
    h = client.get_or_create("connecty", "state")
    async with h.connect(params={"user": "a"}) as a, h.connect(params={"user": "b"}) as b:
        await _ready(a)
        await _ready(b)
        assert await a.bump_conn() == 1
        assert await a.bump_conn() == 2
        assert await b.bump_conn() == 1
        assert (await a.whoami())["state"] == {"user": "a", "count": 2}
        assert (await b.whoami())["state"] == {"user": "b", "count": 1}
        assert await b.replace_conn_state({"user": "b2", "count": 10}) == {"user": "b2", "count": 10}
        assert (await b.whoami())["state"] == {"user": "b2", "count": 10}
        assert (await a.whoami())["id"] != (await b.whoami())["id"]


async def test_on_before_connect_rejects_connection(client) -> None:
    h = client.get_or_create("connecty", "reject")
    with anyio.fail_after(5):
        with pytest.raises(ActorError) as ei:
            async with h.connect(params={"token": "bad"}) as conn:
                await conn.whoami()
    e = ei.value
    assert (e.group, e.code, e.message) == ("user", "forbidden", "Forbidden")
    assert e.metadata == {"reason": "bad token"}
    # no conn state was created and no on_connect ran for the rejected connection
    log = await h.conn_log()
    assert ["create_conn_state", {"token": "bad"}] not in log
    # a handle call with the same params is an ephemeral connection: rejected the same way
    bad = client.get_or_create("connecty", "reject", params={"token": "bad"})
    with pytest.raises(ActorError) as ei:
        await bad.conn_ids()
    assert (ei.value.group, ei.value.code) == ("user", "forbidden")


async def test_on_before_connect_internal_error_is_sanitized(client, monkeypatch) -> None:
    monkeypatch.delenv("RIVET_EXPOSE_ERRORS", raising=False)
    h = client.get_or_create("connecty", "crash", params={"token": "crash"})
    with pytest.raises(ActorError) as ei:
        await h.conn_ids()
    assert (ei.value.group, ei.value.code, ei.value.message) == (
        "core",
        "internal_error",
        "An internal error occurred",
    )
    assert "secret" not in str(ei.value)
    # the actor keeps serving
    assert (await client.get_or_create("connecty", "crash").whoami())["params"] is None


async def test_handle_call_is_ephemeral_connection(client) -> None:
    h = client.get_or_create("connecty", "ephemeral", params={"user": "http"})
    me = await h.whoami()
    assert me["params"] == {"user": "http"}
    assert me["state"] == {"user": "http", "count": 0}

    async def hooks_ran():
        log = await client.get_or_create("connecty", "ephemeral").conn_log()
        mine = [e for e in log if e[1] in ({"user": "http"}, me["id"])]
        assert mine == [
            ["on_before_connect", {"user": "http"}],
            ["create_conn_state", {"user": "http"}],
            ["on_connect", me["id"], True, True],
            ["on_disconnect", me["id"]],
        ]

    await eventually(hooks_ran)
    # every call is a new ephemeral connection with fresh conn state
    assert await h.bump_conn() == 1
    assert await h.bump_conn() == 1


async def test_broadcast_reaches_subscribers_only(client) -> None:
    h = client.get_or_create("connecty", "broadcast")
    got_a, got_b, marks_b = [], [], []
    async with h.connect() as a, h.connect() as b:
        a.on("ping", lambda *args: got_a.append(list(args)))
        b.on("marker", lambda *args: marks_b.append(list(args)))
        await _ready(a)
        await _ready(b)
        await h.emit("ping", 1, "x", {"y": [2]})

        async def a_got():
            assert got_a == [[1, "x", {"y": [2]}]]

        await eventually(a_got)
        # events reach each connection in order: once b has the marker, a ping would have arrived
        await h.emit("marker", "m")

        async def b_marked():
            assert marks_b == [["m"]]

        await eventually(b_marked)
        assert got_b == []
        b.on("ping", lambda *args: got_b.append(list(args)))
        await b.conn_ids()  # the subscription is sent before this action's reply
        await h.emit("ping", 2)

        async def both():
            assert got_a == [[1, "x", {"y": [2]}], [2]]
            assert got_b == [[2]]

        await eventually(both)


async def test_send_to_one_connection(client) -> None:
    h = client.get_or_create("connecty", "send")
    got_a, got_b = [], []
    async with h.connect() as a, h.connect() as b:
        a.on("direct", lambda *args: got_a.append(list(args)))
        b.on("direct", lambda *args: got_b.append(list(args)))
        a_id = (await _ready(a))["id"]
        await _ready(b)
        await b.send_to(a_id, "direct", "only-a", 1)
        await h.emit("direct", "everyone")

        async def check():
            assert got_a == [["only-a", 1], ["everyone"]]
            assert got_b == [["everyone"]]

        await eventually(check)


async def test_unsubscribe_and_once(client) -> None:
    h = client.get_or_create("connecty", "unsub")
    got, once, marks = [], [], []
    async with h.connect() as conn:
        unsubscribe = conn.on("tick", lambda *args: got.append(args[0]))
        conn.once("tick", lambda *args: once.append(args[0]))
        conn.on("marker", lambda *args: marks.append(args[0]))
        await _ready(conn)
        await h.emit("tick", 1)
        await h.emit("tick", 2)

        async def two():
            assert got == [1, 2]

        await eventually(two)
        assert once == [1]
        unsubscribe()
        await h.emit("tick", 3)
        await h.emit("marker", "end")

        async def marked():
            assert marks == ["end"]

        await eventually(marked)
        assert got == [1, 2]
        assert once == [1]


async def test_conns_contents_and_on_disconnect(client) -> None:
    h = client.get_or_create("connecty", "conns")
    async with h.connect(params={"user": "a"}) as a:
        a_id = (await _ready(a))["id"]
        async with h.connect(params={"user": "b"}) as b:
            b_id = (await _ready(b))["id"]
            assert await a.conn_ids() == sorted([a_id, b_id])
        assert b.status == "disposed"

        async def b_gone():
            assert await a.conn_ids() == [a_id]

        await eventually(b_gone)
        log = await a.conn_log()
        assert ["on_disconnect", b_id] in log
        assert ["on_disconnect", a_id] not in log

    async def a_gone():
        log = await client.get_or_create("connecty", "conns").conn_log()
        assert ["on_disconnect", a_id] in log

    await eventually(a_gone)


async def test_dispose_method(client) -> None:
    h = client.get_or_create("connecty", "dispose")
    async with h.connect() as conn:
        await _ready(conn)
        assert conn.status == "connected"
        await conn.dispose()
        assert conn.status == "disposed"


async def test_server_side_disconnect(client) -> None:
    h = client.get_or_create("connecty", "kick")
    async with h.connect(params={"user": "k"}) as conn:
        cid = (await _ready(conn))["id"]
        await h.kick(cid)

        async def kicked():
            log = await h.conn_log()
            assert ["on_disconnect", cid] in log

        await eventually(kicked)


async def test_connection_changes_do_not_trigger_on_state_change(client) -> None:
    h = client.get_or_create("connecty", "no-state-change")
    async with h.connect(params={"user": "s"}) as conn:
        await _ready(conn)
        await conn.bump_conn()
        await conn.replace_conn_state({"user": "t", "count": 5})
    await h.conn_ids()
    await anyio.sleep(0.2)
    assert await h.connecty_state_changes() == 0
    assert await h.connecty_bump_state() == 1

    async def changed():
        assert await h.connecty_state_changes() == 1

    await eventually(changed)


@pytest.mark.timing
async def test_on_before_connect_timeout(client) -> None:
    h = client.get_or_create("connecty", "slow-hook", params={"slow": 3.0})
    start = anyio.current_time()
    with pytest.raises(ActorError) as ei:
        await h.conn_ids()
    assert (ei.value.group, ei.value.code) == ("actor", "callback_timed_out")
    assert anyio.current_time() - start < 2.0
    # a quick hook is fine
    assert await client.get_or_create("connecty", "slow-hook", params={"slow": 0.01}).conn_ids() != []


async def test_connection_follows_its_key_after_destroy(client) -> None:
    """A key-based connection whose actor is destroyed reconnects by itself to the new actor
    under the same key and re-sends its subscriptions (no action from the caller)."""
    h = client.get_or_create("connecty", "follow")
    got = []
    async with h.connect() as conn:
        conn.on("ping", lambda *args: got.append(list(args)))
        await _ready(conn)
        first_id = conn.actor_id
        await client.get_or_create("connecty", "follow").destroy()

        async def reconnected():
            assert conn.status == "connected"
            assert conn.actor_id is not None and conn.actor_id != first_id

        await eventually(reconnected)
        # the subscription was re-sent on the new socket before any action of ours
        await conn.conn_ids()
        await client.get_or_create("connecty", "follow").emit("ping", "again")

        async def delivered():
            assert got == [["again"]]

        await eventually(delivered)
