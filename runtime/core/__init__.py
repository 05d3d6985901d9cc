"""The actor core: definitions, the actor task, the context and the manager. Knows no HTTP."""

from runtime.core.definition import ActorDefinition, actor

__all__ = ["ActorDefinition", "actor"]
