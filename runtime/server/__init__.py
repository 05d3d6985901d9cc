"""The HTTP / WebSocket server: RivetKit's client protocol (v4) over uvicorn (API.md §5, §7)."""

from runtime.server.app import RivetApp
from runtime.server.serve import Server, run_forever, serve

__all__ = ["RivetApp", "Server", "run_forever", "serve"]
