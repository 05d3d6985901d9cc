"""The messages of RivetKit's client protocol (v4), as Python values.

The in-process client exchanges these very objects with the core, and the server encodes them
for the wire, so one behaviour is exercised by both transports and cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROTOCOL_VERSION = 4

# Size limits of the wire protocol (API.md §7).
MAX_INCOMING_MESSAGE = 64 * 1024
MAX_OUTGOING_MESSAGE = 1024 * 1024


# ---- server → client ----------------------------------------------------------------------


@dataclass(slots=True)
class Init:
    actor_id: str
    connection_id: str


@dataclass(slots=True)
class Error:
    group: str
    code: str
    message: str
    metadata: Any = None
    action_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.group, "code": self.code, "message": self.message, "metadata": self.metadata}


@dataclass(slots=True)
class ActionResponse:
    id: int
    output: Any


@dataclass(slots=True)
class Event:
    name: str
    args: list[Any] = field(default_factory=list)


# ---- client → server ----------------------------------------------------------------------


@dataclass(slots=True)
class ActionRequest:
    id: int
    name: str
    args: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class SubscriptionRequest:
    event_name: str
    subscribe: bool


ToClient = Init | Error | ActionResponse | Event
ToServer = ActionRequest | SubscriptionRequest
