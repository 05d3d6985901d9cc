"""max_inbox: a full inbox answers actor.overloaded at once (API.md §8)."""

from __future__ import annotations

import time

import anyio
import pytest

from runtime import ActorError

pytestmark = [pytest.mark.anyio, pytest.mark.timing]


async def test_overload_gives_exactly_max_inbox_results(client) -> None:
    h = client.get_or_create("busy", "k")
    assert await h.busy_work(0) == "ok"
    results: list[str] = []
    overloaded: list[float] = []
    other: list[BaseException] = []
    start = time.monotonic()

    async def call() -> None:
        try:
            results.append(await h.busy_work(0.5))
        except ActorError as e:
            if (e.group, e.code) == ("actor", "overloaded"):
                overloaded.append(time.monotonic() - start)
            else:
                other.append(e)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(call)
    assert other == []
    assert results == ["ok"] * 4
    assert len(overloaded) == 6
    # rejected calls are answered at once, not after the slow ones finish
    assert max(overloaded) < 0.4, overloaded
    # the inbox drained: the actor serves again
    assert await h.busy_work(0) == "ok"
