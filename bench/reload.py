"""Hot reload latency of ``rivet dev``. Prints one JSON object on stdout.

    python bench/reload.py                 # 100 and 1,000 awake actors, 20 edits each
    python bench/reload.py --actors 100 --edits 5

For each size: a generated project is served by a real ``rivet dev --json-logs`` subprocess (file
driver, watcher on); N actors are woken; background callers keep calling random actors over HTTP
for the whole run and count every error. Then, 20 times: wake all N actors again (so N are awake
when the edit lands), save an edit of the module the actions read, and poll the actor woken last
(the last one a reload puts to sleep) until it answers with the new code. Latency = save → first answer of the new code. ``reload_ms`` is what
``rivet dev`` itself reports per reload (import of the new code + every awake actor asleep and
flushed), read from its JSON log; ``carried_over`` is how many awake actors each reload put to
sleep.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from runtime import Client

PYPROJECT = """\
[project]
name = "reloadbench"
version = "0.0.0"

[tool.rivet]
registry = "app.registry:registry"
"""

REGISTRY = """\
from runtime import actor, setup

from app import logic

counter = actor(state={"count": 0}, sleep_timeout=600.0)


@counter.action
def increment(c) -> int:
    c.state["count"] += 1
    return c.state["count"]


@counter.action
def version(c) -> int:
    return logic.VERSION


registry = setup(use={"counter": counter})
"""


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_logic(path: Path, version: int) -> None:
    before = path.stat().st_mtime_ns if path.exists() else time.time_ns()
    path.write_text(f"VERSION = {version}\n")
    bumped = max(before, path.stat().st_mtime_ns) + 1_000_000_000
    os.utime(path, ns=(bumped, bumped))


async def run_size(actors: int, edits: int, callers: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="rivet-reload-bench-"))
    (tmp / "app").mkdir()
    (tmp / "pyproject.toml").write_text(PYPROJECT)
    (tmp / "app" / "__init__.py").write_text("")
    (tmp / "app" / "registry.py").write_text(REGISTRY)
    logic = tmp / "app" / "logic.py"
    write_logic(logic, 1)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp / "dev.stderr"
    with log_path.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "rivet_cli", "dev", "--port", str(port), "--json-logs"],
                                cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while '"event": "ready"' not in log_path.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"rivet dev did not start:\n{log_path.read_text()}")
            await asyncio.sleep(0.05)

        async with Client(url, encoding="json") as client:
            handles = [client.get_or_create("counter", f"a{i}") for i in range(actors)]
            sem = asyncio.Semaphore(64)

            async def touch(h: Any) -> None:
                async with sem:
                    await h.increment()

            t = time.perf_counter()
            await asyncio.gather(*(touch(h) for h in handles))
            first_wake_s = time.perf_counter() - t

            stats = {"calls": 0, "errors": 0}
            error_kinds: dict[str, int] = {}
            stop = asyncio.Event()

            async def caller(seed: int) -> None:
                rng = random.Random(seed)
                while not stop.is_set():
                    try:
                        await rng.choice(handles).increment()
                        stats["calls"] += 1
                    except Exception as exc:  # noqa: BLE001 - counted, that is the point
                        stats["errors"] += 1
                        kind = f"{getattr(exc, 'group', type(exc).__name__)}.{getattr(exc, 'code', '')}"
                        error_kinds[kind] = error_kinds.get(kind, 0) + 1

            background = [asyncio.ensure_future(caller(i)) for i in range(callers)]
            # the actor woken last: its sleep is requested last, so it is the slowest to answer
            probe = handles[-1]
            latencies: list[float] = []
            try:
                for i in range(edits):
                    await asyncio.gather(*(touch(h) for h in handles))  # all N awake again
                    expected = i + 2
                    t = time.perf_counter()
                    write_logic(logic, expected)
                    while True:
                        try:
                            got = await probe.version()
                        except Exception as exc:  # noqa: BLE001
                            stats["errors"] += 1
                            kind = f"probe:{getattr(exc, 'group', type(exc).__name__)}.{getattr(exc, 'code', '')}"
                            error_kinds[kind] = error_kinds.get(kind, 0) + 1
                            continue
                        if got == expected:
                            break
                    latencies.append(time.perf_counter() - t)
                    # the next edit only after this reload has finished (every actor slept)
                    deadline = time.monotonic() + 60
                    while _count(log_path, "reload") < i + 1 and time.monotonic() < deadline:
                        await asyncio.sleep(0.02)
            finally:
                stop.set()
                await asyncio.gather(*background)
        proc.send_signal(signal.SIGINT)
        exit_code = proc.wait(120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    events = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    reloads = [e for e in events if e["event"] == "reload"]
    reload_ms = [e["duration_ms"] for e in reloads]
    return {
        "awake_actors": actors,
        "edits": edits,
        "save_to_new_code_ms": {
            "p50": round(pct(latencies, 50) * 1000, 1),
            "p95": round(pct(latencies, 95) * 1000, 1),
            "max": round(max(latencies) * 1000, 1),
        },
        "reload_ms_reported": {
            "p50": round(pct(reload_ms, 50), 1) if reload_ms else None,
            "p95": round(pct(reload_ms, 95), 1) if reload_ms else None,
        },
        "reloads": len(reloads),
        "carried_over": sorted({e["carried_over"] for e in reloads}),
        "reload_errors": sum(1 for e in events if e["event"] == "reload_error"),
        "background_calls": stats["calls"],
        "failed_calls": stats["errors"],
        "failed_call_kinds": error_kinds,
        "failed_actions_in_log": sum(1 for e in events if e["event"] == "action" and e["outcome"] != "ok"),
        "first_wake_of_all_s": round(first_wake_s, 3),
        "exit_code": exit_code,
    }


def _count(path: Path, kind: str) -> int:
    needle = f'"event": "{kind}"'
    return path.read_text().count(needle)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--actors", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--callers", type=int, default=4)
    args = parser.parse_args()
    results = [await run_size(n, args.edits, args.callers) for n in args.actors]
    print(json.dumps({"reload": results, "python": sys.version.split()[0], "cpus": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
