"""Actors served by the server tests."""

from __future__ import annotations

from runtime import Response, UserError, actor, setup


def _create(c, input):
    return {"count": (input or {}).get("start", 0), "input": input}


counter = actor(create_state=_create, state_save_interval=60.0)


@counter.on_before_connect
def _check(c, params):
    if isinstance(params, dict) and params.get("token") == "reject":
        raise UserError("not allowed in", code="forbidden", metadata={"why": "token"})


@counter.action
def increment(c, amount=1):
    c.state["count"] += amount
    c.broadcast("new_count", c.state["count"])
    return c.state["count"]


@counter.action
def get_count(c):
    return c.state["count"]


@counter.action
def get_input(c):
    return c.state["input"]


@counter.action
def echo(c, *values):
    return list(values)


@counter.action
def fail(c):
    raise UserError("that went wrong", code="bad_thing", metadata={"limit": 3})


@counter.action
def crash(c):
    raise RuntimeError("secret internal detail")


@counter.action
def big(c, size):
    return "x" * size


@counter.action
def whoami(c):
    return c.conn.params


@counter.action
def shout(c, event, *args):
    c.broadcast(event, *args)
    return None


web = actor(state={"hits": 0})


@web.on_request
async def _request(c, request):
    c.state["hits"] += 1
    if request.path == "/text":
        return "plain text"
    if request.path == "/response":
        return Response(b"created!", status=201, headers={"x-custom": "yes"})
    if request.path == "/boom":
        raise RuntimeError("raw handler failed")
    if request.path == "/user-error":
        raise UserError("bad raw input", code="raw_bad")
    return {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "header": request.headers.get("X-Test"),
        "body": (await request.body()).decode(),
        "hits": c.state["hits"],
    }


@web.on_websocket
async def _websocket(c, ws):
    await ws.send(f"hello {ws.path} {sorted(ws.query.items())}")
    async for message in ws:
        if message == "close":
            await ws.close(4000, "bye")
            return
        if isinstance(message, bytes):
            await ws.send(b"echo:" + message)
        else:
            await ws.send(f"echo:{message}")


plain = actor(state={})


@plain.action
def ping(c):
    return "pong"


registry = setup(use={"counter": counter, "web": web, "plain": plain})
