"""The networked transport: HTTP (``httpx``) for calls, WebSocket (``websockets``) for connections.

It implements the :class:`~runtime.client.base.Transport` seam that handles and connections are
written against, so ``Client(url)`` has exactly the API and errors of the in-process client.

Wire (API.md §7): ``PUT /actors`` get-or-create, ``POST /actors`` create, ``GET /actors`` lookup,
``DELETE /actors/{id}``, ``POST /gateway/{id}/action/{name}``, WebSocket ``/gateway/{id}/connect``,
``/gateway/{id}/request/...`` (raw HTTP), WebSocket ``/gateway/{id}/websocket/...`` (raw WS).

Resolution: a key-based query (``get`` / ``getOrCreate``) is resolved to an actor id once and the id
is cached per client. When a call with that id answers ``actor.not_found`` (the actor was
destroyed), the query is resolved again for real; only if that yields a *different* id is the call
made once more. So a handle follows its key across a destroy, and an action that itself raised
``actor.not_found`` (e.g. calling another actor) never runs twice. ``resolve()`` always asks the
server. Ids are stable across sleep, so a sleep needs no re-resolution.

Action calls (the hot path) go over :class:`_ActionPool`, keep-alive HTTP/1.1 connections driven by
``h11`` on asyncio streams, with each request written in one piece; everything else uses ``httpx``.
Measured with ``bench/net.py``: httpx spends several times the CPU of the whole server round trip
per request, and its connection pool does work quadratic in the number of open connections on
every request (50 concurrent callers: ~7 ms of client CPU per call).

Errors the server did not send (refused connection, timeout, a non-rivet answer) become
``ActorError`` in group ``client``: ``client.unreachable``, ``client.timeout``,
``client.invalid_response``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import h11
import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from runtime.client.base import ActorQuery
from runtime.errors import ActorError, RivetError, catalogue, from_wire
from runtime.protocol import encoding as enc
from runtime.protocol.messages import Error, Init, ToClient, ToServer

log = logging.getLogger("rivet.client")

__all__ = ["DEFAULT_URL", "HttpTransport", "RawWebSocket", "WebSocketClosed"]

DEFAULT_URL = "http://127.0.0.1:6420"

T = TypeVar("T")

#: Bound on everything a response may carry (the server caps its messages at 1 MiB).
_MAX_WS_MESSAGE = 16 * 1024 * 1024

# websockets >= 15 follows proxy environment variables; a local actor server is reached directly
_NO_PROXY: dict[str, Any] = (
    {"proxy": None} if "proxy" in inspect.signature(websockets.connect.__init__).parameters else {}
)


class WebSocketClosed(Exception):
    """Raised by :meth:`RawWebSocket.receive` once the socket is closed (``code``, ``reason``)."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        super().__init__(f"the WebSocket is closed (code {code}{', ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


def _client_error(code: str, message: str, metadata: Any = None) -> ActorError:
    """A failure seen only by the client (``client.*``); every code is in the catalogue."""
    assert ("client", code) in catalogue(), f"client.{code} is not catalogued"
    return ActorError("client", code, message, metadata)


def _is_not_found(exc: ActorError) -> bool:
    return exc.group == "actor" and exc.code == "not_found"


_TIMEOUT: Any = getattr(asyncio, "timeout", None)


class _H1Conn:
    __slots__ = ("reader", "writer", "h11", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
        self.idle_since = 0.0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class _ActionPool:
    """Keep-alive HTTP/1.1 connections for ``POST /gateway/{id}/action/{name}``.

    One request is one write; an idle connection is reused last-in first-out, and dropped when
    the server closed it or it has been idle for ``KEEPALIVE`` seconds (below uvicorn's default
    of 5 s, so the server never closes a connection this pool is about to reuse). Nothing is
    retried: an action is not idempotent."""

    KEEPALIVE = 4.0
    MAX_IDLE = 100

    def __init__(self, url: str, connect_timeout: float, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self._ssl = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._ssl else 80)
        self._prefix = parts.path.rstrip("/")
        self._connect_timeout = connect_timeout
        host = self._host.encode("idna").decode("ascii")
        host = f"[{host}]" if ":" in host else host
        self._headers = [(b"host", (host if parts.port is None else f"{host}:{parts.port}").encode("ascii"))]
        self._headers += [(k.lower().encode("ascii"), v.encode("utf-8")) for k, v in headers.items()
                          if k.lower() != "host"]
        self._idle: list[_H1Conn] = []
        self._closed = False

    async def _take(self) -> _H1Conn:
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._idle:
            conn = self._idle.pop()
            if conn.reader.at_eof() or conn.writer.is_closing() or now - conn.idle_since > self.KEEPALIVE:
                conn.close()
                continue
            return conn
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self._host, self._port, ssl=self._ssl or None), self._connect_timeout)
        return _H1Conn(reader, writer)

    def _give_back(self, conn: _H1Conn) -> None:
        if self._closed or len(self._idle) >= self.MAX_IDLE:
            conn.close()
            return
        conn.idle_since = asyncio.get_running_loop().time()
        self._idle.append(conn)

    async def post(self, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, str, bytes]:
        """(status, content type, body). Raises OSError, ``h11.ProtocolError`` or
        ``asyncio.IncompleteReadError`` when the connection fails."""
        conn = await self._take()
        reusable = False
        try:
            hc = conn.h11
            conn.writer.write(
                hc.send(h11.Request(method=b"POST", target=(self._prefix + path).encode("ascii"),
                                    headers=[*self._headers, *headers, (b"content-length", b"%d" % len(body))]))
                + hc.send(h11.Data(data=body)) + hc.send(h11.EndOfMessage())
            )
            status = 0
            ctype = ""
            chunks: list[bytes] = []
            size = 0
            while True:
                event = hc.next_event()
                if event is h11.NEED_DATA:
                    hc.receive_data(await conn.reader.read(65536))
                    continue
                t = type(event)
                if t is h11.Response:
                    status = event.status_code  # type: ignore[union-attr]
                    for k, v in event.headers:  # type: ignore[union-attr]
                        if k == b"content-type":
                            ctype = v.decode("latin-1")
                elif t is h11.Data:
                    size += len(event.data)  # type: ignore[union-attr]
                    if size > _MAX_WS_MESSAGE:
                        raise h11.RemoteProtocolError("the response is larger than 16 MiB")
                    chunks.append(event.data)  # type: ignore[union-attr]
                elif t is h11.EndOfMessage:
                    break
                elif t is h11.ConnectionClosed:
                    raise h11.RemoteProtocolError("the server closed the connection without a full response")
                # h11.InformationalResponse (1xx): keep reading
            if hc.our_state is h11.DONE and hc.their_state is h11.DONE:
                hc.start_next_cycle()
                reusable = True
            return status, ctype, b"".join(chunks)
        finally:
            if reusable:
                self._give_back(conn)
            else:
                conn.close()

    def close(self) -> None:
        self._closed = True
        for conn in self._idle:
            conn.close()
        self._idle.clear()


class HttpTransport:
    """``Transport`` over a rivet server's HTTP and WebSocket routes."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        encoding: str = "msgpack",
        *,
        timeout: float | None = 120.0,
        connect_timeout: float = 10.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        if encoding not in enc.ENCODINGS:
            raise ValueError(f"unknown encoding {encoding!r}: use 'json' or 'msgpack'")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the server URL must look like http://127.0.0.1:6420, got {url!r}")
        self.url = url.rstrip("/")
        self.encoding = encoding
        self._ws_url = ("wss" if parts.scheme == "https" else "ws") + self.url[len(parts.scheme):]
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._headers = dict(headers or {})
        self._http: httpx.AsyncClient | None = None
        self._actions = _ActionPool(self.url, connect_timeout, self._headers)
        self._ids: dict[tuple[str, tuple[str, ...]], str] = {}  # (name, key) → actor id
        self._verified: set[tuple[str, str]] = set()  # (name, id) known to exist with that name
        self._links: set[_Link] = set()
        self._owners: weakref.WeakSet[Any] = weakref.WeakSet()  # connections that used this transport
        self._raw_sockets: set[RawWebSocket] = set()
        self._closed = False

    # ================================================================ plumbing

    def _client(self) -> httpx.AsyncClient:
        if self._closed:
            raise _client_error("disposed", "This client is closed; create a new Client to make more calls")
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.url,
                timeout=httpx.Timeout(self._timeout, connect=self._connect_timeout),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
                headers=self._headers,
                # a local actor server is reached directly: proxy variables must not reroute it
                trust_env=False,
            )
        return self._http

    def _unreachable(self, exc: BaseException) -> ActorError:
        return _client_error(
            "unreachable",
            f"Could not reach the rivet server at {self.url} ({type(exc).__name__}: {exc}). "
            "Is it running? Start it with `rivet dev` (or `registry.start()`), "
            "or pass the server's URL to Client(url).",
            {"url": self.url},
        )

    def _timed_out(self, what: str) -> ActorError:
        return _client_error(
            "timeout",
            f"The rivet server at {self.url} did not answer {what} within {self._timeout} s; "
            "raise Client(timeout=...) for slow actions, or check that the server is healthy.",
            {"url": self.url, "timeout": self._timeout},
        )

    async def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return await self._client().request(method, path, **kw)
        except httpx.TimeoutException as exc:
            raise self._timed_out(f"{method} {path}") from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    def _error_from(self, status: int, ctype: str, body: bytes) -> ActorError:
        order = [enc.JSON, enc.MSGPACK] if "json" in ctype else [enc.MSGPACK, enc.JSON]
        for encoding in order:
            try:
                return from_wire(enc.decode_error(encoding, body))
            except Exception:  # noqa: BLE001 - try the other encoding, then give up below
                continue
        snippet = body[:200].decode("utf-8", "replace")
        return _client_error(
            "invalid_response",
            f"The server at {self.url} answered HTTP {status} with a body that is not a rivet error "
            f"({snippet!r}); is that URL a rivet server?",
            {"status": status},
        )

    def _check(self, resp: httpx.Response) -> httpx.Response:
        if resp.status_code >= 400:
            raise self._error_from(resp.status_code, resp.headers.get("content-type", ""), resp.content)
        return resp

    def _json(self, resp: httpx.Response) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise _client_error(
                "invalid_response",
                f"The server at {self.url} answered {resp.request.method} {resp.request.url.path} "
                "with a body that is not JSON; is that URL a rivet server?",
            ) from None

    def _params_header(self, params: Any) -> dict[str, str]:
        if params is None:
            return {}
        return {"x-rivet-conn-params": json.dumps(enc.to_json_compat(params), separators=(",", ":"))}

    # ================================================================ resolution

    @staticmethod
    def _actor_id_of(body: Any) -> str:
        actor = body.get("actor") if isinstance(body, dict) else None
        if not isinstance(actor, dict) or not isinstance(actor.get("actor_id"), str):
            raise _client_error("invalid_response", f"unexpected /actors answer: {str(body)[:200]}")
        return actor["actor_id"]

    async def _lookup_key(self, name: str, key: tuple[str, ...]) -> str:
        resp = self._check(await self._request(
            "GET", "/actors", params={"name": name, "key": enc.serialize_key(key)}))
        actors = self._json(resp).get("actors") or []
        if not actors:
            raise ActorError(
                "actor", "not_found",
                f"No {name!r} actor with key {list(key)!r} exists; use get_or_create to create it",
            )
        return self._actor_id_of({"actor": actors[0]})

    async def _put_or_post(self, method: str, query: ActorQuery) -> str:
        body: dict[str, Any] = {
            "name": query.name,
            "key": enc.serialize_key(query.key),
            "runner_name_selector": "default",
            "crash_policy": "sleep",
        }
        if query.input is not None:
            body["input"] = enc.encode_input(query.input)
        resp = self._check(await self._request(method, "/actors", json=body))
        return self._actor_id_of(self._json(resp))

    async def _verify_id(self, name: str, actor_id: str) -> str:
        resp = self._check(await self._request("GET", "/actors", params={"actor_ids": actor_id}))
        actors = self._json(resp).get("actors") or []
        found = next((a for a in actors if isinstance(a, dict) and a.get("actor_id") == actor_id), None)
        if found is None:
            raise ActorError(
                "actor", "not_found", f"The actor {actor_id!r} does not exist (never created, or destroyed)")
        if found.get("name") != name:
            raise ActorError("actor", "not_found", f"The actor {actor_id!r} is not a {name!r} actor")
        self._verified.add((name, actor_id))
        return actor_id

    async def _fresh(self, query: ActorQuery) -> str:
        """Ask the server which actor ``query`` names (creating it when the query says so)."""
        mode = query.mode
        if mode == "id":
            if not isinstance(query.actor_id, str):
                raise ActorError("actor", "invalid_request", "an actor id must be a str")
            return await self._verify_id(query.name, query.actor_id)
        if mode == "create":
            return await self._put_or_post("POST", query)
        if mode == "get":
            actor_id = await self._lookup_key(query.name, query.key)
        elif mode == "getOrCreate":
            actor_id = await self._put_or_post("PUT", query)
        else:
            raise ActorError("actor", "invalid_request", f"unknown resolve mode {mode!r}")
        self._ids[(query.name, query.key)] = actor_id
        return actor_id

    async def _cached(self, query: ActorQuery) -> str:
        if query.mode in ("get", "getOrCreate"):
            actor_id = self._ids.get((query.name, query.key))
            if actor_id is not None:
                return actor_id
        elif query.mode == "id" and (query.name, query.actor_id) in self._verified:
            return query.actor_id  # type: ignore[return-value]
        return await self._fresh(query)

    async def _with_actor(self, query: ActorQuery, fn: Callable[[str], Awaitable[T]]) -> T:
        """Run ``fn(actor_id)``; a key-based query that meets ``actor.not_found`` is resolved
        again and, if that names another actor, ``fn`` runs once more against it."""
        actor_id = await self._cached(query)
        try:
            return await fn(actor_id)
        except ActorError as exc:
            if query.mode == "id" and _is_not_found(exc):
                self._verified.discard((query.name, actor_id))
            if query.mode not in ("get", "getOrCreate") or not _is_not_found(exc):
                raise
            ck = (query.name, query.key)
            if self._ids.get(ck) == actor_id:
                del self._ids[ck]
            fresh = await self._fresh(query)
            if fresh == actor_id:
                raise
            return await fn(fresh)

    # ================================================================ Transport

    async def resolve(self, query: ActorQuery) -> str:
        return await self._fresh(query)

    async def _post_action(self, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
        if self._closed:
            raise _client_error("disposed", "This client is closed; create a new Client to make more calls")
        try:
            if self._timeout is None:
                status, ctype, content = await self._actions.post(path, headers, body)
            elif _TIMEOUT is not None:  # Python >= 3.11: no extra task per call
                async with _TIMEOUT(self._timeout):
                    status, ctype, content = await self._actions.post(path, headers, body)
            else:
                status, ctype, content = await asyncio.wait_for(
                    self._actions.post(path, headers, body), self._timeout)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise self._timed_out(f"POST {path}") from exc
        except (OSError, h11.ProtocolError, asyncio.IncompleteReadError, UnicodeError) as exc:
            raise self._unreachable(exc) from exc
        if status >= 400:
            raise self._error_from(status, ctype, content)
        return content

    async def action(self, query: ActorQuery, name: str, args: list[Any], params: Any) -> Any:
        body = enc.encode_action_request(self.encoding, args)
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = [(b"x-rivet-encoding", self.encoding.encode()),
                   (b"content-type", enc.content_type(self.encoding).encode())]
        if params is not None:
            headers += [(k.encode(), v.encode("utf-8")) for k, v in self._params_header(params).items()]

        async def call(actor_id: str) -> Any:
            content = await self._post_action(
                f"/gateway/{quote(actor_id, safe='')}/action/{quote(name, safe='')}", headers, body)
            try:
                return enc.decode_action_response(self.encoding, content)
            except ActorError:
                raise
            except Exception as exc:  # noqa: BLE001 - a RivetError (invalid_request, too long)
                raise _client_error(
                    "invalid_response", f"The action response from {self.url} could not be decoded: {exc}"
                ) from None

        return await self._with_actor(query, call)

    async def destroy(self, query: ActorQuery) -> None:
        async def call(actor_id: str) -> None:
            self._check(await self._request("DELETE", f"/actors/{quote(actor_id, safe='')}"))
            self._verified = {v for v in self._verified if v[1] != actor_id}
            for ck, cached in list(self._ids.items()):
                if cached == actor_id:
                    del self._ids[ck]

        await self._with_actor(query, call)

    async def connect(
        self,
        query: ActorQuery,
        params: Any,
        on_message: Callable[[ToClient], None],
        on_close: Callable[[str | None], None],
    ) -> _Link:
        owner = getattr(on_close, "__self__", None)
        if owner is not None:
            self._owners.add(owner)

        async def open_link(actor_id: str) -> _Link:
            link = await _Link.open(self, actor_id, params, on_message, on_close)
            self._links.add(link)
            return link

        return await self._with_actor(query, open_link)

    async def fetch(
        self, query: ActorQuery, path: str, method: str = "GET", headers: Any = None, body: Any = None,
        params: Any = None,
    ) -> httpx.Response:
        """Raw HTTP to the actor's ``on_request``. The response is returned whatever its status."""
        if not path.startswith("/"):
            path = "/" + path
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            content: bytes | None = json.dumps(body).encode()
            if not any(k.lower() == "content-type" for k in hdrs):
                hdrs["content-type"] = "application/json"
        elif isinstance(body, str):
            content = body.encode("utf-8")
        elif body is None or isinstance(body, (bytes, bytearray)):
            content = bytes(body) if body is not None else None
        else:
            raise TypeError(f"fetch(body=...) takes bytes, str, a dict or a list, got {type(body).__name__}")
        hdrs.update(self._params_header(params))

        async def call(actor_id: str) -> httpx.Response:
            resp = await self._request(
                method.upper(), f"/gateway/{quote(actor_id, safe='')}/request{path}", content=content, headers=hdrs)
            if resp.status_code == 404 and query.mode in ("get", "getOrCreate"):
                err = self._maybe_error(resp)
                if err is not None and _is_not_found(err):
                    raise _NotFoundResponse(err, resp)
            return resp

        try:
            return await self._with_actor(query, call)
        except _NotFoundResponse as exc:
            return exc.response

    def _maybe_error(self, resp: httpx.Response) -> ActorError | None:
        try:
            return from_wire(enc.decode_error(enc.JSON, resp.content))
        except Exception:  # noqa: BLE001 - a user's own 404 body
            return None

    async def websocket(self, query: ActorQuery, path: str = "/", params: Any = None) -> RawWebSocket:
        """Raw WebSocket to the actor's ``on_websocket``."""
        if not path.startswith("/"):
            path = "/" + path

        async def call(actor_id: str) -> RawWebSocket:
            ws = await self._ws_connect(f"/gateway/{quote(actor_id, safe='')}/websocket{path}",
                                        self._subprotocols(params))
            raw = RawWebSocket(ws, self._raw_sockets)
            self._raw_sockets.add(raw)
            return raw

        return await self._with_actor(query, call)

    async def close(self) -> None:
        """Close HTTP pooling, every raw socket, and dispose every connection of this client."""
        if self._closed:
            return
        self._closed = True
        from runtime.client.connection import ActorConnection

        for owner in list(self._owners):
            if isinstance(owner, ActorConnection):
                await owner.dispose()  # closes its socket and stops its reconnect loop
        for link in list(self._links):
            link.close()
        for raw in list(self._raw_sockets):
            await raw.close()
        self._actions.close()
        if self._http is not None:
            await self._http.aclose()
        self._http = None

    # ================================================================ sockets

    def _subprotocols(self, params: Any) -> list[str]:
        protocols = ["rivet", f"rivet_encoding.{self.encoding}"]
        if params is not None:
            text = json.dumps(enc.to_json_compat(params), separators=(",", ":"))
            protocols.append(f"rivet_conn_params.{quote(text, safe='')}")
        return protocols

    async def _ws_connect(self, path: str, subprotocols: list[str]) -> ClientConnection:
        if self._closed:
            raise _client_error("disposed", "This client is closed; create a new Client to open sockets")
        try:
            return await websockets.connect(
                self._ws_url + path,
                subprotocols=subprotocols,  # type: ignore[arg-type]
                additional_headers=self._headers or None,
                open_timeout=self._connect_timeout,
                max_size=_MAX_WS_MESSAGE,
                compression=None,
                **_NO_PROXY,
            )
        except InvalidStatus as exc:
            r = exc.response
            raise self._error_from(r.status_code, r.headers.get("content-type", ""), bytes(r.body or b"")) from None
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise _client_error(
                "timeout", f"Opening a WebSocket to {self.url} took longer than {self._connect_timeout} s",
                {"url": self.url},
            ) from exc
        except (OSError, InvalidHandshake) as exc:
            raise self._unreachable(exc) from exc


class _NotFoundResponse(ActorError):
    """A raw response that is the gateway's ``actor.not_found``: re-resolve, else hand it back."""

    def __init__(self, err: ActorError, response: httpx.Response) -> None:
        super().__init__(err.group, err.code, err.message, err.metadata)
        self.response = response


def _close_reason(ws: ClientConnection) -> str:
    code, reason = ws.close_code, ws.close_reason
    if reason:
        return reason
    return f"closed with code {code}" if code is not None else "closed"


class _Link:
    """One ``/connect`` socket: a reader delivering decoded messages in order and a writer
    sending queued messages in order. ``send`` and ``close`` never block."""

    def __init__(self, transport: HttpTransport, ws: ClientConnection, first: Init,
                 on_message: Callable[[ToClient], None], on_close: Callable[[str | None], None]) -> None:
        self._transport = transport
        self._ws = ws
        self._encoding = transport.encoding
        self.on_message = on_message
        self.on_close = on_close
        self._outbox: asyncio.Queue[bytes | str | None] = asyncio.Queue()
        self._closed = False
        # Init is delivered from the reader task, i.e. after ``connect`` returned the link, so the
        # connection already holds it and can re-send its subscriptions and queued actions.
        self._reader = asyncio.ensure_future(self._read(first))
        self._writer = asyncio.ensure_future(self._write())

    @classmethod
    async def open(cls, transport: HttpTransport, actor_id: str, params: Any,
                   on_message: Callable[[ToClient], None], on_close: Callable[[str | None], None]) -> _Link:
        ws = await transport._ws_connect(f"/gateway/{quote(actor_id, safe='')}/connect",
                                         transport._subprotocols(params))
        try:
            try:
                data = await asyncio.wait_for(ws.recv(), transport._connect_timeout)
            except ConnectionClosed:
                raise ActorError(
                    "client", "connection_lost",
                    f"The server closed the connection before it was established ({_close_reason(ws)})",
                ) from None
            except (asyncio.TimeoutError, TimeoutError):
                raise _client_error(
                    "timeout", f"The server at {transport.url} accepted the socket but sent no Init "
                    f"within {transport._connect_timeout} s") from None
            try:
                first = enc.decode_to_client(transport.encoding, data)
            except RivetError as exc:
                raise _client_error(
                    "invalid_response", f"The first message from {transport.url} could not be decoded: {exc}"
                ) from None
            if type(first) is Error:
                raise ActorError(first.group, first.code, first.message, first.metadata)
            if type(first) is not Init:
                raise _client_error("invalid_response", f"expected Init as the first message, got {first!r}")
        except BaseException:
            with contextlib.suppress(Exception):
                await ws.close()
            raise
        return cls(transport, ws, first, on_message, on_close)

    def send(self, message: ToServer) -> None:
        if self._closed:
            return
        self._outbox.put_nowait(enc.encode_to_server(self._encoding, message))

    def close(self) -> None:
        """Closed by the client (dispose): ``on_close`` is not called."""
        if self._closed:
            return
        self._closed = True
        self._transport._links.discard(self)
        self._outbox.put_nowait(None)  # the writer closes the socket after what is queued

    async def _write(self) -> None:
        try:
            while True:
                data = await self._outbox.get()
                if data is None:
                    break
                await self._ws.send(data)
        except ConnectionClosed:
            pass  # the reader reports the close
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001
            log.exception("sending on a rivet connection failed")
        finally:
            if self._closed:
                with contextlib.suppress(Exception):
                    await self._ws.close()
                self._reader.cancel()

    async def _read(self, first: Init) -> None:
        reason: str | None = None
        try:
            self.on_message(first)
            async for data in self._ws:
                try:
                    message = enc.decode_to_client(self._encoding, data)
                except Exception:  # noqa: BLE001 - one bad frame must not end the connection
                    log.warning("undecodable message from the server ignored")
                    continue
                self.on_message(message)
            reason = _close_reason(self._ws)
        except ConnectionClosed:
            reason = _close_reason(self._ws)
        except asyncio.CancelledError:
            return
        except Exception as exc:  # noqa: BLE001
            log.exception("reading a rivet connection failed")
            reason = f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(Exception):
                await self._ws.close()
        by_client = self._closed
        if not by_client:
            self._closed = True
            self._transport._links.discard(self)
            self._outbox.put_nowait(None)
            self.on_close(reason)


class RawWebSocket:
    """The client side of an actor's ``on_websocket``: ``send``, ``receive``, ``close`` and
    ``async for message in ws`` (ends when the socket closes)."""

    def __init__(self, ws: ClientConnection, registry: set[RawWebSocket] | None = None) -> None:
        self._ws = ws
        self._registry = registry

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code

    @property
    def close_reason(self) -> str | None:
        return self._ws.close_reason

    async def send(self, data: str | bytes) -> None:
        if not isinstance(data, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"a WebSocket message is str or bytes, got {type(data).__name__}")
        try:
            await self._ws.send(data if isinstance(data, (str, bytes)) else bytes(data))
        except ConnectionClosed:
            raise WebSocketClosed(self._ws.close_code, self._ws.close_reason or "") from None

    async def receive(self) -> str | bytes:
        try:
            return await self._ws.recv()
        except ConnectionClosed:
            self._forget()
            raise WebSocketClosed(self._ws.close_code, self._ws.close_reason or "") from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self._forget()
        await self._ws.close(code, reason)

    def _forget(self) -> None:
        if self._registry is not None:
            self._registry.discard(self)

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str | bytes]:
        while True:
            try:
                yield await self.receive()
            except WebSocketClosed:
                return

    async def __aenter__(self) -> RawWebSocket:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
