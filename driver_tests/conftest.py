"""Fixtures of the conformance suite.

Every test that takes ``rt`` (or ``client``) runs once per selected driver (``memory`` and
``file`` by default). ``driver_kind`` is parametrized by the rivet pytest plugin
(``driver_tests/plugin.py``): choose with ``--rivet-driver`` or ``rivet test --driver``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from driver_tests.actors import registry
from runtime.drivers import FileDriver, MemoryDriver


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_driver(driver_kind: str, tmp_path: Any) -> Callable[[], Any]:
    """A factory for the test's driver. The file driver reopens the same path on every call, so a
    test can leave ``registry.run`` and start a new one on the same state (a restart)."""
    path = tmp_path / "state"

    def factory() -> Any:
        if driver_kind == "memory":
            return MemoryDriver()
        if driver_kind == "file":
            return FileDriver(path)
        raise ValueError(f"unknown driver {driver_kind!r}")

    return factory


@pytest.fixture
async def rt(make_driver: Callable[[], Any], anyio_backend: str) -> AsyncIterator[Any]:
    async with registry.run(driver=make_driver()) as runtime:
        yield runtime


@pytest.fixture
def client(rt: Any) -> Any:
    return rt.client()
