"""Hostile input over a real server: arbitrary requests on every HTTP route and over ``/connect``,
oversized frames, a slow client, path-like and binary keys, auth rejections, and the bind warning.

The server runs on a background thread (its own event loop, the file driver in a temporary
directory), so hypothesis drives it with plain synchronous httpx / websockets calls. After every
example: the answer is a 2xx or a catalogued error (never ``core.internal_error``), the target
actor's state is unchanged, and ``/health`` still answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

import httpx
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect as ws_connect

from runtime import ActorError, Client, UserError, actor, setup
from runtime.drivers import FileDriver
from runtime.errors import catalogue
from runtime.protocol import encoding as enc
from runtime.server import app as server_app

EXAMPLES = int(os.environ.get("RIVET_HYPOTHESIS_EXAMPLES", "150"))
CATALOGUE = set(catalogue())
STATE_FILES = {"rivet.db", "rivet.db-wal", "rivet.db-shm", "lock"}

target = actor(state={"n": 41}, state_save_interval=0.05)


@target.on_before_connect
def _auth(c, params):
    if isinstance(params, dict) and params.get("token") == "reject":
        raise UserError("not allowed in", code="forbidden", metadata={"why": "token"})


@target.action
def get(c):
    return c.state["n"]


@target.action
def inc(c):  # never named by the fuzzer: the only way to change the state
    c.state["n"] += 1
    return c.state["n"]


registry = setup(use={"target": target})


class ThreadServer:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.error: BaseException | None = None

    async def _main(self) -> None:
        try:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with registry.serve(port=0, driver=FileDriver(self.state_dir)) as server:
                self.url = server.url
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:  # noqa: BLE001
            self.error = exc
            self._ready.set()

    def __enter__(self) -> ThreadServer:
        self._thread.start()
        self._ready.wait(30)
        assert self.url, self.error
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    state_dir = tmp_path_factory.mktemp("hostile") / "state"
    with ThreadServer(state_dir) as s:
        with httpx.Client(base_url=s.url, timeout=20.0) as http:
            r = http.put("/actors", json={"name": "target", "key": "t"})
            assert r.status_code == 200, r.text
            s.actor_id = r.json()["actor"]["actor_id"]  # type: ignore[attr-defined]
            s.http = http  # type: ignore[attr-defined]
            yield s
    assert s.error is None


def _n(server) -> int:
    r = server.http.post(f"/gateway/{server.actor_id}/action/get", json={"args": []})
    assert r.status_code == 200, r.text
    return r.json()["output"]


def _check_response(r: httpx.Response) -> None:
    if r.status_code < 300:
        return
    assert r.status_code != 500 or r.request.method == "HEAD", r.text
    if r.request.method == "HEAD":
        return  # no body by definition
    ctype = r.headers.get("content-type", "")
    body = msgpack.unpackb(r.content, raw=False) if "msgpack" in ctype else r.json()
    assert set(body) == {"group", "code", "message", "metadata"}, body
    assert (body["group"], body["code"]) in CATALOGUE, body
    assert (body["group"], body["code"]) != ("core", "internal_error"), body
    assert isinstance(body["message"], str) and body["message"]


junk_text = st.text(max_size=40)
junk_segment = st.one_of(junk_text, st.sampled_from(["..", "%2e%2e", "%00", "a%2Fb", "target", "", "@", "x@y"]))
bodies = st.one_of(
    st.binary(max_size=600),
    st.text(max_size=600).map(str.encode),
    st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
                 lambda i: st.one_of(st.lists(i, max_size=4), st.dictionaries(st.text(max_size=6), i, max_size=4)),
                 max_leaves=15).map(lambda v: json.dumps(v).encode()),
)


@st.composite
def requests(draw):
    server_id = "{id}"
    route = draw(st.sampled_from([
        "/actors", "/actors/{seg}", "/actors/names", "/metadata", "/health", "/metrics", "/{seg}",
        "/gateway/{id}/action/{name}", "/gateway/{seg}/action/get", "/gateway/{id}/request/{seg}",
        "/gateway/{id}/{seg}", "/gateway/{id}/connect", "/gateway/target/action/get?rvt-method={seg}&rvt-key={seg}",
        "/gateway/target/action/get?rvt-method=getOrCreate&rvt-input={seg}",
        "/actors?name={seg}&key={seg}", "/actors?actor_ids={seg},{seg}",
    ]))
    name = draw(st.one_of(st.sampled_from(["get", "nope", "", "inc/x"]), junk_text.filter(lambda t: t != "inc")))
    path = route.replace("{id}", server_id).replace("{name}", name)
    while "{seg}" in path:
        path = path.replace("{seg}", draw(junk_segment), 1)
    method = draw(st.sampled_from(["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
    if method == "DELETE" and path.startswith("/actors/"):
        path = "/actors/not-the-target"
    headers = {}
    if draw(st.booleans()):
        headers["x-rivet-encoding"] = draw(st.one_of(st.sampled_from(["json", "msgpack"]), st.text(
            alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=10)))
    if draw(st.booleans()):
        headers["x-rivet-conn-params"] = draw(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                                                      max_size=50))
    if draw(st.booleans()):
        headers["content-type"] = draw(st.sampled_from(["application/json", "application/x-msgpack", "text/x"]))
    return method, path, headers, draw(bodies)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(req=requests())
def test_any_request_on_any_route(server, req):
    method, path, headers, body = req
    path = path.replace("{id}", server.actor_id)
    before = _n(server)
    try:
        r = server.http.request(method, path, headers=headers, content=body)
    except (httpx.InvalidURL, httpx.LocalProtocolError):
        return  # the client refuses to send it at all
    _check_response(r)
    assert _n(server) == before
    assert server.http.get("/health").status_code == 200


@st.composite
def frames(draw):
    n = draw(st.integers(1, 4))
    out = []
    for _ in range(n):
        kind = draw(st.sampled_from(["bytes", "text", "json", "msgpack"]))
        if kind == "bytes":
            out.append(draw(st.binary(max_size=300)))
        elif kind == "text":
            out.append(draw(st.text(max_size=300)))
        else:
            val = draw(st.sampled_from(["get", "nope", 1, None, [], {}, "x" * 10]))
            msg = {"body": {"tag": draw(st.sampled_from(["ActionRequest", "SubscriptionRequest", "Init", "x"])),
                            "val": {"id": draw(st.sampled_from([0, -1, 2**64, "1", None])), "name": val,
                                    "args": draw(st.sampled_from([[], None, "x", [1]])),
                                    "eventName": val, "subscribe": draw(st.sampled_from([True, "yes"]))}}}
            try:
                out.append(json.dumps(msg) if kind == "json" else msgpack.packb(msg, use_bin_type=True))
            except OverflowError:  # 2**64 has no msgpack form
                out.append(json.dumps(msg))
    return draw(st.sampled_from(["json", "msgpack", "cbor"])), out


def _ws_url(server, encoding: str) -> tuple[str, list[str]]:
    url = server.url.replace("http://", "ws://") + f"/gateway/{server.actor_id}/connect"
    return url, ["rivet", f"rivet_encoding.{encoding}"]


def _drain_ws(ws, encoding: str) -> None:
    """Read until quiet or closed: every message is a valid frame; errors are catalogued."""
    from websockets.exceptions import ConnectionClosed

    dec = encoding if encoding in enc.ENCODINGS else "json"
    try:
        while True:
            data = ws.recv(timeout=0.3)
            msg = enc.decode_to_client(dec, data)
            group = getattr(msg, "group", None)
            if group is not None:
                assert (msg.group, msg.code) in CATALOGUE, msg
                assert (msg.group, msg.code) != ("core", "internal_error"), msg
    except TimeoutError:
        return
    except ConnectionClosed as closed:
        rcvd = closed.rcvd
        if rcvd is not None and rcvd.code == 1011:
            group, _, code = rcvd.reason.partition(".")
            assert (group, code) in CATALOGUE, rcvd.reason


@settings(max_examples=max(20, EXAMPLES // 3), deadline=None, suppress_health_check=list(HealthCheck))
@given(spec=frames())
def test_any_frames_over_connect(server, spec):
    encoding, payloads = spec
    before = _n(server)
    url, protocols = _ws_url(server, encoding)
    with ws_connect(url, subprotocols=protocols, open_timeout=10, close_timeout=5) as ws:  # type: ignore[arg-type]
        for p in payloads:
            try:
                ws.send(p)
            except Exception:  # noqa: BLE001 - the server closed it after an unreadable frame
                break
        _drain_ws(ws, encoding)
    assert _n(server) == before
    assert server.http.get("/health").status_code == 200


def test_oversized_frames_and_bodies(server):
    before = _n(server)
    url, protocols = _ws_url(server, "json")
    big = json.dumps({"body": {"tag": "ActionRequest", "val": {"id": 1, "name": "get", "args": ["x" * 70_000]}}})
    with ws_connect(url, subprotocols=protocols, open_timeout=10) as ws:  # type: ignore[arg-type]
        ws.send(big)
        got = []
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                got.append(enc.decode_to_client("json", ws.recv(timeout=5)))
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1011
            assert closed.rcvd.reason == "message.incoming_too_long"
        assert any(getattr(m, "code", None) == "incoming_too_long" for m in got), got
    # beyond the WebSocket layer's own limit (16 MiB): closed with 1009, the server lives on
    with ws_connect(url, subprotocols=protocols, open_timeout=10, max_size=None) as ws:  # type: ignore[arg-type]
        from websockets.exceptions import ConnectionClosed

        try:
            ws.send(b"\0" * (17 * 1024 * 1024))
            ws.recv(timeout=10)
        except ConnectionClosed as closed:
            assert closed.rcvd is None or closed.rcvd.code in (1009, 1011)
    r = server.http.post(f"/gateway/{server.actor_id}/action/get", content=b"[" * 70_000)
    _check_response(r)
    assert r.json()["code"] == "incoming_too_long"
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:  # declares 1 TB, sends nothing
        raw.sendall(f"POST /gateway/{server.actor_id}/action/get HTTP/1.1\r\nHost: x\r\n"
                    f"Content-Length: {10**12}\r\n\r\n".encode())
        reply = _read_reply(raw)
    assert reply.startswith(b"HTTP/1.1 400") and b"incoming_too_long" in reply, reply[:300]
    assert _n(server) == before


def _read_reply(sock: socket.socket) -> bytes:
    reply = b""
    while True:
        head, sep, body = reply.partition(b"\r\n\r\n")
        if sep:
            length = [int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                      if line.startswith(b"content-length:")]
            if length and len(body) >= length[0]:
                return reply
        chunk = sock.recv(65536)
        if not chunk:
            return reply
        reply += chunk


def test_a_slow_client_is_cut_off_and_others_are_served(server, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(server_app, "BODY_TIMEOUT", 1.0)
    host, port = server.url.removeprefix("http://").split(":")
    stalled = socket.create_connection((host, int(port)), timeout=10)
    try:
        stalled.sendall(
            f"POST /gateway/{server.actor_id}/action/get HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"args\"".encode()
        )
        started = time.monotonic()
        assert _n(server) == 41 or True  # others are served meanwhile
        assert server.http.get("/health").status_code == 200
        reply = _read_reply(stalled)
        elapsed = time.monotonic() - started
        assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
        assert b"invalid_request" in reply and b"did not arrive" in reply, reply
        assert elapsed < 8.0, elapsed
    finally:
        stalled.close()


KEYS = [
    ["../../etc/passwd"],
    ["..", "..", "etc", "passwd"],
    ["a\x00b"],
    ["\x00"],
    ["/", "\\", ""],
    ["é" * 64],  # 128 bytes of UTF-8: the largest part allowed
    ["'; DROP TABLE actors; --"],
    ["rivet.db"],
    ["lock"],
    ["\u202e\ufeff漢字🙂"],
]


def test_keys_never_reach_the_file_system_or_sql(server):
    ids = {}
    for key in KEYS:
        r = server.http.put("/actors", json={"name": "target", "key": key})
        assert r.status_code == 200, (key, r.text)
        assert r.json()["created"] is True
        ids[tuple(key)] = r.json()["actor"]["actor_id"]
    for key in KEYS:
        r = server.http.put("/actors", json={"name": "target", "key": key})
        assert r.json()["created"] is False and r.json()["actor"]["actor_id"] == ids[tuple(key)]
        r = server.http.get("/actors", params={"actor_ids": ids[tuple(key)]})
        assert enc.deserialize_key(r.json()["actors"][0]["key"]) == tuple(key)
        r = server.http.get("/actors", params={"name": "target", "key": enc.serialize_key(key)})
        assert [a["actor_id"] for a in r.json()["actors"]] == [ids[tuple(key)]]
        r = server.http.post(f"/gateway/{ids[tuple(key)]}/action/get", json={"args": []})
        assert r.json() == {"output": 41}
    # too long: refused with the catalogued error, nothing created
    for key in (["漢" * 50], ["x" * 100] * 11):
        r = server.http.put("/actors", json={"name": "target", "key": key})
        _check_response(r)
        assert r.json()["code"] == "key_too_large"
    assert {p.name for p in server.state_dir.iterdir()} <= STATE_FILES
    assert not Path("/etc/passwd.rivet").exists()


def test_auth_rejection_reaches_the_client_with_its_code(server):
    async def main() -> None:
        for encoding in enc.ENCODINGS:
            async with Client(server.url, encoding=encoding) as client:
                h = client.get_or_create("target", "auth", params={"token": "reject"})
                with pytest.raises(ActorError) as info:
                    await h.get()
                assert (info.value.group, info.value.code) == ("user", "forbidden")
                assert info.value.metadata == {"why": "token"}
                conn = h.connect()
                got: list[ActorError] = []
                try:
                    async with conn:
                        with pytest.raises(ActorError) as info:
                            await asyncio.wait_for(conn.get(), 10)
                        got.append(info.value)
                except ActorError as exc:
                    got.append(exc)
                assert got and (got[0].group, got[0].code) == ("user", "forbidden"), got
                ok = client.get_or_create("target", "auth", params={"token": "fine"})
                assert await ok.get() == 41

    asyncio.run(main())


@pytest.mark.anyio
async def test_bind_is_loopback_by_default_and_loud_otherwise(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.WARNING, logger="rivet.server")
    async with registry.serve(port=0) as s:
        assert s.url.startswith("http://127.0.0.1:")
    assert not [r for r in caplog.records if "other machines" in r.getMessage()]
    async with registry.serve(host="0.0.0.0", port=0) as s:
        async with httpx.AsyncClient() as http:  # still only talked to over loopback
            assert (await http.get(f"http://127.0.0.1:{s.port}/health")).status_code == 200
    warned = [r for r in caplog.records if "other machines" in r.getMessage()]
    assert warned and warned[0].levelno == logging.WARNING and "0.0.0.0" in warned[0].getMessage()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
