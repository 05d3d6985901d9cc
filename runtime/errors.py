"""Structured errors and the error catalogue.

Every error a caller can see is a ``RivetError`` with a ``group`` and a ``code``. Classes that
declare both as class attributes enter the *catalogue*, which ``rivet errors gen`` writes out as
``errors/{group}.{code}.json`` so that clients in other languages can rely on the codes.

Errors cross every boundary (in-process client, HTTP, WebSocket) as the same four-key dict
``{group, code, message, metadata}``; :func:`to_wire` is the one place that decides what an
outside caller may see, so sanitizing cannot drift between transports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "RivetError",
    "UserError",
    "ActorError",
    "CatalogueEntry",
    "catalogue",
    "to_wire",
    "from_wire",
    "http_status",
]


@dataclass(frozen=True)
class CatalogueEntry:
    group: str
    code: str
    message: str
    public: bool

    def artifact(self) -> dict[str, str]:
        return {"code": self.code, "group": self.group, "message": self.message}


_CATALOGUE: dict[tuple[str, str], CatalogueEntry] = {}


def catalogue() -> dict[tuple[str, str], CatalogueEntry]:
    """A snapshot of every declared ``(group, code)``."""
    return dict(_CATALOGUE)


def _register(group: str, code: str, message: str, public: bool) -> None:
    existing = _CATALOGUE.get((group, code))
    if existing is not None and existing.message != message:
        raise TypeError(
            f"error {group}.{code} is already declared with message {existing.message!r}; "
            f"declaring it again with {message!r} would make the catalogue ambiguous "
            "(use a new code, or the same message)"
        )
    _CATALOGUE[(group, code)] = CatalogueEntry(group, code, message, public)


class RivetError(Exception):
    """The one structured error.

    ``RivetError(group, code, message, *, public=False, metadata=None)`` builds an ad-hoc error.
    A subclass that declares ``group``, ``code`` and ``message`` is catalogued and is built with
    ``Sub()`` or ``Sub("a more specific message", metadata={...})``.
    """

    group: ClassVar[str] = ""
    code: ClassVar[str] = ""
    message: ClassVar[str] = ""
    public: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__ and cls.group and cls.code:
            _register(cls.group, cls.code, cls.message or "", bool(cls.public))

    def __init__(self, *args: Any, public: bool | None = None, metadata: Any = None) -> None:
        declared = bool(type(self).group and type(self).code)
        if declared:
            if len(args) > 1:
                raise TypeError(f"{type(self).__name__} takes at most one positional argument (message)")
            group, code = type(self).group, type(self).code
            message = args[0] if args else type(self).message
        else:
            if len(args) != 3:
                raise TypeError("RivetError(group, code, message) needs exactly three positional arguments")
            group, code, message = args
        self.group = group  # type: ignore[misc]
        self.code = code  # type: ignore[misc]
        self.message = str(message)  # type: ignore[misc]
        self.public = type(self).public if public is None else public  # type: ignore[misc]
        self.metadata = metadata
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.group}.{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.group!r}, {self.code!r}, {self.message!r})"


class UserError(RivetError):
    """An application error that callers are meant to see (always public).

    ``UserError("msg", code="rate_limited")`` ad hoc, or subclass with ``code`` and ``message``
    to declare it in the catalogue.
    """

    group = "user"
    code = "user_error"
    message = "An error occurred in the actor"
    public = True

    def __init__(self, message: str | None = None, *, code: str | None = None, metadata: Any = None) -> None:
        super().__init__(type(self).message if message is None else message, public=True, metadata=metadata)
        if code is not None:
            self.code = code  # type: ignore[misc]


class ActorError(RivetError):
    """What a caller receives: group, code, message and metadata as the actor sent them."""

    def __init__(self, group: str, code: str, message: str, metadata: Any = None) -> None:
        super().__init__(group, code, message, public=True, metadata=metadata)


def _expose() -> bool:
    return os.environ.get("RIVET_EXPOSE_ERRORS", "") not in ("", "0", "false", "False")


def to_wire(exc: BaseException) -> dict[str, Any]:
    """The four-key dict a caller sees for ``exc``. Internal details are hidden unless exposed."""
    if isinstance(exc, RivetError) and exc.public:
        return {"group": exc.group, "code": exc.code, "message": exc.message, "metadata": exc.metadata}
    if _expose():
        if isinstance(exc, RivetError):
            return {"group": exc.group, "code": exc.code, "message": exc.message, "metadata": exc.metadata}
        return {
            "group": "core",
            "code": "internal_error",
            "message": f"{type(exc).__name__}: {exc}",
            "metadata": None,
        }
    return {"group": "core", "code": "internal_error", "message": InternalError.message, "metadata": None}


def from_wire(body: dict[str, Any]) -> ActorError:
    return ActorError(
        str(body.get("group", "core")),
        str(body.get("code", "internal_error")),
        str(body.get("message", "")),
        body.get("metadata"),
    )


_STATUS = {
    ("actor", "not_found"): 404,
    ("actor", "action_not_found"): 404,
    ("actor", "not_registered"): 404,
    ("actor", "action_timed_out"): 408,
    ("actor", "method_not_allowed"): 405,
    ("actor", "overloaded"): 503,
    ("actor", "invalid_request"): 400,
    ("actor", "duplicate_key"): 400,
    ("actor", "key_too_large"): 400,
    ("core", "route_not_found"): 404,
    ("inspector", "unauthorized"): 401,
    ("inspector", "workflow_not_enabled"): 409,
}
_BAD_REQUEST_GROUPS = {"user", "message", "kv", "schedule", "protocol"}


def http_status(group: str, code: str) -> int:
    """The HTTP status for an error, per API.md §4."""
    if (group, code) in _STATUS:
        return _STATUS[(group, code)]
    if group in _BAD_REQUEST_GROUPS:
        return 400
    return 500


# --------------------------------------------------------------------------------------------
# The runtime's own errors. Every one is public: callers need them to react correctly.
# --------------------------------------------------------------------------------------------


class _Public(RivetError):
    public = True


class InternalError(_Public):
    group, code = "core", "internal_error"
    message = "An internal error occurred"


class ActorNotFound(_Public):
    group, code = "actor", "not_found"
    message = "The actor does not exist (it was never created or has been destroyed); use get_or_create to create it"


class ActorNotRegistered(_Public):
    group, code = "actor", "not_registered"
    message = "No actor with this name is registered; check the names passed to setup(use={...})"


class ActionNotFound(_Public):
    group, code = "actor", "action_not_found"
    message = "The actor has no action with this name; check the action name and the actor definition"


class ActionTimedOut(_Public):
    group, code = "actor", "action_timed_out"
    message = "The action did not finish within action_timeout; make it faster or raise action_timeout"


class DuplicateKey(_Public):
    group, code = "actor", "duplicate_key"
    message = "An actor with this name and key already exists; use get or get_or_create instead of create"


class Overloaded(_Public):
    group, code = "actor", "overloaded"
    message = "The actor's inbox is full (max_inbox); retry later or raise max_inbox"


class StateMutationReentrant(_Public):
    group, code = "actor", "state_mutation_reentrant"
    message = "State cannot be changed inside on_state_change; change it in an action instead"


class StateNotEnabled(_Public):
    group, code = "actor", "state_not_enabled"
    message = "This actor has no state; pass state=... or create_state=... to actor()"


class Starting(_Public):
    group, code = "actor", "starting"
    message = "The actor is still starting; retry the call"


class Stopping(_Public):
    group, code = "actor", "stopping"
    message = "The actor is already stopping; it cannot be stopped again"


class Destroying(_Public):
    group, code = "actor", "destroying"
    message = "The actor is being destroyed; it will not accept more calls"


class NotReady(_Public):
    group, code = "actor", "not_ready"
    message = "The actor is not ready to accept calls; retry the call"


class Aborted(_Public):
    group, code = "actor", "aborted"
    message = "The operation was aborted because the actor is shutting down"


class InvalidRequest(_Public):
    group, code = "actor", "invalid_request"
    message = "The request is malformed; check its body and arguments"


class MethodNotAllowed(_Public):
    group, code = "actor", "method_not_allowed"
    message = "This HTTP method is not allowed on this route"


class CallbackTimedOut(_Public):
    group, code = "actor", "callback_timed_out"
    message = "A lifecycle hook did not finish within its time limit; make it faster or raise the limit"


class KeyTooLarge(_Public):
    group, code = "actor", "key_too_large"
    message = "The actor key is too large: each part may be at most 128 bytes and the whole key 1024 bytes"


class InputTooLarge(_Public):
    group, code = "actor", "input_too_large"
    message = "The actor input is too large; pass less data at creation"


class IncomingTooLong(_Public):
    group, code = "message", "incoming_too_long"
    message = "The incoming message is larger than 64 KiB; send less data per message"


class OutgoingTooLong(_Public):
    group, code = "message", "outgoing_too_long"
    message = "The outgoing message is larger than 1 MiB; return or broadcast less data"


class UnsupportedEncoding(_Public):
    group, code = "protocol", "unsupported_encoding"
    message = "The encoding is not supported; use json or msgpack"


class KvKeyTooLarge(_Public):
    group, code = "kv", "key_too_large"
    message = "A KV key is larger than 2048 bytes; use a shorter key"


class KvValueTooLarge(_Public):
    group, code = "kv", "value_too_large"
    message = "A KV value is larger than 128 KiB; split it over several keys"


class KvBatchTooLarge(_Public):
    group, code = "kv", "batch_too_large"
    message = "A KV batch has more than 128 keys; split it into smaller batches"


class MaxSchedulesExceeded(_Public):
    group, code = "schedule", "max_schedules_exceeded"
    message = "The actor has too many pending schedules (max_schedules); cancel some or raise the limit"


class InspectorUnauthorized(_Public):
    group, code = "inspector", "unauthorized"
    message = "The inspector token is missing or wrong; pass the actor's inspector token as a bearer token"


class InspectorWorkflowNotEnabled(_Public):
    group, code = "inspector", "workflow_not_enabled"
    message = ("This actor has no workflow (it dropped the workflow request); declare its run with "
               "@a.workflow to record history")


class DroppedReply(_Public):
    group, code = "actor", "dropped_reply"
    message = "The actor dropped the request without replying"


class StorageError(_Public):
    group, code = "driver", "storage_error"
    message = "The storage driver failed to read or write; check the state directory (disk space, permissions)"


class ClientDisposed(_Public):
    group, code = "client", "disposed"
    message = "The connection is disposed; open a new one with handle.connect()"


class ConnectionLost(_Public):
    group, code = "client", "connection_lost"
    message = "The connection closed before the reply; the call may or may not have run, retry if it is safe"


class Unreachable(_Public):
    group, code = "client", "unreachable"
    message = "The rivet server cannot be reached; check the URL and that the server is running"


class ClientTimeout(_Public):
    group, code = "client", "timeout"
    message = "The server did not answer in time; raise the client's timeout or make the action faster"


class InvalidResponse(_Public):
    group, code = "client", "invalid_response"
    message = "The server sent an answer the client cannot read; check that the URL points at a rivet server"


class RouteNotFound(_Public):
    group, code = "core", "route_not_found"
    message = "No route matches this method and path; see the routes of the wire protocol (API.md §7)"


class WorkflowHistoryMismatch(_Public):
    group, code = "workflow", "history_mismatch"
    message = ("The workflow code no longer matches its recorded history (a step was renamed, removed or "
               "reordered); keep the old name, or replay the workflow from that entry")


class WorkflowDuplicateName(_Public):
    group, code = "workflow", "duplicate_name"
    message = "Two workflow entries in one scope have the same name; give every step, sleep and loop a unique name"
