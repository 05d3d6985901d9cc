"""The ``rivet`` app. Each command group lives in its own module and is registered here."""

from __future__ import annotations

import typer

from rivet_cli.errors_cmd import errors_app
from rivet_cli.test_cmd import test as test_command

app = typer.Typer(
    name="rivet",
    help=(
        "rivet: stateful actors for Python.\n\n"
        "An actor is a small object with durable state that lives behind a name and a key: it wakes on "
        "the first call, serves its actions on an event loop, sleeps when idle and keeps its state across "
        "sleeps and restarts. You define actors with the `runtime` package; this command works with a "
        "project that uses them.\n\n"
        "Project settings are read from \\[tool.rivet] in the nearest pyproject.toml. Messages go to "
        "stderr, --json output to stdout; NO_COLOR is honoured. Exit codes: 0 success, 1 failure, "
        "2 usage error."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("rivet-actors")
        except PackageNotFoundError:
            found = "unknown (not installed)"
        typer.echo(f"rivet {found}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the installed version of rivet and exit.",
        callback=_version,
        is_eager=True,
    ),
) -> None:
    """rivet: stateful actors for Python."""


app.add_typer(errors_app, name="errors")
app.command("test")(test_command)
app.command("new")(__import__("rivet_cli.new_cmd", fromlist=["new"]).new)
app.command("dev")(__import__("rivet_cli.dev_cmd", fromlist=["dev"]).dev)
app.command("inspect")(__import__("rivet_cli.inspect_cmd", fromlist=["inspect"]).inspect)
