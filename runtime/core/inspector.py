"""Inspector requests, served by the actor itself through its mailbox.

There is no side channel into an actor: the server turns each inspector route into an
``inspector`` dispatch, so a request sees the same state an action would, is bounded by the same
inbox, and wakes a sleeping actor like any call. An actor without a workflow *drops* workflow
requests (no reply at all); the caller gets ``actor.dropped_reply`` and the inspector reports
"workflow not enabled" from that — the reply is the only source of truth.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from runtime.core.context import Kv
from runtime.core.state import unwrap
from runtime.errors import ActionNotFound, InspectorUnauthorized, InvalidRequest

if TYPE_CHECKING:
    from runtime.core.instance import ActorInstance

TRUSTED = object()
"""In-process callers (``rivet dev`` handing out tokens) present this instead of a token."""


class Dropped(Exception):
    """The actor does not answer this request (see the module docstring)."""


def _authorize(inst: ActorInstance, token: Any) -> None:
    if token is TRUSTED:
        return
    presented = token.encode() if isinstance(token, str) else b""
    if not hmac.compare_digest(presented, inst.inspector_token.encode()):
        raise InspectorUnauthorized()


def _conn_row(info: Any) -> dict[str, Any]:
    return {
        "id": info.id,
        "params": info.params,
        "state": info.state,
        "subscriptions": sorted(info.subscriptions),
        "hibernatable": info.hibernatable,
        "ephemeral": info.socket is None,
    }


async def handle(inst: ActorInstance, token: Any, op: str, args: dict[str, Any]) -> Any:
    _authorize(inst, token)
    if op == "token":
        if token is not TRUSTED:
            raise InspectorUnauthorized("Inspector tokens are only handed out in-process")
        return inst.inspector_token
    if op == "summary":
        return {
            "actor_id": inst.actor_id,
            "name": inst.name,
            "key": list(inst.key),
            "state_enabled": inst.definition.has_state,
            "state": unwrap(inst.state) if inst.definition.has_state else None,
            "connections": len([c for c in inst.conns.values() if c.socket is not None]),
            "schedules": len(inst.user_schedules()),
            "actions": sorted(inst.definition.actions),
            "workflow": inst.workflow is not None,
        }
    if op == "state":
        return {"enabled": inst.definition.has_state,
                "state": unwrap(inst.state) if inst.definition.has_state else None}
    if op == "patch_state":
        if not inst.definition.has_state:
            raise InvalidRequest("This actor has no state to patch")
        if "state" not in args:
            raise InvalidRequest("patch_state needs {\"state\": <new state>}")
        inst.assign_state(args["state"])  # the normal write path: tracked, throttled, flushed
        await inst.save_state(immediate=True)
        return {"state": unwrap(inst.state)}
    if op == "connections":
        return [_conn_row(c) for c in inst.conns.values() if c.socket is not None]
    if op == "actions":
        return sorted(inst.definition.actions)
    if op == "run_action":
        name = args.get("name")
        params = args.get("args", [])
        if not isinstance(name, str) or not isinstance(params, list):
            raise InvalidRequest("run_action needs {\"name\": str, \"args\": [...]}")
        if name not in inst.definition.actions:
            raise ActionNotFound(f"The actor {inst.name!r} has no action {name!r}")
        return {"output": await inst.inspector_action(name, params)}
    if op == "schedules":
        return [e.to_row() for e in sorted(inst.user_schedules(), key=lambda e: (e.run_at, e.id))]
    if op == "cancel_schedule":
        schedule_id = args.get("id")
        if not isinstance(schedule_id, str):
            raise InvalidRequest("cancel_schedule needs {\"id\": str}")
        return {"cancelled": await inst.cancel_schedule(schedule_id)}
    if op == "kv":
        limit = args.get("limit", 100)
        if not isinstance(limit, int) or limit < 0:
            raise InvalidRequest("kv needs a non-negative int limit")
        rows = await Kv(inst).list(prefix=args.get("prefix"), limit=limit)
        return [{"key": k, "value": v} for k, v in rows]
    if op == "workflow_history":
        if inst.workflow is None:
            raise Dropped()
        return inst.workflow.entries()
    if op == "workflow_replay":
        if inst.workflow is None:
            raise Dropped()
        entry = args.get("entry")
        if not isinstance(entry, str) or entry not in inst.workflow.history:
            raise InvalidRequest(f"No workflow history entry {entry!r}")
        removed = inst.workflow.rewind(entry)
        # cancel the running workflow before anything is awaited: a step finishing during the
        # flush would otherwise record its old-run result into the rewound history
        await inst.restart_run()
        await inst.save_state(immediate=True)
        return {"removed": removed}
    raise InvalidRequest(f"Unknown inspector request {op!r}")


__all__ = ["Dropped", "TRUSTED", "handle"]
