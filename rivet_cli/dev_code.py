"""``rivet dev``: importing (and re-importing) the project's code, and watching it for changes.

A reload imports the new code first and only then hands it to the runtime, so a broken edit never
takes the server down: every module of the project (a module whose file lies under the project
root or a watched directory, but never the runtime's own packages or anything installed) is
dropped from ``sys.modules``, the registry module is imported again, and the result is checked to
be a :class:`runtime.Registry`. On any failure the old modules go back into ``sys.modules`` (so
later imports keep seeing the code that is serving) and :class:`LoadError` says where it broke.
"""

from __future__ import annotations

import contextlib
import importlib
import linecache
import os
import site
import sys
import sysconfig
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from watchfiles import PythonFilter

from runtime.registry import Registry

__all__ = ["IGNORED_DIRS", "LoadError", "ProjectCode", "SourceFilter"]

IGNORED_DIRS = (
    "__pycache__", ".git", ".hg", ".svn", ".rivet", ".venv", "venv", ".tox", ".nox", "node_modules",
    "site-packages", "dist-packages", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis", ".idea",
)
"""Directories that are never project source: not watched, their modules never re-imported."""

_OWN_PACKAGES = ("runtime", "rivet_cli", "driver_tests", "templates")
"""rivet's own packages stay imported even when the project root contains them (this repository)."""


class SourceFilter(PythonFilter):
    """``.py`` files of the project: no caches, VCS or virtualenv directories, no state directory."""

    ignore_dirs = tuple(sorted(set(PythonFilter.ignore_dirs) | set(IGNORED_DIRS)))


@dataclass(eq=False)
class LoadError(Exception):
    """The project's code could not be imported; ``file``/``line`` point at the cause when known."""

    summary: str
    file: Path | None = None
    line: int | None = None
    source_line: str | None = None
    error_type: str = ""
    message: str = ""
    details: str = ""

    def __str__(self) -> str:
        return self.summary


def _installed_roots() -> list[Path]:
    roots: set[str] = set()
    with contextlib.suppress(Exception):
        paths = sysconfig.get_paths()
        roots.update(paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths)
    with contextlib.suppress(Exception):
        roots.update(site.getsitepackages())
    with contextlib.suppress(Exception):
        roots.add(site.getusersitepackages())
    return [Path(r).resolve() for r in roots if r]


def _module_file(module: ModuleType) -> Path | None:
    file: str | None = getattr(module, "__file__", None)
    return Path(file) if file else None


def _under(path: Path, roots: list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


class ProjectCode:
    """The project's registry, imported from ``module:attr`` with the project root on ``sys.path``."""

    def __init__(self, module: str, attr: str, root: Path, watch: list[Path], state_dir: Path) -> None:
        self.module = module
        self.attr = attr
        self.root = root.resolve()
        self.dirs = [self.root, *(w.resolve() for w in watch if w.resolve() != self.root)]
        self.state_dir = state_dir.resolve()
        self._installed = [p for p in _installed_roots() if not _under(self.root, [p])]
        if str(self.root) not in sys.path:
            sys.path.insert(0, str(self.root))

    # ------------------------------------------------------------------ what belongs to the project

    def is_project_file(self, filename: str | None) -> bool:
        if not filename or filename.startswith("<"):
            return False
        path = Path(filename)
        if not path.is_absolute():
            path = Path.cwd() / path
        path = Path(os.path.normpath(path))
        if not _under(path, self.dirs) or _under(path, [self.state_dir]):
            return False
        if any(part in IGNORED_DIRS for part in path.parts):
            return False
        return not _under(path, self._installed)

    def owns(self, name: str, module: ModuleType | None) -> bool:
        """Whether ``module`` is project code (dropped and imported again on reload)."""
        if module is None or name == "__main__":
            return False
        if name.split(".", 1)[0] in _OWN_PACKAGES:
            return False
        file = getattr(module, "__file__", None)
        if file:
            return self.is_project_file(file)
        paths = getattr(module, "__path__", None)  # namespace package: no __file__
        if paths is not None:
            try:
                return any(self.is_project_file(os.path.join(p, "__init__.py")) for p in list(paths))
            except TypeError:
                return False
        return False

    def project_modules(self) -> dict[str, ModuleType]:
        return {n: m for n, m in list(sys.modules.items()) if self.owns(n, m)}

    def relative(self, path: Path | str) -> str:
        p = Path(path)
        try:
            return str(p.resolve().relative_to(self.root))
        except ValueError:
            return str(p)

    # ------------------------------------------------------------------ importing

    def load(self) -> Registry:
        """Import the registry (first time, or again after :meth:`forget`). Raises LoadError."""
        try:
            importlib.invalidate_caches()
            module = importlib.import_module(self.module)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - anything at import time is the user's
            raise self._error(exc) from exc
        if not hasattr(module, self.attr):
            raise LoadError(
                f"{self.module} has no attribute {self.attr!r} (the registry = \"{self.module}:{self.attr}\" "
                "setting names a module:attribute holding what setup() returned)",
                file=_module_file(module),
                error_type="AttributeError",
                message=f"module {self.module!r} has no attribute {self.attr!r}",
            )
        value = getattr(module, self.attr)
        if not isinstance(value, Registry):
            raise LoadError(
                f"{self.module}:{self.attr} is a {type(value).__name__}, not a Registry (use the value "
                "that setup(use={...}) returns)",
                file=_module_file(module),
                error_type="TypeError",
                message=f"{self.module}:{self.attr} is not a Registry",
            )
        return value

    def reload(self) -> Registry:
        """Import the project's code again. On failure the previous modules are put back and
        :class:`LoadError` is raised; the caller keeps serving the registry it has."""
        old = self.project_modules()
        for name in old:
            del sys.modules[name]
        try:
            return self.load()
        except BaseException:
            for name in self.project_modules():  # whatever the failed import left half-done
                sys.modules.pop(name, None)
            sys.modules.update(old)
            raise

    # ------------------------------------------------------------------ reporting

    def _error(self, exc: BaseException) -> LoadError:
        error_type = type(exc).__name__
        linecache.checkcache()  # the files were just edited: never show a stale line
        file: Path | None = None
        line: int | None = None
        source: str | None = None
        if isinstance(exc, SyntaxError):
            message = exc.msg or str(exc)
            if exc.filename:
                file, line = Path(exc.filename), exc.lineno
                source = (exc.text or "").strip() or None
        else:
            message = str(exc) or error_type
            frames = traceback.extract_tb(exc.__traceback__)
            for frame in reversed(frames):
                if self.is_project_file(frame.filename):
                    file, line = Path(frame.filename), frame.lineno
                    source = (frame.line or "").strip() or None
                    break
        if file is not None and source is None and line:
            source = linecache.getline(str(file), line).strip() or None
        where = self.relative(file) if file is not None else self.module
        if line:
            where = f"{where}:{line}"
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return LoadError(
            f"{where}: {error_type}: {message}",
            file=file,
            line=line,
            source_line=source,
            error_type=error_type,
            message=message,
            details=details,
        )
