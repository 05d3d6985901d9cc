"""The runtime's metrics (API.md §8), read through rt.metrics_text()."""

from __future__ import annotations

import pytest

from driver_tests.helpers import metric_value
from runtime import ActorError

pytestmark = pytest.mark.anyio

FAMILIES = [
    "rivet_actor_active",
    "rivet_actor_actions_total",
    "rivet_actor_user_tasks_active",
    "rivet_actor_state_mutations_total",
    "rivet_actor_saves_total",
    "rivet_actor_save_seconds",
]


async def test_metric_families_present(rt, client) -> None:
    await client.get_or_create("saver", "m").bump()
    text = rt.metrics_text()
    for family in FAMILIES:
        assert f"# TYPE {family.removesuffix('_total')}" in text or f"\n{family}" in text, family


async def test_actions_are_counted(rt, client) -> None:
    h = client.get_or_create("basic", "metrics")
    await h.increment()
    before = metric_value(rt.metrics_text(), "rivet_actor_actions_total", actor_name="basic")
    for _ in range(5):
        await h.increment()
    with pytest.raises(ActorError):
        await h.fail_user()
    after = metric_value(rt.metrics_text(), "rivet_actor_actions_total", actor_name="basic")
    assert after - before == 6
    assert metric_value(rt.metrics_text(), "rivet_actor_active", actor_name="basic") >= 1
