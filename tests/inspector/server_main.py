"""A real server process for the inspector tests: ``python tests/inspector/server_main.py STATE_DIR``.

Serves ``tests.inspector.actors`` on the file driver (port 0) in dev mode: a fresh admin token is
written to ``STATE_DIR/inspector-admin-token`` as ``rivet dev`` does, and ``READY <url> <pid>`` is
printed on stdout once it serves.
"""

from __future__ import annotations

import asyncio
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def main(state_dir: str) -> None:
    from runtime.drivers import FileDriver
    from runtime.server.inspector import new_admin_token, write_admin_token
    from runtime.server.serve import serve
    from tests.inspector.actors import registry

    async def run() -> None:
        token = new_admin_token()
        async with serve(registry, "127.0.0.1", 0, FileDriver(state_dir), inspector_admin_token=token) as server:
            write_admin_token(state_dir, token)  # after start: the state directory's lock is ours
            print(f"READY {server.url} {os.getpid()}", flush=True)
            await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main(sys.argv[1])
