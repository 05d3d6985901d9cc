"""Serving lifecycle: free ports, the final flush on leaving ``serve()``, and ``start()`` + SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from runtime.drivers import FileDriver
from tests.server.actors import registry

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


async def test_port_zero_reports_the_real_port_and_binds_loopback():
    async with registry.serve(port=0) as server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
        assert server.port != 0
        async with httpx.AsyncClient() as http:
            assert (await http.get(server.url + "/health")).status_code == 200


async def test_leaving_serve_flushes_every_awake_actor(tmp_path):
    # counter has state_save_interval=60: only the shutdown flush can have written the state
    async with registry.serve(port=0, driver=FileDriver(tmp_path)) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            url = "/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate" \
                  "&rvt-runner=default&rvt-key=flush"
            for _ in range(3):
                assert (await http.post(url, json={"args": [2]})).status_code == 200
    async with registry.serve(port=0, driver=FileDriver(tmp_path)) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            url = "/gateway/counter/action/get_count?rvt-namespace=default&rvt-method=get&rvt-key=flush"
            assert (await http.post(url, json={"args": []})).json() == {"output": 6}


def test_start_serves_until_sigterm_then_flushes(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.server.actors import registry
        registry.start(port=0, state_dir={str(tmp_path / "state")!r})
        print("exited cleanly", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stderr.readline()
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        url = match.group(1)
        with httpx.Client(base_url=url) as http:
            r = http.post("/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate"
                          "&rvt-runner=default&rvt-key=start", json={"args": [5]})
            assert r.json() == {"output": 5}
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "exited cleanly" in out

    async def check() -> int:
        async with registry.run(driver=FileDriver(tmp_path / "state")) as rt:
            return await rt.client().get("counter", "start").get_count()

    assert asyncio.run(check()) == 5
