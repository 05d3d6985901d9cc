"""Actor definitions: what ``actor(...)`` returns and the decorators on it.

Validation happens here, at import time of the user's module, so a typo in a keyword or a
duplicated action fails loudly where it was written instead of at the first call.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.protocol.plain import plain_copy

_NO_STATE = object()

# Keyword → default, exactly API.md §2.
_OPTIONS: dict[str, Any] = {
    "sleep_timeout": 30.0,
    "no_sleep": False,
    "sleep_grace_period": 15.0,
    "action_timeout": 60.0,
    "state_save_interval": 1.0,
    "create_vars_timeout": 5.0,
    "create_conn_state_timeout": 5.0,
    "on_before_connect_timeout": 5.0,
    "on_connect_timeout": 5.0,
    "max_inbox": 1024,
    "max_schedules": 1000,
    "can_hibernate_websocket": False,
}
_FACTORIES = ("state", "create_state", "vars", "create_vars", "conn_state", "create_conn_state")

HOOKS = (
    "on_create",
    "on_wake",
    "on_sleep",
    "on_destroy",
    "on_state_change",
    "on_before_connect",
    "on_connect",
    "on_disconnect",
    "on_before_action_response",
    "on_request",
    "on_websocket",
    "run",
    "workflow",
)


@dataclass
class Options:
    sleep_timeout: float = 30.0
    no_sleep: bool = False
    sleep_grace_period: float = 15.0
    action_timeout: float = 60.0
    state_save_interval: float = 1.0
    create_vars_timeout: float = 5.0
    create_conn_state_timeout: float = 5.0
    on_before_connect_timeout: float = 5.0
    on_connect_timeout: float = 5.0
    max_inbox: int = 1024
    max_schedules: int = 1000
    can_hibernate_websocket: bool = False


@dataclass
class Action:
    name: str
    fn: Callable[..., Any]
    is_async: bool


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn)


@dataclass
class ActorDefinition:
    """An actor type. Build with :func:`actor`; add behaviour with the decorators."""

    options: Options
    _state: Any = _NO_STATE
    create_state: Callable[..., Any] | None = None
    _vars: Any = None
    create_vars: Callable[..., Any] | None = None
    _conn_state: Any = _NO_STATE
    create_conn_state: Callable[..., Any] | None = None
    actions: dict[str, Action] = field(default_factory=dict)
    hooks: dict[str, Callable[..., Any]] = field(default_factory=dict)

    # ---- state factories -------------------------------------------------------------------

    @property
    def has_state(self) -> bool:
        return self._state is not _NO_STATE or self.create_state is not None

    @property
    def has_conn_state(self) -> bool:
        return self._conn_state is not _NO_STATE or self.create_conn_state is not None

    def initial_state(self) -> Any:
        return copy.deepcopy(self._state)

    def initial_vars(self) -> Any:
        return copy.deepcopy(self._vars)

    def initial_conn_state(self) -> Any:
        return copy.deepcopy(self._conn_state) if self._conn_state is not _NO_STATE else None

    # ---- decorators ------------------------------------------------------------------------

    def action(self, fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
        """Register an action: ``@a.action`` or ``@a.action(name="x")``."""

        def register(f: Callable[..., Any]) -> Callable[..., Any]:
            if not callable(f):
                raise TypeError(f"@action needs a function, got {type(f).__name__}")
            action_name = name or f.__name__
            if not isinstance(action_name, str) or not action_name:
                raise TypeError("an action name must be a non-empty str")
            if action_name in self.actions:
                raise TypeError(f"action {action_name!r} is already registered on this actor")
            self.actions[action_name] = Action(action_name, f, _is_async(f))
            return f

        if fn is not None:
            return register(fn)
        return register

    def _hook(self, hook: str) -> Callable[..., Any]:
        def decorator(fn: Callable[..., Any] | None = None) -> Any:
            def register(f: Callable[..., Any]) -> Callable[..., Any]:
                if not callable(f):
                    raise TypeError(f"@{hook} needs a function, got {type(f).__name__}")
                if hook in self.hooks:
                    raise TypeError(f"hook {hook!r} is already registered on this actor")
                if hook in ("run", "workflow") and ({"run", "workflow"} & set(self.hooks)):
                    raise TypeError("an actor has one run handler: use either @run or @workflow, not both")
                if hook == "on_state_change" and _is_async(f):
                    raise TypeError("on_state_change must be a plain (sync) function")
                self.hooks[hook] = f
                return f

            if fn is not None:
                return register(fn)
            return register

        return decorator

    def __getattr__(self, item: str) -> Any:
        if item in HOOKS:
            return self._hook(item)
        raise AttributeError(item)


def actor(**kwargs: Any) -> ActorDefinition:
    """Define an actor type. Every keyword and its default is listed in API.md §2."""
    unknown = sorted(set(kwargs) - set(_OPTIONS) - set(_FACTORIES))
    if unknown:
        known = ", ".join(sorted(set(_OPTIONS) | set(_FACTORIES)))
        raise TypeError(f"actor() got unknown keyword(s) {', '.join(unknown)}; known keywords: {known}")
    for plain, factory in (("state", "create_state"), ("vars", "create_vars"), ("conn_state", "create_conn_state")):
        if plain in kwargs and factory in kwargs:
            raise TypeError(f"actor() takes either {plain}= or {factory}=, not both")
        if factory in kwargs and not callable(kwargs[factory]):
            raise TypeError(f"actor({factory}=...) must be callable")
    opts = Options(**{k: v for k, v in kwargs.items() if k in _OPTIONS})
    for numeric in (
        "sleep_timeout",
        "sleep_grace_period",
        "action_timeout",
        "state_save_interval",
        "create_vars_timeout",
        "create_conn_state_timeout",
        "on_before_connect_timeout",
        "on_connect_timeout",
    ):
        value = getattr(opts, numeric)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise TypeError(f"actor({numeric}=...) must be a non-negative number of seconds, got {value!r}")
    for count in ("max_inbox", "max_schedules"):
        value = getattr(opts, count)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TypeError(f"actor({count}=...) must be a positive int, got {value!r}")
    definition = ActorDefinition(options=opts)
    if "state" in kwargs:
        definition._state = plain_copy(kwargs["state"], "state")
    definition.create_state = kwargs.get("create_state")
    if "vars" in kwargs:
        definition._vars = kwargs["vars"]
    definition.create_vars = kwargs.get("create_vars")
    if "conn_state" in kwargs:
        definition._conn_state = plain_copy(kwargs["conn_state"], "conn_state")
    definition.create_conn_state = kwargs.get("create_conn_state")
    return definition
