"""The file driver: the storage model in one SQLite database under the state directory.

Why it is built this way:

* **One worker thread.** ``sqlite3`` calls block (``fsync`` on every commit), so they run on a
  dedicated single-thread executor: the event loop never waits on the disk, the connection is
  only ever used from the thread that created it, and calls run in the order they were issued.
* **Durability.** WAL with ``synchronous=FULL`` fsyncs the log on every commit, so a write is
  durable once its ``await`` returns, and a crash (``kill -9``, power loss) can lose only writes
  that were never acknowledged. Each ``apply``/``create_actor``/``delete_actor`` is exactly one
  transaction, so nothing is ever half-applied.
* **One owner.** Two processes writing the same state directory would each believe they own the
  same actors. An exclusive ``flock`` on ``<dir>/lock`` held from ``open()`` to ``close()`` turns
  that into a clear error at start-up instead of silent split-brain.
* **No injection, no path tricks.** Actor ids, names, keys and KV bytes only ever travel as bound
  parameters; the only file names are the fixed ones below.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import functools
import json
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from runtime.drivers.base import UNSET, ActorRecord, Driver, _Unset
from runtime.drivers.memory import _check_limit, _to_alarm, _to_bytes, _to_key
from runtime.errors import DuplicateKey, StorageError

__all__ = ["FileDriver", "DB_NAME", "LOCK_NAME", "SCHEMA_VERSION"]

DB_NAME = "rivet.db"
LOCK_NAME = "lock"
SCHEMA_VERSION = 1
"""Stored in ``PRAGMA user_version``; bump it and add a step to ``_MIGRATIONS`` to change the schema."""

_T = TypeVar("_T")

# Each entry brings a database from version ``i`` to ``i + 1`` inside one transaction.
_MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE IF NOT EXISTS actors (
            actor_id   TEXT PRIMARY KEY,
            name       TEXT NOT NULL,
            key        TEXT NOT NULL,  -- the key parts as a JSON array (ASCII-only, canonical)
            created_at REAL NOT NULL,
            alarm_at   REAL
        )""",
        "CREATE UNIQUE INDEX IF NOT EXISTS actors_by_name_key ON actors (name, key)",
        "CREATE INDEX IF NOT EXISTS actors_by_alarm ON actors (alarm_at) WHERE alarm_at IS NOT NULL",
        # BLOB comparison is memcmp, so ORDER BY k is key-byte order (shorter prefix first).
        """CREATE TABLE IF NOT EXISTS kv (
            actor_id TEXT NOT NULL,
            k        BLOB NOT NULL,
            v        BLOB NOT NULL,
            PRIMARY KEY (actor_id, k)
        ) WITHOUT ROWID""",
    ),
]
assert len(_MIGRATIONS) == SCHEMA_VERSION

_ACTOR_COLUMNS = "actor_id, name, key, created_at"
_LIST_ALL = f"SELECT {_ACTOR_COLUMNS} FROM actors ORDER BY created_at, rowid"
_LIST_BY_NAME = f"SELECT {_ACTOR_COLUMNS} FROM actors WHERE name = ? ORDER BY created_at, rowid"
# Every scan shape as a fixed statement: the direction and bounds are chosen, never interpolated.
_SCAN: dict[tuple[bool, bool], str] = {
    (bounded, reverse): (
        "SELECT k, v FROM kv WHERE actor_id = ? AND k >= ?"
        + (" AND k < ?" if bounded else "")
        + (" ORDER BY k DESC" if reverse else " ORDER BY k ASC")
        + " LIMIT ?"
    )
    for bounded in (False, True)
    for reverse in (False, True)
}

# Primary result codes (the low byte of extended codes).
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 10, 11, 13, 14, 26


def _encode_key(key: tuple[str, ...]) -> str:
    # ASCII-only JSON is canonical (the UNIQUE index compares it as text) and can hold any str,
    # including NUL and lone surrogates that UTF-8 text columns would reject.
    return json.dumps(list(key), ensure_ascii=True, separators=(",", ":"))


def _decode_record(row: tuple[Any, ...]) -> ActorRecord:
    actor_id, name, key, created_at = row
    return ActorRecord(actor_id, name, tuple(json.loads(key)), created_at)


class FileDriver(Driver):
    """Persists everything in ``<path>/rivet.db``; survives restarts and ``kill -9``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(os.fspath(path)).absolute()
        self._executor: ThreadPoolExecutor | None = None
        # Touched only on the worker thread, between _open_sync and _close_sync.
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None

    @property
    def path(self) -> Path:
        """The state directory (absolute)."""
        return self._path

    @property
    def db_path(self) -> Path:
        return self._path / DB_NAME

    def __repr__(self) -> str:
        return f"FileDriver({str(self._path)!r})"

    # ---- plumbing --------------------------------------------------------------------------

    def _require_open(self) -> ThreadPoolExecutor:
        executor = self._executor
        if executor is None:
            raise StorageError(
                f"The file driver for {self._path} is not open; call open() first (or it was closed)"
            )
        return executor

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        executor = self._require_open()
        loop = asyncio.get_running_loop()
        # If the awaiting task is cancelled the job still runs to completion on the worker: a
        # cancelled write may or may not have been applied, but never partly.
        return await loop.run_in_executor(executor, functools.partial(self._guarded, fn, *args))

    def _guarded(self, fn: Callable[..., _T], *args: Any) -> _T:
        conn = self._conn
        if conn is None:
            raise StorageError(f"The file driver for {self._path} is closed")
        try:
            return fn(conn, *args)
        except (sqlite3.Error, OSError) as e:
            raise self._storage_error(e) from e

    @staticmethod
    def _transaction(conn: sqlite3.Connection, body: Callable[[], _T]) -> _T:
        # BEGIN IMMEDIATE takes the write lock up front, so a batch cannot fail half-way on a
        # lock upgrade; any exception (including DuplicateKey) rolls the whole batch back.
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may already have rolled back (e.g. on SQLITE_FULL)
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise
        return result

    def _storage_error(self, exc: BaseException) -> StorageError:
        """Say what went wrong with the state directory and what the operator can do about it."""
        where, db = self._path, self.db_path
        if isinstance(exc, sqlite3.Error):
            code = getattr(exc, "sqlite_errorcode", None)
            primary = code & 0xFF if isinstance(code, int) else None
            name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
            detail = f"{name}: {exc}"
            text = str(exc).lower()
            if primary in (_SQLITE_READONLY, _SQLITE_PERM) or "readonly" in text:
                kind = "readonly"
            elif primary == _SQLITE_FULL or "disk is full" in text:
                kind = "full"
            elif primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "is locked" in text:
                kind = "locked"
            elif (
                primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
                or "not a database" in text
                or "malformed" in text
            ):
                kind = "corrupt"
            elif primary == _SQLITE_CANTOPEN or "unable to open" in text:
                kind = "cantopen"
            elif primary == _SQLITE_IOERR or "i/o error" in text:
                kind = "ioerr"
            else:
                kind = "other"
        elif isinstance(exc, OSError):
            detail = f"{type(exc).__name__}: {exc}"
            kind = {
                errno.EACCES: "readonly",
                errno.EPERM: "readonly",
                errno.EROFS: "readonly",
                errno.ENOSPC: "full",
                errno.EDQUOT: "full",
                errno.EFBIG: "full",
                errno.ENOTDIR: "notdir",
                errno.EEXIST: "notdir",
                errno.EIO: "ioerr",
            }.get(exc.errno or 0, "other")
        else:
            detail, kind = f"{type(exc).__name__}: {exc}", "other"
        message = {
            "readonly": f"The state directory {where} is read-only or not writable by this process ({detail}); "
            "make it writable (check its permissions and mount) or use another state directory",
            "full": f"The disk holding the state directory {where} is full ({detail}); "
            "free some disk space and retry",
            "locked": f"The state database {db} is locked by another program ({detail}); "
            "close any other program using it and retry",
            "corrupt": f"The state database {db} is corrupt or is not a rivet state database ({detail}); "
            "restore it from a backup or use another state directory",
            "cantopen": f"The state database {db} cannot be opened ({detail}); "
            "check that the state directory exists and is accessible",
            "ioerr": f"A disk I/O error occurred in the state directory {where} ({detail}); "
            "check free disk space and the health of the disk, then retry",
            "notdir": f"The state directory {where} is not a directory ({detail}); "
            "remove that file or use another state directory",
            "other": f"The state storage in {where} failed ({detail}); "
            "check the state directory (disk space, permissions)",
        }[kind]
        return StorageError(message)

    # ---- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        if self._executor is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rivet-file-driver")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(executor, self._open_sync)
        except BaseException:
            # If we were cancelled, _open_sync may still finish and take the lock; queue a close
            # behind it so the directory is not left locked by a driver nobody holds.
            executor.submit(self._close_sync)
            executor.shutdown(wait=True)
            raise
        self._executor = executor

    def _open_sync(self) -> None:
        try:
            self._make_directory()
            self._acquire_lock()
            try:
                self._conn = self._connect()
            except BaseException:
                self._release_lock()
                raise
        except (sqlite3.Error, OSError) as e:
            raise self._storage_error(e) from e

    def _make_directory(self) -> None:
        if self._path.is_dir():
            return
        self._path.mkdir(parents=True, exist_ok=True)
        # Make the new directory entry itself durable, not just the files later created in it.
        fd = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _acquire_lock(self) -> None:
        fd = os.open(self._path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            finally:
                os.close(fd)
            raise StorageError(
                f"The state directory {self._path} is already in use by another rivet process "
                f"(pid {owner}); stop it or use another state directory"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except BaseException:
            os.close(fd)  # closing the descriptor also drops the flock
            raise
        self._lock_fd = fd

    def _release_lock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # drops the flock; the pid left in the file is only a hint

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; every write is an explicit BEGIN/COMMIT.
        conn = sqlite3.connect(self.db_path, isolation_level=None)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError(
                    f"The state directory {self._path} does not support SQLite's WAL mode "
                    f"(journal mode stayed {mode!r}); use a state directory on a local disk"
                )
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=5000")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"The state database {self.db_path} was written by a newer rivet (schema version "
                f"{version}, this one understands up to {SCHEMA_VERSION}); upgrade rivet or use "
                "another state directory"
            )
        for step in range(version, SCHEMA_VERSION):

            def run(step: int = step) -> None:
                for statement in _MIGRATIONS[step]:
                    conn.execute(statement)
                # user_version lives in the database header, so it commits with the step.
                conn.execute(f"PRAGMA user_version = {int(step) + 1}")

            self._transaction(conn, run)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        try:
            # Queued behind any call already submitted, so in-flight writes finish first.
            await loop.run_in_executor(executor, self._close_sync)
        finally:
            executor.shutdown(wait=True)

    def _close_sync(self) -> None:
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                conn.close()  # the last connection checkpoints the WAL into the database file
        except sqlite3.Error as e:
            raise self._storage_error(e) from e
        finally:
            self._release_lock()

    # ---- directory ---------------------------------------------------------------------------

    async def create_actor(
        self,
        record: ActorRecord,
        initial: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        key = _encode_key(_to_key(record.key))
        rows = [(record.actor_id, _to_bytes(k, "KV key"), _to_bytes(v, "KV value")) for k, v in initial]
        await self._call(self._create_actor_sync, record, key, rows)

    def _create_actor_sync(
        self, conn: sqlite3.Connection, record: ActorRecord, key: str, rows: list[tuple[str, bytes, bytes]]
    ) -> None:
        def body() -> None:
            taken = conn.execute("SELECT 1 FROM actors WHERE name = ? AND key = ?", (record.name, key))
            if taken.fetchone() is not None:
                raise DuplicateKey()
            if conn.execute("SELECT 1 FROM actors WHERE actor_id = ?", (record.actor_id,)).fetchone():
                raise ValueError(f"actor id {record.actor_id!r} is already in use")
            conn.execute(
                "INSERT INTO actors (actor_id, name, key, created_at, alarm_at) VALUES (?, ?, ?, ?, NULL)",
                (record.actor_id, record.name, key, float(record.created_at)),
            )
            conn.executemany("INSERT OR REPLACE INTO kv (actor_id, k, v) VALUES (?, ?, ?)", rows)

        self._transaction(conn, body)

    async def lookup(self, name: str, key: tuple[str, ...]) -> str | None:
        encoded = _encode_key(_to_key(key))
        return await self._call(self._lookup_sync, name, encoded)

    @staticmethod
    def _lookup_sync(conn: sqlite3.Connection, name: str, key: str) -> str | None:
        row = conn.execute("SELECT actor_id FROM actors WHERE name = ? AND key = ?", (name, key)).fetchone()
        return None if row is None else row[0]

    async def get_actor(self, actor_id: str) -> ActorRecord | None:
        return await self._call(self._get_actor_sync, actor_id)

    @staticmethod
    def _get_actor_sync(conn: sqlite3.Connection, actor_id: str) -> ActorRecord | None:
        row = conn.execute(f"SELECT {_ACTOR_COLUMNS} FROM actors WHERE actor_id = ?", (actor_id,)).fetchone()
        return None if row is None else _decode_record(row)

    async def list_actors(self, name: str | None = None) -> list[ActorRecord]:
        return await self._call(self._list_actors_sync, name)

    @staticmethod
    def _list_actors_sync(conn: sqlite3.Connection, name: str | None) -> list[ActorRecord]:
        rows = conn.execute(_LIST_ALL) if name is None else conn.execute(_LIST_BY_NAME, (name,))
        return [_decode_record(row) for row in rows]

    async def delete_actor(self, actor_id: str) -> None:
        await self._call(self._delete_actor_sync, actor_id)

    def _delete_actor_sync(self, conn: sqlite3.Connection, actor_id: str) -> None:
        def body() -> None:
            conn.execute("DELETE FROM kv WHERE actor_id = ?", (actor_id,))
            conn.execute("DELETE FROM actors WHERE actor_id = ?", (actor_id,))  # and its alarm

        self._transaction(conn, body)

    # ---- per-actor key-value -----------------------------------------------------------------

    async def get(self, actor_id: str, keys: Sequence[bytes]) -> list[bytes | None]:
        self._require_open()
        wanted = [_to_bytes(k, "KV key") for k in keys]
        if not wanted:
            return []
        return await self._call(self._get_sync, actor_id, wanted)

    @staticmethod
    def _get_sync(conn: sqlite3.Connection, actor_id: str, keys: list[bytes]) -> list[bytes | None]:
        # One statement per key keeps the parameter count bounded; all run back to back on the
        # single connection, and no other writer exists, so the result is one consistent view.
        out: list[bytes | None] = []
        for k in keys:
            row = conn.execute("SELECT v FROM kv WHERE actor_id = ? AND k = ?", (actor_id, k)).fetchone()
            out.append(None if row is None else bytes(row[0]))
        return out

    async def scan(
        self,
        actor_id: str,
        start: bytes,
        end: bytes | None,
        *,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        self._require_open()
        start = _to_bytes(start, "scan start")
        end = None if end is None else _to_bytes(end, "scan end")
        _check_limit(limit)
        if limit == 0 or (end is not None and end <= start):
            return []
        sql = _SCAN[(end is not None, bool(reverse))]
        params: tuple[Any, ...] = (actor_id, start) + (() if end is None else (end,))
        params += (-1 if limit is None else int(limit),)  # LIMIT -1: no limit
        return await self._call(self._scan_sync, sql, params)

    @staticmethod
    def _scan_sync(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[tuple[bytes, bytes]]:
        return [(bytes(k), bytes(v)) for k, v in conn.execute(sql, params)]

    async def apply(
        self,
        actor_id: str,
        puts: Sequence[tuple[bytes, bytes]] = (),
        deletes: Sequence[bytes] = (),
        delete_ranges: Sequence[tuple[bytes, bytes]] = (),
        alarm: float | None | _Unset = UNSET,
    ) -> None:
        self._require_open()
        # Everything is validated on the caller's side so a bad item fails before BEGIN.
        ranges = [
            (actor_id, _to_bytes(s, "range start"), _to_bytes(e, "range end")) for s, e in delete_ranges
        ]
        dels = [(actor_id, _to_bytes(k, "KV key")) for k in deletes]
        rows = [(actor_id, _to_bytes(k, "KV key"), _to_bytes(v, "KV value")) for k, v in puts]
        new_alarm = _to_alarm(alarm)
        if not (ranges or dels or rows) and new_alarm is UNSET:
            return
        await self._call(self._apply_sync, actor_id, ranges, dels, rows, new_alarm)

    def _apply_sync(
        self,
        conn: sqlite3.Connection,
        actor_id: str,
        ranges: list[tuple[str, bytes, bytes]],
        dels: list[tuple[str, bytes]],
        rows: list[tuple[str, bytes, bytes]],
        alarm: float | None | _Unset,
    ) -> None:
        def body() -> None:
            conn.executemany("DELETE FROM kv WHERE actor_id = ? AND k >= ? AND k < ?", ranges)
            conn.executemany("DELETE FROM kv WHERE actor_id = ? AND k = ?", dels)
            conn.executemany("INSERT OR REPLACE INTO kv (actor_id, k, v) VALUES (?, ?, ?)", rows)
            if alarm is not UNSET:
                conn.execute("UPDATE actors SET alarm_at = ? WHERE actor_id = ?", (alarm, actor_id))

        self._transaction(conn, body)

    # ---- alarms --------------------------------------------------------------------------------

    async def list_alarms(self) -> list[tuple[str, float]]:
        """Soonest first (ties by id)."""
        return await self._call(self._list_alarms_sync)

    @staticmethod
    def _list_alarms_sync(conn: sqlite3.Connection) -> list[tuple[str, float]]:
        rows = conn.execute(
            "SELECT actor_id, alarm_at FROM actors WHERE alarm_at IS NOT NULL ORDER BY alarm_at, actor_id"
        )
        return [(actor_id, float(at)) for actor_id, at in rows]
