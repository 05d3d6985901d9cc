"""``rivet test`` as a user runs it: a real subprocess on a small project of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROJECT_FILES = {
    "pyproject.toml": """
        [project]
        name = "demo"
        version = "0.0.1"

        [tool.rivet]
        registry = "demo.registry:registry"

        [tool.pytest.ini_options]
        addopts = "-n 2"
    """,
    "demo/__init__.py": "",
    "demo/registry.py": """
        from runtime import actor, setup

        counter = actor(state={"count": 0})

        @counter.action
        def increment(c, amount: int = 1) -> int:
            c.state["count"] += amount
            return c.state["count"]

        registry = setup(use={"counter": counter})
    """,
    "tests/test_demo.py": """
        import os
        from pathlib import Path

        import pytest

        pytestmark = pytest.mark.anyio

        async def test_increment(rivet_client, rivet_driver_kind):
            h = rivet_client.get_or_create("counter", "a")
            assert await h.increment(2) == 2

        @pytest.mark.timing
        def test_timing_runs_single_worker():
            # xdist sets PYTEST_XDIST_WORKER in its workers; timing tests must not be in one
            assert "PYTEST_XDIST_WORKER" not in os.environ

        def test_flaky():
            marker = Path(os.environ["DEMO_FLAKY_FILE"])
            n = int(marker.read_text()) if marker.exists() else 0
            marker.write_text(str(n + 1))
            assert n % 2 == 1, f"fails on even calls (call {n})"
    """,
}


def make_project(root: Path) -> Path:
    for rel, text in PROJECT_FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def rivet(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # this file may itself run in an xdist worker: its PYTEST_XDIST_* variables must not leak into
    # the project's run, where test_timing_runs_single_worker checks for them
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    full_env = {**inherited, "NO_COLOR": "1", "PYTHONPATH": str(cwd), **env}
    return subprocess.run(
        [sys.executable, "-m", "rivet_cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def test_runs_project_tests_with_fixtures_and_reports_json(tmp_path: Path) -> None:
    project = make_project(tmp_path / "demo")
    flaky = tmp_path / "flaky-count"
    proc = rivet("test", "tests", "--json", "--driver", "all", cwd=project, DEMO_FLAKY_FILE=str(flaky))
    assert proc.returncode == 1, proc.stderr  # the flaky test fails on its first (even) call
    summary = json.loads(proc.stdout)
    # test_increment six times (memory, file × inline, http-json, http-msgpack), the timing test,
    # the flaky test
    assert summary["tests"] == 8
    assert summary["passed"] == 7
    assert summary["failed"] == 1
    assert [f for f in summary["failures"] if "test_flaky" in f]
    assert proc.stderr.rstrip().splitlines()[-1] == "rivet: 7 passed, 1 failed, 0 skipped"


def test_driver_selection_and_keyword(tmp_path: Path) -> None:
    project = make_project(tmp_path / "demo")
    proc = rivet("test", "tests", "--json", "--driver", "memory", "-k", "increment", cwd=project,
                 DEMO_FLAKY_FILE=str(tmp_path / "x"))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["tests"] == 3 and summary["passed"] == 3  # inline, http-json, http-msgpack
    proc = rivet("test", "tests", "--json", "--driver", "memory", "--transport", "http", "--encoding", "msgpack",
                 "-k", "increment", cwd=project, DEMO_FLAKY_FILE=str(tmp_path / "x"))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["tests"] == 1 and summary["passed"] == 1


def test_flake_loop_reports_rates_and_saves_logs(tmp_path: Path) -> None:
    project = make_project(tmp_path / "demo")
    flaky = tmp_path / "flaky-count"
    proc = rivet("test", "tests", "--flake-loop", "4", "-k", "flaky", "--json", cwd=project,
                 DEMO_FLAKY_FILE=str(flaky))
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["runs"] == 4
    (node,) = [n for n in report["tests"] if "test_flaky" in n]
    stats = report["tests"][node]
    assert stats["runs"] == 4 and stats["failed"] == 2 and stats["passed"] == 2
    assert stats["first_failure"] == 1
    log = Path(stats["log"])
    assert log.is_file() and "fails on even calls" in log.read_text()
    assert str(project / ".rivet" / "flake") in str(log)  # under the project's state directory
    assert "4 runs so far" in proc.stderr


def test_marker_expression_selects_timing_tests_only(tmp_path: Path) -> None:
    project = make_project(tmp_path / "demo")
    proc = rivet("test", "tests", "--json", "-m", "timing", cwd=project, DEMO_FLAKY_FILE=str(tmp_path / "x"))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["tests"] == 1 and summary["passed"] == 1  # only test_timing_runs_single_worker


def test_flake_loop_fail_fast_stops_at_first_failure(tmp_path: Path) -> None:
    project = make_project(tmp_path / "demo")
    proc = rivet("test", "tests", "--flake-loop", "5", "--fail-fast", "-k", "flaky", "--json", cwd=project,
                 DEMO_FLAKY_FILE=str(tmp_path / "count"))
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["runs"] == 1


@pytest.mark.parametrize(
    "args",
    [["--driver", "sqlite"], ["--max-minutes", "1"], ["--workers", "0"]],
    ids=["bad-driver", "max-minutes-without-loop", "zero-workers"],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    proc = rivet("test", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
