"""Storage faults of the file driver: full disk, read-only directory, a database locked by another
process, and a second owner of the same state directory.

Each fault must reach the caller as ``driver.storage_error`` with a message that says what to do,
and must not corrupt anything: once the fault clears, the acknowledged state is intact
(``PRAGMA integrity_check`` and a read-back) and new writes work.

Full disk and read-only use a small tmpfs mounted for the test (``mount -t tmpfs -o size=...``,
then ``mount -o remount,ro``): that needs root, which is how this project's CI runs; elsewhere
those tests are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runtime import ActorError
from runtime.core import keys as K
from runtime.drivers import FileDriver
from runtime.errors import StorageError
from tests.reliability.actors import registry

pytestmark = pytest.mark.anyio

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _mount(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (the CI runs as root)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _remount(path: Path, mode: str) -> None:
    r = subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.fixture
def small_fs(tmp_path: Path):
    mnt = tmp_path / "mnt"
    _mount(mnt, "size=2m")
    try:
        yield mnt
    finally:
        _umount(mnt)


def _stored_state(state_dir: Path, actor_id: str) -> dict:
    """The actor's state as a separate reader of the database sees it (committed data only)."""
    conn = sqlite3.connect(state_dir / "rivet.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        row = conn.execute("SELECT v FROM kv WHERE actor_id = ? AND k = ?", (actor_id, K.RECORD)).fetchone()
        return K.unpack(bytes(row[0]))["state"]
    finally:
        conn.close()


def _assert_storage_error(exc: BaseException, *words: str) -> None:
    assert isinstance(exc, ActorError | StorageError), repr(exc)
    assert (exc.group, exc.code) == ("driver", "storage_error"), exc
    text = exc.message.lower()
    for w in words:
        assert w in text, exc.message


def _fill(mnt: Path) -> Path:
    junk = mnt / "junk"
    with open(junk, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return junk


async def test_full_disk_is_a_storage_error_and_corrupts_nothing(small_fs: Path):
    state_dir = small_fs / "state"
    async with registry.run(driver=FileDriver(state_dir)) as rt:
        h = rt.client().get_or_create("crash", "full")
        actor_id = await h.resolve()
        assert await h.durable("w", 1) == 1
        await h.batch(1, 32)
        junk = _fill(small_fs)
        failures = 0
        for i in range(2, 12):  # a few writes: the WAL may still have room for the first ones
            try:
                await h.big_batch(100 + i, 64, 2048)
            except ActorError as exc:
                _assert_storage_error(exc, "full", "free some disk space")
                failures += 1
        assert failures > 0, "a full disk never failed a write"
        with pytest.raises(ActorError) as info:
            for i in range(20):
                await h.durable("w", 100 + i)
        _assert_storage_error(info.value, "full")
        # a schedule that could not be written is not acknowledged and must not linger
        with pytest.raises(ActorError):
            for i in range(20):
                await h.sched(f"full-{i}", 0.2)
        await h.bump("t", 7)  # throttled: acknowledged, its save fails in the background
        await asyncio.sleep(0.5)
        # the fault clears; the throttled write whose save failed during the fault is saved, and
        # so is the next one, without any explicit save_state
        junk.unlink()
        await h.bump("t", 8)
        deadline = time.monotonic() + 5.0
        while _stored_state(state_dir, actor_id)["last"].get("t") != 8:
            assert time.monotonic() < deadline, "throttled saves never resumed after the disk fault cleared"
            await asyncio.sleep(0.05)
        assert await h.durable("w", 2) == 2
        snap = await h.snapshot()
        assert snap["state"]["durable"]["w"] == 2
        for bid, count in snap["batches"].items():
            assert count in (32, 64), (bid, count)  # nothing half-applied
        assert snap["batches"]["00000001"] == 32
    # and a restart reads it all back
    async with registry.run(driver=FileDriver(state_dir)) as rt:
        snap = await rt.client().get_or_create("crash", "full").snapshot()
        assert snap["state"]["durable"]["w"] == 2 and snap["state"]["last"]["t"] == 8
        assert snap["batches"]["00000001"] == 32


async def test_schedule_refused_by_a_full_disk_never_fires(small_fs: Path):
    state_dir = small_fs / "state"
    async with registry.run(driver=FileDriver(state_dir)) as rt:
        h = rt.client().get_or_create("crash", "sched-full")
        await h.durable("w", 1)
        junk = _fill(small_fs)
        refused = []
        for i in range(40):
            try:
                await h.big_batch(i, 64, 2048)  # use up what the WAL still had
            except ActorError:
                pass
            try:
                await h.sched(f"s{i}", 0.3)
            except ActorError as exc:
                _assert_storage_error(exc, "full")
                refused.append(f"s{i}")
        assert refused, "a full disk never refused a schedule"
        junk.unlink()
        await asyncio.sleep(0.8)
        await h.durable("w", 2)
        snap = await h.snapshot()
        for tag in refused:
            assert tag not in snap["pending"], f"refused schedule {tag} is still pending"
            assert tag not in snap["state"]["fired"], f"refused schedule {tag} fired"


async def test_read_only_state_directory(small_fs: Path):
    """Linux refuses to make a mount read-only while files on it are open for writing (EBUSY), so
    a running driver cannot see its directory turn read-only; what happens is a start on a
    read-only directory (a read-only mount, a restored backup, a container volume)."""
    state_dir = small_fs / "state"
    async with registry.run(driver=FileDriver(state_dir)) as rt:
        h = rt.client().get_or_create("crash", "ro")
        assert await h.durable("w", 1) == 1
        await h.batch(1, 32)
    _remount(small_fs, "ro")
    try:
        for _ in range(2):  # and again: a failed start leaves nothing behind that blocks the next
            with pytest.raises(StorageError) as err:
                async with registry.run(driver=FileDriver(state_dir)):
                    pass
            _assert_storage_error(err.value, "read-only", "writable")
    finally:
        _remount(small_fs, "rw")
    async with registry.run(driver=FileDriver(state_dir)) as rt:
        h = rt.client().get_or_create("crash", "ro")
        snap = await h.snapshot()
        assert snap["state"]["durable"]["w"] == 1
        assert snap["batches"] == {"00000001": 32}
        assert await h.durable("w", 2) == 2
    assert _stored_state(state_dir, await _actor_id(state_dir, "ro"))["durable"]["w"] == 2


async def _actor_id(state_dir: Path, key: str) -> str:
    conn = sqlite3.connect(state_dir / "rivet.db")
    try:
        return conn.execute("SELECT actor_id FROM actors WHERE name = 'crash' AND key = ?",
                            (f'["{key}"]',)).fetchone()[0]
    finally:
        conn.close()


async def test_read_only_directory_as_unprivileged_user(tmp_path: Path):
    """Permissions rather than a read-only mount: a process without write access (root bypasses
    chmod, so the child drops to ``nobody``) gets the same error at start-up."""
    if os.geteuid() != 0:
        pytest.skip("needs root to drop privileges to nobody")
    state_dir = tmp_path / "state"
    async with registry.run(driver=FileDriver(state_dir)) as rt:
        await rt.client().get_or_create("crash", "perm").durable("w", 1)
    os.chmod(tmp_path, 0o755)
    code = textwrap.dedent(f"""
        import asyncio, os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from runtime.drivers import FileDriver
        from runtime.errors import StorageError
        import runtime.drivers.file, sqlite3, concurrent.futures.thread  # noqa: before dropping privileges
        os.setgid(65534); os.setuid(65534)
        async def main():
            try:
                await FileDriver({str(state_dir)!r}).open()
            except StorageError as e:
                print("ERR", e.group, e.code, e.message)
            else:
                print("OPENED")
        asyncio.run(main())
    """)
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith("ERR driver storage_error"), child.stdout + child.stderr
    assert "read-only or not writable" in child.stdout
    async with registry.run(driver=FileDriver(state_dir)) as rt:
        assert (await rt.client().get_or_create("crash", "perm").snapshot())["state"]["durable"]["w"] == 1


@pytest.mark.timing
async def test_database_locked_by_another_process(tmp_path: Path):
    state_dir = tmp_path / "state"
    async with registry.run(driver=FileDriver(state_dir)) as rt:
        h = rt.client().get_or_create("crash", "locked")
        actor_id = await h.resolve()
        assert await h.durable("w", 1) == 1
        locker = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(f"""
                import sqlite3, sys, time
                c = sqlite3.connect({str(state_dir / 'rivet.db')!r}, isolation_level=None)
                c.execute("BEGIN IMMEDIATE")
                print("LOCKED", flush=True)
                time.sleep(120)
            """)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert locker.stdout is not None and locker.stdout.readline().strip() == "LOCKED"
            started = time.monotonic()
            with pytest.raises(ActorError) as info:
                await h.durable("w", 2)
            assert time.monotonic() - started < 30  # bounded by the driver's busy timeout
            _assert_storage_error(info.value, "locked", "close any other program")
            with pytest.raises(ActorError) as info:
                await h.batch(1, 32)
            _assert_storage_error(info.value, "locked")
            assert (await h.snapshot())["batches"] == {}  # readers are not blocked (WAL)
        finally:
            locker.send_signal(signal.SIGKILL)
            locker.wait(timeout=10)
            locker.stdout.close()  # type: ignore[union-attr]
        assert await h.durable("w", 3) == 3
        await h.batch(2, 32)
        assert _stored_state(state_dir, actor_id)["durable"]["w"] == 3
    async with registry.run(driver=FileDriver(state_dir)) as rt:
        snap = await rt.client().get_or_create("crash", "locked").snapshot()
        assert snap["state"]["durable"]["w"] == 3 and snap["batches"] == {"00000002": 32}


def _start_owner(state_dir: Path) -> subprocess.Popen[str]:
    """``registry.start()`` in a process of its own (it exits 0 on SIGTERM)."""
    owner = subprocess.Popen([sys.executable, str(HERE / "server_main.py"), str(state_dir), str(_free_port())],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT))
    assert owner.stderr is not None
    seen = ""
    while "rivet: serving" not in seen:
        line = owner.stderr.readline()
        assert line, seen  # the owner exited
        seen += line
    return owner


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    for f in (proc.stdout, proc.stderr):
        if f is not None:
            f.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_second_server_on_the_same_state_directory_is_refused(tmp_path: Path):
    state_dir = tmp_path / "state"
    owner = _start_owner(state_dir)
    try:
        second = subprocess.run(
            [sys.executable, str(HERE / "server_main.py"), str(state_dir), str(_free_port())],
            capture_output=True, text=True, timeout=60, cwd=str(ROOT),
        )
        assert second.returncode == 1, second.stderr
        assert f"already in use by another rivet process (pid {owner.pid})" in second.stderr, second.stderr
        assert "Traceback" not in second.stderr, second.stderr
        assert owner.poll() is None  # the owner keeps serving
    finally:
        _stop(owner)
    assert owner.returncode == 0


def test_second_rivet_dev_on_the_same_state_directory_is_refused(tmp_path: Path):
    if not (ROOT / "rivet_cli" / "dev_cmd.py").exists():
        pytest.skip("rivet dev does not exist yet")
    project = tmp_path / "proj"
    (project / "app").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "proj"\nversion = "0"\n\n'
                                            '[tool.rivet]\nregistry = "app.registry:registry"\n')
    (project / "app" / "__init__.py").write_text("")
    (project / "app" / "registry.py").write_text(
        "from runtime import actor, setup\n\nc = actor(state={'n': 0})\n\n\n@c.action\ndef get(c):\n"
        "    return c.state['n']\n\n\nregistry = setup(use={'c': c})\n"
    )
    state_dir = project / ".rivet"
    owner = _start_owner(state_dir)
    try:
        env = dict(os.environ, NO_COLOR="1")
        second = subprocess.run(
            [sys.executable, "-m", "rivet_cli", "dev", "--port", str(_free_port()), "--no-reload"],
            capture_output=True, text=True, timeout=60, cwd=str(project), env=env,
        )
        assert second.returncode != 0, second.stdout + second.stderr
        assert f"pid {owner.pid}" in second.stderr, second.stderr
        assert owner.poll() is None
    finally:
        _stop(owner)
