"""Running the ASGI app on uvicorn, in-process: ``registry.serve()`` and ``registry.start()``.

The server binds its own listening socket (so ``port=0`` can report the real port before the
first request) and hands it to uvicorn. Signals are never captured by uvicorn: ``serve()`` is
used inside other programs and test runs, and ``start()`` installs its own SIGINT/SIGTERM
handlers so that the shutdown order is ours: stop accepting and finish in-flight requests, then
put every awake actor to sleep (final flush), then exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import uvicorn

from runtime.server.app import RivetApp

if TYPE_CHECKING:
    from runtime.drivers.base import Driver
    from runtime.registry import Registry, Runtime

log = logging.getLogger("rivet.server")

GRACEFUL_HTTP_SHUTDOWN = 10.0
"""Seconds uvicorn waits for in-flight requests and open sockets before cancelling them."""

WS_MAX_SIZE = 16 * 1024 * 1024
"""Frames larger than this are refused by the WebSocket layer itself (close 1009). Protocol
messages have their own, much smaller limit (64 KiB), answered with ``message.incoming_too_long``."""


class _Uvicorn(uvicorn.Server):
    """uvicorn without its signal handling (the owner of the process decides)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn versions
        return None


def bind(host: str, port: int) -> socket.socket:
    """A listening, non-blocking TCP socket on ``host:port`` (``OSError`` if the port is taken).

    Hand it to :class:`Server` (``sock=``) to serve on a socket bound earlier, as ``rivet dev``
    does to report a taken port before it imports anything."""
    return _bind(host, port)


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, socktype, proto, _, address = infos[0]
    # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets that say so,
    # and without it every response waits out the peer's delayed ACK (~40 ms a request)
    sock = socket.socket(family, socktype, proto or socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _warn_if_exposed(sock: socket.socket) -> None:
    """Say so loudly when the server is reachable from other machines (anything but loopback)."""
    import ipaddress

    address = sock.getsockname()[0]
    try:
        loopback = ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        log.warning("rivet: the server listens on %s, which other machines can reach; actors and their "
                    "state are exposed to anyone who can connect (bind 127.0.0.1 unless you mean it)", address)


class Server:
    """A running server: ``url``, ``host``, ``port``, ``runtime`` (the in-process runtime)."""

    def __init__(self, registry: Registry, host: str = "127.0.0.1", port: int = 6420,
                 driver: Driver | None = None, *, sock: socket.socket | None = None,
                 inspector_admin_token: str | None = None) -> None:
        """``sock``: an already listening socket (see :func:`bind`) to serve on instead of
        binding ``host:port``; the server owns it from then on and closes it when it stops.

        ``inspector_admin_token``: dev mode (``rivet dev``): also serve ``/inspector/actors``,
        ``/inspector/token/{id}`` (bearer this token) and the ``/ui`` page; see
        runtime/server/inspector.py."""
        from runtime.registry import Runtime

        if driver is None:
            from runtime.drivers.memory import MemoryDriver

            driver = MemoryDriver()
        self.registry = registry
        self.host = host
        self.port = port
        self.runtime: Runtime = Runtime(registry, driver)
        self.app = RivetApp(self.runtime)
        self.app.inspector_admin_token = inspector_admin_token  # type: ignore[attr-defined]
        self._uvicorn: _Uvicorn | None = None
        self._task: asyncio.Task[Any] | None = None
        self._sock: socket.socket | None = None
        self._given_sock = sock
        if sock is not None:
            self.port = sock.getsockname()[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        await self.runtime.start()
        try:
            self._sock = self._given_sock if self._given_sock is not None else _bind(self.host, self.port)
            self.port = self._sock.getsockname()[1]
            _warn_if_exposed(self._sock)
            config = uvicorn.Config(
                self.app,
                ws="websockets-sansio",
                http="httptools",
                lifespan="off",
                log_level="warning",
                access_log=False,
                ws_max_size=WS_MAX_SIZE,
                # uvicorn annotates this int | None but only hands it to asyncio.wait_for(timeout=...)
                timeout_graceful_shutdown=GRACEFUL_HTTP_SHUTDOWN,  # type: ignore[arg-type]
            )
            self._uvicorn = _Uvicorn(config)
            self._task = asyncio.ensure_future(self._uvicorn.serve(sockets=[self._sock]))
            while not self._uvicorn.started:
                if self._task.done():
                    self._task.result()  # raises what stopped it
                    raise RuntimeError("the HTTP server stopped while starting")
                await asyncio.sleep(0.005)
        except BaseException:
            await self._stop_http()
            await self.runtime.stop()
            raise

    async def _stop_http(self) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._task is not None:
            try:
                await self._task
            except Exception:  # noqa: BLE001 - shutting down anyway
                log.exception("the HTTP server failed while stopping")
            except asyncio.CancelledError:
                pass
        if self._sock is not None:
            self._sock.close()
        self._task = None

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests, then put every awake actor to sleep."""
        try:
            await self._stop_http()
        finally:
            await self.runtime.stop()


@contextlib.asynccontextmanager
async def serve(registry: Registry, host: str = "127.0.0.1", port: int = 6420,
                driver: Driver | None = None, *, inspector_admin_token: str | None = None
                ) -> AsyncIterator[Server]:
    server = Server(registry, host, port, driver, inspector_admin_token=inspector_admin_token)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def run_forever(registry: Registry, host: str, port: int, driver: Driver) -> None:
    """Serve until SIGINT/SIGTERM; then every awake actor sleeps (final flush) and this returns."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
                pass
        try:
            async with serve(registry, host, port, driver) as server:
                print(f"rivet: serving {', '.join(sorted(registry.actors))} on {server.url} "
                      "(Ctrl+C to stop)", file=sys.stderr, flush=True)
                await stop.wait()
                print("rivet: stopping; every awake actor sleeps and saves first", file=sys.stderr, flush=True)
                for sig in installed:  # a second Ctrl+C interrupts the graceful shutdown
                    loop.remove_signal_handler(sig)
                installed.clear()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    from runtime.errors import RivetError

    try:
        asyncio.run(main())
    except RivetError as exc:  # a start-up failure (e.g. the state directory has another owner)
        if not exc.public:
            raise
        print(f"rivet: {exc.message}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


__all__ = ["Server", "bind", "run_forever", "serve"]
