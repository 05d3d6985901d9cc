"""Storage drivers: one small async interface, an in-memory and a SQLite implementation."""

from runtime.drivers.base import UNSET, ActorRecord, Driver
from runtime.drivers.file import FileDriver
from runtime.drivers.memory import MemoryDriver

__all__ = ["ActorRecord", "Driver", "FileDriver", "MemoryDriver", "UNSET"]
