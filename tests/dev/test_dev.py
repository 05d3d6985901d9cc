"""``rivet dev`` as a real subprocess: hot reload keeps state and connections, a broken edit keeps the
last good code serving, Ctrl+C flushes, a taken port is a clear error, ``--json-logs`` is JSON."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from runtime import Client
from runtime.testing import eventually
from tests.dev.helpers import LOGIC, REGISTRY, Dev, edit, make_project

pytestmark = [pytest.mark.anyio, pytest.mark.timing]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj")


async def wait_version(h, expected: int, timeout: float = 10.0) -> None:
    async def check() -> None:
        assert await h.version() == expected

    await eventually(check, timeout=timeout)


async def test_edit_becomes_live_code_with_the_old_state(project: Path) -> None:
    dev = Dev(project).start()
    try:
        await dev.ready()
        async with Client(dev.url, encoding="json") as client:
            h = client.get_or_create("counter", "a")
            assert await h.increment() == 1
            assert await h.increment() == 2
            # a module the registry imports (not the registry module itself) changes
            edit(project / "app" / "logic.py", "STEP = 10\nVERSION = 2\n")
            await wait_version(h, 2)
            assert await h.increment() == 12  # new code, old state
            text = await dev.wait_log("reload ")
            assert re.search(r"reload\s+app/logic\.py in [\d.]+ m?s; 1 awake actor\(s\) carried over", text), text
            assert "call    counter[a] increment" in text
            assert re.search(r"(wake|create)\s+counter\[a\]", text)
        assert dev.stop() == 0
    finally:
        dev.kill()


async def test_broken_edit_keeps_the_last_good_code_and_the_next_save_recovers(project: Path) -> None:
    registry_py = project / "app" / "registry.py"
    dev = Dev(project).start()
    try:
        await dev.ready()
        async with Client(dev.url, encoding="json") as client:
            h = client.get_or_create("counter", "b")
            assert await h.increment() == 1

            # 1. a syntax error: reported with file and line, the old code keeps serving
            broken = REGISTRY.replace("    return logic.VERSION\n", "    return logic.VERSION +\n")
            line = broken.splitlines().index("    return logic.VERSION +") + 1
            edit(registry_py, broken)
            await dev.wait_log(f"app/registry.py:{line}: SyntaxError")
            assert await h.version() == 1
            assert await h.increment() == 2

            # 2. an exception at import time, in a module the registry imports
            edit(project / "app" / "logic.py", "STEP = 1\nVERSION = 1\nraise RuntimeError('boom at import')\n")
            edit(registry_py, REGISTRY)
            await dev.wait_log("app/logic.py:3: RuntimeError: boom at import")
            assert await h.increment() == 3

            # 3. an invalid actor definition (actor() raises TypeError in the registry module)
            edit(project / "app" / "logic.py", LOGIC)
            bad = REGISTRY.replace("sleep_timeout=60.0,", "sleep_timeout=60.0, bogus=1,")
            bad_line = next(i for i, t in enumerate(bad.splitlines(), 1) if "bogus=1" in t)
            edit(registry_py, bad)
            await dev.wait_log(f"app/registry.py:{bad_line}: TypeError: actor() got unknown keyword(s) bogus")
            assert await h.version() == 1
            assert await h.get() == {"count": 3, "live_connects": 0, "rang": 0}

            # 4. the next good save recovers, with the state intact
            edit(registry_py, REGISTRY.replace("return logic.VERSION", "return logic.VERSION + 41"))
            await wait_version(h, 42)
            assert await h.increment() == 4
            text = dev.stderr
            # three broken saves reported (more if a save landed in a batch of its own)
            assert text.count("still serving the last good code") >= 3, text
        assert dev.stop() == 0
    finally:
        dev.kill()


async def test_a_connection_stays_connected_and_keeps_its_events_across_a_reload(project: Path) -> None:
    dev = Dev(project).start()
    try:
        await dev.ready()
        async with Client(dev.url, encoding="json") as client:
            h = client.get_or_create("counter", "c")
            seen: list[int] = []
            async with h.connect("live") as conn:
                conn.on("count", seen.append)
                assert await conn.increment() == 1
                await eventually(lambda: _has(seen, 1))
                conn_id = conn.connection_id
                await h.ring_later(0.3)  # a schedule due around the reload is not lost

                edit(project / "app" / "logic.py", "STEP = 5\nVERSION = 2\n")
                await wait_version(h, 2)
                # the subscription survived on the same connection: a broadcast from the new code arrives
                assert await conn.increment() == 6
                await eventually(lambda: _has(seen, 6))
                await h.increment()  # a call from another client also reaches the subscriber
                await eventually(lambda: _has(seen, 11))
                assert conn.status == "connected"
                assert conn.connection_id == conn_id
                assert (await h.get())["live_connects"] == 1  # restored, not reconnected

                async def rang() -> None:
                    assert (await h.get())["rang"] == 1

                await eventually(rang)
            await dev.wait_log("1 awake actor(s) carried over")
        assert dev.stop() == 0
    finally:
        dev.kill()


def _has(seen: list[int], value: int) -> None:
    assert value in seen, seen


async def test_sigint_flushes_every_awake_actor_and_exits_0(project: Path) -> None:
    # state_save_interval=60: only the final flush at shutdown can have written the count
    dev = Dev(project).start()
    try:
        await dev.ready()
        async with Client(dev.url, encoding="json") as client:
            for key in ("x", "y"):
                h = client.get_or_create("counter", key)
                for _ in range(3):
                    await h.increment()
            # an open connection does not hold the shutdown up
            async with client.get_or_create("counter", "x").connect() as conn:
                assert (await conn.get())["count"] == 3
                assert dev.stop(signal.SIGINT) == 0
        assert "stopping; 2 awake actor(s)" in dev.stderr
        assert "stopped; all state saved" in dev.stderr
    finally:
        dev.kill()

    again = Dev(project, "--no-reload", name="again").start()
    try:
        await again.ready()
        assert "reload    off" in again.stderr
        async with Client(again.url, encoding="json") as client:
            assert (await client.get_or_create("counter", "x").get())["count"] == 3
            assert (await client.get_or_create("counter", "y").get())["count"] == 3
        assert again.stop(signal.SIGTERM) == 0
    finally:
        again.kill()


async def test_a_taken_port_is_a_clear_error(project: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "rivet_cli", "dev", "--port", str(port)], cwd=project,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20,
                              env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 1, proc.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in proc.stderr
    assert "--port" in proc.stderr
    assert proc.stdout == ""
    assert not (project / ".rivet").exists()  # nothing was started


async def test_a_second_process_on_the_same_state_directory_is_refused(project: Path) -> None:
    dev = Dev(project).start()
    try:
        await dev.ready()
        second = Dev(project, name="second").start()
        try:
            assert second.proc is not None
            assert second.proc.wait(20) == 1
            assert "already in use by another rivet process" in second.stderr
            assert f"pid {dev.proc.pid}" in second.stderr  # type: ignore[union-attr]
            assert "--state-dir" in second.stderr
        finally:
            second.kill()
        assert dev.stop() == 0
    finally:
        dev.kill()


async def test_json_logs_are_one_json_object_per_line(project: Path) -> None:
    dev = Dev(project, "--json-logs").start()
    try:
        async def ready() -> None:
            assert dev.proc is not None and dev.proc.poll() is None, dev.stderr
            assert any(e["event"] == "ready" for e in dev.json_lines(complete_only=True))

        await eventually(ready, timeout=15)
        async with Client(dev.url, encoding="json") as client:
            h = client.get_or_create("counter", "j")
            assert await h.increment() == 1
            # the banner tells where the inspector is; its admin token reaches every actor's token
            inspector = next(e for e in dev.json_lines(complete_only=True) if e["event"] == "ready")["inspector"]
            token = Path(inspector["token_file"]).read_text().strip()
            assert inspector["ui"] == f"{dev.url}/ui#token={token}"
            async with httpx.AsyncClient(base_url=dev.url) as http:
                listed = (await http.get("/inspector/actors", headers={"Authorization": f"Bearer {token}"})).json()
                assert [a["key"] for a in listed["actors"] if a["name"] == "counter"] == [["j"]]
                assert (await http.get("/inspector/actors")).status_code == 401
            edit(project / "app" / "logic.py", "STEP = 1\nVERSION = 2\n")
            await wait_version(h, 2)
            edit(project / "app" / "logic.py", "STEP = (\n")
            await eventually(lambda: _event(dev, "reload_error"))
            assert await h.version() == 2
        assert dev.stop(signal.SIGTERM) == 0
        events = dev.json_lines()  # every line parses
        ready_event = events[0]
        assert ready_event["event"] == "ready" and ready_event["url"] == dev.url
        assert ready_event["actors"] == {"counter": ["get", "increment", "ring", "ring_later", "version"]}
        action = next(e for e in events if e["event"] == "action" and e["action"] == "increment")
        assert action["actor"] == "counter" and action["key"] == ["j"] and action["outcome"] == "ok"
        assert isinstance(action["duration_ms"], float)
        reload = next(e for e in events if e["event"] == "reload")
        assert reload["files"] == ["app/logic.py"] and reload["carried_over"] == 1
        error = next(e for e in events if e["event"] == "reload_error")
        assert error["file"] == "app/logic.py" and error["line"] == 1 and error["error"] == "SyntaxError"
        kinds = [e["event"] for e in events]
        assert kinds[-1] == "stopped" and "stopping" in kinds
    finally:
        dev.kill()


def _event(dev: Dev, kind: str) -> None:
    assert any(e["event"] == kind for e in dev.json_lines(complete_only=True)), dev.stderr
