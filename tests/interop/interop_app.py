"""The Python actors the interop script talks to (names and actions as a JS app would use them)."""

from runtime import UserError, actor, setup

counter = actor(state={"count": 0}, conn_state=None)


@counter.on_before_connect
def check(c, params):
    if params is not None and params.get("token") == "reject":
        raise UserError("go away", code="forbidden")


@counter.action
def increment(c, amount=1):
    c.state["count"] += amount
    c.broadcast("newCount", c.state["count"])
    return c.state["count"]


@counter.action(name="getCount")
def get_count(c):
    return c.state["count"]


@counter.action
def echo(c, value):
    return value


@counter.action
def fail(c, message):
    raise UserError(message, code="limit_exceeded", metadata={"limit": 3})


@counter.action
def whoami(c):
    return (c.conn.params or {}).get("token")


registry = setup(use={"counter": counter})
