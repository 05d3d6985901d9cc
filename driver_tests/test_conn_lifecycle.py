"""Connection lifecycle, status and error serialization (API.md §2, §3, §4, §6).

A connection becomes visible in ``c.conns`` only once ``on_before_connect`` and
``create_conn_state`` are done; errors raised while connecting or in actions over the socket reach
the caller with ``group``/``code``/``message``/``metadata`` intact (public) or sanitized."""

from __future__ import annotations

import anyio
import pytest

from driver_tests.helpers import eventually
from runtime import ActorError

pytestmark = pytest.mark.anyio


def _entries(log, kind, label):
    return [e for e in log if e[0] == kind and e[1] == label]


@pytest.mark.parametrize("delay_param", ["before_delay", "create_delay"])
async def test_connection_hidden_until_preflight_completes(client, delay_param) -> None:
    h = client.get_or_create("gatekeeper", ["visibility", delay_param])
    async with h.connect(params={"label": "primary"}) as primary:
        assert (await primary.gate_snapshot())["visible"] == ["primary"]
        async with h.connect(params={"label": "pending", delay_param: 0.2}) as pending:
            snap = await pending.gate_snapshot()
            assert snap["visible"] == ["pending", "primary"]
            log = snap["log"]
            # while on_before_connect and create_conn_state ran, only the primary was visible
            assert _entries(log, "before", "pending") == [["before", "pending", ["primary"]]]
            assert _entries(log, "create", "pending") == [["create", "pending", ["primary"]]]
            # on_connect sees the new connection in c.conns
            assert _entries(log, "connect", "pending") == [["connect", "pending", ["pending", "primary"], True]]
            assert [e[0] for e in log if e[1] == "pending"] == ["before", "create", "connect"]


async def test_track_connects_and_disconnects(client) -> None:
    h = client.get_or_create("gatekeeper", "track")
    async with h.connect(params={"label": "one"}) as one:
        await one.gate_ok()
        async with h.connect(params={"label": "two"}) as two:
            assert await two.gate_ok() == "two"
            assert (await one.gate_snapshot())["visible"] == ["one", "two"]

        async def two_gone():
            snap = await one.gate_snapshot()
            assert snap["visible"] == ["one"]
            # on_disconnect ran once the connection had left c.conns
            assert _entries(snap["log"], "disconnect", "two") == [["disconnect", "two", False]]

        await eventually(two_gone)


async def test_status_changes(client) -> None:
    h = client.get_or_create("gatekeeper", "status")
    conn = h.connect(params={"label": "s"})
    assert conn.status == "connecting"  # nothing opened yet
    async with conn:
        assert conn.status == "connected"
        assert await conn.gate_ok() == "s"
        assert conn.status == "connected"
    assert conn.status == "disposed"
    with pytest.raises(ActorError) as ei:
        await conn.gate_ok()
    assert (ei.value.group, ei.value.code) == ("client", "disposed")


async def test_connection_reconnects_to_the_new_actor_after_destroy(client) -> None:
    h = client.get_or_create("gatekeeper", "status-destroy")
    async with h.connect(params={"label": "d"}) as conn:
        first = await conn.gate_id()
        await client.get_or_create("gatekeeper", "status-destroy").destroy()

        async def back():
            assert conn.status == "connected"
            try:
                now = await conn.gate_id()
            except ActorError as e:  # the old socket was still closing: not reconnected yet
                raise AssertionError(e.code) from None
            assert now != first

        await eventually(back)
        assert (await conn.gate_snapshot())["visible"] == ["d"]
    assert conn.status == "disposed"


async def test_before_connect_rejection_is_serialized(client) -> None:
    h = client.get_or_create("gatekeeper", "reject")
    with pytest.raises(ActorError) as ei:
        async with h.connect(params={"label": "r", "reject": True}) as conn:
            await conn.gate_ok()
    e = ei.value
    assert (e.group, e.code, e.message, e.metadata) == ("user", "not_on_list", "Not on the list", {"label": "r"})
    snap = await h.gate_snapshot()
    # no conn state was built, no on_connect and no on_disconnect for the rejected connection
    assert [x[0] for x in snap["log"] if x[1] == "r"] == ["before"]


async def test_create_conn_state_error_is_serialized(client) -> None:
    h = client.get_or_create("gatekeeper", "create-fails")
    with pytest.raises(ActorError) as ei:
        async with h.connect(params={"label": "c", "fail_create": "quota"}) as conn:
            await conn.gate_ok()
    e = ei.value
    assert (e.group, e.code, e.message) == ("user", "conn_state_failed", "Cannot build conn state")
    assert e.metadata == {"label": "c", "why": "quota"}
    # the same over an ephemeral handle call
    bad = client.get_or_create("gatekeeper", "create-fails", params={"label": "c2", "fail_create": "x"})
    with pytest.raises(ActorError) as ei:
        await bad.gate_ok()
    assert (ei.value.code, ei.value.metadata) == ("conn_state_failed", {"label": "c2", "why": "x"})
    snap = await h.gate_snapshot()
    assert snap["visible"] == ["None"]  # only this call's own (ephemeral, no params) connection
    assert not [x for x in snap["log"] if x[0] in ("connect", "disconnect") and x[1] in ("c", "c2")]


async def test_successful_create_conn_state_connects(client) -> None:
    h = client.get_or_create("gatekeeper", "create-ok")
    async with h.connect(params={"label": "fine"}) as conn:
        assert await conn.gate_ok() == "fine"
        assert conn.status == "connected"


async def test_internal_create_conn_state_error_is_sanitized(client, monkeypatch) -> None:
    monkeypatch.delenv("RIVET_EXPOSE_ERRORS", raising=False)
    h = client.get_or_create("gatekeeper", "create-crash")
    with pytest.raises(ActorError) as ei:
        async with h.connect(params={"label": "x", "crash_create": True}) as conn:
            await conn.gate_ok()
    assert (ei.value.group, ei.value.code, ei.value.message) == ("core", "internal_error", "An internal error occurred")
    assert "secret" not in str(ei.value)


async def test_action_errors_over_a_connection_keep_metadata(client, monkeypatch) -> None:
    monkeypatch.delenv("RIVET_EXPOSE_ERRORS", raising=False)
    h = client.get_or_create("gatekeeper", "action-errors")
    async with h.connect(params={"label": "m"}) as conn:
        with pytest.raises(ActorError) as ei:
            await conn.gate_fail("quota_exceeded")
        e = ei.value
        assert (e.group, e.code, e.message) == ("user", "quota_exceeded", "Action refused")
        assert e.metadata == {"label": "m", "nested": {"n": [1, 2, 3]}}
        with pytest.raises(ActorError) as ei:
            await conn.gate_crash()
        assert (ei.value.group, ei.value.code, ei.value.message) == ("core", "internal_error",
                                                                     "An internal error occurred")
        assert not ei.value.metadata
        assert "secret" not in str(ei.value)
        # errors fail the call, not the connection
        assert conn.status == "connected"
        assert await conn.gate_ok() == "m"


async def test_listener_registered_before_connecting_gets_early_events(client) -> None:
    h = client.get_or_create("connecty", "early-listener")
    got = []
    conn = h.connect()
    conn.on("hello", lambda *args: got.append(list(args)))
    async with conn:
        await conn.emit("hello", "first")

        async def arrived():
            assert got == [["first"]]

        await eventually(arrived)


async def test_actions_keep_working_after_errors(client) -> None:
    h = client.get_or_create("basic", "recover")
    for _ in range(3):
        with pytest.raises(ActorError):
            await h.fail_user()
        with pytest.raises(ActorError):
            await h.fail_internal()
    assert await h.increment() == 1
    async with h.connect() as conn:
        with pytest.raises(ActorError) as ei:
            await conn.fail_declared()
        assert (ei.value.code, ei.value.message) == ("out_of_stock", "The item is out of stock")
        with anyio.fail_after(5):
            assert await conn.increment() == 2
