from __future__ import annotations

import pytest

from tests.server.actors import registry


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
async def server():
    async with registry.serve(port=0) as s:
        yield s


@pytest.fixture
async def http(server):
    import httpx

    async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as client:
        yield client
