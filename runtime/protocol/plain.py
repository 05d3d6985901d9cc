"""Plain data: the only values that may cross a persistence or wire boundary.

``None``, ``bool``, 64-bit ``int``, ``float``, ``str``, ``bytes``, ``list``, ``tuple`` (comes back
as ``list``) and ``dict`` with ``str`` keys. :func:`plain_copy` validates and copies in one pass so
that neither side of a boundary can mutate the other's objects; its ``TypeError`` names the path
of the offending value so the user can find it (``state['items'][3]``).
"""

from __future__ import annotations

from typing import Any

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
MAX_DEPTH = 128

_SCALARS = (str, float, bool, type(None))


def _fail(path: str, value: Any, why: str | None = None) -> TypeError:
    reason = why or f"{type(value).__name__} is not plain data"
    return TypeError(
        f"{path}: {reason} (allowed: None, bool, int, float, str, bytes, list, tuple, dict with str keys)"
    )


def plain_copy(value: Any, path: str = "value", _depth: int = 0) -> Any:
    """Return a deep copy of ``value`` made only of plain types, or raise ``TypeError``."""
    t = type(value)
    if t in _SCALARS:
        return value
    if t is int:
        if value < INT_MIN or value > INT_MAX:
            raise _fail(path, value, "integer does not fit in 64 bits")
        return value
    if _depth > MAX_DEPTH:
        raise _fail(path, value, f"nesting deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise _fail(f"{path}[{k!r}]", k, f"dict key of type {type(k).__name__} (keys must be str)")
            out[k] = plain_copy(v, f"{path}[{k!r}]", _depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [plain_copy(v, f"{path}[{i}]", _depth + 1) for i, v in enumerate(value)]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, bool):  # bool subclasses
        return bool(value)
    if isinstance(value, int):  # IntEnum and friends are not plain: their type would be lost
        raise _fail(path, value)
    if isinstance(value, (str, float)):
        raise _fail(path, value)
    raise _fail(path, value)


def check_plain(value: Any, path: str = "value") -> None:
    """Validate without keeping the copy (used where the caller keeps its own object)."""
    plain_copy(value, path)
