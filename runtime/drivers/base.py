"""The storage driver interface.

A driver is deliberately small: an actor *directory* (name + key → id), a per-actor ordered
key-value space with atomic batches and range scans, and each actor's next alarm time. Everything
richer (state, connections, schedules, user KV) is laid out by the core inside the per-actor KV
space, so a new driver only has to get these few operations right.

Keys and values are ``bytes``. Identity, keys and user input never become file names or SQL text:
drivers must pass them as bound parameters / dict keys only.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ActorRecord:
    """One entry of the actor directory."""

    actor_id: str
    name: str
    key: tuple[str, ...]
    created_at: float


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()
"""Pass as ``alarm`` to :meth:`Driver.apply` to leave the stored alarm time unchanged."""


class Driver(abc.ABC):
    """Async storage interface shared by :class:`MemoryDriver` and :class:`FileDriver`.

    Every method may raise ``runtime.errors.StorageError`` when the medium fails. Writes are
    atomic: a call either applies completely or not at all.
    """

    @abc.abstractmethod
    async def open(self) -> None:
        """Prepare storage (create files, tables). Called once before any other method."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release resources. Acknowledged writes must already be durable."""

    # ---- directory ---------------------------------------------------------------------

    @abc.abstractmethod
    async def create_actor(
        self,
        record: ActorRecord,
        initial: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        """Insert ``record`` and its ``initial`` KV rows in one transaction.

        Raises ``runtime.errors.DuplicateKey`` when (name, key) is already taken by a live actor.
        """

    @abc.abstractmethod
    async def lookup(self, name: str, key: tuple[str, ...]) -> str | None:
        """The id of the live actor with this name and key, or ``None``."""

    @abc.abstractmethod
    async def get_actor(self, actor_id: str) -> ActorRecord | None:
        """The directory entry for ``actor_id``, or ``None`` when missing or destroyed."""

    @abc.abstractmethod
    async def list_actors(self, name: str | None = None) -> list[ActorRecord]:
        """Every live actor (optionally of one name), ordered by creation time."""

    @abc.abstractmethod
    async def delete_actor(self, actor_id: str) -> None:
        """Remove the directory entry, all KV rows and the alarm of ``actor_id`` atomically.

        The (name, key) becomes free for a new actor. Missing ids are ignored.
        """

    # ---- per-actor key-value -------------------------------------------------------------

    @abc.abstractmethod
    async def get(self, actor_id: str, keys: Sequence[bytes]) -> list[bytes | None]:
        """Values for ``keys`` in order (``None`` where missing)."""

    @abc.abstractmethod
    async def scan(
        self,
        actor_id: str,
        start: bytes,
        end: bytes | None,
        *,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        """Rows with ``start <= key < end`` (``end=None``: no upper bound), sorted by key bytes
        (descending when ``reverse``), at most ``limit`` rows."""

    @abc.abstractmethod
    async def apply(
        self,
        actor_id: str,
        puts: Sequence[tuple[bytes, bytes]] = (),
        deletes: Sequence[bytes] = (),
        delete_ranges: Sequence[tuple[bytes, bytes]] = (),
        alarm: float | None | _Unset = UNSET,
    ) -> None:
        """One atomic write: range deletes, then deletes, then puts, then the alarm time
        (``None`` clears it, ``UNSET`` leaves it). This is the only write path of the core."""

    # ---- alarms ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def list_alarms(self) -> list[tuple[str, float]]:
        """``(actor_id, alarm_at)`` for every live actor with an alarm set."""
