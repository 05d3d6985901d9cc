"""The in-memory driver: the same storage model as the file driver, kept in dicts.

It exists so that tests and ``registry.run()`` get the exact semantics of the file driver (ordering,
atomicity, duplicate keys, alarms) without touching the disk. Anything that behaves differently
here would let bugs pass in-memory tests and appear only in production, so each method mirrors
:class:`runtime.drivers.file.FileDriver` rather than doing what is merely convenient for dicts.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from runtime.drivers.base import UNSET, ActorRecord, Driver, _Unset
from runtime.errors import DuplicateKey, StorageError

__all__ = ["MemoryDriver"]


def _to_bytes(value: object, what: str) -> bytes:
    # ``bytes(x)`` alone would turn an int into zero bytes and reject str only by accident; be
    # explicit so a wrong type fails loudly *before* anything is written.
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


def _to_key(key: Sequence[str]) -> tuple[str, ...]:
    parts = tuple(key)
    for part in parts:
        if not isinstance(part, str):
            raise TypeError(f"actor key parts must be str, not {type(part).__name__}")
    return parts


def _to_alarm(alarm: object) -> float | None | _Unset:
    if alarm is UNSET or alarm is None:
        return alarm  # type: ignore[return-value]
    if isinstance(alarm, bool) or not isinstance(alarm, (int, float)):
        raise TypeError(f"alarm must be a float, None or UNSET, not {type(alarm).__name__}")
    return float(alarm)


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, not {limit}")


class _Space:
    """One actor's KV rows: a dict for point lookups plus a sorted key list for range scans."""

    __slots__ = ("values", "keys")

    def __init__(self) -> None:
        self.values: dict[bytes, bytes] = {}
        self.keys: list[bytes] = []  # sorted by key bytes, same order as SQLite's memcmp on BLOBs

    def put(self, key: bytes, value: bytes) -> None:
        if key not in self.values:
            bisect.insort(self.keys, key)
        self.values[key] = value

    def delete(self, key: bytes) -> None:
        if self.values.pop(key, None) is not None:
            del self.keys[bisect.bisect_left(self.keys, key)]

    def bounds(self, start: bytes, end: bytes | None) -> tuple[int, int]:
        lo = bisect.bisect_left(self.keys, start)
        hi = len(self.keys) if end is None else bisect.bisect_left(self.keys, end)
        return lo, max(lo, hi)

    def delete_range(self, start: bytes, end: bytes) -> None:
        lo, hi = self.bounds(start, end)
        for key in self.keys[lo:hi]:
            del self.values[key]
        del self.keys[lo:hi]


class MemoryDriver(Driver):
    """Keeps everything in this process; nothing survives its exit.

    Data survives ``close()`` followed by ``open()`` on the same instance, so a runtime can be
    stopped and started again within one process and find its actors asleep, as it would with
    the file driver.
    """

    def __init__(self) -> None:
        self._open = False
        self._actors: dict[str, ActorRecord] = {}  # insertion order breaks created_at ties
        self._directory: dict[tuple[str, tuple[str, ...]], str] = {}
        self._spaces: dict[str, _Space] = {}
        self._alarms: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"MemoryDriver(actors={len(self._actors)})"

    # ---- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    def _check_open(self) -> None:
        # Mirrors the file driver, so a core that uses a driver outside open()/close() fails in
        # in-memory tests too instead of only against a real state directory.
        if not self._open:
            raise StorageError("The memory driver is not open; call open() first (or it was closed)")

    # ---- directory -----------------------------------------------------------------------

    async def create_actor(
        self,
        record: ActorRecord,
        initial: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        self._check_open()
        key = _to_key(record.key)
        rows = [(_to_bytes(k, "KV key"), _to_bytes(v, "KV value")) for k, v in initial]
        if (record.name, key) in self._directory:
            raise DuplicateKey()
        if record.actor_id in self._actors:
            raise ValueError(f"actor id {record.actor_id!r} is already in use")
        if key != record.key or type(record.created_at) is not float:
            # Return what the file driver would read back: a tuple key and a float time.
            record = ActorRecord(record.actor_id, record.name, key, float(record.created_at))
        self._actors[record.actor_id] = record
        self._directory[(record.name, key)] = record.actor_id
        space = self._spaces.setdefault(record.actor_id, _Space())
        for k, v in rows:
            space.put(k, v)

    async def lookup(self, name: str, key: tuple[str, ...]) -> str | None:
        self._check_open()
        return self._directory.get((name, _to_key(key)))

    async def get_actor(self, actor_id: str) -> ActorRecord | None:
        self._check_open()
        return self._actors.get(actor_id)

    async def list_actors(self, name: str | None = None) -> list[ActorRecord]:
        self._check_open()
        records = [r for r in self._actors.values() if name is None or r.name == name]
        records.sort(key=lambda r: r.created_at)  # stable: equal times keep creation order
        return records

    async def delete_actor(self, actor_id: str) -> None:
        self._check_open()
        record = self._actors.pop(actor_id, None)
        if record is not None:
            self._directory.pop((record.name, record.key), None)
        # Rows are dropped even without a directory entry, as the file driver's DELETE does.
        self._spaces.pop(actor_id, None)
        self._alarms.pop(actor_id, None)

    # ---- per-actor key-value ---------------------------------------------------------------

    async def get(self, actor_id: str, keys: Sequence[bytes]) -> list[bytes | None]:
        self._check_open()
        wanted = [_to_bytes(k, "KV key") for k in keys]
        space = self._spaces.get(actor_id)
        if space is None:
            return [None] * len(wanted)
        return [space.values.get(k) for k in wanted]

    async def scan(
        self,
        actor_id: str,
        start: bytes,
        end: bytes | None,
        *,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        self._check_open()
        start = _to_bytes(start, "scan start")
        end = None if end is None else _to_bytes(end, "scan end")
        _check_limit(limit)
        space = self._spaces.get(actor_id)
        if space is None:
            return []
        lo, hi = space.bounds(start, end)
        if limit is not None:
            if reverse:
                lo = max(lo, hi - limit)
            else:
                hi = min(hi, lo + limit)
        keys = space.keys[lo:hi]
        if reverse:
            keys.reverse()
        return [(k, space.values[k]) for k in keys]

    async def apply(
        self,
        actor_id: str,
        puts: Sequence[tuple[bytes, bytes]] = (),
        deletes: Sequence[bytes] = (),
        delete_ranges: Sequence[tuple[bytes, bytes]] = (),
        alarm: float | None | _Unset = UNSET,
    ) -> None:
        self._check_open()
        # Validate and copy every argument first: a bad item must not leave half a batch behind.
        ranges = [(_to_bytes(s, "range start"), _to_bytes(e, "range end")) for s, e in delete_ranges]
        dels = [_to_bytes(k, "KV key") for k in deletes]
        rows = [(_to_bytes(k, "KV key"), _to_bytes(v, "KV value")) for k, v in puts]
        new_alarm = _to_alarm(alarm)

        space = self._spaces.get(actor_id)
        if space is None and rows:
            space = self._spaces[actor_id] = _Space()
        if space is not None:
            for s, e in ranges:
                space.delete_range(s, e)
            for k in dels:
                space.delete(k)
            for k, v in rows:
                space.put(k, v)
        # The alarm lives on the directory entry (as in the file driver): no entry, no alarm.
        if new_alarm is not UNSET and actor_id in self._actors:
            if new_alarm is None:
                self._alarms.pop(actor_id, None)
            else:
                self._alarms[actor_id] = new_alarm  # type: ignore[assignment]

    # ---- alarms ------------------------------------------------------------------------------

    async def list_alarms(self) -> list[tuple[str, float]]:
        """Soonest first (ties by id), the same order the file driver returns."""
        self._check_open()
        return sorted(self._alarms.items(), key=lambda item: (item[1], item[0]))
