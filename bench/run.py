"""In-process benchmarks of the actor runtime. Prints one JSON object on stdout.

    python bench/run.py                 # every suite
    python bench/run.py core            # action round trips, concurrency, save coalescing
    python bench/run.py lifecycle       # wake latency, schedule accuracy, sleep sweep, RSS

Numbers on a shared 2-core machine are noisy: compare ratios within one run, not across runs.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import sys
import tempfile
import time
from typing import Any

from runtime import actor, setup
from runtime.drivers import FileDriver, MemoryDriver

counter = actor(state={"count": 0}, sleep_timeout=60.0)


@counter.action
def increment(c: Any, amount: int = 1) -> int:
    c.state["count"] += amount
    return c.state["count"]


@counter.action
async def burst(c: Any, n: int) -> int:
    for _ in range(n):
        c.state["count"] += 1
    return c.state["count"]


sleepy = actor(state={"blob": ""}, sleep_timeout=0.2)


@sleepy.action
def fill(c: Any, size: int) -> int:
    c.state["blob"] = "x" * size
    return len(c.state["blob"])


@sleepy.action
def read(c: Any) -> int:
    return len(c.state["blob"])


fired: dict[str, float] = {}

alarms = actor(state={}, no_sleep=True, max_schedules=2000)


@alarms.action
async def plan(c: Any, n: int, base: float) -> int:
    for i in range(n):
        await c.schedule.at(base + (i % 50) * 0.01, "ring", f"s{i}", base + (i % 50) * 0.01)
    return n


@alarms.action
def ring(c: Any, ident: str, planned: float) -> None:
    fired[ident] = time.time() - planned


idle = actor(state={"n": 0}, sleep_timeout=0.5)


@idle.action
def touch(c: Any) -> int:
    return 1


registry = setup(use={"counter": counter, "sleepy": sleepy, "alarms": alarms, "idle": idle})


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def core_suite(driver_name: str) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="rivet-bench-")
    driver = MemoryDriver() if driver_name == "memory" else FileDriver(os.path.join(tmp, "state"))
    out: dict[str, Any] = {}
    async with registry.run(driver=driver) as rt:
        client = rt.client()
        h = client.get_or_create("counter", "seq")
        await h.increment()
        n = 20000
        t = time.perf_counter()
        for _ in range(n):
            await h.increment()
        out["sequential_actions_per_s"] = round(n / (time.perf_counter() - t))

        handles = [client.get_or_create("counter", f"c{i}") for i in range(64)]
        await asyncio.gather(*(x.increment() for x in handles))
        per = 500

        async def caller(x: Any) -> None:
            for _ in range(per):
                await x.increment()

        t = time.perf_counter()
        await asyncio.gather(*(caller(x) for x in handles))
        out["concurrent_64x64_actions_per_s"] = round(64 * per / (time.perf_counter() - t))

        # disk writes for 10,000 mutations within one second
        w = client.get_or_create("counter", "writes")
        await w.increment()
        await asyncio.sleep(1.2)  # let the creation save settle
        before = _saves(rt.metrics_text(), "counter")
        t = time.perf_counter()
        for _ in range(100):
            await w.burst(100)
        spent = time.perf_counter() - t
        await asyncio.sleep(max(0.0, 1.0 - spent) + 1.2)
        out["writes_for_10000_mutations"] = _saves(rt.metrics_text(), "counter") - before
        out["mutation_phase_seconds"] = round(spent, 3)
    return out


def _saves(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(f'rivet_actor_saves_total{{actor_name="{name}"}}'):
            return float(line.split()[-1])
    return 0.0


async def lifecycle_suite() -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="rivet-bench-")
    out: dict[str, Any] = {}
    async with registry.run(driver=FileDriver(os.path.join(tmp, "state"))) as rt:
        client = rt.client()
        # wake latency with a 10 KB state
        lat: list[float] = []
        for i in range(30):
            h = client.get_or_create("sleepy", f"w{i}")
            await h.fill(10_000)
        await asyncio.sleep(0.2 + 0.6)
        for i in range(30):
            h = client.get_or_create("sleepy", f"w{i}")
            t = time.perf_counter()
            await h.read()
            lat.append((time.perf_counter() - t) * 1000)
        out["wake_latency_ms"] = {"p50": round(pct(lat, 50), 3), "p99": round(pct(lat, 99), 3), "n": len(lat)}

        # schedule accuracy, 1,000 schedules
        fired.clear()
        base = time.time() + 5.0
        t = time.perf_counter()
        await client.get_or_create("alarms", "a").plan(1000, base)
        plan_s = time.perf_counter() - t
        deadline = time.time() + 15
        while len(fired) < 1000 and time.time() < deadline:
            await asyncio.sleep(0.05)
        errs = [v * 1000 for v in fired.values()]
        out["schedule_error_ms"] = {
            "p50": round(pct(errs, 50), 3),
            "p99": round(pct(errs, 99), 3),
            "fired": len(errs),
            "seconds_to_durably_plan_1000": round(plan_s, 3),
        }

        # 1,000 idle actors all reach sleep
        hs = [client.get_or_create("idle", f"i{i}") for i in range(1000)]
        await asyncio.gather(*(x.touch() for x in hs))
        t = time.perf_counter()
        while any(v.name == "idle" for v in rt.manager.instances.values()):
            await asyncio.sleep(0.01)
        out["idle_1000_all_asleep_after_timeout_s"] = {
            "sleep_timeout": 0.5,
            "seconds_after_last_call": round(time.perf_counter() - t, 3),
        }

    # RSS with 10,000 awake idle actors (memory driver)
    gc.collect()
    base_rss = rss_mb()
    async with registry.run(driver=MemoryDriver()) as rt:
        client = rt.client()
        for chunk in range(10):
            await asyncio.gather(
                *(client.get_or_create("counter", f"r{chunk}-{i}").increment() for i in range(1000))
            )
        gc.collect()
        out["rss_10000_awake_mb"] = {
            "before": round(base_rss, 1),
            "after": round(rss_mb(), 1),
            "per_actor_kb": round((rss_mb() - base_rss) * 1024 / 10000, 2),
        }
    return out


async def main(suites: list[str]) -> None:
    result: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    if "core" in suites:
        result["core"] = {d: await core_suite(d) for d in ("memory", "file")}
    if "lifecycle" in suites:
        result["lifecycle"] = await lifecycle_suite()
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    chosen = sys.argv[1:] or ["core", "lifecycle"]
    asyncio.run(main(chosen))
