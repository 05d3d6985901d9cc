"""A chat room: its page over `on_request`, its messages over a raw WebSocket (`on_websocket`).

Each room is one actor (`rvt-key=<room name>` in the URL). `GET /` answers the page; the page opens
a plain browser WebSocket to the same actor's `/websocket/` route with `?name=<user>`. Every text
message is stored in the room's durable state (the last `HISTORY_LIMIT`) and sent to every open
socket of the room; a new socket first receives the history. Open sockets live in `c.vars`: they
are in-memory objects, rebuilt empty on every wake (an open socket keeps the actor awake anyway).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from runtime import Request, Response, WebSocket, actor

HISTORY_LIMIT = 200
MAX_MESSAGE_LENGTH = 2000
PAGE = (Path(__file__).parent / "page.html").read_text(encoding="utf-8")


def create_vars(c) -> dict:
    return {"sockets": set()}


room = actor(state={"messages": []}, create_vars=create_vars)


@room.on_request
async def serve_page(c, request: Request):
    if request.method == "GET" and request.path in ("", "/"):
        return Response(PAGE, headers={"content-type": "text/html; charset=utf-8", "cache-control": "no-store"})
    if request.method == "GET" and request.path == "/history":
        return {"room": list(c.key), "messages": list(c.state["messages"])}
    return Response("not found\n", status=404)


async def _send_all(c, payload: dict) -> None:
    data = json.dumps(payload)
    for peer in list(c.vars["sockets"]):
        try:
            await peer.send(data)
        except Exception:  # a peer that went away; its own handler cleans up too
            c.vars["sockets"].discard(peer)


@room.on_websocket
async def chat_socket(c, websocket: WebSocket) -> None:
    name = (websocket.query.get("name") or "").strip()[:32] or "anonymous"
    sockets = c.vars["sockets"]
    await websocket.send(json.dumps({"type": "history", "messages": list(c.state["messages"])}))
    sockets.add(websocket)
    await _send_all(c, {"type": "joined", "name": name, "online": len(sockets)})
    try:
        async for raw in websocket:
            text = (raw if isinstance(raw, str) else raw.decode("utf-8", "replace")).strip()
            if not text:
                continue
            message = {"name": name, "text": text[:MAX_MESSAGE_LENGTH], "sent_at": time.time()}
            messages = c.state["messages"]
            messages.append(message)
            if len(messages) > HISTORY_LIMIT:
                del messages[: len(messages) - HISTORY_LIMIT]
            await _send_all(c, {"type": "message", **message})
    finally:
        sockets.discard(websocket)
        await _send_all(c, {"type": "left", "name": name, "online": len(sockets)})
