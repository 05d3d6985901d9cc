"""``rivet inspect`` against a real server process (dev mode, file driver)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.inspector.helpers import ROOT, ServerProcess

RIVET = [sys.executable, "-m", "rivet_cli"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "state").start()
    try:
        yield proc
    finally:
        proc.stop()


def rivet(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("RIVET_INSPECTOR_TOKEN", None)
    return subprocess.run([*RIVET, "inspect", *args], capture_output=True, text=True, env=env, cwd=str(cwd),
                          timeout=60)


def put(url: str, name: str, key: str) -> str:
    r = httpx.put(f"{url}/actors", json={"name": name, "key": key}, timeout=10)
    r.raise_for_status()
    return str(r.json()["actor"]["actor_id"])


def test_inspect_lists_and_shows_actors(server: ServerProcess, tmp_path: Path) -> None:
    assert (server.state_dir / "inspector-admin-token").stat().st_mode & 0o777 == 0o600
    showcase = put(server.url, "showcase", "acme")
    counter = put(server.url, "counter", "a")
    httpx.post(f"{server.url}/gateway/{counter}/action/put", json={"args": ["greeting", "hello"]}).raise_for_status()
    httpx.post(f"{server.url}/gateway/{counter}/action/remind", json={"args": [3600, "later"]}).raise_for_status()

    # the project's [tool.rivet] gives the url (host/port) and the state dir with the token
    port = server.url.rsplit(":", 1)[1]
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f'[tool.rivet]\nregistry = "x:y"\nhost = "127.0.0.1"\nport = {port}\nstate_dir = "{server.state_dir}"\n')
    r = rivet("--json", cwd=project)
    assert r.returncode == 0, r.stderr
    rows = {a["actor_id"]: a for a in json.loads(r.stdout)["actors"]}
    assert rows[showcase]["name"] == "showcase" and rows[showcase]["key"] == ["acme"]
    assert rows[counter]["awake"] is True

    r = rivet(counter, "--json", cwd=project)
    assert r.returncode == 0, r.stderr
    one: dict[str, Any] = json.loads(r.stdout)
    assert one["actor"]["name"] == "counter" and one["state"]["count"] == 0
    assert one["kv"] == [{"key": "greeting", "value": "hello"}]
    assert [s["args"] for s in one["schedules"]] == [["later"]]
    assert one["workflow"] == {"workflow": "not_enabled", "history": None}

    r = rivet(showcase, "--json", "--url", server.url, "--state-dir", str(server.state_dir), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    history = json.loads(r.stdout)["workflow"]["history"]
    assert [e["name"] for e in history][:2] == ["fetch-profile", "send-welcome"]

    # tables on stderr, stdout empty
    r = rivet(cwd=project)
    assert r.returncode == 0 and r.stdout == ""
    assert "showcase" in r.stderr and "awake" in r.stderr and counter in r.stderr
    r = rivet(showcase, cwd=project)
    assert r.returncode == 0, r.stderr
    assert "Ada Lovelace" in r.stderr and "fetch-profile" in r.stderr and "welcome-mail-sent" in r.stderr
    r = rivet(counter, cwd=project)
    assert "workflow: not enabled" in r.stderr and "greeting" in r.stderr


def test_inspect_errors(server: ServerProcess, tmp_path: Path) -> None:
    state = str(server.state_dir)
    r = rivet("--url", "http://127.0.0.1:9", "--state-dir", state, cwd=tmp_path)
    assert r.returncode == 1 and "cannot reach the rivet server" in r.stderr and "client.unreachable" in r.stderr
    r = rivet("--json", "--url", "http://127.0.0.1:9", "--state-dir", state, cwd=tmp_path)
    assert r.returncode == 1 and "cannot reach" in json.loads(r.stdout)["error"]
    r = rivet("--url", server.url, "--token", "wrong", cwd=tmp_path)
    assert r.returncode == 1 and "inspector.unauthorized" in r.stderr
    r = rivet("--url", server.url, "--state-dir", str(tmp_path / "none"), cwd=tmp_path)
    assert r.returncode == 1 and "no inspector admin token" in r.stderr
    r = rivet("no-such-actor", "--url", server.url, "--state-dir", state, cwd=tmp_path)
    assert r.returncode == 1 and "actor.not_found" in r.stderr


def test_admin_token_file(tmp_path: Path) -> None:
    from runtime.server.inspector import dev_banner_lines, read_admin_token, write_admin_token

    state = tmp_path / "new" / "state"
    assert read_admin_token(state) is None
    first = write_admin_token(state)
    path = state / "inspector-admin-token"
    assert path.stat().st_mode & 0o777 == 0o600 and read_admin_token(state) == first
    path.chmod(0o644)
    second = write_admin_token(state, "given-token")  # replaced atomically, mode restored
    assert second == "given-token" != first and path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in state.iterdir()) == ["inspector-admin-token"]
    lines = dev_banner_lines("http://127.0.0.1:6420/", "tok", state)
    assert lines[0].endswith("http://127.0.0.1:6420/ui#token=tok")
    assert "curl -H 'Authorization: Bearer tok' http://127.0.0.1:6420/inspector/actors" in lines[2]
