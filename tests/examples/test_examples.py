"""The examples in ``examples/`` run as documented (issue 5, point 5).

- Each example's own tests pass with ``rivet test tests`` run in the example (this venv, the
  example on PYTHONPATH), as its README says.
- The chat page is driven by a real headless Chromium when ``/usr/bin/chromium`` (Debian's
  ``chromium``) or another chromium on PATH exists: the page connects its WebSocket, sends a
  message, and the test checks the actor stored it and the page rendered it. Without Chromium that
  test is skipped, and the page is covered by the example's HTTP/WebSocket tests above.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import anyio
import pytest

from tests.new.helpers import REPO_ROOT, rivet

EXAMPLES = REPO_ROOT / "examples"
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "pyproject.toml").is_file())


def test_there_are_at_least_three_examples_with_readme_and_tests() -> None:
    assert {"chat", "lobby", "reminders"} <= set(NAMES)
    for name in NAMES:
        readme = (EXAMPLES / name / "README.md").read_text()
        assert "pip install -e .\nrivet dev\n" in readme, name
        assert list((EXAMPLES / name / "tests").glob("test_*.py")), name
        assert "[tool.rivet]" in (EXAMPLES / name / "pyproject.toml").read_text(), name


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=[pytest.mark.timing] if n == "reminders" else []) for n in NAMES])
def test_example_tests_pass(name: str) -> None:
    root = EXAMPLES / name
    proc = rivet("test", "tests", cwd=root, timeout=300, PYTHONPATH=str(root))
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert " 0 failed" in proc.stderr.splitlines()[-1]


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


@pytest.fixture
def chat_registry() -> Iterator[object]:
    root = str(EXAMPLES / "chat")
    sys.path.insert(0, root)
    try:
        from chat_app.registry import registry

        yield registry
    finally:
        sys.path.remove(root)
        for mod in [m for m in sys.modules if m == "chat_app" or m.startswith("chat_app.")]:
            del sys.modules[mod]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.timing
@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (Debian: apt-get install chromium); "
                    "the chat page is covered by examples/chat/tests over HTTP and WebSocket")
async def test_chat_page_in_headless_chromium(chat_registry: object, tmp_path: Path) -> None:
    from runtime import Client
    from runtime.drivers import MemoryDriver

    chromium = _chromium()
    assert chromium is not None
    async with chat_registry.serve(host="127.0.0.1", port=0, driver=MemoryDriver()) as server:  # type: ignore[attr-defined]
        async with Client(server.url, encoding="json") as client:
            room = client.get_or_create("room", "browser")
            # someone already in the room: the browser must receive the history and the new message
            ada = await room.websocket("/?name=ada")
            await ada.receive()  # history (empty)
            await ada.receive()  # ada joined
            await ada.send("hi from python")

            text = "hello from chromium"
            url = (f"{server.url}/gateway/room/request/?rvt-method=getOrCreate&rvt-key=browser"
                   f"&name=chromium&say={quote(text)}")
            cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                   "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                   f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom", url]
            env = {k: v for k, v in os.environ.items() if not k.startswith(("http_proxy", "https_proxy",
                                                                             "HTTP_PROXY", "HTTPS_PROXY"))}
            with anyio.fail_after(90):
                proc = await anyio.run_process(cmd, check=False, env=env)
            dom = proc.stdout.decode("utf-8", "replace")
            assert proc.returncode == 0, proc.stderr.decode()[-3000:]

            # the page's JS connected, received the history and sent its message over the WebSocket
            history = (await room.fetch("/history")).json()["messages"]
            assert [(m["name"], m["text"]) for m in history] == [("ada", "hi from python"), ("chromium", text)]
            # ... and rendered the history and its own message when the actor broadcast it back
            assert "ada: hi from python" in dom
            assert f"chromium: {text}" in dom
            assert 'data-state="open"' in dom or 'data-state="closed"' in dom
            # the python peer got the browser's message too (after its own, and the browser joining)
            seen: list[str] = []
            with anyio.fail_after(5):
                while not any(text in m for m in seen):
                    seen.append(await ada.receive())
            assert any('"name": "chromium"' in m and '"joined"' in m for m in seen)
            await ada.close()
