"""``rivet errors``: the error catalogue as files that clients in any language can rely on."""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from rivet_cli import artifacts, console
from runtime.project import Project, ProjectError, find_project, find_pyproject_root, parse_registry

errors_app = typer.Typer(
    name="errors",
    help=(
        "Work with the error catalogue.\n\n"
        "Every structured error is a RivetError with a group and a code (actor.not_found, "
        "user.rate_limited, ...). Declaring a RivetError or UserError subclass with a code enters it "
        "in the catalogue; these commands turn the catalogue into files that clients can rely on."
    ),
    no_args_is_help=True,
)

_GEN_HELP = """Write the error catalogue as artifacts, one file per error: OUT/{group}.{code}.json.

Each file holds {"code", "group", "message"} with sorted keys, a 2-space indent and a trailing
newline, so running the command twice gives the same bytes. Commit the directory and run
`rivet errors gen --check` in CI.

The catalogue is the runtime's own errors plus, inside a project, the project's: the module named
by `registry = "pkg.module:attr"` in \\[tool.rivet] is imported (with the project root on sys.path)
so that its RivetError/UserError subclasses are declared. Artifacts of errors that are no longer
declared are removed; other files in OUT are never touched.

The output directory is --out, else `errors_dir` from \\[tool.rivet], else errors/ under the
project root (the nearest directory with a pyproject.toml), else ./errors.

With --json, stdout gets one JSON object: out_dir (absolute path), check (bool), catalogue
(number of errors), created / updated / removed (file names; with --check, what gen would do),
unchanged (count) and drift (true when the directory did not match the catalogue before the
command ran). On failure it is {"error": "..."} instead.

Exit codes: 0 success (with --check: in sync), 1 drift found with --check, or a failure (the
project's module cannot be imported, the directory cannot be written), 2 usage error.
"""


def _paragraphs(text: str) -> str:
    """Join each paragraph into one line: the rich help renderer keeps single newlines as breaks."""
    return "\n\n".join(" ".join(p.split()) for p in text.strip().split("\n\n"))


def _display(path: Path) -> str:
    try:
        rel = path.relative_to(Path.cwd().resolve())
    except ValueError:
        return str(path)
    return "." if str(rel) == "." else f"{rel}{os.sep}" if path.is_dir() else str(rel)


def _describe(exc: BaseException, prefer: Path | None = None) -> str:
    """``Type: message (file:line)`` for an import failure.

    The location is the syntax error's, else the innermost traceback frame under ``prefer`` (the
    user's own code), else the innermost frame.
    """
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{type(exc).__name__}: {exc.msg} ({exc.filename}:{exc.lineno})"
    text = f"{type(exc).__name__}: {exc}"
    frames: list[traceback.FrameSummary] = traceback.extract_tb(exc.__traceback__)
    if prefer is not None:
        mine = [f for f in frames if f.filename.startswith(str(prefer) + os.sep)]
        frames = mine or frames
    if frames:
        return f"{text} ({frames[-1].filename}:{frames[-1].lineno})"
    return text


def _load_catalogue(project: Project | None, json_output: bool) -> dict[tuple[str, str], Any]:
    """Import the runtime and the project's registry module, then snapshot the catalogue."""
    try:
        importlib.import_module("runtime")
        runtime_errors = importlib.import_module("runtime.errors")
    except Exception as exc:  # the runtime itself is broken: say so plainly
        console.fail(
            f"cannot import the rivet runtime: {_describe(exc)}",
            json_output=json_output,
        )

    if project is not None and project.config.registry:
        module_name, attr = parse_registry(project.config.registry)  # validated when read
        root = str(project.root)
        if root not in sys.path:
            sys.path.insert(0, root)
        try:
            module = importlib.import_module(module_name)
        except (Exception, SystemExit) as exc:
            console.fail(
                f"cannot import the registry module {module_name!r} "
                f"(registry = {project.config.registry!r} in {project.pyproject}): "
                f"{_describe(exc, project.root)}",
                hint=f"check that `python -c 'import {module_name}'` works in {project.root}",
                json_output=json_output,
            )
        if not _has_attr_path(module, attr):
            console.warning(
                f"module {module_name!r} has no attribute {attr!r} (registry = {project.config.registry!r} "
                f"in {project.pyproject}); its errors are catalogued anyway"
            )
    return runtime_errors.catalogue()


def _has_attr_path(obj: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


def _default_out(project: Project | None) -> Path:
    if project is not None:
        if project.config.errors_dir:
            return project.path(project.config.errors_dir)
        return project.root / "errors"
    root = find_pyproject_root()
    return (root if root is not None else Path.cwd()) / "errors"


_LABELS = {
    # kind: (label in gen mode, label in --check mode, style)
    "create": ("created", "missing", "green"),
    "update": ("updated", "changed", "yellow"),
    "remove": ("removed", "stale", "red"),
}


def _report(plan: artifacts.Plan, check: bool, total: int) -> None:
    out = console.stderr()
    where = _display(plan.out_dir)
    if not plan.changes:
        verb = "in sync with the catalogue" if check else "up to date"
        out.print(Text(f"{where}: {len(plan.unchanged)} error artifacts {verb}"), soft_wrap=True)
        return

    title = f"Error artifacts out of date in {where}" if check else f"Error artifacts in {where}"
    out.print(Text(title), soft_wrap=True)
    table = Table(show_edge=False, pad_edge=False)
    longest = max(len(c.name) for c in plan.changes)
    table.add_column("File", no_wrap=True, min_width=longest)
    table.add_column("Problem" if check else "Change", no_wrap=True)
    details = any(c.detail for c in plan.changes)
    if details:
        table.add_column("Detail", no_wrap=True, overflow="ellipsis")
    for change in plan.changes:
        gen_label, check_label, style = _LABELS[change.kind]
        cells: list[str | Text] = [change.name, Text(check_label if check else gen_label, style=style)]
        table.add_row(*cells, *([change.detail] if details else []))
    out.print(table)

    created, updated, removed = (len(plan.of_kind(k)) for k in ("create", "update", "remove"))
    if check:
        out.print(
            Text.assemble(
                ("drift", "bold red"),
                f": {created} missing, {updated} changed, {removed} stale in {where} "
                f"({len(plan.unchanged)} in sync); run `rivet errors gen` to update them",
            ),
            soft_wrap=True,
        )
    else:
        out.print(
            Text(
                f"{created} created, {updated} updated, {removed} removed, "
                f"{len(plan.unchanged)} unchanged in {where} ({total} errors in the catalogue)"
            ),
            soft_wrap=True,
        )


@errors_app.command("gen", help=_paragraphs(_GEN_HELP), no_args_is_help=False)
def gen(
    check: bool = typer.Option(
        False,
        "--check",
        help="Change nothing: list missing, changed and stale files and exit 1 if there are any.",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Directory for the artifacts (relative to the current directory). "
        "Default: errors_dir from \\[tool.rivet], else errors/ under the project root.",
        file_okay=True,
        dir_okay=True,
        resolve_path=False,
    ),
    json_output: bool = typer.Option(
        False,
        "--json",
        help="Also print a JSON summary on stdout (keys described above).",
    ),
) -> None:
    try:
        project = find_project()
    except ProjectError as exc:
        console.fail(str(exc), json_output=json_output)
    if project is not None:
        for key in project.unknown_keys:
            console.warning(f"{project.pyproject}: unknown key {key!r} in [tool.rivet] (ignored)")

    out_dir = (out if out is not None else _default_out(project)).expanduser().resolve()
    catalogue = _load_catalogue(project, json_output)
    try:
        wanted = artifacts.artifacts_for(catalogue.values())
    except ValueError as exc:
        console.fail(str(exc), json_output=json_output)

    try:
        plan = artifacts.plan(wanted, out_dir)
    except OSError as exc:
        console.fail(
            f"cannot read the artifact directory {_display(out_dir)}: {exc.strerror or exc}"
            + (f" ({exc.filename})" if exc.filename and str(exc.filename) != str(out_dir) else ""),
            json_output=json_output,
        )

    if not check:
        try:
            artifacts.apply(plan)
        except OSError as exc:
            console.fail(
                f"cannot write the error artifacts to {_display(out_dir)}: {exc.strerror or exc}"
                + (f" ({exc.filename})" if exc.filename else ""),
                hint="pass a writable directory with --out",
                json_output=json_output,
            )

    _report(plan, check, len(wanted))
    if json_output:
        console.print_json(
            {
                "out_dir": str(out_dir),
                "check": check,
                "catalogue": len(wanted),
                "created": [c.name for c in plan.of_kind("create")],
                "updated": [c.name for c in plan.of_kind("update")],
                "removed": [c.name for c in plan.of_kind("remove")],
                "unchanged": len(plan.unchanged),
                "drift": plan.drift,
            }
        )
    if check and plan.drift:
        raise typer.Exit(console.EXIT_FAILURE)
