"""RivetKit's own JavaScript client against a real rivet-actors server (API.md §7, issue 4).

Runs ``interop.mjs`` with node against a server on a free port. Skipped only when ``node`` or
``npm`` is missing; the npm packages are installed into ``tests/interop/node_modules`` on first
use (``npm install``; the version range is in ``package.json``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runtime.drivers import FileDriver
from tests.interop.interop_app import registry

pytestmark = pytest.mark.anyio

HERE = Path(__file__).resolve().parent
NODE = shutil.which("node")
NPM = shutil.which("npm")

CHECKS = ["action by key", "plain data", "action by id", "errors", "connection and events", "conn params"]


def _install() -> None:
    if (HERE / "node_modules" / "rivetkit" / "package.json").exists():
        return
    command = [NPM, "install", "--no-package-lock", "--no-audit", "--no-fund"]
    done = subprocess.run(command, cwd=HERE, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.mark.skipif(NODE is None or NPM is None, reason="node and npm are needed for the RivetKit JS interop check")
async def test_rivetkit_js_client_against_python_server(tmp_path: Path) -> None:
    await asyncio.to_thread(_install)
    async with registry.serve(port=0, driver=FileDriver(tmp_path / "state")) as server:
        proc = await asyncio.create_subprocess_exec(
            NODE, "interop.mjs", cwd=HERE, env={**os.environ, "RIVET_URL": server.url, "NO_COLOR": "1"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        try:
            raw, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
        except asyncio.TimeoutError:
            proc.kill()
            raw, _ = await proc.communicate()
            pytest.fail(f"interop.mjs timed out:\n{raw.decode(errors='replace')}")
        out = raw.decode(errors="replace")
        assert proc.returncode == 0, out
        for check in CHECKS:
            assert f"ok {check}" in out, out
        assert "interop: all checks passed" in out

    # leaving serve() flushed the actor: a new runtime on the same files sees the final count
    async with registry.run(driver=FileDriver(tmp_path / "state")) as rt:
        records = await rt.manager.driver.list_actors("counter")
        assert len(records) == 1
        assert await rt.client().get_for_id("counter", records[0].actor_id).getCount() == 11
