"""Hook time limits (API.md §2: ``*_timeout`` → ``actor.callback_timed_out``) and
``save_state(max_wait=)``."""

from __future__ import annotations

import anyio
import pytest

from driver_tests.helpers import saves
from runtime import ActorError

pytestmark = pytest.mark.anyio


@pytest.mark.timing
async def test_create_vars_timeout(client) -> None:
    h = client.get_or_create("slow_vars", "a")
    with anyio.fail_after(3):
        with pytest.raises(ActorError) as info:
            await h.slow_vars_ping()
    assert (info.value.group, info.value.code) == ("actor", "callback_timed_out")
    assert "create_vars" in info.value.message


@pytest.mark.timing
async def test_on_connect_timeout(client) -> None:
    h = client.get_or_create("slow_connect", "a")
    with anyio.fail_after(3):
        with pytest.raises(ActorError) as info:
            await h.slow_connect_ping()
    assert (info.value.group, info.value.code) == ("actor", "callback_timed_out")
    assert "on_connect" in info.value.message


@pytest.mark.timing
async def test_save_state_max_wait_pulls_the_save_forward(rt, client) -> None:
    h = client.get_or_create("lazy_saver", "a")
    await h.set_and_wait(1, 0.05)  # creation + first value
    before = saves(rt, "lazy_saver")
    t0 = anyio.current_time()
    assert await h.set_and_wait(2, 0.2) == 2
    waited = anyio.current_time() - t0
    # written within max_wait although state_save_interval is 30 s
    assert waited < 1.5
    assert saves(rt, "lazy_saver") == before + 1
