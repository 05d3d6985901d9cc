"""The inspector over HTTP: per-actor routes, and (in ``rivet dev`` only) admin routes and ``/ui``.

Per actor, under ``/gateway/{actor_id}/inspector`` (or by name with the ``rvt-*`` query form)::

    GET    summary                  identity, state, counts, actions, workflow flag
    GET    state                    {"enabled", "state"}
    PATCH  state   (or POST)        {"state": ...} → {"state"}; written through the normal save path
    GET    connections              [{id, params, state, subscriptions, hibernatable, ephemeral}]
    GET    actions                  {"actions": [names]}
    POST   actions/{name}           {"args": [...]} → {"output"}; runs without connection hooks
    GET    schedules                [{id, action, args, run_at}]
    DELETE schedules/{id}           {"cancelled": bool}
    GET    kv?prefix=&limit=        [{key, value}]  (limit default 100)
    GET    workflow/history         {"workflow": "enabled", "history": [...]}
                                    or {"workflow": "not_enabled", "history": null}
    POST   workflow/replay          {"entry": name} → {"workflow": "enabled", "removed": n}
                                    or 409 ``inspector.workflow_not_enabled``

Every request carries ``Authorization: Bearer <the actor's inspector token>`` and becomes one
``inspector`` dispatch through the actor's mailbox (:mod:`runtime.core.inspector`): the actor
checks the token (constant time) and answers. A missing header is refused before anything is
resolved; a wrong token is refused by the actor (which wakes it, like any call). An actor without
a workflow drops workflow requests; ``actor.dropped_reply`` is the only signal, and the routes turn
it into "workflow not enabled". Lists are wrapped only where the answer is an object already
(``actions``), everything else is exactly what the actor answered.

By name, ``rvt-method=getOrCreate`` is served as ``get``: an actor that does not exist yet has no
token the caller could know, so an inspector request never creates one.

Dev mode (the server was given an admin token; ``rivet dev`` does that):

    GET /inspector/actors           {"actors": [{actor_id, name, key, awake, created_at}]}; wakes nobody
    GET /inspector/token/{actor_id} {"actor_id", "token"}; asks the actor in-process (TRUSTED)
    GET /ui                         the inspector web page (no external assets; token in #token=...)

Both ``/inspector/...`` routes need ``Authorization: Bearer <admin token>``. Without an admin token
the server answers 404 ``core.route_not_found`` for all three.

Bodies and answers are JSON (bytes as ``["$Uint8Array", base64]``, like the action routes), or
msgpack with ``x-rivet-encoding: msgpack``.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode

import msgpack
from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse

from runtime.core.inspector import TRUSTED
from runtime.errors import (
    InspectorUnauthorized,
    InspectorWorkflowNotEnabled,
    InvalidRequest,
    MethodNotAllowed,
    RivetError,
    RouteNotFound,
)
from runtime.protocol import encoding as enc
from runtime.protocol.messages import MAX_OUTGOING_MESSAGE

if TYPE_CHECKING:
    from runtime.server.app import RivetApp

__all__ = [
    "ADMIN_TOKEN_FILE",
    "admin_token_path",
    "dev_banner_lines",
    "new_admin_token",
    "read_admin_token",
    "serve_http",
    "write_admin_token",
]

ADMIN_TOKEN_FILE = "inspector-admin-token"
"""The file in the state directory where ``rivet dev`` leaves its admin token (mode 0600)."""

MAX_BODY = MAX_OUTGOING_MESSAGE
"""Inspector bodies may be as large as what the inspector answers (1 MiB), so any state that can be
read can be patched back."""

_HEADER_ENCODING = "x-rivet-encoding"
_NOT_DEV = ("The inspector admin routes (/inspector/..., /ui) are served only by a server started with "
            "an admin token, as `rivet dev` does")


# ------------------------------------------------------------------------------ dev-mode token


def admin_token_path(state_dir: str | os.PathLike[str]) -> Path:
    return Path(state_dir) / ADMIN_TOKEN_FILE


def new_admin_token() -> str:
    return secrets.token_urlsafe(32)


def write_admin_token(state_dir: str | os.PathLike[str], token: str | None = None) -> str:
    """Write ``token`` (default: a new random one) to ``<state_dir>/inspector-admin-token`` with
    mode 0600, replacing the file atomically; returns the token. ``rivet inspect`` reads the file.

    ``rivet dev``: ``token = new_admin_token()``, ``Server(..., inspector_admin_token=token)``, and
    once ``server.start()`` succeeded (the state directory's lock is ours) ``write_admin_token(
    state_dir, token)``, so a second ``rivet dev`` refused by the lock never replaces the token
    of the one that owns the directory."""
    path = admin_token_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = token or new_admin_token()
    tmp = path.with_name(f".{ADMIN_TOKEN_FILE}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # even if a stale temp file with other bits existed
        os.write(fd, (token + "\n").encode("ascii"))
    finally:
        os.close(fd)
    os.replace(tmp, path)  # readers never see a half-written token
    return token


def read_admin_token(state_dir: str | os.PathLike[str]) -> str | None:
    try:
        text = admin_token_path(state_dir).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def dev_banner_lines(url: str, token: str, state_dir: str | os.PathLike[str]) -> list[str]:
    """What ``rivet dev`` prints about the inspector (one line each: page, token file, curl)."""
    base = url.rstrip("/")
    return [
        f"inspector: {base}/ui#token={token}",
        f"inspector token: {admin_token_path(state_dir)} (new every run; `rivet inspect` reads it)",
        f"inspector curl: curl -H 'Authorization: Bearer {token}' {base}/inspector/actors",
    ]


# ------------------------------------------------------------------------------ routing


async def serve_http(app: RivetApp, request: HttpRequest, path: str) -> HttpResponse:
    """Entry point from :class:`runtime.server.app.RivetApp` for ``/gateway/*/inspector...``,
    ``/inspector/...`` and ``/ui``."""
    if path.startswith("/gateway/"):
        segment, rest = app._split_gateway(path)
        if rest == "/inspector" or rest.startswith("/inspector/"):
            return await _actor_route(app, request, segment, rest[len("/inspector/"):])
        return await app._gateway_http(request, path)
    admin = getattr(app, "inspector_admin_token", None)
    if not admin:
        raise RouteNotFound(_NOT_DEV)
    method = request.method
    if path in ("/ui", "/ui/"):
        app._only(method, "GET")
        return HttpResponse(_ui_html(), 200, media_type="text/html; charset=utf-8",
                            headers={"cache-control": "no-store", "referrer-policy": "no-referrer"})
    sub = path[len("/inspector/"):] if path.startswith("/inspector/") else None
    if sub == "actors":
        app._only(method, "GET")
        _check_admin(request, admin)
        return _answer(request, await _list_actors(app))
    if sub is not None and sub.startswith("token/") and sub.count("/") == 1 and len(sub) > len("token/"):
        app._only(method, "GET")
        _check_admin(request, admin)
        actor_id = unquote(sub[len("token/"):])
        token = await app.manager.dispatch(actor_id, "inspector", (TRUSTED, "token", {}))
        return _answer(request, {"actor_id": actor_id, "token": token})
    raise RouteNotFound(f"No inspector route {method} {path[:200]} (see docs/inspector.md)")


def _bearer(request: HttpRequest) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _check_admin(request: HttpRequest, admin: str) -> None:
    presented = (_bearer(request) or "").encode()
    if not hmac.compare_digest(presented, admin.encode()):
        raise InspectorUnauthorized(
            "The inspector admin token is missing or wrong; `rivet dev` prints it and writes it to "
            f"<state dir>/{ADMIN_TOKEN_FILE}")


def _encoding(request: HttpRequest) -> str:
    return enc.check_encoding(request.headers.get(_HEADER_ENCODING, enc.JSON))


def _answer(request: HttpRequest, value: Any, status: int = 200) -> HttpResponse:
    encoding = _encoding(request)
    return HttpResponse(enc.dumps(encoding, value), status, media_type=enc.content_type(encoding))


async def _body(app: RivetApp, request: HttpRequest, encoding: str) -> dict[str, Any]:
    raw = await app._read_body(request, MAX_BODY)
    if not raw.strip():
        return {}
    try:
        if encoding == enc.JSON:
            value = enc.from_json_compat(json.loads(raw.decode("utf-8")))
        else:
            value = enc._check_msgpack(msgpack.unpackb(raw, raw=False, strict_map_key=False, timestamp=0))
    except InvalidRequest:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoding failure is the caller's
        raise InvalidRequest(f"the {encoding} body could not be decoded: {type(exc).__name__}") from None
    if type(value) is not dict:
        raise InvalidRequest("an inspector request body must be an object")
    return value


def _inspector_query(query_string: bytes) -> bytes:
    """By name, ``getOrCreate`` is served as ``get`` (and ``rvt-input`` is ignored): an inspector
    request never creates an actor."""
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    if not any(k == "rvt-method" and v == "getOrCreate" for k, v in pairs):
        return query_string
    kept = [(k, "get" if k == "rvt-method" else v) for k, v in pairs if k != "rvt-input"]
    return urlencode(kept).encode("latin-1")


_ROUTES: dict[str, dict[str, str]] = {
    "summary": {"GET": "summary"},
    "state": {"GET": "state", "PATCH": "patch_state", "POST": "patch_state"},
    "connections": {"GET": "connections"},
    "actions": {"GET": "actions"},
    "schedules": {"GET": "schedules"},
    "kv": {"GET": "kv"},
    "workflow/history": {"GET": "workflow_history"},
    "workflow/replay": {"POST": "workflow_replay"},
}


def _route(method: str, sub: str) -> tuple[str, dict[str, Any]]:
    """(op, args from the path) for an inspector sub-path, or 404 / 405."""
    sub = sub.rstrip("/")
    if sub in _ROUTES:
        ops = _ROUTES[sub]
        if method not in ops:
            raise MethodNotAllowed(f"{method} is not allowed on inspector/{sub}; use {' or '.join(ops)}")
        return ops[method], {}
    head, _, tail = sub.partition("/")
    if head == "actions" and tail and "/" not in tail:
        if method != "POST":
            raise MethodNotAllowed(f"{method} is not allowed on inspector/actions/{{name}}; use POST")
        return "run_action", {"name": unquote(tail)}
    if head == "schedules" and tail and "/" not in tail:
        if method != "DELETE":
            raise MethodNotAllowed(f"{method} is not allowed on inspector/schedules/{{id}}; use DELETE")
        return "cancel_schedule", {"id": unquote(tail)}
    raise RouteNotFound(f"No inspector route {method} inspector/{sub[:200]} (see docs/inspector.md)")


async def _actor_route(app: RivetApp, request: HttpRequest, segment: str, sub: str) -> HttpResponse:
    # everything that can be checked without the actor is checked first: a bad request never
    # resolves, wakes or changes one
    op, args = _route(request.method, sub)
    encoding = _encoding(request)
    token = _bearer(request)
    if token is None:
        raise InspectorUnauthorized()
    if op == "patch_state":
        body = await _body(app, request, encoding)
        if "state" not in body:
            raise InvalidRequest('PATCH inspector/state needs the body {"state": <the new state>}')
        args = {"state": body["state"]}
    elif op == "run_action":
        body = await _body(app, request, encoding)
        params = body.get("args", [])
        if type(params) is not list:
            raise InvalidRequest('"args" must be a list')
        args["args"] = params
    elif op == "workflow_replay":
        body = await _body(app, request, encoding)
        if type(body.get("entry")) is not str or not body["entry"]:
            raise InvalidRequest('POST inspector/workflow/replay needs the body {"entry": "<history entry name>"}')
        args = {"entry": body["entry"]}
    elif op == "kv":
        args = _kv_args(request)
    actor_id, _ = await app._target(segment, _inspector_query(request.scope.get("query_string", b"")))
    try:
        out = await app.manager.dispatch(actor_id, "inspector", (token, op, args))
    except RivetError as exc:
        if (exc.group, exc.code) != ("actor", "dropped_reply") or not op.startswith("workflow_"):
            raise
        # the actor dropped the request: it has no workflow (the reply is the only source of truth)
        if op == "workflow_history":
            return _answer(request, {"workflow": "not_enabled", "history": None})
        raise InspectorWorkflowNotEnabled(metadata={"workflow": "not_enabled"}) from None
    if op == "workflow_history":
        out = {"workflow": "enabled", "history": out}
    elif op == "workflow_replay":
        out = {"workflow": "enabled", **out}
    elif op == "actions":
        out = {"actions": out}
    return _answer(request, out)


def _kv_args(request: HttpRequest) -> dict[str, Any]:
    query = {k: v for k, v in parse_qsl(request.scope.get("query_string", b"").decode("latin-1"),
                                        keep_blank_values=True) if not k.startswith("rvt-")}
    args: dict[str, Any] = {}
    if query.get("prefix"):
        args["prefix"] = query["prefix"]
    if "limit" in query:
        text = query["limit"]
        if not text.isdigit() or int(text) > 10_000:
            raise InvalidRequest("limit must be an integer from 0 to 10000")
        args["limit"] = int(text)
    return args


async def _list_actors(app: RivetApp) -> dict[str, Any]:
    """Every actor in the directory; ``awake`` from the manager's table (nobody is woken)."""
    awake = app.manager.instances
    records = await app.manager.driver.list_actors(None)
    return {"actors": [{"actor_id": r.actor_id, "name": r.name, "key": list(r.key),
                        "awake": r.actor_id in awake, "created_at": r.created_at} for r in records]}


_UI_CACHE: list[str] = []


def _ui_html() -> str:
    if not _UI_CACHE:
        _UI_CACHE.append(resources.files("runtime.server").joinpath("inspector_ui.html").read_text("utf-8"))
    return _UI_CACHE[0]
