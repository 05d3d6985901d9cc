"""Fixtures: a real server (``registry.serve`` on a free port, memory driver) and a networked
``Client`` for each encoding."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from runtime import Client
from runtime.drivers import MemoryDriver
from tests.client.actors import registry

ENCODINGS = ["json", "msgpack"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=ENCODINGS, ids=ENCODINGS)
def encoding(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def server(anyio_backend: str) -> AsyncIterator[Any]:
    async with registry.serve(host="127.0.0.1", port=0, driver=MemoryDriver()) as srv:
        yield srv


@pytest.fixture
async def client(server: Any, encoding: str) -> AsyncIterator[Client]:
    async with Client(server.url, encoding=encoding) as c:
        yield c
