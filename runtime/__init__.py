"""rivet: stateful actors for Python.

``from runtime import actor, setup, Client, RivetError, UserError, ActorError``
"""

from runtime.client import ActorConnection, ActorHandle, Client, SyncClient
from runtime.core.context import Conn, Context, ScheduledEvent
from runtime.core.definition import ActorDefinition, actor
from runtime.core.raw import Request, Response, WebSocket, WebSocketDisconnect
from runtime.errors import ActorError, RivetError, UserError
from runtime.registry import Registry, Runtime, setup

__all__ = [
    "ActorConnection",
    "ActorDefinition",
    "ActorError",
    "ActorHandle",
    "Client",
    "Conn",
    "Context",
    "Registry",
    "Request",
    "Response",
    "RivetError",
    "Runtime",
    "ScheduledEvent",
    "SyncClient",
    "UserError",
    "WebSocket",
    "WebSocketDisconnect",
    "actor",
    "setup",
]
