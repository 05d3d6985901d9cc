"""``SyncClient``: the blocking facade, against a server running in another thread."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from runtime import ActorError, SyncClient
from runtime.client import WebSocketClosed
from runtime.drivers import MemoryDriver
from tests.client.actors import registry
from tests.client.conftest import ENCODINGS


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """A server on its own loop thread, so blocking calls in the test never block it."""
    ready: queue.Queue[Any] = queue.Queue()
    stop: list[asyncio.Event] = []
    loop = asyncio.new_event_loop()

    async def main() -> None:
        stop.append(asyncio.Event())
        try:
            async with registry.serve(host="127.0.0.1", port=0, driver=MemoryDriver()) as srv:
                ready.put(srv.url)
                await stop[0].wait()
        except BaseException as exc:
            ready.put(exc)
            raise

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    url = ready.get(timeout=20)
    if isinstance(url, BaseException):
        raise url
    yield url
    loop.call_soon_threadsafe(stop[0].set)
    thread.join(timeout=20)


def k(client: SyncClient, key: str) -> str:
    """Keys unique per encoding (both encodings share the module's server)."""
    return f"{client.encoding}-{key}"


@pytest.fixture(params=ENCODINGS, ids=ENCODINGS)
def sync_client(server_url: str, request: pytest.FixtureRequest) -> Iterator[SyncClient]:
    with SyncClient(server_url, encoding=request.param) as c:
        yield c


def test_actions_and_accessor(sync_client: SyncClient) -> None:
    h = sync_client.get_or_create("counter", k(sync_client, "s1"))
    assert h.increment(2) == 2
    assert h.action("increment", 3) == 5
    assert sync_client.counter.get_or_create(k(sync_client, "s1")).get_count() == 5
    assert h.echo(b"\x00", 2**63 - 1, {"a": (1, 2)}) == [b"\x00", 2**63 - 1, {"a": [1, 2]}]


def test_errors_are_the_async_errors(sync_client: SyncClient) -> None:
    h = sync_client.get_or_create("counter", k(sync_client, "s-err"))
    with pytest.raises(ActorError) as info:
        h.fail_user("plums")
    assert (info.value.group, info.value.code, info.value.metadata) == (
        "user", "out_of_stock", {"item": "plums", "left": 0})
    with pytest.raises(ActorError) as info:
        sync_client.get("counter", k(sync_client, "s-missing")).get_count()
    assert info.value.code == "not_found"
    with pytest.raises(TypeError):
        h.echo(object())
    with pytest.raises(TypeError):
        h.increment(amount=1)


def test_create_resolve_get_for_id_destroy(sync_client: SyncClient) -> None:
    h = sync_client.create("counter", k(sync_client, "s-create"))
    assert h.increment(4) == 4
    with pytest.raises(ActorError) as info:
        sync_client.create("counter", k(sync_client, "s-create"))
    assert info.value.code == "duplicate_key"
    actor_id = h.resolve()
    assert sync_client.get_for_id("counter", actor_id).get_count() == 4
    keyed = sync_client.get_or_create("counter", k(sync_client, "s-create"))
    assert keyed.get_count() == 4
    keyed.destroy()
    assert keyed.get_count() == 0                    # re-resolved to a fresh actor
    with pytest.raises(ActorError) as info:
        h.get_count()                                # id-bound: stays gone
    assert info.value.code == "not_found"


def test_connection_events_run_on_the_loop_thread(sync_client: SyncClient) -> None:
    h = sync_client.get_or_create("counter", k(sync_client, "s-conn"))
    events: queue.Queue[tuple[int, str]] = queue.Queue()
    with h.connect() as conn:
        assert conn.status == "connected"
        off = conn.on("new_count", lambda n: events.put((n, threading.current_thread().name)))
        assert conn.increment(1) == 1
        n, thread_name = events.get(timeout=5)
        assert (n, thread_name) == (1, "rivet-sync-client")
        h.increment(1)
        assert events.get(timeout=5)[0] == 2
        off()
        assert conn.increment(1) == 3
        with pytest.raises(queue.Empty):
            events.get(timeout=0.2)
    assert conn.status == "disposed"
    with pytest.raises(ActorError) as info:
        conn.increment(1)
    assert (info.value.group, info.value.code) == ("client", "disposed")


def test_blocking_call_from_a_callback_raises_instead_of_deadlocking(sync_client: SyncClient) -> None:
    h = sync_client.get_or_create("counter", k(sync_client, "s-deadlock"))
    errors: queue.Queue[BaseException] = queue.Queue()
    with h.connect() as conn:

        def callback(n: int) -> None:
            try:
                conn.get_count()
            except BaseException as exc:  # noqa: BLE001
                errors.put(exc)

        conn.once("new_count", callback)
        h.increment(1)
        err = errors.get(timeout=5)
        assert isinstance(err, RuntimeError) and "deadlock" in str(err)


def test_rejected_connect_raises_from_connect(sync_client: SyncClient) -> None:
    with pytest.raises(ActorError) as info:
        sync_client.get_or_create("guarded", k(sync_client, "g")).connect(params={"token": "no"})
    assert (info.value.group, info.value.code) == ("user", "forbidden")
    with sync_client.get_or_create("guarded", k(sync_client, "g")).connect(params={"token": "secret"}) as conn:
        assert conn.whoami() == {"token": "secret"}


def test_fetch_and_websocket(sync_client: SyncClient) -> None:
    h = sync_client.get_or_create("counter", k(sync_client, "s-raw"))
    h.increment(2)
    resp = h.fetch("/count")
    assert (resp.status_code, resp.json()["count"]) == (200, 2)
    with h.websocket("/sync") as ws:
        assert ws.receive() == "hello /sync"
        ws.send("hi")
        assert ws.receive() == "HI"
        ws.send("close")
        assert list(ws) == []
        with pytest.raises(WebSocketClosed):
            ws.receive()


def test_close_is_final_and_idempotent(server_url: str) -> None:
    c = SyncClient(server_url, encoding="json")
    h = c.get_or_create("counter", "s-close")
    conn = h.connect()
    assert h.increment(1) == 1
    c.close()
    assert conn.status == "disposed"
    c.close()
    with pytest.raises(ActorError) as info:
        h.increment(1)
    assert (info.value.group, info.value.code) == ("client", "disposed")


def test_unreachable(sync_client: SyncClient) -> None:
    from tests.client.helpers import free_port

    with SyncClient(f"http://127.0.0.1:{free_port()}") as c:
        with pytest.raises(ActorError) as info:
            c.get_or_create("counter", "x").increment(1)
        assert (info.value.group, info.value.code) == ("client", "unreachable")
