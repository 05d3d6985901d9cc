"""Driving ``rivet dev`` as a real subprocess against a small generated project."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from runtime.testing import eventually

PYPROJECT = """\
[project]
name = "devproject"
version = "0.0.0"

[tool.rivet]
registry = "app.registry:registry"
"""

LOGIC = """\
STEP = 1
VERSION = 1
"""

REGISTRY = """\
from runtime import actor, setup

from app import logic

counter = actor(state={"count": 0, "live_connects": 0, "rang": 0}, sleep_timeout=60.0, state_save_interval=60.0)


@counter.on_connect
def on_connect(c, conn):
    if conn.params == "live":
        c.state["live_connects"] += 1


@counter.action
def increment(c) -> int:
    c.state["count"] += logic.STEP
    c.broadcast("count", c.state["count"])
    return c.state["count"]


@counter.action
def get(c) -> dict:
    return dict(c.state)


@counter.action
def version(c) -> int:
    return logic.VERSION


@counter.action
async def ring_later(c, seconds: float) -> None:
    await c.schedule.after(seconds, "ring")


@counter.action
def ring(c) -> None:
    c.state["rang"] += 1


registry = setup(use={"counter": counter})
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_project(root: Path) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "logic.py").write_text(LOGIC)
    (root / "app" / "registry.py").write_text(REGISTRY)
    return root


def edit(path: Path, text: str) -> None:
    """Write a source file and move its mtime forward, as a save in an editor would."""
    before = path.stat().st_mtime_ns if path.exists() else time.time_ns()
    path.write_text(text)
    bumped = max(before, path.stat().st_mtime_ns) + 1_000_000_000
    os.utime(path, ns=(bumped, bumped))


class Dev:
    """One ``python -m rivet_cli dev`` process; stderr goes to a file (never an unread pipe)."""

    def __init__(self, project: Path, *args: str, port: int | None = None, name: str = "dev") -> None:
        self.project = project
        self.port = port if port is not None else free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = project / f"{name}.stderr"
        self.args = ["--port", str(self.port), *args]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Dev:
        env = dict(os.environ, NO_COLOR="1")
        env.pop("RIVET_EXPOSE_ERRORS", None)
        with self.log_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rivet_cli", "dev", *self.args],
                cwd=self.project, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                env=env, start_new_session=True,
            )
        return self

    @property
    def stderr(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def ready(self, timeout: float = 15.0) -> None:
        """The banner is printed once the server listens and the watcher watches."""

        def check() -> None:
            assert self.proc is not None
            assert self.proc.poll() is None, f"rivet dev exited with {self.proc.returncode}:\n{self.stderr}"
            text = self.stderr
            assert self.url in text, text

        await eventually(check, timeout=timeout)

    async def wait_log(self, needle: str, timeout: float = 10.0, count: int = 1) -> str:
        def check() -> str:
            text = self.stderr
            assert text.count(needle) >= count, f"{needle!r} not (yet) in the log:\n{text}"
            return text

        return await eventually(check, timeout=timeout)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)

    def json_lines(self, complete_only: bool = False) -> list[dict[str, Any]]:
        """Every line of stderr as JSON. ``complete_only`` (while the process runs): ignore a last
        line that is still being written."""
        text = self.stderr
        if complete_only:
            text = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in text.splitlines() if line.strip()]
