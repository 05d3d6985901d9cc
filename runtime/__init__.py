"""rivet: stateful actors for Python.

``from runtime import actor, setup, Client, RivetError, UserError, ActorError``
"""

from runtime.client import ActorConnection, ActorHandle, Client
from runtime.core.context import Conn, Context, ScheduledEvent
from runtime.core.definition import ActorDefinition, actor
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
    "RivetError",
    "Runtime",
    "ScheduledEvent",
    "UserError",
    "actor",
    "setup",
]
