"""Helpers shared by the driver tests (``eventually`` itself lives in ``runtime.testing``).

``eventually`` is the ONLY place in the suite that retries anything. It exists for observing
asynchronous effects (an actor went to sleep, a schedule fired, an event arrived); it must never be
used to hide a flaky result.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from runtime.testing import eventually

__all__ = ["eventually", "key_list", "observer", "observed", "event_names", "metric_value", "saves"]


def key_list(key: str | Sequence[str] | None) -> list[str]:
    if key is None:
        return []
    if isinstance(key, str):
        return [key]
    return list(key)


def observer(client: Any, name: str, key: str | Sequence[str] | None) -> Any:
    """The handle of the observer actor that actor ``name``/``key`` reports its lifecycle to."""
    return client.get_or_create("observer", [name, *key_list(key)])


async def observed(client: Any, name: str, key: str | Sequence[str] | None) -> list[Any]:
    """Events the actor ``name``/``key`` recorded in its observer (see actors.note)."""
    return await observer(client, name, key).events()


def event_names(events: list[Any]) -> list[str]:
    """``["wake", ["sleep", True]]`` → ``["wake", "sleep"]``."""
    return [e[0] if isinstance(e, list) else e for e in events]


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metric_value(text: str, sample: str, **labels: str) -> float:
    """Sum of the samples named exactly ``sample`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m or m.group(1) != sample:
            continue
        got = dict(_LABEL.findall(m.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def saves(rt: Any, actor_name: str) -> int:
    """How many state saves (flushes) the runtime counted for actors named ``actor_name``."""
    text = rt.metrics_text()
    assert "rivet_actor_saves_total" in text, "metrics lack rivet_actor_saves_total"
    if 'actor_name="' in "\n".join(
        line for line in text.splitlines() if line.startswith("rivet_actor_saves_total")
    ):
        return int(metric_value(text, "rivet_actor_saves_total", actor_name=actor_name))
    return int(metric_value(text, "rivet_actor_saves_total"))
