"""The actors the conformance suite runs against, and the suite's ``registry``.

Actors report lifecycle events to an ``observer`` actor (``note``) so that a test can wait for a
sleep without calling — and thereby waking — the actor it waits on.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import anyio

from runtime import Response, RivetError, UserError, actor, setup

# ------------------------------------------------------------------------------------------------
# helpers used inside actors
# ------------------------------------------------------------------------------------------------


def to_plain(value: Any) -> Any:
    """A detached plain copy of (possibly proxied) state."""
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    return [to_plain(v) for v in value]


async def note(c: Any, event: Any) -> None:
    """Record ``event`` in the observer of this actor (key = [actor name, *actor key])."""
    await c.client().get_or_create("observer", [c.name, *c.key]).record(event)


def event_dict(ev: Any) -> dict[str, Any] | None:
    if ev is None:
        return None
    return {"id": ev.id, "action": ev.action, "args": list(ev.args), "run_at": ev.run_at}


# ------------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------------


class OutOfStock(UserError):
    code = "out_of_stock"
    message = "The item is out of stock"


class SecretInternal(RivetError):
    group = "driver_tests"
    code = "secret_internal"
    message = "a secret internal detail"


# ------------------------------------------------------------------------------------------------
# observer: the lifecycle log other actors write to
# ------------------------------------------------------------------------------------------------

observer = actor(state={"events": []}, no_sleep=True)


@observer.action
def record(c, event):
    c.state["events"].append(event)
    return len(c.state["events"])


@observer.action
def events(c):
    return to_plain(c.state["events"])


# ------------------------------------------------------------------------------------------------
# basic: actions, errors, identity, concurrency
# ------------------------------------------------------------------------------------------------

basic = actor(state={"count": 0}, vars={"arrived": []}, sleep_timeout=30.0)


@basic.action
async def echo(c, *args):
    return list(args)


@basic.action
def sync_add(c, a, b):
    return a + b


@basic.action
async def increment(c, amount: int = 1):
    c.state["count"] += amount
    return c.state["count"]


@basic.action
def get_count(c):
    return c.state["count"]


@basic.action
def identity(c):
    return {"actor_id": c.actor_id, "name": c.name, "key": list(c.key)}


@basic.action
async def call_self_by_id(c):
    return await c.client().get_for_id(c.name, c.actor_id).echo("inner")


@basic.action
async def call_self_by_key(c):
    return await c.client().get_or_create(c.name, list(c.key)).increment(10)


@basic.action
async def call_other(c, other_key):
    return await c.client().get_or_create("basic", other_key).increment(100)


@basic.action
async def rendezvous(c, me, other):
    """Returns only if the call for ``other`` runs at the same time as this one."""
    c.vars["arrived"].append(me)
    with anyio.fail_after(3.0):
        while other not in c.vars["arrived"]:
            await anyio.sleep(0.005)
    return me


@basic.action
async def slow(c, seconds):
    start = time.monotonic()
    await anyio.sleep(seconds)
    return [start, time.monotonic()]


@basic.action(name="renamed")
def renamed_impl(c):
    return "renamed-ok"


@basic.action
def echo_wrapped(c, *args):
    return sum(args)


@basic.action
def bad_response_hook(c):
    return "never-seen"


@basic.on_before_action_response
def _before_response(c, name, args, output):
    if name == "echo_wrapped":
        return {"wrapped": output, "name": name, "args": list(args)}
    if name == "bad_response_hook":
        raise ValueError("response hook exploded: secret-hook-detail")
    return output


@basic.action
def fail_user(c):
    raise UserError("You shall not pass", code="forbidden_path", metadata={"path": "/x", "n": [1, 2]})


@basic.action
def fail_user_default(c):
    raise UserError("plain user error")


@basic.action
def fail_declared(c, message=None):
    if message is None:
        raise OutOfStock()
    raise OutOfStock(message, metadata={"sku": "a-1"})


@basic.action
def fail_internal(c):
    raise ValueError("database password is hunter2")


@basic.action
def fail_internal_rivet(c):
    raise SecretInternal()


@basic.action
def destroy_twice(c):
    c.destroy()
    try:
        c.destroy()
    except RivetError as e:
        return [e.group, e.code]
    return None


# ------------------------------------------------------------------------------------------------
# input, hook order, sync hooks
# ------------------------------------------------------------------------------------------------

async def _with_input_state(c, input):
    return {"input": input, "log": ["create_state"]}


with_input = actor(create_state=_with_input_state, sleep_timeout=30.0)


@with_input.on_create
async def _with_input_on_create(c, input):
    c.state["on_create_input"] = input
    c.state["log"].append("on_create")


@with_input.action
def read(c):
    return to_plain(c.state)


async def _ordered_state(c, input):
    await note(c, "create_state")
    return {"n": 0}


async def _ordered_vars(c):
    await note(c, "create_vars")
    return {"ticks": 0}


ordered = actor(create_state=_ordered_state, create_vars=_ordered_vars, sleep_timeout=30.0)


@ordered.on_create
async def _ordered_on_create(c, input):
    await note(c, "on_create")


@ordered.on_wake
async def _ordered_on_wake(c):
    await note(c, "on_wake")


@ordered.run
async def _ordered_run(c):
    await note(c, "run")
    while not c.aborted:
        c.vars["ticks"] += 1
        await anyio.sleep(0.01)


@ordered.on_sleep
async def _ordered_on_sleep(c):
    await note(c, ["on_sleep", c.aborted])


@ordered.action
def ticks(c):
    return c.vars["ticks"]


@ordered.action
def go_to_sleep(c):
    c.sleep()
    return True


def _syncy_state(c, input):
    return {"log": ["create_state"], "input": input}


def _syncy_vars(c):
    return {"built": True}


syncy = actor(create_state=_syncy_state, create_vars=_syncy_vars, sleep_timeout=30.0)


@syncy.on_create
def _syncy_on_create(c, input):
    c.state["log"].append("on_create")


@syncy.on_wake
def _syncy_on_wake(c):
    c.state["log"].append("on_wake")


@syncy.on_connect
def _syncy_on_connect(c, conn):
    c.vars["connects"] = c.vars.get("connects", 0) + 1


@syncy.on_state_change
def _syncy_changed(c, new_state):
    c.vars["changes"] = c.vars.get("changes", 0) + 1


@syncy.action
def sync_read(c):
    return {"log": to_plain(c.state["log"]), "input": to_plain(c.state["input"]), "built": c.vars["built"]}


@syncy.action
def sync_append(c, item):
    c.state["log"].append(item)
    return len(c.state["log"])


@syncy.action
def sync_vars(c):
    return {"connects": c.vars.get("connects", 0), "changes": c.vars.get("changes", 0)}


timeouts = actor(action_timeout=0.3, sleep_timeout=30.0)


@timeouts.action
async def nap(c, seconds):
    await anyio.sleep(seconds)
    return "done"


# ------------------------------------------------------------------------------------------------
# state: mutation detection, saves, on_state_change, vars
# ------------------------------------------------------------------------------------------------

nested = actor(
    state={"a": {"b": [1, 2]}, "items": [{"n": 0}], "d": {"x": {}}, "t": 0},
    vars={"changes": 0},
    state_save_interval=0.1,
    sleep_timeout=30.0,
)


@nested.on_state_change
def _nested_changed(c, new_state):
    c.vars["changes"] += 1


@nested.on_sleep
async def _nested_on_sleep(c):
    await note(c, "sleep")


@nested.action
async def mutate(c, kind):
    s = c.state
    if kind == "append":
        s["a"]["b"].append(3)
    elif kind == "set_deep":
        s["d"]["x"]["y"] = {"z": [True]}
    elif kind == "augment":
        s["items"][0]["n"] += 5
    elif kind == "del_item":
        del s["a"]["b"][0]
    elif kind == "extend":
        s["a"]["b"].extend([7, 8])
    elif kind == "insert":
        s["a"]["b"].insert(0, 0)
    elif kind == "pop":
        s["items"].append({"n": 99})
        s["items"].pop()
        s["a"]["b"].pop()
    elif kind == "setdefault":
        s["d"].setdefault("w", []).append("w1")
    elif kind == "update":
        s["d"]["x"].update({"u": 1})
    elif kind == "alias_after_await":
        items = s["items"]
        await anyio.sleep(0)
        items.append({"n": 1})
    elif kind == "assign_top":
        c.state = {**to_plain(c.state), "assigned": {"k": []}}
    elif kind == "after_assign":
        c.state["assigned"]["k"].append("v")
    elif kind == "slice":
        s["a"]["b"][0:1] = [100]
    elif kind == "sort":
        s["a"]["b"].sort(reverse=True)
    elif kind == "del_key":
        del s["d"]["x"]["u"]
    else:
        raise UserError(f"unknown kind {kind}")
    return to_plain(c.state)


@nested.action
def read_state(c):
    return to_plain(c.state)


@nested.action
def changes(c):
    return c.vars["changes"]


@nested.action
def go_to_sleep_nested(c):
    c.sleep()
    return True


saver = actor(state={"count": 0}, state_save_interval=0.3, sleep_timeout=30.0)


@saver.action
def burst(c, n):
    for _ in range(n):
        c.state["count"] += 1
    return c.state["count"]


@saver.action
def bump(c):
    c.state["count"] += 1
    return c.state["count"]


@saver.action
def read_count(c):
    return c.state["count"]


@saver.action
async def bump_and_save(c, immediate):
    c.state["count"] += 1
    start = time.monotonic()
    await c.save_state(immediate=immediate)
    return time.monotonic() - start


# A save interval far beyond any test: only explicit saves and shutdown flushes write.
durable = actor(state={"count": 0, "log": []}, state_save_interval=30.0, sleep_timeout=30.0)


@durable.action
async def write_durably(c, value):
    c.state["count"] = value
    c.state["log"].append(value)
    start = time.monotonic()
    await c.save_state(immediate=True)
    return time.monotonic() - start


@durable.action
def write_lazily(c, value):
    c.state["count"] = value
    return value


@durable.action
def read_durable(c):
    return to_plain(c.state)


watcher = actor(
    state={"count": 0, "items": []},
    vars={"changes": [], "errors": [], "flag": 0},
    state_save_interval=0.1,
    sleep_timeout=30.0,
)


@watcher.on_create
def _watcher_on_create(c, input):
    c.state["items"].append("created")


@watcher.on_state_change
def _watcher_changed(c, new_state):
    c.vars["changes"].append(to_plain(new_state))
    if new_state.get("reentrant"):
        try:
            c.state["count"] = 999
        except RivetError as e:
            c.vars["errors"].append([e.group, e.code])
        try:
            c.state = {"count": 998}
        except RivetError as e:
            c.vars["errors"].append([e.group, e.code])
        try:
            c.state["items"].append("from-callback")
        except RivetError as e:
            c.vars["errors"].append([e.group, e.code])


@watcher.action
def add_many(c, n):
    for _ in range(n):
        c.state["count"] += 1
    c.state["items"].append(n)
    return c.state["count"]


@watcher.action
async def add_across_awaits(c, n):
    for _ in range(n):
        c.state["count"] += 1
        await anyio.sleep(0)
    return c.state["count"]


@watcher.action
def watched_read(c):
    return to_plain(c.state)


@watcher.action
def set_var(c, value):
    c.vars["flag"] = value
    return value


@watcher.action
def seen_changes(c):
    return {"changes": to_plain(c.vars["changes"]), "errors": to_plain(c.vars["errors"])}


@watcher.action
def trigger_reentrant(c):
    c.state["reentrant"] = True
    return True


@watcher.action
def same_value(c):
    c.state["count"] = c.state["count"]
    return c.state["count"]


def _varsy_vars(c):
    # Not plain data on purpose: vars are never persisted, so this must be allowed.
    return {"n": 0, "obj": object()}


varsy = actor(state={"count": 0}, create_vars=_varsy_vars, sleep_timeout=30.0)


@varsy.on_sleep
async def _varsy_on_sleep(c):
    await note(c, "sleep")


@varsy.on_wake
async def _varsy_on_wake(c):
    await note(c, "wake")


@varsy.action
def bump_var(c):
    c.vars["n"] += 1
    return [c.vars["n"], type(c.vars["obj"]) is object]


@varsy.action
def bump_state(c):
    c.state["count"] += 1
    return c.state["count"]


@varsy.action
def varsy_sleep(c):
    c.sleep()
    return True


static_vars = actor(vars={"n": 0, "list": []}, sleep_timeout=30.0)


@static_vars.action
def push_var(c, item):
    c.vars["n"] += 1
    c.vars["list"].append(item)
    return {"n": c.vars["n"], "list": list(c.vars["list"])}


stateless = actor(sleep_timeout=30.0)


@stateless.action
def read_missing_state(c):
    return c.state


@stateless.action
def probe_state(c):
    try:
        c.state  # noqa: B018
    except RivetError as e:
        return [e.group, e.code]
    return None


@stateless.action
def stateless_ping(c):
    return "pong"


plaincheck = actor(state={"items": [], "ok": 1}, sleep_timeout=30.0)


@plaincheck.action
def set_bad_caught(c):
    try:
        c.state["x"] = object()
    except TypeError as e:
        return str(e)
    return None


@plaincheck.action
def set_bad_nested_caught(c):
    try:
        c.state["items"].append({1: "int key"})
    except TypeError as e:
        return str(e)
    return None


@plaincheck.action
def set_bad_uncaught(c):
    c.state["x"] = {1, 2, 3}
    return "unreachable"


@plaincheck.action
def plain_read(c):
    return to_plain(c.state)


@plaincheck.action
def plain_bump(c):
    c.state["ok"] += 1
    return c.state["ok"]


# ------------------------------------------------------------------------------------------------
# KV
# ------------------------------------------------------------------------------------------------

kvstore = actor(sleep_timeout=30.0)


@kvstore.action
async def kv_get(c, key):
    return await c.kv.get(key)


@kvstore.action
async def kv_put(c, key, value):
    await c.kv.put(key, value)
    return True


@kvstore.action
async def kv_delete(c, key):
    await c.kv.delete(key)
    return True


@kvstore.action
async def kv_get_many(c, keys):
    return list(await c.kv.get_many(keys))


@kvstore.action
async def kv_put_many_pairs(c, pairs):
    await c.kv.put_many([(k, v) for k, v in pairs])
    return True


@kvstore.action
async def kv_put_many_map(c, mapping):
    await c.kv.put_many(dict(mapping))
    return True


@kvstore.action
async def kv_delete_many(c, keys):
    await c.kv.delete_many(keys)
    return True


@kvstore.action
async def kv_list(c, prefix=None, start=None, end=None, reverse=False, limit=None):
    rows = await c.kv.list(prefix=prefix, start=start, end=end, reverse=reverse, limit=limit)
    return [[k, v] for k, v in rows]


@kvstore.action
async def kv_delete_range(c, start, end):
    await c.kv.delete_range(start, end)
    return True


@kvstore.action
async def kv_types(c):
    rows = await c.kv.list()
    return [[type(k).__name__, type(v).__name__] for k, v in rows]


@kvstore.action
async def kv_put_sized(c, key_len, value_len, as_bytes=False):
    key = "k" * key_len
    value = b"v" * value_len if as_bytes else "v" * value_len
    await c.kv.put(key, value)
    got = await c.kv.get(key)
    return len(got)


@kvstore.action
async def kv_get_sized(c, key_len):
    return await c.kv.get("k" * key_len)


@kvstore.action
async def kv_batch(c, op, n):
    keys = [f"batch/{i:04d}" for i in range(n)]
    if op == "put_many":
        await c.kv.put_many([(k, "x") for k in keys])
    elif op == "get_many":
        return len(await c.kv.get_many(keys))
    elif op == "delete_many":
        await c.kv.delete_many(keys)
    return len(await c.kv.list(prefix="batch/"))


# ------------------------------------------------------------------------------------------------
# connections
# ------------------------------------------------------------------------------------------------

async def _connecty_conn_state(c, params):
    c.vars["log"].append(["create_conn_state", to_plain(params)])
    return {"user": (params or {}).get("user"), "count": 0}


connecty = actor(
    state={"count": 0},
    vars={"log": []},
    create_conn_state=_connecty_conn_state,
    sleep_timeout=30.0,
    on_before_connect_timeout=0.3,
)


@connecty.on_state_change
def _connecty_changed(c, new_state):
    c.vars["state_changes"] = c.vars.get("state_changes", 0) + 1


@connecty.action
def connecty_state_changes(c):
    return c.vars.get("state_changes", 0)


@connecty.action
def connecty_bump_state(c):
    c.state["count"] += 1
    return c.state["count"]


@connecty.on_before_connect
async def _connecty_before(c, params):
    c.vars["log"].append(["on_before_connect", to_plain(params)])
    if params and params.get("slow"):
        await anyio.sleep(params["slow"])
    if params and params.get("token") == "bad":
        raise UserError("Forbidden", code="forbidden", metadata={"reason": "bad token"})
    if params and params.get("token") == "crash":
        raise ValueError("secret crash detail")


@connecty.on_connect
async def _connecty_on_connect(c, conn):
    c.vars["log"].append(
        ["on_connect", conn.id, conn.id in c.conns, c.conn is not None and c.conn.id == conn.id]
    )


@connecty.on_disconnect
async def _connecty_on_disconnect(c, conn):
    c.vars["log"].append(["on_disconnect", conn.id])


@connecty.action
def whoami(c):
    conn = c.conn
    return {
        "id": conn.id,
        "params": to_plain(conn.params),
        "state": to_plain(conn.state),
        "hibernatable": conn.is_hibernatable,
    }


@connecty.action
def bump_conn(c):
    c.conn.state["count"] += 1
    return c.conn.state["count"]


@connecty.action
def replace_conn_state(c, value):
    c.conn.state = value
    return to_plain(c.conn.state)


@connecty.action
def emit(c, event, *args):
    c.broadcast(event, *args)
    return True


@connecty.action
def send_to(c, conn_id, event, *args):
    c.conns[conn_id].send(event, *args)
    return True


@connecty.action
def conn_ids(c):
    return sorted(c.conns)


@connecty.action
def conn_log(c):
    return to_plain(c.vars["log"])


@connecty.action
async def kick(c, conn_id):
    await c.conns[conn_id].disconnect("kicked")
    return True


# ------------------------------------------------------------------------------------------------
# overload
# ------------------------------------------------------------------------------------------------

busy = actor(max_inbox=4, sleep_timeout=30.0)


@busy.action
async def busy_work(c, seconds):
    await anyio.sleep(seconds)
    return "ok"


# ------------------------------------------------------------------------------------------------
# lifecycle: sleep, wake, keep_awake, wait_until, grace
# ------------------------------------------------------------------------------------------------

sleepy = actor(state={"count": 0, "deferred": None}, sleep_timeout=0.3, state_save_interval=30.0)


@sleepy.on_create
async def _sleepy_on_create(c, input):
    await note(c, "create")


@sleepy.on_wake
async def _sleepy_on_wake(c):
    await note(c, "wake")


@sleepy.on_sleep
async def _sleepy_on_sleep(c):
    await note(c, ["sleep", c.aborted])


@sleepy.action
def sleepy_bump(c):
    c.state["count"] += 1
    return c.state["count"]


@sleepy.action
def sleepy_read(c):
    return to_plain(c.state)


@sleepy.action
def sleepy_id(c):
    return c.actor_id


@sleepy.action
def sleepy_sleep(c):
    c.sleep()
    return True


@sleepy.action
def hold_awake(c, seconds):
    """Blocks idle sleep for ``seconds`` after the action returned (keep_awake in background)."""

    async def hold():
        async with c.keep_awake():
            await anyio.sleep(seconds)
        await note(c, "released")

    c.wait_until(hold())
    return True


@sleepy.action
def hold_awake_sync_cm(c, seconds):
    async def hold():
        with c.keep_awake():
            await anyio.sleep(seconds)
        await note(c, "released")

    c.wait_until(hold())
    return True


@sleepy.action
def defer_write(c, seconds, value):
    async def later():
        await anyio.sleep(seconds)
        c.state["deferred"] = value
        await note(c, "deferred_done")

    c.wait_until(later())
    return True


@sleepy.action
def defer_then_sleep(c, seconds, value):
    async def later():
        await anyio.sleep(seconds)
        c.state["deferred"] = value
        await note(c, "deferred_done")

    c.wait_until(later())
    c.sleep()
    return True


insomniac = actor(state={"count": 0}, no_sleep=True, sleep_timeout=0.2)


@insomniac.on_wake
async def _insomniac_on_wake(c):
    await note(c, "wake")


@insomniac.on_sleep
async def _insomniac_on_sleep(c):
    await note(c, "sleep")


@insomniac.action
def insomniac_bump(c):
    c.state["count"] += 1
    return c.state["count"]


slowsleep = actor(state={"count": 0}, sleep_timeout=30.0, state_save_interval=30.0)


@slowsleep.on_wake
async def _slowsleep_on_wake(c):
    await note(c, "wake")


@slowsleep.on_sleep
async def _slowsleep_on_sleep(c):
    await note(c, "sleep_start")
    await anyio.sleep(0.5)
    await note(c, "sleep_end")


@slowsleep.action
def slowsleep_bump(c):
    c.state["count"] += 1
    return c.state["count"]


@slowsleep.action
def slowsleep_sleep(c):
    c.sleep()
    return True


graceful = actor(state={"count": 0}, sleep_timeout=30.0, sleep_grace_period=0.5, state_save_interval=30.0)


@graceful.on_wake
async def _graceful_on_wake(c):
    await note(c, "wake")


@graceful.on_sleep
async def _graceful_on_sleep(c):
    await note(c, "sleep_start")
    await anyio.sleep(10.0)
    await note(c, "sleep_end")


@graceful.action
def graceful_bump(c):
    c.state["count"] += 1
    return c.state["count"]


@graceful.action
def graceful_sleep(c):
    c.sleep()
    return True


# ------------------------------------------------------------------------------------------------
# destroy
# ------------------------------------------------------------------------------------------------

doomed = actor(state={"count": 0, "slow": False}, sleep_timeout=30.0)


@doomed.on_create
async def _doomed_on_create(c, input):
    await note(c, "create")


@doomed.on_destroy
async def _doomed_on_destroy(c):
    await note(c, ["destroy_start", c.state["count"]])
    if c.state["slow"]:
        await anyio.sleep(0.6)
    await note(c, "destroy_end")


@doomed.action
def doomed_bump(c):
    c.state["count"] += 1
    return c.state["count"]


@doomed.action
def doomed_read(c):
    return to_plain(c.state)


@doomed.action
def doomed_slow(c):
    c.state["slow"] = True
    return True


@doomed.action
def doomed_self_destroy(c):
    c.destroy()
    return "bye"


@doomed.action
def doomed_destroy_then_aborted(c):
    c.destroy()
    return c.aborted


@doomed.action
def doomed_destroy_twice(c):
    c.destroy()
    try:
        c.destroy()
    except RivetError as e:
        return [e.group, e.code]
    return None


@doomed.action
async def doomed_kv_put(c, key, value):
    await c.kv.put(key, value)
    return True


@doomed.action
async def doomed_kv_list(c):
    return [[k, v] for k, v in await c.kv.list()]


@doomed.action
async def doomed_schedule(c, delay):
    return await c.schedule.after(delay, "doomed_fired", "x")


@doomed.action
async def doomed_pending(c):
    return [event_dict(e) for e in await c.schedule.list()]


@doomed.action
async def doomed_fired(c, arg):
    await note(c, ["fired", arg])


# ------------------------------------------------------------------------------------------------
# schedules
# ------------------------------------------------------------------------------------------------


def _scheduler(**options: Any) -> Any:
    a = actor(state={"fired": []}, **options)

    @a.on_wake
    async def _on_wake(c):
        await note(c, "wake")

    @a.on_sleep
    async def _on_sleep(c):
        await note(c, "sleep")

    @a.action
    async def after(c, delay, action, *args):
        return await c.schedule.after(delay, action, *args)

    @a.action
    async def at(c, timestamp, action, *args):
        return await c.schedule.at(timestamp, action, *args)

    @a.action
    async def cancel(c, schedule_id):
        return await c.schedule.cancel(schedule_id)

    @a.action(name="get_schedule")
    async def get_schedule(c, schedule_id):
        return event_dict(await c.schedule.get(schedule_id))

    @a.action
    async def pending(c):
        return [event_dict(e) for e in await c.schedule.list()]

    @a.action
    async def fired(c, *args):
        c.state["fired"].append([list(args), time.time()])
        await note(c, ["fired", list(args)])

    @a.action
    async def fail_scheduled(c):
        await note(c, "attempt")
        raise ValueError("scheduled action fails")

    @a.action
    def fired_list(c):
        return to_plain(c.state["fired"])

    @a.action
    def sched_ping(c):
        return "pong"

    return a


sched = _scheduler(sleep_timeout=30.0)
sched_limited = _scheduler(sleep_timeout=30.0, max_schedules=3)
sched_sleepy = _scheduler(sleep_timeout=0.3)


# ------------------------------------------------------------------------------------------------
# hibernatable connections
# ------------------------------------------------------------------------------------------------

def _hib_conn_state(c, params):
    return {"count": 0, "who": (params or {}).get("who")}


hib = actor(state={"count": 0}, create_conn_state=_hib_conn_state, sleep_timeout=0.3)


@hib.on_connect
async def _hib_on_connect(c, conn):
    await note(c, ["connect", to_plain(conn.params)])


@hib.on_disconnect
async def _hib_on_disconnect(c, conn):
    await note(c, ["disconnect", to_plain(conn.params)])


@hib.on_wake
async def _hib_on_wake(c):
    await note(c, "wake")


@hib.on_sleep
async def _hib_on_sleep(c):
    await note(c, "sleep")


@hib.action
def hib_emit(c, event, *args):
    c.broadcast(event, *args)
    return True


@hib.action
def hib_bump_conn(c):
    c.conn.state["count"] += 1
    return to_plain(c.conn.state)


@hib.action
def hib_conn_state(c):
    return {"state": to_plain(c.conn.state), "hibernatable": c.conn.is_hibernatable, "id": c.conn.id}


@hib.action
def hib_conn_params(c):
    return [to_plain(conn.params) for conn in c.conns.values()]


# ------------------------------------------------------------------------------------------------
# creation failure: on_create raises while FLAKY_CREATE["fail"] is set (a process-level switch)
# ------------------------------------------------------------------------------------------------

FLAKY_CREATE = {"fail": False}

flaky_create = actor(state={"input": None, "creations": 0}, sleep_timeout=30.0)


@flaky_create.on_create
def _flaky_on_create(c, input):
    if FLAKY_CREATE["fail"]:
        raise ValueError("creation failed: secret-create-detail")
    c.state["input"] = input
    c.state["creations"] += 1


@flaky_create.action
def flaky_read(c):
    return to_plain(c.state)


# ------------------------------------------------------------------------------------------------
# restart
# ------------------------------------------------------------------------------------------------

persist = actor(
    state={"nested": {"list": [1], "map": {}}, "count": 0},
    vars={"fresh": True},
    state_save_interval=0.2,
    sleep_timeout=30.0,
)


@persist.action
async def persist_write(c):
    c.state["nested"]["list"].append(2)
    c.state["nested"]["map"]["k"] = {"deep": [b"\x00\xff", 1.5, None, True]}
    for _ in range(1000):
        c.state["count"] += 1
    c.vars["fresh"] = False
    await c.kv.put("text-key", "text-value")
    await c.kv.put(b"\x01bin-key", b"\x00\x01\x02")
    return await c.schedule.after(3600.0, "persist_noop", "arg", 7)


@persist.action
async def persist_read(c):
    return {
        "state": to_plain(c.state),
        "fresh": c.vars["fresh"],
        "kv": [[k, v] for k, v in await c.kv.list()],
        "schedules": [event_dict(e) for e in await c.schedule.list()],
        "id": c.actor_id,
    }


@persist.action
def persist_noop(c, *args):
    return None


# ------------------------------------------------------------------------------------------------

# ------------------------------------------------------------------------------------------------
# hook time limits and save_state(max_wait=)
# ------------------------------------------------------------------------------------------------

async def _slow_vars_factory(c: Any) -> dict[str, Any]:
    await anyio.sleep(5)
    return {}


slow_vars = actor(state={"n": 0}, create_vars=_slow_vars_factory, create_vars_timeout=0.2)


@slow_vars.action
def slow_vars_ping(c: Any) -> str:
    return "pong"


slow_connect = actor(state={}, on_connect_timeout=0.2)


@slow_connect.on_connect
async def _slow_on_connect(c: Any, conn: Any) -> None:
    await anyio.sleep(5)


@slow_connect.action
def slow_connect_ping(c: Any) -> str:
    return "pong"


lazy_saver = actor(state={"v": 0}, state_save_interval=30.0)


@lazy_saver.action
async def set_and_wait(c: Any, value: int, max_wait: float) -> int:
    c.state["v"] = value
    await c.save_state(max_wait=max_wait)
    return value


# ------------------------------------------------------------------------------------------------
# raw HTTP (on_request) and raw WebSocket (on_websocket)
# ------------------------------------------------------------------------------------------------

rawhttp = actor(state={"requests": 0}, sleep_timeout=30.0)


@rawhttp.on_request
async def _rawhttp_on_request(c, request):
    c.state["requests"] += 1
    path = request.path
    if path.startswith("/echo"):
        body = await request.body()
        return {
            "method": request.method,
            "path": path,
            "query": dict(request.query),
            "headers": {k: request.headers[k] for k in request.headers},
            "body_len": len(body),
            "body": body.decode("utf-8", "replace"),
            "requests": c.state["requests"],
        }
    if path == "/header":
        name = request.query.get("name", "")
        return {
            "exact": request.headers.get(name),
            "upper": request.headers.get(name.upper()),
            "lower": request.headers.get(name.lower()),
            "present": name.upper() in request.headers,
        }
    if path == "/json":
        return {"got": await request.json(), "method": request.method}
    if path == "/text":
        return "plain text réponse"
    if path == "/list":
        return [1, "two", {"three": 3}]
    if path == "/binary":
        data = await request.body()
        return Response(bytes(reversed(data)), headers={"content-type": "application/octet-stream"})
    if path == "/status":
        return Response("I am a teapot", status=418, headers={"x-reply": "short-and-stout"})
    if path == "/count":
        return {"requests": c.state["requests"]}
    if path == "/identity":
        return {"actor_id": c.actor_id, "name": c.name, "key": list(c.key)}
    if path == "/slow":
        seconds = float(request.query.get("seconds", "0.1"))
        await anyio.sleep(seconds)
        return {"slept": seconds, "n": request.query.get("n")}
    if path == "/boom":
        raise ValueError("raw handler exploded: secret-raw-detail")
    return Response("no route " + path, status=404)


@rawhttp.action
def rawhttp_requests(c):
    return c.state["requests"]


rawws = actor(state={"connections": 0, "messages": 0}, vars={"open": 0}, sleep_timeout=30.0)


@rawws.on_websocket
async def _rawws_on_websocket(c, ws):
    import json as _json

    c.state["connections"] += 1
    c.vars["open"] += 1
    try:
        await ws.send(_json.dumps({
            "type": "welcome",
            "path": ws.path,
            "query": dict(ws.query),
            "connections": c.state["connections"],
            "actor": [c.name, list(c.key)],
        }))
        async for message in ws:
            c.state["messages"] += 1
            if isinstance(message, bytes):
                await ws.send(bytes(reversed(message)))
            elif message == "stats":
                await ws.send(_json.dumps({
                    "type": "stats",
                    "connections": c.state["connections"],
                    "messages": c.state["messages"],
                    "open": c.vars["open"],
                }))
            elif message == "close-me":
                await ws.close(4001, "asked to close")
                break
            elif message.startswith("burst:"):
                for i in range(int(message[6:])):
                    await ws.send(f"item-{i}")
            else:
                await ws.send("echo:" + message)
    finally:
        c.vars["open"] -= 1
    await note(c, ["ws_closed", ws.path])


@rawws.action
def rawws_stats(c):
    return {"connections": c.state["connections"], "messages": c.state["messages"], "open": c.vars["open"]}


# ------------------------------------------------------------------------------------------------
# sleep blockers: a short sleep_timeout; wake/sleep notes carry wall-clock time
# ------------------------------------------------------------------------------------------------

NAP_TIMEOUT = 0.3

napper = actor(state={"starts": 0, "sleeps": 0}, vars={"released": None},
               sleep_timeout=NAP_TIMEOUT, state_save_interval=30.0)


@napper.on_wake
async def _napper_on_wake(c):
    c.state["starts"] += 1
    await note(c, ["wake", time.time()])


@napper.on_sleep
async def _napper_on_sleep(c):
    c.state["sleeps"] += 1
    await note(c, ["sleep", time.time()])


@napper.action
def nap_counts(c):
    return {"starts": c.state["starts"], "sleeps": c.state["sleeps"]}


@napper.action
async def nap_long(c, seconds):
    await anyio.sleep(seconds)
    return time.time()


@napper.action
async def nap_wait_release(c):
    """Runs until nap_release() is called (a long action of unknown length)."""
    c.vars["released"] = anyio.Event()
    c.broadcast("waiting")
    await c.vars["released"].wait()
    return time.time()


@napper.action
def nap_release(c):
    c.vars["released"].set()
    return True


@napper.action
async def nap_schedule(c, delay):
    return await c.schedule.after(delay, "nap_fired")


@napper.action
async def nap_fired(c):
    await note(c, ["fired", time.time()])


@napper.action
def nap_sleep(c):
    c.sleep()
    return True


@napper.on_request
async def _napper_on_request(c, request):
    seconds = float(request.query.get("seconds", "0"))
    await anyio.sleep(seconds)
    return {"completed": True, "at": time.time()}


@napper.on_websocket
async def _napper_on_websocket(c, ws):
    await ws.send("ready")
    async for message in ws:
        await ws.send("echo:" + message)
    if ws.path == "/linger":
        # the client is gone; the handler still works for a while, which must hold sleep off
        await note(c, ["linger_start", time.time()])
        await anyio.sleep(0.6)
        await note(c, ["linger_end", time.time()])
    else:
        await note(c, ["ws_closed", time.time()])


runner = actor(state={"runs": 0}, sleep_timeout=NAP_TIMEOUT)


@runner.on_wake
async def _runner_on_wake(c):
    await note(c, ["wake", time.time()])


@runner.on_sleep
async def _runner_on_sleep(c):
    await note(c, ["sleep", time.time()])


@runner.run
async def _runner_run(c):
    c.state["runs"] += 1
    if c.state["runs"] == 1:
        await anyio.sleep(0.8)  # the first run works longer than sleep_timeout, then returns
    await note(c, ["run_done", time.time()])


@runner.action
def runner_runs(c):
    return c.state["runs"]


fragile_sleep = actor(state={"count": 0}, vars={"seen": None}, sleep_timeout=30.0, state_save_interval=30.0)


@fragile_sleep.on_wake
async def _fragile_on_wake(c):
    c.vars["seen"] = "woke"
    await note(c, "wake")


@fragile_sleep.on_sleep
async def _fragile_on_sleep(c):
    c.state["count"] += 100  # a write before the failure is still flushed
    await note(c, ["sleep", c.vars["seen"]])
    raise ValueError("on_sleep failed on purpose")


@fragile_sleep.action
def fragile_bump(c):
    c.state["count"] += 1
    return c.state["count"]


@fragile_sleep.action
def fragile_sleep_now(c):
    c.sleep()
    return True


wake_worker = actor(state={"done": []}, sleep_timeout=30.0, state_save_interval=30.0)


@wake_worker.on_wake
async def _wake_worker_on_wake(c):
    async def background():
        await anyio.sleep(0.2)
        c.state["done"].append("from_on_wake")

    c.wait_until(background())
    await note(c, "wake")


@wake_worker.on_sleep
async def _wake_worker_on_sleep(c):
    await note(c, "sleep")


@wake_worker.action
def wake_worker_read(c):
    return to_plain(c.state["done"])


@wake_worker.action
def wake_worker_sleep(c):
    c.sleep()
    return True


farewell = actor(state={"count": 0}, sleep_timeout=30.0)


@farewell.on_sleep
async def _farewell_on_sleep(c):
    c.broadcast("sleeping", c.state["count"])
    await note(c, "sleep")


@farewell.on_wake
async def _farewell_on_wake(c):
    await note(c, "wake")


@farewell.action
def farewell_bump(c):
    c.state["count"] += 1
    return c.state["count"]


@farewell.action
def farewell_sleep(c):
    c.sleep()
    return True


# ------------------------------------------------------------------------------------------------
# connection visibility, connection errors
# ------------------------------------------------------------------------------------------------


def _labels(c):
    return sorted(str((conn.params or {}).get("label")) for conn in c.conns.values())


async def _gate_before(c, params):
    params = params or {}
    c.vars["log"].append(["before", params.get("label"), _labels(c)])
    if params.get("before_delay"):
        await anyio.sleep(params["before_delay"])
    if params.get("reject"):
        raise UserError("Not on the list", code="not_on_list", metadata={"label": params.get("label")})


async def _gate_conn_state(c, params):
    params = params or {}
    c.vars["log"].append(["create", params.get("label"), _labels(c)])
    if params.get("create_delay"):
        await anyio.sleep(params["create_delay"])
    if params.get("fail_create"):
        raise UserError("Cannot build conn state", code="conn_state_failed",
                        metadata={"label": params.get("label"), "why": params["fail_create"]})
    if params.get("crash_create"):
        raise ValueError("conn state crashed: secret-conn-detail")
    return {"label": params.get("label")}


gatekeeper = actor(state={}, vars={"log": []}, sleep_timeout=30.0, create_conn_state=_gate_conn_state)
gatekeeper.on_before_connect(_gate_before)


@gatekeeper.on_connect
def _gate_on_connect(c, conn):
    c.vars["log"].append(["connect", (conn.params or {}).get("label"), _labels(c), conn.id in c.conns])


@gatekeeper.on_disconnect
def _gate_on_disconnect(c, conn):
    c.vars["log"].append(["disconnect", (conn.params or {}).get("label"), conn.id in c.conns])


@gatekeeper.action
def gate_snapshot(c):
    return {"visible": _labels(c), "log": to_plain(c.vars["log"])}


@gatekeeper.action
def gate_fail(c, code):
    raise UserError("Action refused", code=code, metadata={"label": (c.conn.params or {}).get("label"),
                                                          "nested": {"n": [1, 2, 3]}})


@gatekeeper.action
def gate_crash(c):
    raise ValueError("action crashed: secret-action-detail")


@gatekeeper.action
def gate_id(c):
    return c.actor_id


@gatekeeper.action
def gate_ok(c):
    return (c.conn.params or {}).get("label")


# ------------------------------------------------------------------------------------------------
# metadata, vars from identity, payloads
# ------------------------------------------------------------------------------------------------

meta = actor(state={"created_as": None, "woke_as": []}, sleep_timeout=30.0)


@meta.on_create
def _meta_on_create(c, input):
    c.state["created_as"] = {"actor_id": c.actor_id, "name": c.name, "key": list(c.key), "input": input}


@meta.on_wake
def _meta_on_wake(c):
    c.state["woke_as"].append({"actor_id": c.actor_id, "name": c.name, "key": list(c.key)})


@meta.action
def meta_read(c):
    return {
        "now": {"actor_id": c.actor_id, "name": c.name, "key": list(c.key), "key_is_tuple": isinstance(c.key, tuple)},
        "created_as": to_plain(c.state["created_as"]),
        "woke_as": to_plain(c.state["woke_as"]),
    }


@meta.action
def meta_sleep(c):
    c.sleep()
    return True


def _keyed_vars(c):
    return {"key": list(c.key), "id": c.actor_id, "calls": 0}


keyed_vars = actor(create_vars=_keyed_vars, sleep_timeout=30.0)


@keyed_vars.action
def keyed_vars_read(c):
    c.vars["calls"] += 1
    return dict(c.vars)


payload = actor(sleep_timeout=30.0)


@payload.action
def payload_size(c, data):
    return len(data)


@payload.action
def payload_make(c, size):
    return "x" * size


@payload.action
def payload_echo(c, data):
    return data


@payload.action
def payload_items(c, n):
    return [{"i": i, "s": f"item-{i}"} for i in range(n)]


registry = setup(
    use={
        "observer": observer,
        "basic": basic,
        "with_input": with_input,
        "ordered": ordered,
        "syncy": syncy,
        "timeouts": timeouts,
        "nested": nested,
        "saver": saver,
        "durable": durable,
        "watcher": watcher,
        "varsy": varsy,
        "static_vars": static_vars,
        "stateless": stateless,
        "plaincheck": plaincheck,
        "kvstore": kvstore,
        "connecty": connecty,
        "busy": busy,
        "sleepy": sleepy,
        "insomniac": insomniac,
        "slowsleep": slowsleep,
        "graceful": graceful,
        "doomed": doomed,
        "sched": sched,
        "sched_limited": sched_limited,
        "sched_sleepy": sched_sleepy,
        "hib": hib,
        "persist": persist,
        "flaky_create": flaky_create,
        "slow_vars": slow_vars,
        "slow_connect": slow_connect,
        "lazy_saver": lazy_saver,
        "rawhttp": rawhttp,
        "rawws": rawws,
        "napper": napper,
        "runner": runner,
        "fragile_sleep": fragile_sleep,
        "wake_worker": wake_worker,
        "farewell": farewell,
        "gatekeeper": gatekeeper,
        "meta": meta,
        "keyed_vars": keyed_vars,
        "payload": payload,
    }
)
