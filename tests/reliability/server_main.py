"""A real server process for the reliability tests.

    python tests/reliability/server_main.py STATE_DIR [PORT] [--module MOD]

PORT 0 (the default): ``registry.serve(port=0)`` on the file driver; the URL is printed as
``READY http://127.0.0.1:<port>`` on stdout once it serves. Any other PORT: the blocking
``registry.start(port=PORT, state_dir=STATE_DIR)`` (exits cleanly on SIGTERM/SIGINT).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def _log_applies(cls: type) -> None:
    """Test instrumentation: one stderr line per completed ``apply`` (actor id, whether it wrote
    the actor record, start and end time), so the crash harness can tell a lost write from a
    server that was never scheduled. Lines of a killed process are still in the pipe."""
    import time

    from runtime.core import keys as K

    original = cls.apply

    from runtime.drivers.base import UNSET

    async def apply(self, actor_id, puts=(), deletes=(), delete_ranges=(), alarm=UNSET):  # type: ignore[no-untyped-def]
        start = time.time()
        await original(self, actor_id, puts, deletes, delete_ranges, alarm)
        record = int(any(k == K.RECORD for k, _ in puts))
        print(f"APPLY {actor_id} {record} {start:.6f} {time.time():.6f}", file=sys.stderr, flush=True)

    cls.apply = apply


def main(argv: list[str]) -> None:
    module = "tests.reliability.actors"
    if "--module" in argv:
        i = argv.index("--module")
        module = argv[i + 1]
        del argv[i:i + 2]
    state_dir = argv[0]
    port = int(argv[1]) if len(argv) > 1 else 0
    registry = importlib.import_module(module).registry
    if port:
        registry.start(host="127.0.0.1", port=port, state_dir=state_dir)
        return

    from runtime.drivers import FileDriver

    if os.environ.get("RIVET_CRASH_APPLY_LOG"):
        _log_applies(FileDriver)

    async def serve() -> None:
        async with registry.serve(host="127.0.0.1", port=0, driver=FileDriver(state_dir)) as server:
            print(f"READY {server.url} {os.getpid()}", flush=True)
            await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main(sys.argv[1:])
