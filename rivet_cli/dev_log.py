"""``rivet dev``'s output on stderr: the banner, the live log, reloads, errors.

Three shapes: styled text on a terminal (rich), the same lines without any escape codes when
stderr is not a terminal or ``NO_COLOR`` is set, and with ``--json-logs`` one JSON object per line
(every line, the banner and errors included, so a consumer never has to skip text).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from rivet_cli.console import no_color, stderr
from rivet_cli.dev_code import LoadError
from runtime.registry import Registry

__all__ = ["DevLog", "actor_summary"]


def actor_summary(registry: Registry) -> dict[str, list[str]]:
    """``{actor name: [action names]}``, sorted."""
    return {name: sorted(d.actions) for name, d in sorted(registry.actors.items())}


def _key(key: Any) -> str:
    parts = key if isinstance(key, (list, tuple)) else [key]
    return ",".join(str(p) for p in parts)


def _ms(ms: float) -> str:
    if ms < 1:
        return f"{ms:.2f} ms"
    return f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


class DevLog:
    def __init__(self, json_logs: bool, root: Path) -> None:
        self.json = json_logs
        self.root = root
        self.console: Console = stderr()
        self.styled = not json_logs and self.console.is_terminal and not no_color()

    # ------------------------------------------------------------------ primitives

    def _emit_json(self, event: str, **fields: Any) -> None:
        record = {"ts": round(time.time(), 6), "event": event, **fields}
        sys.stderr.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        sys.stderr.flush()

    def _line(self, *parts: tuple[str, str] | str) -> None:
        """One log line: ``HH:MM:SS.mmm`` then the parts (text, or (text, style))."""
        now = time.time()
        stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
        if self.styled:
            self.console.print(Text.assemble((stamp, "dim"), " ", *parts), soft_wrap=True, highlight=False)
        else:
            text = "".join(p if isinstance(p, str) else p[0] for p in parts)
            sys.stderr.write(f"{stamp} {text}\n")
            sys.stderr.flush()

    def rel(self, path: Path | str) -> str:
        p = Path(path)
        try:
            return str(p.resolve().relative_to(self.root))
        except ValueError:
            return str(p)

    # ------------------------------------------------------------------ startup and shutdown

    def banner(self, url: str, state_dir: Path, registry: Registry, watch: list[Path] | None,
               registry_spec: str, inspector: tuple[str, str] | None = None) -> None:
        """``inspector``: (the page's URL with its token, the admin token file ``rivet inspect`` reads)."""
        actors = actor_summary(registry)
        if self.json:
            extra = {"inspector": {"ui": inspector[0], "token_file": inspector[1]}} if inspector else {}
            self._emit_json("ready", url=url, state_dir=str(state_dir), registry=registry_spec, actors=actors,
                            reload={"enabled": watch is not None, "watch": [str(w) for w in watch or []]},
                            **extra)
            return
        reload = (f"on, watching {', '.join(self.rel(w) + '/' if self.rel(w) != '.' else './' for w in watch)}"
                  if watch is not None else "off (--no-reload)")
        rows: list[tuple[str, Text]] = [
            ("url", Text(url, style="bold cyan")),
            ("state", Text(str(state_dir))),
            ("registry", Text(registry_spec)),
        ]
        for i, (name, actions) in enumerate(actors.items()):
            rows.append(("actors" if i == 0 else "", Text.assemble((name, "bold"), "  ",
                                                                   (", ".join(actions) or "(no actions)", "dim"))))
        if not actors:
            rows.append(("actors", Text("none registered", style="yellow")))
        rows.append(("reload", Text(reload)))
        if inspector is not None:
            rows.append(("inspector", Text(inspector[0], style="cyan")))
            rows.append(("", Text(f"admin token in {inspector[1]} (new every run; `rivet inspect` reads it; "
                                  "per-actor tokens: GET /inspector/token/ACTOR_ID)", style="dim")))
        rows.append(("", Text("Ctrl+C to stop · RIVET_EXPOSE_ERRORS=1 (callers see real error messages)",
                             style="dim")))
        if self.styled:
            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="bold")
            grid.add_column()
            for label, value in rows:
                grid.add_row(label, value)
            self.console.print(Panel(grid, title="[bold]rivet dev[/bold]", title_align="left", expand=False))
        else:
            lines = ["rivet dev"] + [f"  {label:<9} {value.plain}" for label, value in rows]
            sys.stderr.write("\n".join(lines) + "\n")
            sys.stderr.flush()

    def stopping(self, awake: int) -> None:
        if self.json:
            self._emit_json("stopping", awake=awake)
        else:
            self._line(("stopping", "bold"), f"; {awake} awake actor(s) sleep and save first")

    def stopped(self) -> None:
        if self.json:
            self._emit_json("stopped")
        else:
            self._line(("stopped", "bold"), "; all state saved")

    def fatal(self, message: str, hint: str | None = None) -> None:
        if self.json:
            self._emit_json("error", message=message, **({"hint": hint} if hint else {}))
            return
        from rivet_cli.console import error

        error(message, hint)

    def warning(self, message: str) -> None:
        if self.json:
            self._emit_json("warning", message=message)
        else:
            from rivet_cli.console import warning

            warning(message)

    # ------------------------------------------------------------------ the live log

    def on_event(self, event: dict[str, Any]) -> None:
        """A listener for ``Manager.listeners``: one line per action and lifecycle event."""
        if self.json:
            self._emit_json(**event)
            return
        kind = event.get("event", "?")
        who = f"{event.get('actor')}[{_key(event.get('key', []))}]"
        if kind == "action":
            outcome = str(event.get("outcome", ""))
            ok = outcome == "ok"
            self._line((f"{'call':<7}", "cyan"), " ", (who, "bold"), " ", str(event.get("action")), "  ",
                       (_ms(float(event.get("duration_ms", 0.0))), "dim"), "  ",
                       (outcome, "green" if ok else "bold red"))
        else:
            style = {"create": "green", "destroy": "red", "sleep": "dim", "wake": "blue"}.get(kind, "")
            self._line((f"{kind:<7}", style), " ", (who, "bold"))

    def reloaded(self, files: list[str], seconds: float, carried: int, actors: dict[str, list[str]] | None) -> None:
        """A successful reload; ``actors`` is given when the actors or their actions changed."""
        if self.json:
            fields: dict[str, Any] = {"files": files, "duration_ms": round(seconds * 1000, 3), "carried_over": carried}
            if actors is not None:
                fields["actors"] = actors
            self._emit_json("reload", **fields)
            return
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        self._line(("reload ", "bold magenta"), " ", shown or "(no files)", f" in {_ms(seconds * 1000)}; ",
                   f"{carried} awake actor(s) carried over")
        if actors is not None:
            summary = "; ".join(f"{n} ({', '.join(a) or 'no actions'})" for n, a in actors.items()) or "none"
            self._line(("actors ", "bold"), " ", summary)

    def reload_failed(self, files: list[str], err: LoadError) -> None:
        if self.json:
            self._emit_json("reload_error", files=files, file=self.rel(err.file) if err.file else None,
                            line=err.line, error=err.error_type, message=err.message, source=err.source_line,
                            traceback=err.details)
            return
        self._line(("reload failed", "bold red"), " ", (str(err), "red"))
        if err.source_line:
            self._line(" " * 14, ("> " + err.source_line, "dim"))
        self._line(" " * 14, ("still serving the last good code; fix it and save again", "yellow"))

    def reload_crashed(self, exc: BaseException) -> None:
        """The runtime failed while swapping code (not the user's import): report, keep going."""
        if self.json:
            self._emit_json("reload_error", error=type(exc).__name__, message=str(exc))
        else:
            self._line(("reload failed", "bold red"), " ", f"{type(exc).__name__}: {exc}")


class _JsonHandler(logging.Handler):
    def __init__(self, log: DevLog) -> None:
        super().__init__()
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields: dict[str, Any] = {"level": record.levelname.lower(), "logger": record.name,
                                      "message": record.getMessage()}
            if record.exc_info:
                fields["traceback"] = logging.Formatter().formatException(record.exc_info)
            self.log._emit_json("log", **fields)
        except Exception:  # noqa: BLE001
            self.handleError(record)


def install_logging(log: DevLog) -> None:
    """Warnings and errors of the runtime and the user's code go to stderr in the log's shape."""
    root = logging.getLogger()
    handler: logging.Handler
    if log.json:
        handler = _JsonHandler(log)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s",
                                               datefmt="%H:%M:%S"))
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
