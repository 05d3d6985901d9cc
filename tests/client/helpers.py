from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import anyio


async def eventually(fn: Callable[[], Any | Awaitable[Any]], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Call ``fn`` until it stops raising ``AssertionError`` (bounded by ``timeout``)."""
    deadline = anyio.current_time() + timeout
    while True:
        try:
            result = fn()
            if inspect.isawaitable(result):
                result = await result
            return result
        except AssertionError:
            if anyio.current_time() >= deadline:
                raise
        await anyio.sleep(interval)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
