"""The inspector page (``/ui``) in a real headless browser (Debian ``chromium``), against a real
server with a populated actor; the screenshot is kept as ``artifacts/inspector.png``."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest

from driver_tests.helpers import eventually
from runtime.server.serve import serve
from tests.inspector.actors import registry
from tests.inspector.helpers import ROOT

pytestmark = [pytest.mark.anyio, pytest.mark.timing]

CHROMIUM = "/usr/bin/chromium"
ARTIFACT = ROOT / "artifacts" / "inspector.png"
ADMIN = "ui-admin-token"


async def chromium(url: str, *extra: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        proc = await asyncio.create_subprocess_exec(
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
            "--window-size=1280,900", "--virtual-time-budget=5000", *extra, url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 90)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
        return out.decode("utf-8", errors="replace")


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)")
async def test_inspector_page_in_headless_chromium() -> None:
    async with serve(registry, "127.0.0.1", 0, inspector_admin_token=ADMIN) as server:
        client = server.runtime.client()
        h = client.get_or_create("showcase", "acme")
        showcase = await h.resolve()
        await h.remind(3600, "renewal-reminder")
        await h.put("greeting", "hello-from-kv")
        await h.put("avatar", b"\x89PNG")
        plain = await client.get_or_create("counter", "plain").resolve()
        sleeper = client.get_or_create("counter", "sleeper")
        sleeper_id = await sleeper.resolve()
        await sleeper.nap()

        def asleep() -> None:
            assert sleeper_id not in server.runtime.manager.instances

        await eventually(asleep)
        async with h.connect(params={"user": "ada"}) as conn:
            conn.on("ping", lambda *a: None)
            await conn.put("seen", "yes")

            page = f"{server.url}/ui#token={ADMIN}&actor={showcase}"
            dom = await chromium(page, "--dump-dom")
            for text in ("Ada Lovelace", "ada@example.com", "vip",            # state tree
                         "fetch-profile", "send-welcome", "wait-a-day",       # workflow history
                         "welcome-mail-sent", "sleeping",
                         "renewal-reminder", "hello-from-kv", "bytes(4)",     # schedules, KV
                         '{"user":"ada"}', "ping"):                           # the connection
                assert text in dom, text
            assert "3 actors, 2 awake" in dom
            assert 'class="badge sleeping"' in dom and 'class="badge awake"' in dom
            assert sleeper_id not in server.runtime.manager.instances  # the list woke nobody

            ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory() as tmp:
                shot = Path(tmp) / "inspector.png"
                await chromium(page, f"--screenshot={shot}")
                assert shot.stat().st_size > 10_000
                shutil.copyfile(shot, ARTIFACT)

        dom = await chromium(f"{server.url}/ui#token={ADMIN}&actor={plain}", "--dump-dom")
        assert "workflow not enabled" in dom and 'class="k">count: </span>' in dom

        dom = await chromium(f"{server.url}/ui", "--dump-dom")  # no token: the page says how to get one
        assert "inspector-admin-token" in dom
