"""Running ``rivet`` (and a generated project's tests) in a subprocess, as a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without pytest/xdist/rivet-test variables of the *outer* test run."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "RIVET_TEST_")) and k not in ("NO_COLOR", "FORCE_COLOR", "PYTHONPATH")
    }
    env.update({"NO_COLOR": "1", "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200"})
    env.update(extra)
    return env


def rivet(*args: str, cwd: Path, timeout: float = 60, python: str = sys.executable,
          **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m rivet_cli ARGS`` in ``cwd``; stdout and stderr kept apart."""
    return subprocess.run([python, "-m", "rivet_cli", *args], cwd=cwd, env=clean_env(**env),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


def run_project_tests(root: Path, *extra: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``rivet test tests`` in a generated project, importable through PYTHONPATH (no install)."""
    return rivet("test", "tests", *extra, cwd=root, timeout=timeout, PYTHONPATH=str(root))


def ruff_check(root: Path) -> subprocess.CompletedProcess[str] | None:
    """``ruff check`` of generated code with this repository's rule set; None without ruff."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        return None
    return subprocess.run([ruff, "check", "--no-cache", "--select", "E,F,W,I,B,UP", "--ignore", "E501,B008",
                           "--target-version", "py310", "."], cwd=root, capture_output=True, text=True,
                          env=clean_env(), timeout=60)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path → bytes), for "nothing else changed" checks."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}
