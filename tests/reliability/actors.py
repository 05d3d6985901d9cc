"""Actors of the reliability tests (tests/reliability/README.md).

``crash`` is driven by the crash-consistency harness: throttled writes (``bump``), acknowledged
durable writes (``durable``), all-or-nothing KV batches (``batch``) and schedules whose firing is
recorded in the state (``fired``: a sync action, so its effect and the removal of its entry are
in the same flush). ``snapshot`` reads everything back after a restart.
"""

from __future__ import annotations

import os

from runtime import actor, setup

SAVE_INTERVAL = float(os.environ.get("RIVET_CRASH_SAVE_INTERVAL", "0.2"))

crash = actor(
    state={"last": {}, "durable": {}, "fired": {}},
    state_save_interval=SAVE_INTERVAL,
    sleep_timeout=60.0,
    max_inbox=4096,
    max_schedules=100_000,
)


@crash.action
def bump(c, worker: str, seq: int) -> int:
    """A throttled (non-immediate) write: durable within state_save_interval."""
    c.state["last"][worker] = seq
    return seq


@crash.action
async def durable(c, worker: str, seq: int) -> int:
    """Acknowledged only once durable."""
    c.state["durable"][worker] = seq
    await c.save_state(immediate=True)
    return seq


@crash.action
async def batch(c, batch_id: int, n: int) -> int:
    """One put_many of ``n`` keys: after any crash, all of them or none."""
    await c.kv.put_many([(f"b/{batch_id:08d}/{i:04d}", str(batch_id)) for i in range(n)])
    return batch_id


@crash.action
async def big_batch(c, batch_id: int, n: int, size: int) -> int:
    """A large put_many (for the full-disk test): all of it or none."""
    await c.kv.put_many([(f"b/{batch_id:08d}/{i:04d}", "x" * size) for i in range(n)])
    return batch_id


@crash.action
async def sched(c, tag: str, delay: float) -> str:
    """Acknowledged only once the schedule is durable."""
    return await c.schedule.after(delay, "fired", tag)


@crash.action
def fired(c, tag: str) -> None:
    c.state["fired"][tag] = c.state["fired"].get(tag, 0) + 1


@crash.action
async def snapshot(c) -> dict:
    counts: dict[str, int] = {}
    start = "b/"
    while True:
        rows = await c.kv.list(start=start, end="b0", limit=128)
        for k, _ in rows:
            bid = k.split("/")[1]
            counts[bid] = counts.get(bid, 0) + 1
        if len(rows) < 128:
            break
        start = rows[-1][0] + "\x00"
    pending = [e.args[0] for e in await c.schedule.list()]
    return {"state": dict(c.state), "batches": counts, "pending": pending}


registry = setup(use={"crash": crash})
