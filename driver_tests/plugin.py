"""The pytest plugin behind ``rivet test`` (entry point ``pytest11: rivet``).

It gives every project the harness of the conformance suite:

- ``--rivet-driver memory|file|all`` (and ``--rivet-encoding``, ``--rivet-transport``) select the
  matrix; ``rivet test`` passes them through.
- ``rivet_registry``: the project's registry, found from ``[tool.rivet] registry`` in the nearest
  ``pyproject.toml`` (override the fixture in a ``conftest.py`` to choose another one).
- ``rivet_driver_kind``, ``rivet_runtime`` (``async with registry.run(driver)``), ``rivet_client``
  (``rt.client()``), parametrized over the selected drivers; ``make_rivet_driver`` reopens the same
  state path on every call, so a test can restart the runtime on the same state.
- ``eventually`` (``from driver_tests import eventually``): the one bounded polling helper.

Async tests use anyio's plugin: mark them ``pytest.mark.anyio``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for fixture, option, choices in (
        ("rivet_driver_kind", "rivet_driver", DRIVERS),
        ("driver_kind", "rivet_driver", DRIVERS),
    ):
        if fixture in metafunc.fixturenames and not _explicit(metafunc, fixture):
            values = selected(metafunc.config, option, choices)
            metafunc.parametrize(fixture, values, ids=values)


def make_driver_factory(kind: str, path: Path) -> Callable[[], Any]:
    from runtime.drivers import FileDriver, MemoryDriver

    def factory() -> Any:
        return MemoryDriver() if kind == "memory" else FileDriver(path)

    return factory


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
async def rivet_runtime(rivet_registry: Any, make_rivet_driver: Callable[[], Any]) -> AsyncIterator[Any]:
    async with rivet_registry.run(driver=make_rivet_driver()) as rt:
        yield rt


@pytest.fixture
def rivet_client(rivet_runtime: Any) -> Any:
    return rivet_runtime.client()
