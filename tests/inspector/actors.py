"""Actors for the inspector tests (imported in-process and by ``server_main.py``).

``flow``'s steps append a line to the file named by its input (``{"log": path}``), outside the
state directory, so a test in another process can see which step bodies really ran.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from runtime import actor, setup


def record(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().split()
    except FileNotFoundError:
        return []


counter = actor(state={"count": 0, "profile": {"name": "ada", "tags": ["x", "y"]}}, sleep_timeout=30.0)


@counter.action
def increment(c, amount: int = 1) -> int:
    c.state["count"] += amount
    return c.state["count"]


@counter.action
def get(c) -> Any:
    return c.state


@counter.action
async def remind(c, seconds: float, text: str) -> str:
    return await c.schedule.after(seconds, "ring", text)


@counter.action
def ring(c, text: str) -> None:
    c.state.setdefault("rang", []).append(text)


@counter.action
async def put(c, key: Any, value: Any) -> None:
    await c.kv.put(key, value)


@counter.action
def nap(c) -> None:
    c.sleep()


flow = actor(create_state=lambda c, input: {"log": input["log"], "nap": input.get("nap", 0.05),
                                            "hold": input.get("hold", 0.0), "done": []},
             sleep_timeout=0.5)


@flow.workflow
async def run(c, wf) -> list[str]:
    log = c.state["log"]

    def step(name: str) -> Any:
        def body() -> str:
            record(log, name)
            c.state["done"].append(name)
            return f"{name}#{lines(log).count(name)}"  # differs on every real run of the body

        return body

    async def held() -> str:
        # the first attempt holds for "hold" seconds (a crash test kills the server meanwhile)
        first = "four:start" not in lines(log)
        record(log, "four:start")
        if first and c.state["hold"]:
            await asyncio.sleep(c.state["hold"])
        return f"four#{lines(log).count('four:start')}"

    results = [await wf.step("one", step("one")), await wf.step("two", step("two"))]
    await wf.sleep("nap", c.state["nap"])
    results.append(await wf.step("three", step("three")))
    results.append(await wf.step("four", held))
    results.append(await wf.step("five", step("five")))
    return results


@flow.action
def done(c) -> list[str]:
    return list(c.state["done"])



showcase = actor(state={"plan": "pro", "orders": 2, "customer": {"name": "Ada Lovelace", "email": "ada@example.com",
                                                                 "tags": ["beta", "vip"]}},
                 no_sleep=True)


@showcase.workflow
async def onboarding(c, wf) -> None:
    await wf.step("fetch-profile", lambda: {"plan": c.state["plan"], "seats": 3})
    await wf.step("send-welcome", lambda: "welcome-mail-sent")
    await wf.sleep("wait-a-day", 86400)
    await wf.step("follow-up", lambda: "follow-up-sent")


@showcase.action(name="remind")
async def showcase_remind(c, seconds: float, text: str) -> str:
    return await c.schedule.after(seconds, "ring", text)


@showcase.action(name="ring")
def showcase_ring(c, text: str) -> None:
    c.state["customer"]["tags"].append(text)


@showcase.action(name="put")
async def showcase_put(c, key: Any, value: Any) -> None:
    await c.kv.put(key, value)


registry = setup(use={"counter": counter, "flow": flow, "showcase": showcase})
