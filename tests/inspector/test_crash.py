"""A workflow resumes after ``kill -9`` of a real server process without re-running completed
steps. Each real execution of a step body appends a line to a file outside the state directory."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.protocol.encoding import encode_input
from tests.inspector.actors import lines
from tests.inspector.helpers import ServerProcess

pytestmark = pytest.mark.timing


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, httpx.TransportError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def history(server: ServerProcess, actor_id: str) -> list[dict[str, Any]]:
    """Through the inspector (admin token from the state dir → the actor's token)."""
    admin = (server.state_dir / "inspector-admin-token").read_text().strip()
    token = httpx.get(f"{server.url}/inspector/token/{actor_id}", headers={"authorization": f"Bearer {admin}"},
                      timeout=10).json()["token"]
    r = httpx.get(f"{server.url}/gateway/{actor_id}/inspector/workflow/history",
                  headers={"authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    return list(r.json()["history"])


def test_workflow_resumes_after_sigkill_without_rerunning_completed_steps(tmp_path: Path) -> None:
    state = tmp_path / "state"
    log = str(tmp_path / "steps.log")  # outside the state directory
    server = ServerProcess(state).start()
    try:
        r = httpx.put(f"{server.url}/actors", timeout=10, json={
            "name": "flow", "key": "crash", "input": encode_input({"log": log, "nap": 3.0, "hold": 60.0})})
        actor_id = r.json()["actor"]["actor_id"]

        # 1. kill -9 during the durable sleep (after steps one and two)
        def napping() -> None:
            assert lines(log) == ["one", "two"]
            entries = {e["name"]: e for e in history(server, actor_id)}
            assert entries["nap"]["status"] == "sleeping"

        wait_for(napping)
        server.kill()
        killed_at = time.time()

        # restart on the same state: the durable sleep's schedule wakes the actor by itself
        server = ServerProcess(state).start()

        def holding() -> None:
            assert lines(log) == ["one", "two", "three", "four:start"]

        wait_for(holding)
        assert time.time() - killed_at < 15

        # 2. kill -9 in the middle of step "four" (a later step, still running)
        server.kill()
        server = ServerProcess(state).start()
        # nothing is due, so the actor sleeps until something calls it; any call resumes the workflow
        httpx.post(f"{server.url}/gateway/{actor_id}/action/done", json={"args": []}, timeout=10).raise_for_status()

        def finished() -> list[dict[str, Any]]:
            entries = history(server, actor_id)
            assert entries[-1]["name"] == "__done__", entries
            return entries

        entries = wait_for(finished)
        # completed steps never ran again; the interrupted step ran again (at-least-once), then on
        assert lines(log) == ["one", "two", "three", "four:start", "four:start", "five"]
        assert entries[-1]["result"] == ["one#1", "two#1", "three#1", "four#2", "five#1"]
        assert {e["name"]: e.get("attempts") for e in entries if e["kind"] == "step"} == {
            "one": 1, "two": 1, "three": 1, "four": 1, "five": 1}
        r = httpx.post(f"{server.url}/gateway/{actor_id}/action/done", json={"args": []}, timeout=10)
        # state written by completed steps survived both kills with the history (one atomic flush)
        assert r.json()["output"] == ["one", "two", "three", "five"]
    finally:
        server.stop()
