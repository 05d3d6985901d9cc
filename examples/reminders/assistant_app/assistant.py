"""An assistant's memory and reminders: the durable pieces of an agent, one actor per user.

- **Memory** lives in the actor's KV store (`c.kv`), one key per fact (`fact:<sequence>`), so it can
  grow past what you would keep in `c.state` and is written through on every `remember` call.
  `recall(query)` returns the facts sharing a word with the query, newest first. An LLM agent
  would put these facts into its prompt; here the "agent" is a keyword match.
- **Reminders** are durable schedules (`c.schedule.after`). The actor sleeps after
  `sleep_timeout` of idleness; a due reminder wakes it, the `deliver` action stores the reminder in
  the inbox (state) and pushes it to every connected client.
"""

from __future__ import annotations

import re
import time

from runtime import UserError, actor

FACT_PREFIX = "fact:"

assistant = actor(state={"next_fact": 0, "inbox": [], "wakes": 0}, sleep_timeout=15.0)


def _words(text: str) -> set:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


@assistant.on_wake
def count_wake(c) -> None:
    c.state["wakes"] += 1


@assistant.action
async def remember(c, fact: str) -> int:
    """Store one fact; returns how many the assistant knows."""
    fact = str(fact).strip()
    if not fact:
        raise UserError("Nothing to remember", code="empty_fact")
    seq = c.state["next_fact"]
    c.state["next_fact"] = seq + 1
    await c.kv.put(f"{FACT_PREFIX}{seq:012d}", fact)
    return len(await c.kv.list(prefix=FACT_PREFIX))


@assistant.action
async def recall(c, query: str = "", limit: int = 5) -> list:
    """Facts that share a word with `query` (all facts when it is empty), newest first."""
    wanted = _words(query)
    facts = [value for _key, value in await c.kv.list(prefix=FACT_PREFIX, reverse=True)]
    return [f for f in facts if not wanted or wanted & _words(f)][:limit]


@assistant.action
async def forget_everything(c) -> None:
    await c.kv.delete_range(FACT_PREFIX, FACT_PREFIX[:-1] + chr(ord(":") + 1))


@assistant.action
async def remind(c, text: str, delay: float) -> str:
    """Deliver `text` in `delay` seconds, even if the actor sleeps or the server restarts meanwhile."""
    return await c.schedule.after(delay, "deliver", text)


@assistant.action
def deliver(c, text: str) -> None:
    """Called by the schedule."""
    c.state["inbox"].append({"text": text, "at": time.time()})
    c.broadcast("reminder", text)


@assistant.action
def inbox(c) -> list:
    return [item["text"] for item in c.state["inbox"]]


@assistant.action
def wakes(c) -> int:
    return c.state["wakes"]


@assistant.action
def nap(c) -> None:
    """Sleep now instead of after `sleep_timeout` (to see a reminder wake the actor)."""
    c.sleep()
