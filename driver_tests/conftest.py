"""Fixtures of the conformance suite.

Every test that takes ``rt`` (or ``client``) runs once per selected driver (``memory``, ``file``)
and transport (``inline``, ``http-json``, ``http-msgpack``): test ids like ``memory-inline`` or
``file-http-json``. ``driver_kind`` and ``transport_kind`` are parametrized by the rivet pytest
plugin (``runtime/testing.py``): choose with ``--rivet-driver`` / ``--rivet-transport`` /
``--rivet-encoding``, or ``rivet test --driver/--transport/--encoding``.

Over ``http-*`` the test talks to a real server on 127.0.0.1 (``registry.serve(port=0)``) through
``runtime.Client(server.url, encoding=...)``; ``rt`` is the server's in-process runtime (for
``rt.metrics_text()`` and ``rt.manager``). Actors that call ``c.client()`` keep using the
in-process client, as they do in production.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from driver_tests.actors import registry
from runtime.drivers import FileDriver, MemoryDriver
from runtime.testing import RivetEnv, open_runtime


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_driver(driver_kind: str, tmp_path: Any) -> Callable[[], Any]:
    """A factory for the test's driver. The file driver reopens the same path on every call, so a
    test can leave the runtime and start a new one on the same state (a restart)."""
    path = tmp_path / "state"

    def factory() -> Any:
        if driver_kind == "memory":
            return MemoryDriver()
        if driver_kind == "file":
            return FileDriver(path)
        raise ValueError(f"unknown driver {driver_kind!r}")

    return factory


@pytest.fixture
def open_rt(make_driver: Callable[[], Any], transport_kind: str) -> Callable[..., Any]:
    """``async with open_rt() as (rt, client)``: a runtime on this test's driver, reached over this
    test's transport (``http-*``: a fresh server on a free port). Every call opens a new one on the
    same state, so leaving the block and opening another is a restart. ``open_rt(driver)`` uses
    the given driver instead of ``make_driver()``."""

    def opener(driver: Any = None) -> Any:
        return open_runtime(registry, make_driver() if driver is None else driver, transport_kind)

    return opener


@pytest.fixture
async def rivet_env(open_rt: Callable[..., Any], anyio_backend: str) -> AsyncIterator[RivetEnv]:
    async with open_rt() as env:
        yield env


@pytest.fixture
def rt(rivet_env: RivetEnv) -> Any:
    return rivet_env.runtime


@pytest.fixture
def client(rivet_env: RivetEnv) -> Any:
    return rivet_env.client
