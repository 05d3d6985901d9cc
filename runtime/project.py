"""Finding the user's project: ``[tool.rivet]`` in a ``pyproject.toml``, searched upward from the cwd.

```toml
[tool.rivet]
registry = "myapp.registry:registry"   # module:attribute of the Registry that setup() returned
state_dir = ".rivet"                    # relative paths are relative to the project root
host = "127.0.0.1"
port = 6420
watch = ["myapp"]                       # a string or a list of strings
errors_dir = "errors"
```

The nearest ``pyproject.toml`` that has a ``[tool.rivet]`` table is the project; its directory is
the project root. Command-line flags override these values.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "PYPROJECT",
    "KNOWN_KEYS",
    "ProjectError",
    "RivetConfig",
    "Project",
    "find_project",
    "find_pyproject_root",
    "parse_registry",
]

PYPROJECT = "pyproject.toml"
KNOWN_KEYS = ("registry", "state_dir", "host", "port", "watch", "errors_dir")

_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_REGISTRY_RE = re.compile(rf"^({_DOTTED}):({_DOTTED})$")


class ProjectError(Exception):
    """The project configuration cannot be read or is invalid (the message says where and why)."""


@dataclass(frozen=True)
class RivetConfig:
    """The values of ``[tool.rivet]``; ``None`` (or ``()``) where a key is absent."""

    registry: str | None = None
    state_dir: str | None = None
    host: str | None = None
    port: int | None = None
    watch: tuple[str, ...] = ()
    errors_dir: str | None = None


@dataclass(frozen=True)
class Project:
    root: Path
    pyproject: Path
    config: RivetConfig
    unknown_keys: tuple[str, ...] = ()

    def path(self, value: str) -> Path:
        """A path from the configuration, resolved against the project root."""
        return (self.root / value).resolve()


def parse_registry(spec: str) -> tuple[str, str]:
    """Split ``"pkg.module:attr"`` into ``("pkg.module", "attr")``; ``ValueError`` if malformed."""
    match = _REGISTRY_RE.match(spec.strip())
    if not match:
        raise ValueError(f"registry must look like 'pkg.module:attribute', got {spec!r}")
    return match.group(1), match.group(2)


def _read(pyproject: Path) -> dict[str, Any]:
    try:
        with pyproject.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"{pyproject} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ProjectError(f"cannot read {pyproject}: {exc.strerror or exc}") from exc


def _candidates(start: Path | None) -> list[Path]:
    here = (start or Path.cwd()).resolve()
    return [here, *here.parents]


def find_pyproject_root(start: Path | None = None) -> Path | None:
    """The nearest directory at or above ``start`` (default: the cwd) holding a pyproject.toml."""
    for directory in _candidates(start):
        if (directory / PYPROJECT).is_file():
            return directory
    return None


def find_project(start: Path | None = None) -> Project | None:
    """The nearest project (a pyproject.toml with ``[tool.rivet]``) at or above ``start``.

    Returns ``None`` outside a project. Raises :class:`ProjectError` when a pyproject.toml on
    the way cannot be parsed or ``[tool.rivet]`` holds a value of the wrong type.
    """
    for directory in _candidates(start):
        pyproject = directory / PYPROJECT
        if not pyproject.is_file():
            continue
        tool = _read(pyproject).get("tool", {})
        if not isinstance(tool, dict) or "rivet" not in tool:
            continue
        table = tool["rivet"]
        if not isinstance(table, dict):
            raise ProjectError(f"{pyproject}: [tool.rivet] must be a table")
        config, unknown = _parse_config(table, pyproject)
        return Project(root=directory, pyproject=pyproject, config=config, unknown_keys=unknown)
    return None


def _parse_config(table: dict[str, Any], pyproject: Path) -> tuple[RivetConfig, tuple[str, ...]]:
    def where(key: str) -> str:
        return f"{pyproject}: [tool.rivet] {key}"

    def string(key: str) -> str | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ProjectError(f"{where(key)} must be a non-empty string, got {value!r}")
        return value

    registry = string("registry")
    if registry is not None:
        try:
            parse_registry(registry)
        except ValueError as exc:
            raise ProjectError(f"{where('registry')}: {exc}") from None

    port = table.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535):
        raise ProjectError(f"{where('port')} must be an integer from 0 to 65535, got {port!r}")

    watch_raw = table.get("watch", ())
    if isinstance(watch_raw, str):
        watch_raw = [watch_raw]
    if not isinstance(watch_raw, (list, tuple)) or not all(isinstance(w, str) and w for w in watch_raw):
        raise ProjectError(f"{where('watch')} must be a string or a list of strings, got {watch_raw!r}")

    config = RivetConfig(
        registry=registry,
        state_dir=string("state_dir"),
        host=string("host"),
        port=port,
        watch=tuple(watch_raw),
        errors_dir=string("errors_dir"),
    )
    unknown = tuple(sorted(k for k in table if k not in KNOWN_KEYS))
    return config, unknown
