"""Both storage drivers against the same expectations, plus what only the file driver can do
(restart, the directory lock, failing disks).

The core relies on the memory driver behaving exactly like the file driver, so every behavioural
test runs on both.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from runtime.drivers.base import UNSET, ActorRecord, Driver
from runtime.drivers.file import DB_NAME, LOCK_NAME, FileDriver
from runtime.drivers.memory import MemoryDriver
from runtime.errors import DuplicateKey, StorageError

pytestmark = pytest.mark.anyio

REPO_ROOT = Path(__file__).resolve().parents[2]
ALLOWED_FILES = {LOCK_NAME, DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_driver(kind: str, path: Path) -> Driver:
    return MemoryDriver() if kind == "memory" else FileDriver(path)


@pytest.fixture(params=["memory", "file"])
async def driver(request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: str) -> AsyncIterator[Driver]:
    d = make_driver(request.param, tmp_path / "state")
    await d.open()
    try:
        yield d
    finally:
        await d.close()


def rec(
    actor_id: str, name: str = "counter", key: tuple[str, ...] = ("a",), created_at: float = 1.0
) -> ActorRecord:
    return ActorRecord(actor_id=actor_id, name=name, key=key, created_at=created_at)


# ---- directory -----------------------------------------------------------------------------------


async def test_create_lookup_get_and_list(driver: Driver) -> None:
    a = rec("id-a", "counter", ("a",), created_at=30.0)
    b = rec("id-b", "counter", ("b", "x"), created_at=10.0)
    c = rec("id-c", "chat", ("a",), created_at=20.0)  # same key, other name: a different actor
    d = rec("id-d", "counter", (), created_at=40.0)  # the empty key is a key too
    for r in (a, b, c, d):
        await driver.create_actor(r)

    assert await driver.lookup("counter", ("a",)) == "id-a"
    assert await driver.lookup("counter", ("b", "x")) == "id-b"
    assert await driver.lookup("chat", ("a",)) == "id-c"
    assert await driver.lookup("counter", ()) == "id-d"
    # Key parts are compared as a tuple, not as joined text.
    assert await driver.lookup("counter", ("bx",)) is None
    assert await driver.lookup("counter", ("b", "x", "")) is None
    assert await driver.lookup("counter", ("b",)) is None
    assert await driver.lookup("nope", ("a",)) is None

    assert await driver.get_actor("id-b") == b
    got = await driver.get_actor("id-b")
    assert got is not None and got.key == ("b", "x") and isinstance(got.key, tuple)
    assert await driver.get_actor("missing") is None

    assert [r.actor_id for r in await driver.list_actors()] == ["id-b", "id-c", "id-a", "id-d"]
    assert await driver.list_actors("counter") == [b, a, d]
    assert await driver.list_actors("chat") == [c]
    assert await driver.list_actors("nope") == []


async def test_list_actors_keeps_creation_order_on_equal_times(driver: Driver) -> None:
    for i in (3, 1, 2):
        await driver.create_actor(rec(f"id-{i}", key=(str(i),), created_at=5.0))
    assert [r.actor_id for r in await driver.list_actors()] == ["id-3", "id-1", "id-2"]


async def test_duplicate_key_is_rejected_and_writes_nothing(driver: Driver) -> None:
    await driver.create_actor(rec("id-1", key=("k",)), initial=[(b"s", b"first")])
    with pytest.raises(DuplicateKey) as info:
        await driver.create_actor(rec("id-2", key=("k",)), initial=[(b"s", b"second")])
    assert info.value.group == "actor" and info.value.code == "duplicate_key"

    assert await driver.lookup("counter", ("k",)) == "id-1"
    assert await driver.get_actor("id-2") is None
    assert await driver.get("id-2", [b"s"]) == [None]
    assert await driver.get("id-1", [b"s"]) == [b"first"]
    assert [r.actor_id for r in await driver.list_actors()] == ["id-1"]


async def test_delete_frees_the_key_and_removes_rows_and_alarm(driver: Driver) -> None:
    await driver.create_actor(rec("old", key=("room",)), initial=[(b"\x01", b"state"), (b"\x04a", b"1")])
    await driver.apply("old", puts=[(b"\x04b", b"2")], alarm=123.5)
    await driver.create_actor(rec("other", key=("other",)), initial=[(b"\x01", b"keep")])
    await driver.apply("other", alarm=50.0)
    assert await driver.list_alarms() == [("other", 50.0), ("old", 123.5)]

    await driver.delete_actor("old")

    assert await driver.get_actor("old") is None
    assert await driver.lookup("counter", ("room",)) is None
    assert await driver.get("old", [b"\x01", b"\x04a", b"\x04b"]) == [None, None, None]
    assert await driver.scan("old", b"", None) == []
    assert await driver.list_alarms() == [("other", 50.0)]
    assert [r.actor_id for r in await driver.list_actors()] == ["other"]
    # Neighbours are untouched.
    assert await driver.get("other", [b"\x01"]) == [b"keep"]

    # The key names a new actor with fresh state.
    await driver.create_actor(rec("new", key=("room",), created_at=2.0), initial=[(b"\x01", b"fresh")])
    assert await driver.lookup("counter", ("room",)) == "new"
    assert await driver.scan("new", b"", None) == [(b"\x01", b"fresh")]
    assert await driver.get("old", [b"\x01"]) == [None]

    await driver.delete_actor("never-existed")  # ignored
    await driver.delete_actor("old")  # twice: ignored
    assert [r.actor_id for r in await driver.list_actors()] == ["other", "new"]


# ---- key-value -------------------------------------------------------------------------------------


async def test_get_returns_values_in_request_order(driver: Driver) -> None:
    await driver.create_actor(rec("a1"), initial=[(b"b", b"B"), (b"a", b"A"), (b"empty", b"")])
    assert await driver.get("a1", [b"b", b"missing", b"a", b"b", b"empty"]) == [b"B", None, b"A", b"B", b""]
    assert await driver.get("a1", []) == []
    assert await driver.get("unknown-actor", [b"a"]) == [None]


SCAN_KEYS = [
    b"",
    b"\x00",
    b"a",
    b"a\x00",
    b"a\xff",
    b"ab",
    b"abc",
    b"b",
    b"\x7f",
    b"\xff",
    b"\xff\x00",
    b"\xff\xff",
]


async def test_scan_orders_by_key_bytes_with_bounds(driver: Driver) -> None:
    shuffled = SCAN_KEYS[:]
    random.Random(7).shuffle(shuffled)
    await driver.create_actor(rec("s"))
    await driver.apply("s", puts=[(k, b"v" + k) for k in shuffled])
    await driver.create_actor(rec("t", key=("t",)))
    await driver.apply("t", puts=[(b"a", b"other actor"), (b"aa", b"other actor")])

    ordered = sorted(SCAN_KEYS)
    # The expectation itself: plain unsigned bytes order, a prefix before its extensions.
    assert ordered == [
        b"",
        b"\x00",
        b"a",
        b"a\x00",
        b"ab",
        b"abc",
        b"a\xff",
        b"b",
        b"\x7f",
        b"\xff",
        b"\xff\x00",
        b"\xff\xff",
    ]

    async def keys(start: bytes, end: bytes | None, **kw: object) -> list[bytes]:
        rows = await driver.scan("s", start, end, **kw)  # type: ignore[arg-type]
        assert all(v == b"v" + k for k, v in rows)
        return [k for k, _ in rows]

    assert await keys(b"", None) == ordered
    # Start inclusive, end exclusive; a key is sorted before every key it is a prefix of.
    assert await keys(b"a", b"b") == [b"a", b"a\x00", b"ab", b"abc", b"a\xff"]
    assert await keys(b"a\x00", b"ab") == [b"a\x00"]
    assert await keys(b"abc\x00", b"b") == [b"a\xff"]
    assert await keys(b"ab", b"abc") == [b"ab"]
    assert await keys(b"ab", b"abc\x00") == [b"ab", b"abc"]
    assert await keys(b"\xff", None) == [b"\xff", b"\xff\x00", b"\xff\xff"]
    assert await keys(b"\xff\x01", None) == [b"\xff\xff"]
    assert await keys(b"\xff\xff\x00", None) == []
    assert await keys(b"\x00", b"a") == [b"\x00"]
    assert await keys(b"b", b"\xff") == [b"b", b"\x7f"]
    # Empty and inverted ranges.
    assert await keys(b"a", b"a") == []
    assert await keys(b"b", b"a") == []
    # Reverse and limit.
    assert await keys(b"", None, reverse=True) == ordered[::-1]
    assert await keys(b"a", b"b", reverse=True) == [b"a\xff", b"abc", b"ab", b"a\x00", b"a"]
    assert await keys(b"a", b"b", limit=2) == [b"a", b"a\x00"]
    assert await keys(b"a", b"b", reverse=True, limit=2) == [b"a\xff", b"abc"]
    assert await keys(b"a", None, limit=100) == [k for k in ordered if k >= b"a"]
    assert await keys(b"a", None, limit=0) == []
    assert await keys(b"\xff", None, reverse=True, limit=1) == [b"\xff\xff"]
    # Other actors never leak in, unknown actors are empty.
    assert await driver.scan("t", b"", None) == [(b"a", b"other actor"), (b"aa", b"other actor")]
    assert await driver.scan("nobody", b"", None) == []


async def test_scan_thousands_of_keys(driver: Driver) -> None:
    rng = random.Random(42)
    keys = list({rng.randbytes(rng.randint(0, 12)) for _ in range(3000)})
    await driver.create_actor(rec("big"))
    for i in range(0, len(keys), 128):
        await driver.apply("big", puts=[(k, k[::-1]) for k in keys[i : i + 128]])
    ordered = sorted(keys)
    assert [k for k, _ in await driver.scan("big", b"", None)] == ordered
    assert await driver.scan("big", b"", None, reverse=True, limit=3) == [
        (k, k[::-1]) for k in ordered[:-4:-1]
    ]

    lo, hi = ordered[1000], ordered[2000]
    await driver.apply("big", delete_ranges=[(lo, hi)])
    remaining = ordered[:1000] + ordered[2000:]
    assert [k for k, _ in await driver.scan("big", b"", None)] == remaining
    assert await driver.get("big", [lo, hi]) == [None, hi[::-1]]


async def test_apply_order_range_deletes_then_deletes_then_puts(driver: Driver) -> None:
    await driver.create_actor(rec("x"), initial=[(b"k1", b"1"), (b"k2", b"2"), (b"k3", b"3"), (b"z", b"z")])
    await driver.apply(
        "x",
        delete_ranges=[(b"k", b"l")],  # removes k1..k3
        deletes=[b"z", b"k9"],  # k9 first, then put again below
        puts=[(b"k2", b"new"), (b"k9", b"nine"), (b"k9", b"nine-last")],  # last put of a key wins
    )
    assert await driver.scan("x", b"", None) == [(b"k2", b"new"), (b"k9", b"nine-last")]

    await driver.apply("x", deletes=[b"k2"], puts=[(b"k2", b"back")])
    assert await driver.get("x", [b"k2"]) == [b"back"]
    await driver.apply("x")  # an empty batch is a no-op
    assert await driver.scan("x", b"", None) == [(b"k2", b"back"), (b"k9", b"nine-last")]


async def test_apply_validates_the_whole_batch_before_writing(driver: Driver) -> None:
    await driver.create_actor(rec("x"), initial=[(b"a", b"1")])
    with pytest.raises(TypeError):
        await driver.apply("x", puts=[(b"b", b"2"), (b"c", "not bytes")], deletes=[b"a"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        await driver.apply("x", puts=[(b"b", b"2")], alarm="soon")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await driver.apply("x", deletes=[b"a", 5])  # type: ignore[list-item]
    assert await driver.scan("x", b"", None) == [(b"a", b"1")]
    assert await driver.list_alarms() == []
    # bytearray / memoryview are accepted and stored as bytes.
    await driver.apply("x", puts=[(bytearray(b"b"), memoryview(b"2"))])  # type: ignore[list-item]
    assert await driver.get("x", [b"b"]) == [b"2"]
    assert type((await driver.get("x", [b"b"]))[0]) is bytes


async def test_alarms_set_keep_and_clear(driver: Driver) -> None:
    for i, name in enumerate(["a", "b", "c"]):
        await driver.create_actor(rec(name, key=(name,), created_at=float(i)))
    assert await driver.list_alarms() == []

    await driver.apply("a", alarm=500.25)
    await driver.apply("b", alarm=100)  # an int is stored as a float
    await driver.apply("c", alarm=500.25)
    assert await driver.list_alarms() == [("b", 100.0), ("a", 500.25), ("c", 500.25)]
    assert all(type(t) is float for _, t in await driver.list_alarms())

    await driver.apply("a", puts=[(b"k", b"v")])  # UNSET by default: alarm kept
    await driver.apply("a", alarm=UNSET)
    assert ("a", 500.25) in await driver.list_alarms()

    await driver.apply("a", alarm=50.0)  # moved
    await driver.apply("c", alarm=None)  # cleared
    assert await driver.list_alarms() == [("a", 50.0), ("b", 100.0)]
    await driver.apply("c", alarm=None)  # clearing twice is fine
    # No directory entry, no alarm (the alarm belongs to the actor record).
    await driver.apply("ghost", alarm=1.0)
    assert await driver.list_alarms() == [("a", 50.0), ("b", 100.0)]


async def test_nothing_outside_bound_parameters(driver: Driver, tmp_path: Path) -> None:
    """Hostile names, keys and ids round-trip unchanged and create no files anywhere."""
    nasty_parts = (
        "../../etc/passwd",
        "a'; DROP TABLE actors;--",
        '"); DELETE FROM kv; --',
        "\x00",
        "",
        "/",
        "ü😀漢字" * 40,
        "\ud800",  # a lone surrogate is still a str
    )
    name = "x'); DROP TABLE kv;--"
    actor_id = "../../../tmp/evil'; DROP TABLE actors;--"
    record = rec(actor_id, name=name, key=nasty_parts)
    await driver.create_actor(record, initial=[(b"../../etc/passwd", b"'; DROP TABLE kv;--")])
    await driver.create_actor(rec("plain", name="counter", key=("../../etc/passwd",)))

    assert await driver.lookup(name, nasty_parts) == actor_id
    assert await driver.lookup(name, nasty_parts[:-1]) is None
    assert await driver.get_actor(actor_id) == record
    assert await driver.list_actors(name) == [record]
    assert await driver.lookup("counter", ("../../etc/passwd",)) == "plain"
    assert await driver.get(actor_id, [b"../../etc/passwd"]) == [b"'; DROP TABLE kv;--"]
    await driver.apply(actor_id, puts=[(b"\x00'--", b"\x00")], alarm=9.0)
    assert await driver.scan(actor_id, b"", None) == [
        (b"\x00'--", b"\x00"),
        (b"../../etc/passwd", b"'; DROP TABLE kv;--"),
    ]
    assert await driver.list_alarms() == [(actor_id, 9.0)]
    assert len(await driver.list_actors()) == 2  # both tables still there

    # The only files are the driver's own, inside the state directory.
    assert sorted(p.name for p in tmp_path.iterdir()) == (["state"] if isinstance(driver, FileDriver) else [])
    if isinstance(driver, FileDriver):
        assert {p.name for p in (tmp_path / "state").iterdir()} <= ALLOWED_FILES
        assert not any(p.is_dir() for p in (tmp_path / "state").iterdir())


async def test_calls_outside_open_close_fail(driver: Driver) -> None:
    await driver.create_actor(rec("a"), initial=[(b"k", b"v")])
    await driver.close()
    await driver.close()  # idempotent
    for call in (
        driver.get("a", [b"k"]),
        driver.get("a", []),
        driver.scan("a", b"", None),
        driver.apply("a", puts=[(b"k", b"w")]),
        driver.apply("a"),
        driver.lookup("counter", ("a",)),
        driver.list_alarms(),
    ):
        with pytest.raises(StorageError, match="not open"):
            await call
    # The same instance can be opened again and still has everything.
    await driver.open()
    assert await driver.get("a", [b"k"]) == [b"v"]
    assert await driver.lookup("counter", ("a",)) == "a"


async def test_key_parts_must_be_strings(driver: Driver) -> None:
    with pytest.raises(TypeError):
        await driver.create_actor(rec("a", key=(1,)))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await driver.lookup("counter", (b"a",))  # type: ignore[arg-type]
    assert await driver.list_actors() == []


async def test_concurrent_batches_all_land(driver: Driver) -> None:
    await driver.create_actor(rec("c"))
    await asyncio.gather(*(driver.apply("c", puts=[(b"%04d" % i, b"%d" % i)]) for i in range(200)))
    rows = await driver.scan("c", b"", None)
    assert rows == [(b"%04d" % i, b"%d" % i) for i in range(200)]


# ---- file driver only: threading and persistence ----------------------------------------------------------------


def _driver_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("rivet-file-driver")]


async def test_file_driver_uses_one_worker_thread_until_close(tmp_path: Path) -> None:
    before = _driver_threads()
    d = FileDriver(tmp_path / "state")
    await d.open()
    await asyncio.gather(*(d.list_actors() for _ in range(20)))
    workers = [t for t in _driver_threads() if t not in before]
    assert len(workers) == 1 and workers[0] is not threading.current_thread()
    await d.close()
    assert not workers[0].is_alive()


async def test_file_driver_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "state"  # parents are created
    first = FileDriver(str(path))  # str or PathLike
    await first.open()
    await first.create_actor(rec("a", key=("one",), created_at=1.5), initial=[(b"\x01", b"state-a")])
    await first.create_actor(rec("b", name="chat", key=("two", "parts"), created_at=2.5))
    await first.create_actor(rec("gone", key=("gone",), created_at=3.5), initial=[(b"x", b"y")])
    await first.apply("a", puts=[(b"\x04k", b"v"), (b"\x04\xff", b"\xff")], alarm=99.5)
    await first.apply("b", puts=[(b"q", b"r")], deletes=[b"nothing"])
    await first.delete_actor("gone")
    await first.close()
    assert not (path / f"{DB_NAME}-wal").exists() or (path / f"{DB_NAME}-wal").stat().st_size == 0

    second = FileDriver(path)
    await second.open()
    try:
        assert await second.list_actors() == [
            rec("a", key=("one",), created_at=1.5),
            rec("b", name="chat", key=("two", "parts"), created_at=2.5),
        ]
        assert await second.lookup("chat", ("two", "parts")) == "b"
        assert await second.lookup("counter", ("gone",)) is None
        assert await second.get("gone", [b"x"]) == [None]
        assert await second.scan("a", b"", None) == [
            (b"\x01", b"state-a"),
            (b"\x04k", b"v"),
            (b"\x04\xff", b"\xff"),
        ]
        assert await second.scan("b", b"", None) == [(b"q", b"r")]
        assert await second.list_alarms() == [("a", 99.5)]
        with contextlib.closing(sqlite3.connect(path / DB_NAME)) as raw:
            assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        await second.close()


def _run_child(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=str(REPO_ROOT),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def test_file_driver_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "state"
    child = _run_child(
        f"""
        import asyncio, os, signal
        from runtime.drivers.base import ActorRecord
        from runtime.drivers.file import FileDriver

        async def main():
            d = FileDriver({str(path)!r})
            await d.open()
            await d.create_actor(ActorRecord("k9", "counter", ("x",), 1.0), [(b"s", b"0")])
            for i in range(50):
                await d.apply("k9", puts=[(b"s", str(i).encode())], alarm=float(i))
            print("acked", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # no close(), no checkpoint, lock still held

        asyncio.run(main())
        """
    )
    assert child.returncode == -9, child.stderr
    assert child.stdout.strip() == "acked"

    d = FileDriver(path)
    await d.open()  # the dead process's lock is gone with it
    try:
        assert await d.lookup("counter", ("x",)) == "k9"
        assert await d.get("k9", [b"s"]) == [b"49"]
        assert await d.list_alarms() == [("k9", 49.0)]
    finally:
        await d.close()


# ---- file driver only: one owner per directory ---------------------------------------------------


async def test_file_driver_lock_in_one_process(tmp_path: Path) -> None:
    path = tmp_path / "state"
    owner = FileDriver(path)
    await owner.open()
    await owner.create_actor(rec("a"))

    for _ in range(2):  # a failed attempt must not release the owner's lock
        intruder = FileDriver(path)
        with pytest.raises(StorageError) as info:
            await intruder.open()
        message = info.value.message
        assert str(path) in message
        assert f"(pid {os.getpid()})" in message
        assert "already in use by another rivet process" in message
        await intruder.close()  # closing a never-opened driver is harmless

    assert (path / LOCK_NAME).read_text().strip() == str(os.getpid())
    assert await owner.lookup("counter", ("a",)) == "a"  # the owner is unaffected
    await owner.close()

    again = FileDriver(path)
    await again.open()  # released by close(), immediately reusable
    try:
        assert await again.lookup("counter", ("a",)) == "a"
    finally:
        await again.close()


async def test_file_driver_lock_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "state"
    owner = FileDriver(path)
    await owner.open()
    try:
        child = _run_child(
            f"""
            import asyncio
            from runtime.drivers.file import FileDriver
            from runtime.errors import StorageError

            async def main():
                try:
                    await FileDriver({str(path)!r}).open()
                except StorageError as e:
                    print(e.message)
                else:
                    print("OPENED")

            asyncio.run(main())
            """
        )
        assert child.returncode == 0, child.stderr
        assert child.stdout.strip() == (
            f"The state directory {path} is already in use by another rivet process "
            f"(pid {os.getpid()}); stop it or use another state directory"
        )
    finally:
        await owner.close()


# ---- file driver only: failing storage -----------------------------------------------------------


@contextlib.contextmanager
def unprivileged() -> Iterator[None]:
    """Root ignores file permissions; drop to ``nobody`` (euid/egid only) so a chmod really bites.

    glibc applies seteuid to every thread, so the driver's worker thread is affected as well.
    """
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.fixture
def traversable_dir() -> Iterator[Path]:
    # pytest's tmp_path lives under a 0700 directory that ``nobody`` cannot enter; use a fresh
    # world-traversable one so the only permission that matters is the one the test sets.
    base = Path(tempfile.mkdtemp(prefix="rivet-driver-test-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        for p in [base, *base.rglob("*")]:
            with contextlib.suppress(OSError):
                p.chmod(0o777 if p.is_dir() else 0o666)
        shutil.rmtree(base, ignore_errors=True)


async def _populate(path: Path) -> None:
    d = FileDriver(path)
    await d.open()
    await d.create_actor(rec("a"), initial=[(b"k", b"v")])
    await d.close()


async def test_file_driver_read_only_directory(traversable_dir: Path) -> None:
    path = traversable_dir / "state"
    await _populate(path)
    for p in path.iterdir():
        p.chmod(0o444)
    path.chmod(0o555)

    # Nothing in the directory is writable: refused before SQLite is even reached.
    with unprivileged():
        with pytest.raises(StorageError) as info:
            await FileDriver(path).open()
    assert isinstance(info.value.__cause__, PermissionError)
    assert info.value.message.startswith(f"The state directory {path} is read-only or not writable")
    assert "make it writable" in info.value.message

    # The lock file is writable but the database and directory are not: SQLite's own error.
    path.chmod(0o755)
    (path / LOCK_NAME).chmod(0o666)
    path.chmod(0o555)
    with unprivileged():
        with pytest.raises(StorageError) as info:
            await FileDriver(path).open()
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    assert info.value.message.startswith(f"The state directory {path} is read-only or not writable")
    assert "readonly database" in info.value.message

    # Nothing was changed, and once writable again the data is all there.
    path.chmod(0o755)
    for p in path.iterdir():
        p.chmod(0o644)
    d = FileDriver(path)
    await d.open()
    try:
        assert await d.get("a", [b"k"]) == [b"v"]
    finally:
        await d.close()


async def test_file_driver_write_failure_rolls_back_the_whole_batch(tmp_path: Path) -> None:
    """A real failed write (file size limit → EFBIG) mid-batch: nothing of it lands."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if hard != resource.RLIM_INFINITY and hard < 1 << 30:
        pytest.skip(f"RLIMIT_FSIZE hard limit {hard} is too low to run this test")
    path = tmp_path / "state"
    d = FileDriver(path)
    await d.open()
    try:
        await d.create_actor(rec("a"), initial=[(b"a", b"1"), (b"b", b"2")])
        used = sum(p.stat().st_size for p in path.iterdir())
        big = os.urandom(2_000_000)
        # Python ignores SIGXFSZ, so going over the limit is an EFBIG write error, not a signal.
        resource.setrlimit(resource.RLIMIT_FSIZE, (used + 100_000, hard))
        try:
            with pytest.raises(StorageError) as info:
                await d.apply(
                    "a", delete_ranges=[(b"a", b"b")], deletes=[b"b"], puts=[(b"c", big)], alarm=5.0
                )
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        assert isinstance(info.value.__cause__, sqlite3.Error)
        assert str(path) in info.value.message
        assert info.value.message.startswith(("A disk I/O error occurred", "The disk holding"))

        assert await d.scan("a", b"", None) == [(b"a", b"1"), (b"b", b"2")]
        assert await d.list_alarms() == []
        # The driver keeps working once the condition is gone.
        await d.apply("a", puts=[(b"c", big)], alarm=5.0)
        assert await d.get("a", [b"c"]) == [big]
    finally:
        await d.close()
    d = FileDriver(path)
    await d.open()
    try:
        assert [k for k, _ in await d.scan("a", b"", None)] == [b"a", b"b", b"c"]
        assert await d.list_alarms() == [("a", 5.0)]
    finally:
        await d.close()


async def test_file_driver_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "state"
    path.mkdir()
    (path / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError) as info:
        await FileDriver(path).open()
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    assert info.value.message.startswith(f"The state database {path / DB_NAME} is corrupt or is not a rivet")
    # A failed open releases the lock: fixing the file is enough to start.
    (path / DB_NAME).unlink()
    d = FileDriver(path)
    await d.open()
    await d.close()


async def test_file_driver_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "state"
    await _populate(path)
    with contextlib.closing(sqlite3.connect(path / DB_NAME)) as raw:
        raw.execute("PRAGMA user_version = 7")
    with pytest.raises(StorageError, match="newer rivet") as info:
        await FileDriver(path).open()
    assert "schema version 7" in info.value.message


async def test_file_driver_path_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "state"
    path.write_text("not a directory")
    with pytest.raises(StorageError) as info:
        await FileDriver(path).open()
    assert info.value.message.startswith(f"The state directory {path} is not a directory")
    assert path.read_text() == "not a directory"


async def test_file_driver_cancelled_open_leaves_the_directory_unlocked(tmp_path: Path) -> None:
    path = tmp_path / "state"
    task = asyncio.ensure_future(FileDriver(path).open())
    await asyncio.sleep(0)  # the open job is now queued or running on the worker
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    d = FileDriver(path)
    await d.open()
    await d.close()
