"""Durable workflow overhead and the cost of a replay. Prints one JSON object on stdout.

    python bench/workflow.py                 # 500 steps per workflow, 3 runs per driver
    python bench/workflow.py --steps 200 --runs 5

``steps_per_second``: one actor's workflow of N trivial steps (``lambda: i``), from the actor's
creation to the workflow's end, on the file driver (SQLite, fsync per commit) and the memory
driver. Every completed step is made durable before the next one starts (its history row and the
state it produced, in one flush), so on the file driver a step costs about one fsync'd commit.
``baseline_saves_per_second`` is the same number of ``save_state(immediate=True)`` calls with no
workflow, for comparison.

``replay``: after the workflow finished, ``workflow_replay`` from entry ``k`` through the
inspector (in-process, TRUSTED; the same mailbox request the HTTP route makes). ``rewind_ms`` is
the request itself (forget the entries from ``k`` on, flush that, restart the run), ``rerun_ms``
the time until the workflow is done again, having re-run ``N - k`` steps (the ``k`` before are
returned from history).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runtime import actor, setup  # noqa: E402
from runtime.core.inspector import TRUSTED  # noqa: E402
from runtime.drivers import FileDriver, MemoryDriver  # noqa: E402

FINISHED: dict[str, asyncio.Event] = {}


def make_registry() -> Any:
    bench = actor(create_state=lambda c, input: {"n": input["n"], "sum": 0}, no_sleep=True)

    @bench.workflow
    async def run(c, wf):
        for i in range(c.state["n"]):
            def body(i: int = i) -> int:
                c.state["sum"] += i
                return i

            await wf.step(f"s{i}", body)
        if c.key[0] in FINISHED:  # outside a step: runs each time the workflow reaches its end
            FINISHED[c.key[0]].set()

    @bench.action
    async def saves(c, n: int) -> None:
        for i in range(n):
            c.state["sum"] = i
            await c.save_state(immediate=True)

    return setup(use={"bench": bench})


async def one_run(kind: str, steps: int, label: str, replay_from: list[int]) -> dict[str, Any]:
    registry = make_registry()
    with tempfile.TemporaryDirectory() as tmp:
        driver = FileDriver(Path(tmp) / "state") if kind == "file" else MemoryDriver()
        async with registry.run(driver=driver) as rt:
            client = rt.client()
            FINISHED[label] = asyncio.Event()
            started = time.perf_counter()
            h = client.get_or_create("bench", label, input={"n": steps})
            actor_id = await h.resolve()
            await asyncio.wait_for(FINISHED[label].wait(), 600)
            seconds = time.perf_counter() - started

            base = client.get_or_create("bench", label + "-baseline", input={"n": 0})
            await base.resolve()
            t0 = time.perf_counter()
            await base.saves(steps)
            baseline = time.perf_counter() - t0

            replays = []
            for k in replay_from:
                FINISHED[label] = asyncio.Event()
                t0 = time.perf_counter()
                out = await rt.manager.dispatch(actor_id, "inspector", (TRUSTED, "workflow_replay", {"entry": f"s{k}"}))
                t1 = time.perf_counter()
                await asyncio.wait_for(FINISHED[label].wait(), 600)
                t2 = time.perf_counter()
                replays.append({"from_entry": k, "removed": out["removed"], "rerun_steps": steps - k,
                                "rewind_ms": round((t1 - t0) * 1000, 2), "rerun_ms": round((t2 - t1) * 1000, 1)})
    return {"seconds": seconds, "baseline": baseline, "replays": replays}


async def main(steps: int, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {"steps": steps, "runs": runs, "drivers": {}}
    for kind in ("file", "memory"):
        results = [await one_run(kind, steps, f"{kind}{r}", [0, steps // 2, steps - 1]) for r in range(runs)]
        rates = [steps / r["seconds"] for r in results]
        base = [steps / r["baseline"] for r in results]
        replays = []
        for i, first in enumerate(results[0]["replays"]):
            rewinds = [r["replays"][i]["rewind_ms"] for r in results]
            reruns = [r["replays"][i]["rerun_ms"] for r in results]
            replays.append({"from_entry": first["from_entry"], "removed": first["removed"],
                            "rerun_steps": first["rerun_steps"], "rewind_ms_median": statistics.median(rewinds),
                            "rerun_ms_median": statistics.median(reruns),
                            "rerun_steps_per_second": round(first["rerun_steps"] / (statistics.median(reruns) / 1000), 1)
                            if first["rerun_steps"] else None})
        out["drivers"][kind] = {
            "steps_per_second_median": round(statistics.median(rates), 1),
            "per_step_ms_median": round(1000 / statistics.median(rates), 3),
            "baseline_saves_per_second_median": round(statistics.median(base), 1),
            "replay": replays,
        }
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.steps, args.runs)), indent=2))
