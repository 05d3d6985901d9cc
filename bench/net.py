"""Network benchmarks: the HTTP/WebSocket server over loopback. Prints one JSON object on stdout.

    python bench/net.py                    # everything, memory driver, ~1 minute
    python bench/net.py --driver file      # the same on the file driver
    python bench/net.py --quick            # fewer calls per measurement (a smoke run)

The server runs in a subprocess (``registry.serve(host="127.0.0.1", port=0)``), so on a 2-core
machine the server has one core and the benchmark's clients the other. Every measurement is
bounded by a call count and a time budget, whichever ends first. Each one reports calls per
second and p50/p99 latency in milliseconds:

- ``http.client_sequential.<enc>``: ``await h.increment()`` one after another with
  ``runtime.Client(url, encoding=enc)`` (one ephemeral connection + one action per call).
- ``http.raw_sequential.<enc>``: the same request on one raw keep-alive HTTP/1.1 socket
  (hand-written request bytes, minimal parsing): what the server can do with a cheap client.
- ``http.client_concurrent_50x50`` / ``http.raw_concurrent_50x50``: 50 callers, each on its own
  actor (``runtime.Client`` shared; raw: one keep-alive socket per caller).
- ``conn.client_sequential`` / ``conn.client_pipelined``: actions over one ``h.connect()``
  connection, awaited one by one / with up to 1,000 in flight.
- ``conn.raw_sequential`` / ``conn.raw_pipelined``: the same ``ActionRequest`` messages on a raw
  WebSocket (``websockets``), to separate the client's cost from the server's.
- ``broadcast``: one actor, 1,000 raw WebSockets (one asyncio loop) subscribed to an event; the
  actor broadcasts N events; events delivered per second = 1,000 × N / (time from the call that
  broadcasts until every socket has every event).

Numbers on a shared 2-core machine are noisy: compare within one run, not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from runtime import actor, setup

counter = actor(state={"count": 0}, sleep_timeout=300.0, max_inbox=4096)


@counter.action
def increment(c: Any, amount: int = 1) -> int:
    c.state["count"] += amount
    return c.state["count"]


room = actor(state={"sent": 0}, no_sleep=True)


@room.action
def ready(c: Any) -> int:
    return len(c.conns)


@room.action
def blast(c: Any, n: int, payload: str) -> int:
    for i in range(n):
        c.broadcast("tick", i, payload)
    c.state["sent"] += n
    return n


registry = setup(use={"counter": counter, "room": room})


# ------------------------------------------------------------------------------------ helpers


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


SERVER_PID: int | None = None
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> tuple[float, float]:
    """(this process, the server process) CPU seconds, user + system. CPU per call is much less
    sensitive than wall time to other work on a shared machine."""
    mine = time.process_time()
    server = 0.0
    if SERVER_PID is not None:
        with open(f"/proc/{SERVER_PID}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        server = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return mine, server


def summary(n: int, seconds: float, lat: list[float], cpu0: tuple[float, float]) -> dict[str, Any]:
    ms = [x * 1000 for x in lat]
    mine, server = cpu_seconds()
    return {
        "calls": n,
        "per_s": round(n / seconds) if seconds > 0 else None,
        "p50_ms": round(pct(ms, 50), 3) if ms else None,
        "p99_ms": round(pct(ms, 99), 3) if ms else None,
        "seconds": round(seconds, 2),
        "client_cpu_us_per_call": round((mine - cpu0[0]) / n * 1e6, 1) if n else None,
        "server_cpu_us_per_call": round((server - cpu0[1]) / n * 1e6, 1) if n else None,
    }


async def sequential(call: Callable[[], Awaitable[Any]], n: int, budget: float) -> dict[str, Any]:
    for _ in range(50):  # warm-up: connections, caches
        await call()
    lat: list[float] = []
    clock = time.perf_counter
    cpu0 = cpu_seconds()
    start = clock()
    deadline = start + budget
    done = 0
    while done < n:
        t = clock()
        await call()
        end = clock()
        lat.append(end - t)
        done += 1
        if end > deadline:
            break
    return summary(done, clock() - start, lat, cpu0)


async def concurrent(calls: list[Callable[[], Awaitable[Any]]], per_caller: int, budget: float) -> dict[str, Any]:
    await asyncio.gather(*(c() for c in calls))  # warm-up
    lat: list[float] = []
    clock = time.perf_counter
    cpu0 = cpu_seconds()
    start = clock()
    deadline = start + budget
    counts = [0]

    async def caller(call: Callable[[], Awaitable[Any]]) -> None:
        for _ in range(per_caller):
            t = clock()
            await call()
            end = clock()
            lat.append(end - t)
            counts[0] += 1
            if end > deadline:
                return

    await asyncio.gather(*(caller(c) for c in calls))
    return summary(counts[0], clock() - start, lat, cpu0)


async def pipelined(call: Callable[[], Awaitable[Any]], n: int, window: int, budget: float) -> dict[str, Any]:
    """``n`` calls, at most ``window`` in flight at once (a new one starts as one finishes)."""
    for _ in range(50):
        await call()
    lat: list[float] = []
    clock = time.perf_counter
    cpu0 = cpu_seconds()
    start = clock()
    deadline = start + budget
    issued = 0
    stop = False

    async def lane() -> None:
        nonlocal issued, stop
        while issued < n and not stop:
            issued += 1
            t = clock()
            await call()
            end = clock()
            lat.append(end - t)
            if end > deadline:
                stop = True

    await asyncio.gather(*(lane() for _ in range(min(window, n))))
    return {**summary(len(lat), clock() - start, lat, cpu0), "max_in_flight": min(window, n)}


# ------------------------------------------------------------------------------ raw clients


class RawHttp:
    """One keep-alive HTTP/1.1 connection with pre-built request bytes and minimal parsing."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> RawHttp:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    @staticmethod
    def request(host: str, port: int, path: str, encoding: str, body: bytes) -> bytes:
        ctype = "application/json" if encoding == "json" else "application/octet-stream"
        return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nx-rivet-encoding: {encoding}\r\n"
                f"content-type: {ctype}\r\ncontent-length: {len(body)}\r\n\r\n").encode() + body

    async def send(self, data: bytes) -> bytes:
        assert self.reader is not None and self.writer is not None
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"unexpected answer {head[:80]!r}")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _ws_message(encoding: str, value: Any) -> bytes | str:
    import msgpack

    return json.dumps(value, separators=(",", ":")) if encoding == "json" else msgpack.packb(value)


def _ws_decode(encoding: str, data: bytes | str) -> Any:
    import msgpack

    return json.loads(data) if encoding == "json" else msgpack.unpackb(data, raw=False)


class RawConn:
    """A raw ``/connect`` WebSocket speaking the protocol by hand, with pipelined requests."""

    def __init__(self, ws: Any, encoding: str) -> None:
        self.ws = ws
        self.encoding = encoding
        self.next_id = 0
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.events = 0
        self.event_target = 0
        self.all_events: asyncio.Event = asyncio.Event()
        self.reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, ws_url: str, encoding: str) -> RawConn:
        import websockets

        ws = await websockets.connect(ws_url, subprotocols=["rivet", f"rivet_encoding.{encoding}"],  # type: ignore[list-item]
                                      compression=None, max_size=None, open_timeout=60)
        init = _ws_decode(encoding, await ws.recv())
        assert init["body"]["tag"] == "Init", init
        self = cls(ws, encoding)
        self.reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        enc, waiting = self.encoding, self.waiting
        try:
            async for data in self.ws:
                body = _ws_decode(enc, data)["body"]
                tag, val = body["tag"], body["val"]
                if tag == "Event":
                    self.events += 1
                    if self.events >= self.event_target > 0:
                        self.all_events.set()
                elif tag == "ActionResponse":
                    ident = int(val["id"][1]) if enc == "json" else val["id"]
                    waiting.pop(ident).set_result(val["output"])
                elif tag == "Error":
                    ident = val.get("actionId")
                    if ident is not None:
                        ident = int(ident[1]) if enc == "json" else ident
                        waiting.pop(ident).set_exception(RuntimeError(f"{val['group']}.{val['code']}"))
        except ConnectionClosed:
            pass

    async def call(self, name: str, *args: Any) -> Any:
        self.next_id += 1
        ident = self.next_id
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting[ident] = fut
        wire_id: Any = ["$BigInt", str(ident)] if self.encoding == "json" else ident
        await self.ws.send(_ws_message(self.encoding, {"body": {"tag": "ActionRequest", "val": {
            "id": wire_id, "name": name, "args": list(args)}}}))
        return await fut

    async def subscribe(self, event: str) -> None:
        await self.ws.send(_ws_message(self.encoding, {"body": {"tag": "SubscriptionRequest", "val": {
            "eventName": event, "subscribe": True}}}))

    async def close(self) -> None:
        await self.ws.close()
        if self.reader is not None:
            await self.reader


# ------------------------------------------------------------------------------ the server


def serve_main(driver: str) -> None:
    """Subprocess: serve the bench registry on a free port, print the URL, run until stdin closes."""
    from runtime.drivers import FileDriver, MemoryDriver

    async def main() -> None:
        drv = MemoryDriver() if driver == "memory" else FileDriver(os.path.join(tempfile.mkdtemp(), "state"))
        async with registry.serve(host="127.0.0.1", port=0, driver=drv) as server:
            print(server.url, flush=True)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, sys.stdin.read)  # returns when the parent closes stdin

    asyncio.run(main())


def start_server(driver: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", "--driver", driver],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise RuntimeError(f"the server did not start (got {url!r})")
    global SERVER_PID
    SERVER_PID = proc.pid
    return proc, url


def stop_server(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


# ------------------------------------------------------------------------------ measurements


async def bench_http(url: str, n: int, budget: float) -> dict[str, Any]:
    import msgpack

    from runtime import Client

    host, port = url[len("http://"):].rsplit(":", 1)
    out: dict[str, Any] = {"client_sequential": {}, "raw_sequential": {}}
    for encoding in ("json", "msgpack"):
        async with Client(url, encoding=encoding) as client:
            h = client.get_or_create("counter", ["seq", encoding])
            out["client_sequential"][encoding] = await sequential(h.increment, n, budget)
            actor_id = await h.resolve()
        body = b'{"args":[]}' if encoding == "json" else msgpack.packb({"args": []})
        request = RawHttp.request(host, int(port), f"/gateway/{actor_id}/action/increment", encoding, body)
        raw = await RawHttp(host, int(port)).open()
        try:
            out["raw_sequential"][encoding] = await sequential(functools.partial(raw.send, request), n, budget)
        finally:
            raw.close()

    async with Client(url, encoding="msgpack") as client:
        handles = [client.get_or_create("counter", ["conc", str(i)]) for i in range(50)]
        out["client_concurrent_50x50"] = await concurrent([h.increment for h in handles], n // 50 + 1, budget)
        ids = [await h.resolve() for h in handles]
    body = msgpack.packb({"args": []})
    raws = [await RawHttp(host, int(port)).open() for _ in ids]
    try:
        calls = []
        for r, actor_id in zip(raws, ids, strict=True):
            req = RawHttp.request(host, int(port), f"/gateway/{actor_id}/action/increment", "msgpack", body)
            calls.append(lambda r=r, req=req: r.send(req))
        out["raw_concurrent_50x50"] = await concurrent(calls, n // 50 + 1, budget)
    finally:
        for r in raws:
            r.close()
    return out


async def bench_conn(url: str, n: int, budget: float) -> dict[str, Any]:
    from runtime import Client

    out: dict[str, Any] = {}
    async with Client(url, encoding="msgpack") as client:
        h = client.get_or_create("counter", "conn")
        async with h.connect() as conn:
            out["client_sequential"] = await sequential(conn.increment, n, budget)
            out["client_pipelined"] = await pipelined(conn.increment, 4 * n, 1000, budget)
        actor_id = await h.resolve()
    ws_url = "ws" + url[len("http"):] + f"/gateway/{actor_id}/connect"
    raw = await RawConn.open(ws_url, "msgpack")
    try:
        out["raw_sequential"] = await sequential(lambda: raw.call("increment"), n, budget)
        out["raw_pipelined"] = await pipelined(lambda: raw.call("increment"), 4 * n, 1000, budget)
    finally:
        await raw.close()
    return out


async def bench_broadcast(url: str, clients: int, events: int, payload: int) -> dict[str, Any]:
    from runtime import Client

    async with Client(url, encoding="msgpack") as control:
        h = control.get_or_create("room", "fanout")
        actor_id = await h.resolve()
        ws_url = "ws" + url[len("http"):] + f"/gateway/{actor_id}/connect"
        t = time.perf_counter()
        conns: list[RawConn] = []
        for i in range(0, clients, 100):  # connect in batches of 100
            conns += await asyncio.gather(*(RawConn.open(ws_url, "msgpack") for _ in range(min(100, clients - i))))
        connect_s = time.perf_counter() - t
        try:
            for conn in conns:
                await conn.subscribe("tick")
            # a call after the subscription on every socket: messages of one socket are handled in
            # order, so once it answers, that socket's subscription is in place
            await asyncio.gather(*(conn.call("ready") for conn in conns))
            assert await h.ready() == clients + 1  # the sockets and this call's own ephemeral connection
            for conn in conns:
                conn.event_target = events
            t = time.perf_counter()
            await h.blast(events, "x" * payload)
            await asyncio.wait_for(asyncio.gather(*(c.all_events.wait() for c in conns)), timeout=120)
            spent = time.perf_counter() - t
            delivered = sum(c.events for c in conns)
        finally:
            for i in range(0, len(conns), 100):
                await asyncio.gather(*(c.close() for c in conns[i:i + 100]), return_exceptions=True)
    return {
        "clients": clients,
        "events_broadcast": events,
        "payload_bytes": payload,
        "events_delivered": delivered,
        "delivered_per_s": round(delivered / spent),
        "seconds": round(spent, 2),
        "seconds_to_connect_all": round(connect_s, 2),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    n = 1000 if args.quick else 5000
    budget = 2.0 if args.quick else 5.0
    result: dict[str, Any] = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "driver": args.driver,
        "server": "uvicorn (httptools, websockets-sansio) in a subprocess; clients in this process",
    }
    proc, url = start_server(args.driver)
    try:
        result["http"] = await bench_http(url, n, budget)
        result["conn"] = await bench_conn(url, n, budget)
        result["broadcast"] = await bench_broadcast(url, 1000, 10 if args.quick else 50, 16)
    finally:
        stop_server(proc)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--driver", choices=("memory", "file"), default="memory")
    parser.add_argument("--quick", action="store_true", help="fewer calls per measurement")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.serve:
        serve_main(ns.driver)
    else:
        json.dump(asyncio.run(main(ns)), sys.stdout, indent=2)
        sys.stdout.write("\n")
