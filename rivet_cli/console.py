"""Where the CLI talks: a rich console on stderr, and helpers to report problems.

Messages (tables, summaries, errors) go to stderr; only machine output (``--json``) goes to stdout,
so ``rivet ... --json | jq`` always sees clean JSON. ``NO_COLOR`` (any non-empty value, see
https://no-color.org) turns off every ANSI style, not just colours, even when ``FORCE_COLOR`` is set.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

__all__ = [
    "EXIT_OK",
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "no_color",
    "stderr",
    "error",
    "warning",
    "fail",
    "print_json",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

_console: Console | None = None


def no_color() -> bool:
    return os.environ.get("NO_COLOR", "") != ""


def stderr() -> Console:
    """The shared stderr console (created on first use, so it sees the current environment)."""
    global _console
    if _console is None:
        plain = no_color()
        _console = Console(
            stderr=True,
            no_color=plain,
            # color_system=None renders no ANSI codes at all (bold, dim, ... included).
            color_system=None if plain else "auto",
            highlight=False,
        )
    return _console


def error(message: str, hint: str | None = None) -> None:
    """Print ``error: message`` (and an optional ``hint: ...`` line) on stderr."""
    console = stderr()
    console.print(Text.assemble(("error", "bold red"), ": ", message), soft_wrap=True)
    if hint:
        console.print(Text.assemble(("hint", "bold cyan"), ": ", hint), soft_wrap=True)


def warning(message: str) -> None:
    stderr().print(Text.assemble(("warning", "bold yellow"), ": ", message), soft_wrap=True)


def fail(
    message: str, hint: str | None = None, *, code: int = EXIT_FAILURE, json_output: bool = False
) -> NoReturn:
    """Report an error and stop with ``code``. With ``json_output`` also print ``{"error": message}``."""
    error(message, hint)
    if json_output:
        print_json({"error": message})
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    """Machine output: one JSON document on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    sys.stdout.flush()
