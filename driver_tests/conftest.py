"""Fixtures of the conformance suite.

Every test that takes ``rt`` (or ``client``) runs once per driver: ``memory`` and ``file``.
Set ``RIVET_TEST_DRIVERS=memory`` (comma-separated) to run a subset.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from driver_tests.actors import registry
from runtime.drivers import FileDriver, MemoryDriver

ALL_DRIVERS = ["memory", "file"]
DRIVERS = [
    d.strip() for d in os.environ.get("RIVET_TEST_DRIVERS", ",".join(ALL_DRIVERS)).split(",") if d.strip()
] or ALL_DRIVERS


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "timing: waits on wall-clock time; always run single-worker")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=DRIVERS, ids=DRIVERS)
def driver_kind(request: pytest.FixtureRequest) -> str:
    return request.param


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
