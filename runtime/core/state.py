"""Change detection for durable state without user calls.

State is held in ``TrackedDict`` / ``TrackedList``: subclasses of ``dict`` and ``list`` that
behave exactly like them (``isinstance``, ``json.dumps`` and msgpack all work) but report every
in-place mutation to a :class:`Tracker`. Intercepting the mutation itself, instead of diffing
snapshots after the fact, is what lets a mutation inside ``on_state_change`` fail *before* it
happens (state unchanged) and lets non-plain values fail at the line that inserted them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from runtime.errors import StateMutationReentrant
from runtime.protocol.plain import plain_copy


class Tracker:
    """Owns one actor's change flag. ``on_change`` is called once per mutation (cheap: it only
    records intent; the actor task decides when to write)."""

    __slots__ = ("on_change", "frozen", "mutations")

    def __init__(self, on_change: Callable[[], None]) -> None:
        self.on_change = on_change
        self.frozen = False
        self.mutations = 0

    def before(self) -> None:
        if self.frozen:
            raise StateMutationReentrant()

    def after(self) -> None:
        self.mutations += 1
        self.on_change()


def wrap(value: Any, tracker: Tracker, path: str) -> Any:
    """Validate ``value`` as plain data and return it as tracked containers (a fresh copy)."""
    return _track(plain_copy(value, path), tracker, path)


def _track(value: Any, tracker: Tracker, path: str) -> Any:
    if type(value) is dict:
        d = TrackedDict()
        d._t = tracker
        d._p = path
        for k, v in value.items():
            dict.__setitem__(d, k, _track(v, tracker, f"{path}[{k!r}]"))
        return d
    if type(value) is list:
        lst = TrackedList()
        lst._t = tracker
        lst._p = path
        list.extend(lst, (_track(v, tracker, f"{path}[{i}]") for i, v in enumerate(value)))
        return lst
    return value


def unwrap(value: Any) -> Any:
    """Plain ``dict``/``list`` copy of tracked containers (for hooks that must not mutate)."""
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


class TrackedDict(dict):  # type: ignore[type-arg]
    __slots__ = ("_t", "_p")
    _t: Tracker
    _p: str

    def _w(self, key: Any, value: Any) -> Any:
        if type(key) is not str:
            raise TypeError(f"{self._p}[{key!r}]: dict key of type {type(key).__name__} (keys must be str)")
        return wrap(value, self._t, f"{self._p}[{key!r}]")

    def __setitem__(self, key: Any, value: Any) -> None:
        self._t.before()
        dict.__setitem__(self, key, self._w(key, value))
        self._t.after()

    def __delitem__(self, key: Any) -> None:
        self._t.before()
        dict.__delitem__(self, key)
        self._t.after()

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self._t.before()
        items = dict(*args, **kwargs)
        wrapped = {k: self._w(k, v) for k, v in items.items()}
        dict.update(self, wrapped)
        self._t.after()

    def __ior__(self, other: Any) -> TrackedDict:  # type: ignore[override,misc]
        self.update(other)
        return self

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key in self:
            return dict.__getitem__(self, key)
        self[key] = default
        return dict.__getitem__(self, key)

    def pop(self, key: Any, *default: Any) -> Any:
        self._t.before()
        had = key in self
        out = dict.pop(self, key, *default)
        if had:
            self._t.after()
        return out

    def popitem(self) -> tuple[Any, Any]:
        self._t.before()
        out = dict.popitem(self)
        self._t.after()
        return out

    def clear(self) -> None:
        self._t.before()
        dict.clear(self)
        self._t.after()

    def copy(self) -> dict[Any, Any]:  # type: ignore[override]
        return unwrap(self)

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (dict, (unwrap(self),))

    def __deepcopy__(self, memo: Any) -> dict[Any, Any]:
        return unwrap(self)


class TrackedList(list):  # type: ignore[type-arg]
    __slots__ = ("_t", "_p")
    _t: Tracker
    _p: str

    def _w(self, value: Any, index: Any = None) -> Any:
        where = f"{self._p}[{len(self) if index is None else index}]"
        return wrap(value, self._t, where)

    def _ws(self, values: Iterable[Any]) -> list[Any]:
        base = len(self)
        return [wrap(v, self._t, f"{self._p}[{base + i}]") for i, v in enumerate(values)]

    def __setitem__(self, index: Any, value: Any) -> None:
        self._t.before()
        if isinstance(index, slice):
            list.__setitem__(self, index, self._ws(value))
        else:
            list.__setitem__(self, index, self._w(value, index))
        self._t.after()

    def __delitem__(self, index: Any) -> None:
        self._t.before()
        list.__delitem__(self, index)
        self._t.after()

    def append(self, value: Any) -> None:
        self._t.before()
        list.append(self, self._w(value))
        self._t.after()

    def extend(self, values: Iterable[Any]) -> None:
        self._t.before()
        list.extend(self, self._ws(values))
        self._t.after()

    def __iadd__(self, values: Iterable[Any]) -> TrackedList:  # type: ignore[override,misc]
        self.extend(values)
        return self

    def __imul__(self, n: Any) -> TrackedList:  # type: ignore[override,misc]
        self._t.before()
        items = unwrap(list(self)) * n
        list.clear(self)
        list.extend(self, self._ws(items))
        self._t.after()
        return self

    def insert(self, index: Any, value: Any) -> None:
        self._t.before()
        list.insert(self, index, self._w(value, index))
        self._t.after()

    def pop(self, index: Any = -1) -> Any:
        self._t.before()
        out = list.pop(self, index)
        self._t.after()
        return out

    def remove(self, value: Any) -> None:
        self._t.before()
        list.remove(self, value)
        self._t.after()

    def clear(self) -> None:
        self._t.before()
        list.clear(self)
        self._t.after()

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self._t.before()
        list.sort(self, *args, **kwargs)
        self._t.after()

    def reverse(self) -> None:
        self._t.before()
        list.reverse(self)
        self._t.after()

    def copy(self) -> list[Any]:  # type: ignore[override]
        return unwrap(self)

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (list, (unwrap(self),))

    def __deepcopy__(self, memo: Any) -> list[Any]:
        return unwrap(self)
