"""``rivet inspect``: what the inspector page shows, in the terminal.

It talks to a running server started by ``rivet dev`` (which serves the inspector admin routes and
writes its admin token to ``<state_dir>/inspector-admin-token``): ``GET /inspector/actors`` for the
list (wakes nobody), then, for one actor, ``GET /inspector/token/{id}`` and the actor's own
inspector routes (each one a call through the actor's mailbox, so it wakes a sleeping actor).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from rivet_cli import console
from runtime.project import ProjectError, find_project

DEFAULT_URL = "http://127.0.0.1:6420"
TIMEOUT = 10.0

_HELP = """Show the actors of a running `rivet dev` server, or one actor in detail.

Without ACTOR_ID: every actor (name, key, id, awake or sleeping); listing wakes nobody. With
ACTOR_ID: its state as a tree, connections, schedules, KV (first 100 keys) and workflow history
(or "workflow not enabled"); this is a call to the actor, so it wakes it if it sleeps.

The server is --url, else http://HOST:PORT from \\[tool.rivet] host/port, else
http://127.0.0.1:6420. The admin token is --token, else the file inspector-admin-token in the
state directory (--state-dir, else \\[tool.rivet] state_dir, else .rivet/), which `rivet dev`
writes anew on every run.

With --json, stdout gets one JSON object: {"actors": [...]} for the list, or {"actor", "state",
"connections", "schedules", "kv", "workflow"} for one actor (bytes as ["$Uint8Array", base64]).
On failure it is {"error": "..."} instead.

Exit codes: 0 success, 1 the server is not running or refused the request (the message says
which), 2 usage error."""


class _Failure(Exception):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def inspect(
    actor_id: str = typer.Argument(None, metavar="ACTOR_ID", help="Show this actor in detail."),
    url: str = typer.Option(None, "--url", help=f"The server (default: \\[tool.rivet] host/port, else {DEFAULT_URL})."),
    token: str = typer.Option(None, "--token", envvar="RIVET_INSPECTOR_TOKEN",
                              help="The inspector admin token (default: read from the state directory)."),
    state_dir: Path = typer.Option(None, "--state-dir", metavar="DIR",
                                   help="Where `rivet dev` keeps its state and admin token (default: \\[tool.rivet] "
                                   "state_dir, else .rivet/)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout instead of tables."),
) -> None:
    try:
        base, admin = _settings(url, token, state_dir)
        import httpx

        with httpx.Client(base_url=base, timeout=TIMEOUT) as http:
            if actor_id is None:
                data = _get(http, base, "/inspector/actors", admin)
                if json_output:
                    console.print_json(data)
                else:
                    _print_actors(data["actors"], base)
                return
            actor_token = _get(http, base, f"/inspector/token/{_quote(actor_id)}", admin)["token"]
            prefix = f"/gateway/{_quote(actor_id)}/inspector"
            out = {
                "actor": _get(http, base, f"{prefix}/summary", actor_token),
                "connections": _get(http, base, f"{prefix}/connections", actor_token),
                "schedules": _get(http, base, f"{prefix}/schedules", actor_token),
                "kv": _get(http, base, f"{prefix}/kv?limit=100", actor_token),
                "workflow": _get(http, base, f"{prefix}/workflow/history", actor_token),
            }
            out["state"] = out["actor"].pop("state")
            if json_output:
                console.print_json(out)
            else:
                _print_actor(out)
    except _Failure as failure:
        console.fail(failure.message, failure.hint, json_output=json_output)


inspect.__doc__ = "\n\n".join(" ".join(p.split()) for p in _HELP.split("\n\n"))


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _settings(url: str | None, token: str | None, state_dir: Path | None) -> tuple[str, str]:
    from runtime.server.inspector import admin_token_path, read_admin_token

    try:
        project = find_project(Path.cwd())
    except ProjectError as exc:
        raise typer.BadParameter(str(exc)) from None
    config = project.config if project is not None else None
    if url is None:
        if config is not None and (config.host or config.port is not None):
            host = config.host or "127.0.0.1"
            host = f"[{host}]" if ":" in host else host
            url = f"http://{host}:{config.port if config.port is not None else 6420}"
        else:
            url = DEFAULT_URL
    if token is None:
        if state_dir is None:
            root = project.root if project is not None else Path.cwd()
            state_dir = root / (config.state_dir if config is not None and config.state_dir else ".rivet")
        token = read_admin_token(state_dir)
        if token is None:
            raise _Failure(f"no inspector admin token at {admin_token_path(state_dir)}",
                           "start the server with `rivet dev` (it writes the token there), or pass --token / "
                           "--state-dir")
    return url.rstrip("/"), token


def _get(http: Any, base: str, path: str, token: str) -> Any:
    import httpx

    try:
        r = http.get(path, headers={"authorization": f"Bearer {token}"})
    except httpx.TransportError as exc:
        raise _Failure(f"cannot reach the rivet server at {base} (client.unreachable: {type(exc).__name__})",
                       "is `rivet dev` running? start it, or pass --url") from None
    if r.status_code == 200:
        return r.json()
    try:
        body = r.json()
        group, code, message = body["group"], body["code"], body["message"]
    except Exception:  # noqa: BLE001 - not one of our servers
        raise _Failure(f"{base} answered {r.status_code} to {path}, not as a rivet server would",
                       "check --url") from None
    hints = {
        ("inspector", "unauthorized"): "the admin token belongs to another run of `rivet dev`; restart it or pass "
                                       "--token / --state-dir",
        ("core", "route_not_found"): "this server has no inspector admin routes: only `rivet dev` serves them",
        ("actor", "not_found"): "`rivet inspect` lists the actors and their ids",
    }
    raise _Failure(f"{message} ({group}.{code})", hints.get((group, code)))


# ------------------------------------------------------------------------------ rendering


def _revive(value: Any) -> Any:
    from runtime.protocol.encoding import from_json_compat

    try:
        return from_json_compat(value)
    except Exception:  # noqa: BLE001 - show it as it came
        return value


def _short(value: Any, limit: int = 60) -> str:
    value = _revive(value)
    text = repr(value) if isinstance(value, bytes) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _print_actors(actors: list[dict[str, Any]], base: str) -> None:
    out = console.stderr()
    if not actors:
        out.print(f"No actors on {base} yet.")
        return
    table = Table(title=f"actors on {base}", title_justify="left")
    for column in ("name", "key", "id", "status"):
        table.add_column(column)
    for a in actors:
        status = Text("awake", style="green") if a["awake"] else Text("sleeping", style="dim")
        table.add_row(a["name"], ",".join(a["key"]), a["actor_id"], status)
    out.print(table)


def _tree(node: Tree, value: Any) -> None:
    value = _revive(value)
    if isinstance(value, dict):
        for k, v in value.items():
            _branch(node, str(k), v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _branch(node, str(i), v)


def _branch(node: Tree, label: str, value: Any) -> None:
    if isinstance(value, (dict, list)):
        kind = f"{{{len(value)}}}" if isinstance(value, dict) else f"[{len(value)}]"
        _tree(node.add(Text.assemble((label, "magenta"), " ", (kind, "dim"))), value)
    else:
        node.add(Text.assemble((label, "magenta"), ": ", _short(value, 200)))


def _print_actor(data: dict[str, Any]) -> None:
    out = console.stderr()
    a = data["actor"]
    out.print(Text.assemble((a["name"], "bold"), f" [{','.join(a['key'])}] ", (a["actor_id"], "dim")))
    out.print(Text(f"actions: {', '.join(a['actions']) or 'none'}", style="dim"))
    if a.get("state_enabled"):
        tree = Tree(Text("state", style="bold"))
        state = data["state"]
        if isinstance(state, (dict, list)):
            _tree(tree, state)
        else:
            tree.add(_short(state, 200))
        out.print(tree)
    else:
        out.print(Text("state: this actor has no state", style="dim"))

    def table(title: str, columns: list[str], rows: list[list[str]]) -> None:
        if not rows:
            out.print(Text(f"{title}: none", style="dim"))
            return
        t = Table(title=title, title_justify="left")
        for c in columns:
            t.add_column(c)
        for r in rows:
            t.add_row(*r)
        out.print(t)

    table("connections", ["id", "params", "state", "subscriptions", "hibernatable"],
          [[c["id"], _short(c["params"]), _short(c["state"]), ", ".join(c["subscriptions"]), str(c["hibernatable"])]
           for c in data["connections"]])
    table("schedules", ["id", "action", "args", "run at"],
          [[s["id"], s["action"], _short(s["args"]), _when(s["run_at"])] for s in data["schedules"]])
    table("kv", ["key", "value"], [[_short(r["key"]), _short(r["value"])] for r in data["kv"]])
    wf = data["workflow"]
    if wf.get("workflow") == "not_enabled":
        out.print(Text("workflow: not enabled (the actor dropped the history request)", style="yellow"))
        return
    rows = []
    for e in wf["history"]:
        if e.get("error"):
            detail = e["error"]
        elif e.get("kind") == "sleep":
            detail = f"wake at {_when(e.get('wake_at'))}"
        elif e.get("kind") == "loop":
            detail = f"iteration {e.get('iteration')}" + (f" → {_short(e['result'])}" if "result" in e else "")
        else:
            detail = _short(e.get("result"))
        rows.append([e["name"], str(e.get("kind", "")), str(e.get("status", "done")),
                     str(e.get("attempts", "")), detail])
    table("workflow history", ["entry", "kind", "status", "attempts", "result / detail"], rows)


__all__ = ["inspect"]
