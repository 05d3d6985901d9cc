"""The small registry the networked-client tests serve."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio

from runtime import Response, UserError, actor, setup


def plain(value: Any) -> Any:
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return [plain(v) for v in value]


class OutOfStock(UserError):
    code = "out_of_stock"
    message = "The item is out of stock"


counter = actor(state={"count": 0}, sleep_timeout=30.0)


@counter.action
async def increment(c, amount: int = 1) -> int:
    c.state["count"] += amount
    c.broadcast("new_count", c.state["count"])
    return c.state["count"]


@counter.action
def get_count(c) -> int:
    return c.state["count"]


@counter.action
def echo(c, *args):
    return list(args)


@counter.action
def identity(c):
    return {"id": c.actor_id, "name": c.name, "key": list(c.key)}


@counter.action
def my_params(c):
    return plain(c.conn.params)


@counter.action
def shout(c, event, *args):
    c.broadcast(event, *args)
    return True


@counter.action
def fail_user(c, item):
    raise OutOfStock(f"no {item} left", metadata={"item": item, "left": 0})


@counter.action
def fail_adhoc(c):
    raise UserError("slow down", code="rate_limited", metadata={"retry_after": 2.5})


@counter.action
def fail_internal(c):
    raise ValueError("secret-internal-detail")


@counter.action
async def kick_others(c):
    """Disconnect every connection except the caller's (a server-side close)."""
    kicked = 0
    for conn in list(c.conns.values()):
        if conn.id != c.conn.id:
            await conn.disconnect("kicked")
            kicked += 1
    return kicked


@counter.action
def conn_count(c):
    return len(c.conns)


@counter.action
def destroy_me(c):
    c.destroy()
    return True


@counter.action
async def slow(c, seconds):
    await anyio.sleep(seconds)
    return seconds


@counter.on_request
async def _counter_request(c, request):
    if request.path == "/count":
        return {"count": c.state["count"], "method": request.method, "query": request.query}
    if request.path == "/echo":
        body = await request.body()
        return Response(body, status=201, headers={"x-echo": request.headers.get("x-custom", "")})
    return Response("nope", status=404)


@counter.on_websocket
async def _counter_websocket(c, ws):
    await ws.send(f"hello {ws.path}")
    async for message in ws:
        if message == "close":
            await ws.close(4000, "asked to")
            return
        if isinstance(message, bytes):
            await ws.send(message[::-1])
        else:
            await ws.send(message.upper())


# --- input and connection rules ---------------------------------------------------------------

async def _with_input_state(c, input):
    return {"input": input}


with_input = actor(create_state=_with_input_state)


@with_input.action
def read_input(c):
    return plain(c.state["input"])


guarded = actor(state={"joined": []}, conn_state={"role": "guest"})


@guarded.on_before_connect
def _guarded_before_connect(c, params):
    if not isinstance(params, dict) or params.get("token") != "secret":
        raise UserError("bad token", code="forbidden", metadata={"given": plain(params)})


@guarded.action
def whoami(c):
    return plain(c.conn.params)


# --- sleep --------------------------------------------------------------------------------------

sleepy = actor(state={"count": 0, "wakes": 0}, vars={"instance": None}, sleep_timeout=0.2)


@sleepy.on_wake
def _sleepy_wake(c):
    c.state["wakes"] += 1


@sleepy.action
def bump(c):
    c.state["count"] += 1
    return {"count": c.state["count"], "wakes": c.state["wakes"], "id": c.actor_id}


registry = setup(use={"counter": counter, "with_input": with_input, "guarded": guarded, "sleepy": sleepy})
