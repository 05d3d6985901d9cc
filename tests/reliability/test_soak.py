"""Load and overload over a real loopback server (in-process, so the runtime's own counters can be
read): many actors, many connections, a mix of actions, sleeps, wakes and schedules.

* memory is flat after warm-up (RSS of this process, which hosts server and clients; sampled);
* once idle, nothing leaks: no awake instance, socket, alarm timer or background task, and every
  ``rivet_actor_active`` / ``rivet_actor_user_tasks_active`` gauge is back to zero;
* a flood beyond ``max_inbox`` answers ``actor.overloaded`` for the excess at once, and the
  accepted calls complete.

``RIVET_SOAK_SECONDS`` (default 25, the load phase), ``RIVET_SOAK_ACTORS`` (1000), ``RIVET_SOAK_CONNS`` (200).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from pathlib import Path

import pytest

from runtime import ActorError, Client, actor, setup
from runtime.drivers import FileDriver

SECONDS = float(os.environ.get("RIVET_SOAK_SECONDS", "25"))
ACTORS = int(os.environ.get("RIVET_SOAK_ACTORS", "1000"))
CONNS = int(os.environ.get("RIVET_SOAK_CONNS", "200"))
RSS_TOLERANCE = float(os.environ.get("RIVET_SOAK_RSS_TOLERANCE_MB", "40"))

soak = actor(state={"n": 0, "ticks": 0}, sleep_timeout=0.3, state_save_interval=0.1)


@soak.action
def inc(c, amount=1):
    c.state["n"] += amount
    c.broadcast("n", c.state["n"])
    return c.state["n"]


@soak.action
async def plan(c, delay):
    return await c.schedule.after(delay, "tick")


@soak.action
def tick(c):
    c.state["ticks"] += 1


GATE = asyncio.Event()
gate = actor(state={"done": 0}, max_inbox=4, sleep_timeout=5.0)


@gate.action
async def wait(c):
    await GATE.wait()
    c.state["done"] += 1
    return "done"


registry = setup(use={"soak": soak, "gate": gate})


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _gauges(text: str, name: str) -> list[float]:
    return [float(m.group(1)) for m in re.finditer(rf"^{name}{{[^}}]*}} (\S+)$", text, re.M)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.timing
async def test_soak_memory_flat_and_no_leaks(tmp_path: Path):
    rng = random.Random(7)
    async with registry.serve(port=0, driver=FileDriver(tmp_path / "state")) as server:
        m = server.runtime.manager
        async with Client(server.url, encoding="msgpack") as client:
            keys = [f"k{i}" for i in range(ACTORS)]
            sem = asyncio.Semaphore(64)

            async def call(key: str, op: str) -> None:
                async with sem:
                    h = client.get_or_create("soak", key)
                    if op == "plan":
                        await h.plan(rng.uniform(0.05, 1.0))
                    else:
                        await h.inc(1)

            created = time.monotonic()
            await asyncio.gather(*(call(k, "inc") for k in keys))  # every actor exists from here on
            created = time.monotonic() - created
            started = time.monotonic()
            warm_up_done = started + SECONDS * 0.3
            stop = asyncio.Event()
            counts = {"http": 0, "conn": 0, "events": 0}

            async def http_load() -> None:
                while not stop.is_set():
                    await call(rng.choice(keys), "plan" if rng.random() < 0.1 else "inc")
                    counts["http"] += 1

            async def conn_load(key: str) -> None:
                async with client.get_or_create("soak", key).connect() as conn:
                    conn.on("n", lambda _n: counts.__setitem__("events", counts["events"] + 1))
                    while not stop.is_set():
                        await conn.inc(1)
                        counts["conn"] += 1
                        await asyncio.sleep(rng.uniform(0.2, 1.0))

            tasks = [asyncio.ensure_future(http_load()) for _ in range(32)]
            tasks += [asyncio.ensure_future(conn_load(rng.choice(keys))) for _ in range(CONNS)]
            samples: list[tuple[float, float]] = []
            rss_start = None
            while time.monotonic() < started + SECONDS:
                await asyncio.sleep(1.0)
                samples.append((time.monotonic() - started, _rss_mb()))
                if rss_start is None and time.monotonic() >= warm_up_done:
                    rss_start = _rss_mb()
                for t in tasks:
                    if t.done() and t.exception() is not None:
                        raise t.exception()  # type: ignore[misc]
            rss_end = _rss_mb()
            stop.set()
            await asyncio.wait(tasks, timeout=30)
            assert all(t.done() and t.exception() is None for t in tasks)
        elapsed = time.monotonic() - started
        print(f"\nsoak: {elapsed:.0f}s of load after creating {ACTORS} actors in {created:.0f}s; actors={ACTORS} conns={CONNS} http_calls={counts['http']} "
              f"conn_calls={counts['conn']} events={counts['events']} rss_after_warmup={rss_start:.1f}MiB "
              f"rss_end={rss_end:.1f}MiB peak={max(r for _, r in samples):.1f}MiB")
        assert rss_start is not None
        assert rss_end - rss_start < RSS_TOLERANCE, samples

        # idle: every actor sleeps once its schedules have fired; nothing may be left behind
        deadline = time.monotonic() + 30
        while m.instances or m._alarms:
            assert time.monotonic() < deadline, (len(m.instances), len(m._alarms))
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.3)
        text = server.runtime.metrics_text()
        assert m.sockets == {}
        assert not [t for t in m._background if not t.done()]
        assert set(_gauges(text, "rivet_actor_active")) <= {0.0}
        assert set(_gauges(text, "rivet_actor_user_tasks_active")) <= {0.0}


@pytest.mark.anyio
async def test_a_flood_beyond_max_inbox_is_overloaded_and_the_rest_completes(tmp_path: Path):
    GATE.clear()
    async with registry.serve(port=0, driver=FileDriver(tmp_path / "state")) as server:
        for transport in ("http", "inline"):
            GATE.clear()
            if transport == "http":
                client = Client(server.url, encoding="json")
            else:
                client = server.runtime.client()
            h = client.get_or_create("gate", transport)
            await h.resolve()
            calls = [asyncio.ensure_future(h.wait()) for _ in range(40)]
            deadline = time.monotonic() + 20
            while sum(1 for c in calls if c.done()) < 36:
                assert time.monotonic() < deadline, "the excess calls were not answered at once"
                await asyncio.sleep(0.02)
            GATE.set()
            results = await asyncio.gather(*calls, return_exceptions=True)
            ok = [r for r in results if r == "done"]
            over = [r for r in results if isinstance(r, ActorError) and r.code == "overloaded"]
            assert len(ok) == 4 and len(over) == 36, results
            if transport == "http":
                await client.close()  # type: ignore[attr-defined]
        assert server.runtime.manager.instances["%s" % await server.runtime.client().get_or_create(
            "gate", "http").resolve()].state["done"] == 4
