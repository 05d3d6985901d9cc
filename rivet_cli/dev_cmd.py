"""``rivet dev``: serve the project's registry on the file driver, with hot reload.

One process. The listening socket is bound first (a taken port is reported before anything else
happens) and held for the whole life of the process; the registry module is imported with the
project root on ``sys.path``; the server runs on ``FileDriver(state_dir)``. ``watchfiles`` watches
the project's ``.py`` files (never the state directory, caches, VCS or virtualenv directories).

A change is handled in two steps, one change batch at a time (a burst of saves is one batch):

1. import the new code (see :mod:`rivet_cli.dev_code`). If that fails, the error is reported with
   file and line and the old code keeps serving, untouched;
2. only then ``Manager.reload(new definitions)``: every awake actor sleeps exactly as on idle
   (final flush; hibernatable connections stay open) and wakes on the next call with the new code.
   Calls that arrive meanwhile wait and are served by the new code, so no caller sees an error.

SIGINT/SIGTERM: stop accepting, finish in-flight requests, every awake actor sleeps (flush), exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import typer

from rivet_cli.console import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from rivet_cli.dev_code import LoadError, ProjectCode, SourceFilter
from rivet_cli.dev_log import DevLog, actor_summary, install_logging
from runtime.project import ProjectError, find_project, parse_registry

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6420
DEFAULT_STATE_DIR = ".rivet"

WATCH_STEP_MS = 50
"""How long the watcher waits for more changes after one before it reloads (a burst of saves,
an editor's write-then-rename, a formatter run after save: one reload)."""

WATCH_DEBOUNCE_MS = 1600
"""Upper bound on how long a continuous stream of changes is grouped into one reload."""

STOP_WAIT_FOR_RELOAD = 30.0
"""On Ctrl+C, how long a reload in progress may finish before it is cancelled."""


class _Stop(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def dev(
    registry: str = typer.Option(None, "--registry", metavar="MOD:ATTR",
                                 help="The registry to serve, as module:attribute (default: \\[tool.rivet] registry)."),
    host: str = typer.Option(None, "--host", help=f"Interface to listen on (default: \\[tool.rivet] host, else {DEFAULT_HOST})."),
    port: int = typer.Option(None, "--port", min=0, max=65535,
                             help=f"Port to listen on; 0 picks a free one (default: \\[tool.rivet] port, else {DEFAULT_PORT})."),
    state_dir: Path = typer.Option(None, "--state-dir", metavar="DIR",
                                   help="Where actors' state is kept (default: \\[tool.rivet] state_dir, else .rivet/ "
                                   "in the project root)."),
    no_reload: bool = typer.Option(False, "--no-reload", help="Do not watch the source; serve the code as started."),
    watch: list[Path] = typer.Option(None, "--watch", metavar="DIR",
                                     help="Watch this directory for .py changes (repeatable; default: \\[tool.rivet] "
                                     "watch, else the project root)."),
    json_logs: bool = typer.Option(False, "--json-logs",
                                   help="Log one JSON object per line on stderr (banner, requests, lifecycle, "
                                   "reloads, errors) instead of text. stdout stays empty."),
) -> None:
    """Serve the project's actors on the file driver, reloading the code on every save.

    Durable state, KV, schedules and open connections survive each reload: awake actors sleep (saving first) and wake on their next call with the new code. A broken edit is reported with file and line while the last good code keeps serving.

    Errors reach callers with their real message (RIVET_EXPOSE_ERRORS=1). The log (banner, one line per call and per actor create/wake/sleep/destroy, reloads) goes to stderr. Ctrl+C or SIGTERM: every awake actor saves and sleeps, exit 0.
    """
    out_root = Path.cwd()
    log = DevLog(json_logs, out_root)
    try:
        code = _run(log, registry, host, port, state_dir, no_reload, watch or [])
    except _Stop as stop:
        code = stop.code
    except KeyboardInterrupt:
        log.fatal("interrupted")
        code = 130
    raise typer.Exit(code)


def _fail(log: DevLog, code: int, message: str, hint: str | None = None) -> _Stop:
    log.fatal(message, hint)
    return _Stop(code)


def _run(log: DevLog, registry_flag: str | None, host_flag: str | None, port_flag: int | None,
         state_flag: Path | None, no_reload: bool, watch_flags: list[Path]) -> int:
    # ------------------------------------------------------------- configuration
    try:
        project = find_project(Path.cwd())
    except ProjectError as exc:
        raise _fail(log, EXIT_USAGE, str(exc)) from None
    config = project.config if project is not None else None
    root = project.root.resolve() if project is not None else Path.cwd().resolve()
    log.root = root
    if project is not None and project.unknown_keys:
        log.warning(f"{project.pyproject}: unknown [tool.rivet] key(s): {', '.join(project.unknown_keys)}")

    spec = registry_flag or (config.registry if config else None)
    if not spec:
        raise _fail(log, EXIT_USAGE, "no registry to serve",
                    'pass --registry pkg.module:registry, or add [tool.rivet] registry = "pkg.module:registry" '
                    "to pyproject.toml")
    try:
        module, attr = parse_registry(spec)
    except ValueError as exc:
        raise _fail(log, EXIT_USAGE, f"--registry: {exc}") from None

    host = host_flag or (config.host if config and config.host else DEFAULT_HOST)
    port = port_flag if port_flag is not None else (config.port if config and config.port is not None
                                                    else DEFAULT_PORT)
    if state_flag is not None:
        state = state_flag if state_flag.is_absolute() else Path.cwd() / state_flag
    elif config and config.state_dir:
        state = root / config.state_dir
    else:
        state = root / DEFAULT_STATE_DIR
    state = state.resolve()

    if watch_flags:
        watch_dirs = [(w if w.is_absolute() else Path.cwd() / w).resolve() for w in watch_flags]
    elif config and config.watch:
        watch_dirs = [(root / w).resolve() for w in config.watch]
    else:
        watch_dirs = [root]
    missing = [str(w) for w in watch_dirs if not w.is_dir()]
    if missing and not no_reload:
        raise _fail(log, EXIT_USAGE, f"cannot watch {', '.join(missing)}: not a directory",
                    "pass existing directories to --watch (or fix [tool.rivet] watch)")

    # ------------------------------------------------------------- the port, before anything else
    from runtime.server.serve import bind

    try:
        sock = bind(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise _fail(log, EXIT_FAILURE, f"port {port} on {host} is already in use",
                        f"stop whatever is listening there, or pick another port: rivet dev --port {port + 1 if port else 0}"
                        ) from None
        raise _fail(log, EXIT_FAILURE, f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                    "check --host and --port") from None
    except socket.gaierror as exc:  # pragma: no cover - gaierror is an OSError; kept for clarity
        raise _fail(log, EXIT_FAILURE, f"cannot resolve host {host!r}: {exc}", "check --host") from None

    try:
        # Errors keep their real message in development (API.md §4).
        os.environ["RIVET_EXPOSE_ERRORS"] = "1"
        # Source edits can keep a file's size and land within the second its .pyc records; never
        # write bytecode for the code we re-import, so a reload always compiles what was saved.
        sys.dont_write_bytecode = True
        install_logging(log)

        code = ProjectCode(module, attr, root, watch_dirs, state)
        try:
            registry = code.load()
        except LoadError as err:
            hint = f"> {err.source_line}" if err.source_line else None
            raise _fail(log, EXIT_FAILURE, f"cannot import the registry {spec}: {err}", hint) from None

        dev_server = DevServer(log, code, registry, spec, host, sock, state,
                               None if no_reload else watch_dirs)
        result = asyncio.run(dev_server.main())
    finally:
        sock.close()  # the server closes it when it ran; closing twice is harmless
    return result


class DevServer:
    def __init__(self, log: DevLog, code: ProjectCode, registry: Any, spec: str, host: str,
                 sock: socket.socket, state: Path, watch: list[Path] | None) -> None:
        self.log = log
        self.code = code
        self.registry = registry
        self.spec = spec
        self.host = host
        self.sock = sock
        self.state = state
        self.watch = watch
        self.server: Any = None
        self.reloads = 0

    async def main(self) -> int:
        from runtime.drivers.file import FileDriver
        from runtime.errors import RivetError
        from runtime.server.inspector import admin_token_path, new_admin_token, write_admin_token
        from runtime.server.serve import Server

        admin_token = new_admin_token()
        server = Server(self.registry, self.host, 0, FileDriver(self.state), sock=self.sock,
                        inspector_admin_token=admin_token)
        self.server = server
        manager = server.runtime.manager
        manager.listeners.append(self.log.on_event)
        try:
            await server.start()
        except RivetError as exc:
            if (exc.group, exc.code) == ("driver", "storage_error"):
                self.log.fatal(exc.message,
                               "stop the other process, or serve another state directory with --state-dir DIR")
                return EXIT_FAILURE
            raise
        # only now: a second `rivet dev` refused by the state directory's lock must not replace it
        write_admin_token(self.state, admin_token)

        # uvicorn configured its own text handlers: route its records through ours (JSON stays JSON)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True

        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows / not main thread
                pass

        stop_watch = asyncio.Event()
        watcher: asyncio.Task[None] | None = None
        try:
            if self.watch is not None:
                watcher = asyncio.ensure_future(self._watch(stop_watch))
                # awatch sets up its file system watches synchronously in its first step; let it
                # run before announcing, so an edit made right after the banner is never missed
                for _ in range(3):
                    await asyncio.sleep(0)
                if watcher.done():
                    watcher.result()
            self.log.banner(server.url, self.state, self.registry, self.watch, self.spec,
                            inspector=(f"{server.url}/ui#token={admin_token}", str(admin_token_path(self.state))))
            await stop.wait()
        finally:
            for sig in installed:  # a second Ctrl+C interrupts the graceful shutdown
                loop.remove_signal_handler(sig)
            self.log.stopping(len(manager.instances))
            stop_watch.set()
            if watcher is not None:
                done, _ = await asyncio.wait({watcher}, timeout=STOP_WAIT_FOR_RELOAD)
                if not done:
                    watcher.cancel()
                with contextlib.suppress(BaseException):
                    await watcher
            await server.stop()
        self.log.stopped()
        return EXIT_OK

    # ------------------------------------------------------------------ hot reload

    async def _watch(self, stop_watch: asyncio.Event) -> None:
        from watchfiles import awatch

        assert self.watch is not None
        watch_filter = SourceFilter(ignore_paths=[str(self.state)])
        try:
            async for changes in awatch(*self.watch, watch_filter=watch_filter, stop_event=stop_watch,
                                        step=WATCH_STEP_MS, debounce=WATCH_DEBOUNCE_MS):
                if stop_watch.is_set():
                    break
                files = sorted({self.log.rel(path) for _, path in changes})
                try:
                    await self.reload(files)
                except Exception as exc:  # noqa: BLE001 - a failed swap must not stop the watcher
                    self.log.reload_crashed(exc)
        except Exception as exc:  # noqa: BLE001 - e.g. the inotify watch limit; keep serving
            self.log.warning(f"watching the source stopped ({type(exc).__name__}: {exc}); "
                             "hot reload is off until rivet dev restarts")

    async def reload(self, files: list[str]) -> bool:
        """Import the new code; if it is good, retire the old code. True when the new code serves."""
        started = time.perf_counter()
        try:
            new = self.code.reload()
        except LoadError as err:
            self.log.reload_failed(files, err)
            return False
        before = actor_summary(self.registry)
        carried = await self.server.runtime.manager.reload(dict(new.actors))
        self.registry = new
        self.server.registry = new
        self.server.runtime.registry = new
        self.reloads += 1
        after = actor_summary(new)
        self.log.reloaded(files, time.perf_counter() - started, carried, after if after != before else None)
        return True


__all__ = ["dev"]
