"""``runtime.testing``: the pytest plugin behind ``rivet test`` (entry point ``pytest11: rivet``).

It gives every project the harness of the conformance suite:

- ``--rivet-driver memory|file|all`` (and ``--rivet-encoding``, ``--rivet-transport``) select the
  matrix; ``rivet test`` passes them through.
- ``rivet_registry``: the project's registry, found from ``[tool.rivet] registry`` in the nearest
  ``pyproject.toml`` (override the fixture in a ``conftest.py`` to choose another one).
- ``rivet_driver_kind`` and ``rivet_transport_kind`` (``inline``, ``http-json``, ``http-msgpack``),
  parametrized over the selected matrix (test ids like ``memory-inline``, ``file-http-json``).
- ``rivet_runtime`` and ``rivet_client``: with ``inline``, ``registry.run(driver)`` and
  ``rt.client()``; with ``http-<encoding>``, a real server (``registry.serve(host="127.0.0.1",
  port=0, driver=...)``), its ``server.runtime``, and ``runtime.Client(server.url, encoding=...)``
  (closed at teardown). ``make_rivet_driver`` reopens the same state path on every call, and
  ``open_rivet_runtime()`` (``async with open_rivet_runtime() as (rt, client)``) starts another
  runtime or server of the same kind on that state, so a test can restart it.
- ``eventually`` (``from runtime.testing import eventually``): the one bounded polling helper.

Async tests use anyio's plugin: mark them ``pytest.mark.anyio``.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

DRIVERS = ("memory", "file")
ENCODINGS = ("json", "msgpack")
TRANSPORTS = ("inline", "http")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rivet", "rivet actor test matrix")
    group.addoption("--rivet-driver", default=os.environ.get("RIVET_TEST_DRIVERS", "all"),
                    help="memory, file, all, or a comma-separated list (default: all)")
    group.addoption("--rivet-encoding", default=os.environ.get("RIVET_TEST_ENCODINGS", "all"),
                    help="json, msgpack, all, or a comma-separated list (default: all)")
    group.addoption("--rivet-transport", default=os.environ.get("RIVET_TEST_TRANSPORTS", "all"),
                    help="inline, http, all, or a comma-separated list (default: all)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "timing: waits on wall-clock time; always run single-worker")
    for option, choices in (("rivet_driver", DRIVERS), ("rivet_encoding", ENCODINGS),
                            ("rivet_transport", TRANSPORTS)):
        selected(config, option, choices)  # a typo is a usage error before collection


def selected(config: pytest.Config, option: str, choices: tuple[str, ...]) -> list[str]:
    """The values of a matrix option, validated (a typo is a usage error, not an empty run)."""
    raw = str(config.getoption(option))
    values = list(choices) if raw == "all" else [v.strip() for v in raw.split(",") if v.strip()]
    bad = [v for v in values if v not in choices]
    if bad or not values:
        raise pytest.UsageError(f"--{option.replace('_', '-')}: unknown {', '.join(bad) or 'empty'}; "
                                f"choose from {', '.join(choices)} or all")
    return values


def _explicit(metafunc: pytest.Metafunc, name: str) -> bool:
    """A test that pins a matrix value itself (``@pytest.mark.parametrize("driver_kind", ["file"])``)."""
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else ""
        if name in ([n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)):
            return True
    return False


def transport_kinds(config: pytest.Config) -> list[str]:
    """The selected transport × encoding pairs: ``inline`` (no wire, so no encoding) and
    ``http-<encoding>`` for each selected encoding."""
    encodings = selected(config, "rivet_encoding", ENCODINGS)
    kinds: list[str] = []
    for transport in selected(config, "rivet_transport", TRANSPORTS):
        kinds += ["inline"] if transport == "inline" else [f"http-{e}" for e in encodings]
    return kinds


@pytest.hookimpl(trylast=True)  # after @pytest.mark.parametrize, so a pinned driver reads "file-inline"
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config = metafunc.config
    for fixture, values in (
        ("rivet_driver_kind", lambda: selected(config, "rivet_driver", DRIVERS)),
        ("driver_kind", lambda: selected(config, "rivet_driver", DRIVERS)),
        ("rivet_transport_kind", lambda: transport_kinds(config)),
        ("transport_kind", lambda: transport_kinds(config)),
    ):
        if fixture in metafunc.fixturenames and not _explicit(metafunc, fixture):
            chosen = values()
            metafunc.parametrize(fixture, chosen, ids=chosen)


def make_driver_factory(kind: str, path: Path) -> Callable[[], Any]:
    from runtime.drivers import FileDriver, MemoryDriver

    def factory() -> Any:
        return MemoryDriver() if kind == "memory" else FileDriver(path)

    return factory


@dataclass
class RivetEnv:
    """A running runtime and a client reaching it over the chosen transport.

    Unpacks as ``rt, client``. ``server`` is the HTTP server (``None`` for ``inline``)."""

    runtime: Any
    client: Any
    server: Any = None
    transport: str = "inline"

    def __iter__(self) -> Iterator[Any]:
        return iter((self.runtime, self.client))


@contextlib.asynccontextmanager
async def open_runtime(registry: Any, driver: Any, transport: str = "inline") -> AsyncIterator[RivetEnv]:
    """Run ``registry`` on ``driver`` and yield it with a client over ``transport``.

    ``inline``: ``registry.run(driver)`` and ``rt.client()``. ``http-json`` / ``http-msgpack``: a
    real server on 127.0.0.1 (free port), its in-process ``server.runtime`` (for ``metrics_text()``
    and ``manager``), and ``runtime.Client(server.url, encoding=...)``, closed before the server
    stops. Leaving puts every awake actor to sleep (final flush) in both cases."""
    if transport == "inline":
        async with registry.run(driver=driver) as rt:
            yield RivetEnv(rt, rt.client())
        return
    kind, _, encoding = transport.partition("-")
    if kind != "http" or encoding not in ENCODINGS:
        raise ValueError(f"unknown transport {transport!r}: use inline, http-json or http-msgpack")
    from runtime import Client

    async with registry.serve(host="127.0.0.1", port=0, driver=driver) as server:
        client = Client(server.url, encoding=encoding)
        try:
            yield RivetEnv(server.runtime, client, server, transport)
        finally:
            await client.close()


def _find_registry(start: Path) -> Any:
    from runtime.project import find_project, parse_registry

    project = find_project(start)
    if project is None or not project.config.registry:
        raise pytest.UsageError(
            "rivet_registry: no [tool.rivet] registry = \"module:attribute\" found in a pyproject.toml "
            f"above {start}; add it, or override the rivet_registry fixture in conftest.py"
        )
    module_name, attr = parse_registry(project.config.registry)
    root = str(project.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    return getattr(importlib.import_module(module_name), attr)


@pytest.fixture(scope="session")
def rivet_registry(request: pytest.FixtureRequest) -> Any:
    return _find_registry(Path(str(request.config.rootpath)))


@pytest.fixture
def make_rivet_driver(rivet_driver_kind: str, tmp_path: Path) -> Callable[[], Any]:
    return make_driver_factory(rivet_driver_kind, tmp_path / "rivet-state")


@pytest.fixture
def open_rivet_runtime(rivet_registry: Any, make_rivet_driver: Callable[[], Any],
                       rivet_transport_kind: str) -> Callable[..., Any]:
    """``async with open_rivet_runtime() as (rt, client)``: another runtime (or server) of this
    test's driver and transport, on the same state path — for restart tests."""

    def opener(driver: Any = None) -> Any:
        return open_runtime(rivet_registry, make_rivet_driver() if driver is None else driver,
                            rivet_transport_kind)

    return opener


@pytest.fixture
async def _rivet_env(open_rivet_runtime: Callable[..., Any]) -> AsyncIterator[RivetEnv]:
    async with open_rivet_runtime() as env:
        yield env


@pytest.fixture
def rivet_runtime(_rivet_env: RivetEnv) -> Any:
    return _rivet_env.runtime


@pytest.fixture
def rivet_client(_rivet_env: RivetEnv) -> Any:
    return _rivet_env.client

async def eventually(
    fn: Callable[[], Any | Awaitable[Any]],
    timeout: float = 5.0,
    interval: float = 0.02,
) -> Any:
    """Call ``fn`` (sync or async) until it returns without ``AssertionError``; return its result.

    Bounded by ``timeout`` seconds; on timeout the last ``AssertionError`` is re-raised so the test
    report shows what was still wrong. Any other exception propagates at once.
    """
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
