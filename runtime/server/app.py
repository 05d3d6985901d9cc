"""The ASGI application: RivetKit's client protocol (v4) over HTTP and WebSocket (API.md §7).

Routes::

    GET  /metadata                   what RivetKit's client asks first (``?namespace=default``)
    GET  /health                     liveness
    GET  /metrics                    Prometheus text
    GET  /actors                     ?name=&key= | ?actor_ids=a,b | ?name=      → {"actors": [...]}
    PUT  /actors                     get-or-create  {"name","key","input"?,...} → {"actor", "created"}
    POST /actors                     create                                     → {"actor"}
    DELETE /actors/{id}              destroy                                    → {}
    GET  /actors/names               → {"names": {name: {"metadata": {}}}}
    /gateway/{actor_id}[@token]/...  per-actor routes, by id
    /gateway/{name}/...?rvt-method=get|getOrCreate&rvt-key=a,b&rvt-input=...   by name

Per actor: ``POST /action/{name}`` (``{"args": [...]}`` → ``{"output": ...}``), WebSocket
``/connect``, ``/request/...`` → ``on_request``, WebSocket ``/websocket/...`` → ``on_websocket``.

Every failure answers the sanitized ``{group, code, message, metadata}`` with the status of
:func:`runtime.errors.http_status`. Input is decoded and validated completely before anything
reaches an actor, so a bad request never creates, wakes or changes one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse
from starlette.websockets import WebSocket as AsgiWebSocket
from starlette.websockets import WebSocketDisconnect as AsgiDisconnect
from starlette.websockets import WebSocketState

from runtime.core.raw import Headers, Request, WebSocket, WebSocketDisconnect
from runtime.errors import (
    DuplicateKey,
    IncomingTooLong,
    InvalidRequest,
    MethodNotAllowed,
    OutgoingTooLong,
    RivetError,
    RouteNotFound,
    http_status,
    to_wire,
)
from runtime.protocol import encoding as enc
from runtime.protocol.messages import (
    MAX_INCOMING_MESSAGE,
    PROTOCOL_VERSION,
    ActionResponse,
    Error,
    Event,
    ToClient,
)

if TYPE_CHECKING:
    from runtime.drivers.base import ActorRecord
    from runtime.registry import Runtime

log = logging.getLogger("rivet.server")

HEADER_ENCODING = "x-rivet-encoding"
HEADER_CONN_PARAMS = "x-rivet-conn-params"
WS_PROTOCOL_STANDARD = "rivet"
WS_PROTOCOL_ENCODING = "rivet_encoding."
WS_PROTOCOL_CONN_PARAMS = "rivet_conn_params."

MAX_RAW_BODY = 16 * 1024 * 1024
"""Bodies of raw ``/request`` calls are not protocol messages; they get a larger bound."""

BODY_TIMEOUT = 30.0
"""Seconds a request body may take to arrive in full; a stalled client gets ``actor.invalid_request``."""

_JSON = "application/json"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("rivet-actors")
    except Exception:  # noqa: BLE001 - running from a source tree
        return "0.0.0"


class _Close:
    """Writer-queue sentinel: close the socket with this code and reason."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


def _reason(exc: BaseException) -> tuple[dict[str, Any], str]:
    w = to_wire(exc)
    if not (isinstance(exc, RivetError) and exc.public):
        log.error("internal error while serving a request", exc_info=exc)
    return w, f"{w['group']}.{w['code']}"[:120]


class RivetApp:
    """The ASGI application of one :class:`runtime.registry.Runtime`."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.manager = runtime.manager
        self.version = _version()

    # ------------------------------------------------------------------------------ ASGI entry

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    # ------------------------------------------------------------------------------ HTTP

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = HttpRequest(scope, receive)
        encoding = enc.JSON
        try:
            path = scope["path"]
            method = scope["method"]
            if path.startswith(("/inspector/", "/ui")) or (
                    path.startswith("/gateway/") and path.split("/", 4)[3:4] == ["inspector"]):
                from runtime.server.inspector import serve_http  # the inspector's routes (issue 9)

                response = await serve_http(self, request, path)
            elif path.startswith("/gateway/"):
                response = await self._gateway_http(request, path)
            elif path in ("/actors", "/actors/"):
                response = await self._actors(request, method)
            elif path == "/actors/names":
                self._only(method, "GET")
                response = self._json({"names": {n: {"metadata": {}} for n in sorted(self.manager.definitions)}})
            elif path.startswith("/actors/"):
                self._only(method, "DELETE")
                await self.manager.destroy(unquote(path[len("/actors/"):]))
                response = self._json({})
            elif path == "/metadata":
                self._only(method, "GET")
                response = self._json(self._metadata())
            elif path == "/health":
                self._only(method, "GET")
                response = self._json({"status": "ok", "runtime": "rivet-actors", "version": self.version})
            elif path == "/metrics":
                self._only(method, "GET")
                response = HttpResponse(self.runtime.metrics_text(), 200,
                                        media_type="text/plain; version=0.0.4; charset=utf-8")
            else:
                raise RouteNotFound(f"No route {method} {path[:200]} (see API.md §7 for the routes)")
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error body
            encoding = self._error_encoding(request)
            response = self._error(exc, encoding)
        await response(scope, receive, send)

    @staticmethod
    def _only(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise MethodNotAllowed(f"{method} is not allowed here; use {' or '.join(allowed)}")

    @staticmethod
    def _json(value: Any, status: int = 200) -> HttpResponse:
        return HttpResponse(json.dumps(value, separators=(",", ":")), status, media_type=_JSON)

    @staticmethod
    def _error_encoding(request: HttpRequest) -> str:
        name = request.headers.get(HEADER_ENCODING, enc.JSON)
        return name if name in enc.ENCODINGS else enc.JSON

    @staticmethod
    def _error(exc: BaseException, encoding: str) -> HttpResponse:
        w, _ = _reason(exc)
        return HttpResponse(enc.encode_error(encoding, w), http_status(w["group"], w["code"]),
                            media_type=enc.content_type(encoding))

    def _metadata(self) -> dict[str, Any]:
        return {
            "runtime": "rivet-actors",
            "version": self.version,
            "clientProtocolVersion": PROTOCOL_VERSION,
            "encodings": list(enc.ENCODINGS),
            "actorNames": {n: {"metadata": {}} for n in sorted(self.manager.definitions)},
        }

    @staticmethod
    async def _read_body(request: HttpRequest, limit: int) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise IncomingTooLong(f"The body is {declared} bytes; the limit is {limit} bytes",
                                  metadata={"size": int(declared), "limit": limit})
        chunks: list[bytes] = []
        size = 0

        async def read() -> None:
            nonlocal size
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise IncomingTooLong(f"The body is larger than {limit} bytes", metadata={"limit": limit})
                chunks.append(chunk)

        try:  # a client that sends part of a body and stalls must not hold the request forever
            await asyncio.wait_for(read(), BODY_TIMEOUT)
        except asyncio.TimeoutError:
            raise InvalidRequest(f"The request body did not arrive within {BODY_TIMEOUT:g} s") from None
        return b"".join(chunks)

    # ------------------------------------------------------------------------------ /actors

    def _actor_json(self, rec: ActorRecord) -> dict[str, Any]:
        created = int(rec.created_at * 1000)
        return {
            "actor_id": rec.actor_id,
            "name": rec.name,
            "key": enc.serialize_key(rec.key),
            "namespace_id": "default",
            "runner_name_selector": "default",
            "create_ts": created,
            "start_ts": None,
            "connectable_ts": created,
            "sleep_ts": None,
            "destroy_ts": None,
        }

    async def _actors(self, request: HttpRequest, method: str) -> HttpResponse:
        m = self.manager
        if method == "GET":
            q = request.query_params
            name = q.get("name")
            ids = q.get("actor_ids") or q.get("actor_id")
            records: list[ActorRecord] = []
            if ids:
                for actor_id in ids.split(","):
                    rec = await m.driver.get_actor(actor_id.strip())
                    if rec is not None and (name is None or rec.name == name):
                        records.append(rec)
            elif "key" in q:
                if not name:
                    raise InvalidRequest("GET /actors with key= needs name=")
                found_id = await m.driver.lookup(name, enc.deserialize_key(q["key"]))
                rec = await m.driver.get_actor(found_id) if found_id is not None else None
                if rec is not None:
                    records.append(rec)
            else:
                records = await m.driver.list_actors(name or None)
            return self._json({"actors": [self._actor_json(r) for r in records]})
        self._only(method, "PUT", "POST")
        body = await self._read_body(request, MAX_INCOMING_MESSAGE)
        try:
            data = json.loads(body.decode("utf-8")) if body.strip() else None
        except (ValueError, UnicodeDecodeError):
            raise InvalidRequest("the body is not valid JSON") from None
        if type(data) is not dict or type(data.get("name")) is not str:
            raise InvalidRequest('the body must be {"name": ..., "key": ..., "input"?: ...}')
        name = data["name"]
        key = data.get("key")
        if key is None or type(key) is str:
            parts = enc.deserialize_key(key)
        elif type(key) is list and all(type(p) is str for p in key):
            parts = tuple(key)
        else:
            raise InvalidRequest("key must be a RivetKit key string or a list of strings")
        raw_input = data.get("input")
        actor_input = None if raw_input is None else enc.decode_input(raw_input)
        m.definition(name)  # actor.not_registered before anything else
        created = True
        if method == "POST":
            actor_id = await m.resolve("create", name, parts, actor_input)
        else:
            try:
                actor_id = await m.resolve("create", name, parts, actor_input)
            except DuplicateKey:
                created = False
                actor_id = await m.resolve("get", name, parts)
            except RivetError as exc:
                if (exc.group, exc.code) != ("actor", "duplicate_key"):
                    raise
                created = False
                actor_id = await m.resolve("get", name, parts)
        out: dict[str, Any] = {"actor": self._actor_json(await m.record(actor_id))}
        if method == "PUT":
            out["created"] = created
        return self._json(out)

    # ------------------------------------------------------------------------------ gateway

    @staticmethod
    def _split_gateway(path: str) -> tuple[str, str]:
        """``/gateway/{segment}{rest}`` → (segment, rest) with rest ``""`` or starting with ``/``."""
        tail = path[len("/gateway/"):]
        segment, slash, rest = tail.partition("/")
        if not segment:
            raise RouteNotFound("The gateway path needs an actor id or name: /gateway/{actor}/...")
        return segment, slash + rest

    async def _target(self, segment: str, query_string: bytes) -> tuple[str, dict[str, str]]:
        """Resolve the actor of a gateway path; returns (actor_id, query without rvt-*).

        Validation of the rvt-* parameters happens before any lookup or creation."""
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        rvt: dict[str, str] = {}
        query: dict[str, str] = {}
        for k, v in pairs:
            if k.startswith("rvt-"):
                if k[4:] in rvt:
                    raise InvalidRequest(f"duplicate query gateway parameter {k}")
                rvt[k[4:]] = v
            else:
                query.setdefault(k, v)
        if not rvt:
            actor_id = unquote(segment.partition("@")[0])
            if not actor_id:
                raise RouteNotFound("The gateway path needs an actor id")
            return actor_id, query
        name = unquote(segment)
        if "@" in name:
            raise InvalidRequest("a query gateway path passes its token as rvt-token, not name@token")
        method = rvt.get("method")
        key = tuple(rvt["key"].split(",")) if rvt.get("key") else ()
        if method == "get":
            if "input" in rvt:
                raise InvalidRequest("rvt-method=get does not take rvt-input")
            return await self.manager.resolve("get", name, key), query
        if method == "getOrCreate":
            actor_input = enc.decode_input(rvt["input"], urlsafe=True) if "input" in rvt else None
            return await self.manager.resolve("getOrCreate", name, key, actor_input), query
        raise InvalidRequest(f"rvt-method must be get or getOrCreate, got {str(method)[:32]!r}")

    async def _gateway_http(self, request: HttpRequest, path: str) -> HttpResponse:
        segment, rest = self._split_gateway(path)
        method = request.method
        if rest.startswith("/action/") or rest == "/action":
            return await self._action(request, segment, rest[len("/action/"):])
        if rest == "/request" or rest.startswith("/request/"):
            return await self._raw_request(request, segment, rest[len("/request"):] or "/")
        if rest in ("/connect", "/websocket") or rest.startswith("/websocket/"):
            raise InvalidRequest(f"{rest} is a WebSocket route; open it with a WebSocket upgrade")
        raise RouteNotFound(f"No actor route {method} {rest[:200] or '/'} (see API.md §7)")

    async def _action(self, request: HttpRequest, segment: str, name: str) -> HttpResponse:
        if request.method != "POST":
            raise MethodNotAllowed(f"{request.method} is not allowed on an action route; use POST")
        if not name or "/" in name:
            raise RouteNotFound("An action route is /action/{name}")
        encoding = enc.check_encoding(request.headers.get(HEADER_ENCODING, enc.JSON))
        params = self._conn_params(request.headers.get(HEADER_CONN_PARAMS))
        args = enc.decode_action_request(encoding, await self._read_body(request, MAX_INCOMING_MESSAGE))
        actor_id, _ = await self._target(segment, request.scope.get("query_string", b""))
        output = await self.manager.call_action(actor_id, name, args, params)
        return HttpResponse(enc.encode_action_response(encoding, output), 200, media_type=enc.content_type(encoding))

    @staticmethod
    def _conn_params(raw: str | None) -> Any:
        if raw is None or raw == "":
            return None
        if len(raw) > MAX_INCOMING_MESSAGE:
            raise IncomingTooLong("The connection params are larger than 64 KiB")
        try:
            return enc.from_json_compat(json.loads(raw))
        except ValueError:
            raise InvalidRequest("the connection params are not valid JSON") from None

    async def _raw_request(self, request: HttpRequest, segment: str, sub_path: str) -> HttpResponse:
        body = await self._read_body(request, MAX_RAW_BODY)
        actor_id, query = await self._target(segment, request.scope.get("query_string", b""))
        raw = Request(request.method, sub_path, query, Headers(request.headers.items()), body)
        response = await self.manager.dispatch(actor_id, "request", raw)
        return HttpResponse(response.body, response.status, headers=response.headers)

    # ------------------------------------------------------------------------------ WebSocket

    async def _websocket(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        ws = AsgiWebSocket(scope, receive, send)
        protocols: list[str] = list(scope.get("subprotocols") or [])
        encoding_name = enc.JSON
        raw_params: str | None = None
        for p in protocols:
            if p.startswith(WS_PROTOCOL_ENCODING):
                encoding_name = p[len(WS_PROTOCOL_ENCODING):]
            elif p.startswith(WS_PROTOCOL_CONN_PARAMS):
                raw_params = unquote(p[len(WS_PROTOCOL_CONN_PARAMS):])
        await ws.accept(subprotocol=WS_PROTOCOL_STANDARD if WS_PROTOCOL_STANDARD in protocols else None)
        path = scope["path"]
        encoding = encoding_name if encoding_name in enc.ENCODINGS else enc.JSON
        try:
            if not path.startswith("/gateway/"):
                raise RouteNotFound(f"No WebSocket route {path[:200]} (see API.md §7)")
            segment, rest = self._split_gateway(path)
            if rest == "/connect":
                enc.check_encoding(encoding_name)
                params = self._conn_params(raw_params)
                await self._connect(ws, segment, encoding, params)
            elif rest == "/websocket" or rest.startswith("/websocket/"):
                await self._raw_websocket(ws, segment, rest[len("/websocket"):] or "/")
            else:
                raise RouteNotFound(f"No actor WebSocket route {rest[:200] or '/'} (see API.md §7)")
        except Exception as exc:  # noqa: BLE001 - a failed connect: Error message, then close 1011
            w, reason = _reason(exc)
            if ws.application_state != WebSocketState.DISCONNECTED and ws.client_state != WebSocketState.DISCONNECTED:
                try:
                    if path.endswith("/connect"):
                        await self._send(ws, encoding, Error(w["group"], w["code"], w["message"], w["metadata"]))
                    await ws.close(1011, reason)
                except Exception:  # noqa: BLE001 - the client is gone already
                    pass

    @staticmethod
    async def _send(ws: AsgiWebSocket, encoding: str, msg: ToClient) -> None:
        data = enc.encode_to_client(encoding, msg)
        if isinstance(data, str):
            await ws.send_text(data)
        else:
            await ws.send_bytes(data)

    async def _connect(self, ws: AsgiWebSocket, segment: str, encoding: str, params: Any) -> None:
        outbox: asyncio.Queue[ToClient | _Close] = asyncio.Queue()

        def on_close(reason: str | None) -> None:
            outbox.put_nowait(_Close(1011 if reason and "." in reason else 1000, (reason or "")[:120]))

        actor_id, _ = await self._target(segment, ws.scope.get("query_string", b""))
        socket = await self.manager.connect(actor_id, params, outbox.put_nowait, on_close)
        writer = asyncio.ensure_future(self._writer(ws, encoding, outbox))
        try:
            while True:
                # when the writer closes the socket (the actor ended the connection), this
                # receive returns the disconnect that completes the close handshake
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("text")
                if data is None:
                    data = message.get("bytes") or b""
                try:
                    socket.send(enc.decode_to_server(encoding, data))
                except (InvalidRequest, IncomingTooLong) as exc:
                    w, reason = _reason(exc)
                    action_id = getattr(exc, "action_id", None)
                    outbox.put_nowait(Error(w["group"], w["code"], w["message"], w["metadata"], action_id))
                    if action_id is None:
                        # an unreadable or oversized message: the stream cannot be trusted any more
                        outbox.put_nowait(_Close(1011, reason))
                        await asyncio.wait({writer}, timeout=5.0)
                        break
        except AsgiDisconnect:
            pass
        finally:
            socket.close()
            if not writer.done():
                writer.cancel()

    async def _writer(self, ws: AsgiWebSocket, encoding: str, outbox: asyncio.Queue[Any]) -> None:
        while True:
            msg = await outbox.get()
            if type(msg) is _Close:
                try:
                    await ws.close(msg.code, msg.reason)
                except Exception:  # noqa: BLE001 - already closed
                    pass
                return
            try:
                data = enc.encode_to_client(encoding, msg)
            except OutgoingTooLong as exc:
                w = to_wire(exc)
                if type(msg) is ActionResponse:
                    data = enc.encode_to_client(encoding, Error(w["group"], w["code"], w["message"], w["metadata"],
                                                                msg.id))
                else:
                    log.warning("dropped an outgoing %s: %s", type(msg).__name__, exc.message)
                    continue
            except Exception:  # noqa: BLE001 - a value that cannot be encoded must not kill the socket
                log.exception("could not encode an outgoing %s", type(msg).__name__)
                if type(msg) is ActionResponse:
                    data = enc.encode_to_client(encoding, Error("core", "internal_error",
                                                                "An internal error occurred", None, msg.id))
                elif type(msg) is Event:
                    continue
                else:
                    continue
            try:
                if isinstance(data, str):
                    await ws.send_text(data)
                else:
                    await ws.send_bytes(data)
            except Exception:  # noqa: BLE001 - the client went away; the reader notices
                return

    async def _raw_websocket(self, ws: AsgiWebSocket, segment: str, sub_path: str) -> None:
        actor_id, query = await self._target(segment, ws.scope.get("query_string", b""))
        endpoint = _Endpoint(ws)
        raw = WebSocket(endpoint, sub_path, query, Headers(ws.headers.items()))
        await self.manager.dispatch(actor_id, "websocket", raw)
        if not endpoint.closed:
            await endpoint.close(1000, "")


class _Endpoint:
    """A raw socket's transport side over Starlette's ASGI WebSocket."""

    def __init__(self, ws: AsgiWebSocket) -> None:
        self._ws = ws
        self.closed = False

    async def receive(self) -> str | bytes:
        if self.closed:
            raise WebSocketDisconnect(1006, "the socket is closed")
        try:
            message = await self._ws.receive()
        except Exception:  # noqa: BLE001 - the ASGI socket is gone
            self.closed = True
            raise WebSocketDisconnect(1006, "the socket is closed") from None
        if message["type"] == "websocket.disconnect":
            self.closed = True
            raise WebSocketDisconnect(int(message.get("code") or 1000), str(message.get("reason") or ""))
        text = message.get("text")
        return text if text is not None else (message.get("bytes") or b"")

    async def send(self, data: str | bytes) -> None:
        try:
            if isinstance(data, str):
                await self._ws.send_text(data)
            else:
                await self._ws.send_bytes(data)
        except Exception:  # noqa: BLE001
            self.closed = True
            raise WebSocketDisconnect(1006, "the socket is closed") from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await self._ws.close(code, reason[:120])
        except Exception:  # noqa: BLE001
            pass
