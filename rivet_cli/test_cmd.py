"""``rivet test``: the driver suite (or a project's tests) with timing-safe scheduling.

Each run is two pytest phases in a subprocess: the tests not marked ``timing`` (spread over
``--workers`` xdist workers when asked), then the ``timing`` tests with ``-n 0`` so they run on a
single worker whatever a project's ``addopts`` say. Results are read from pytest's JUnit XML, so
the summary, ``--json`` and the flake loop see exactly what pytest decided — nothing is retried.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from rivet_cli.console import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, fail, print_json, stderr
from runtime.project import ProjectError, find_project

_CHOICES = {
    "driver": ("memory", "file", "all"),
    "encoding": ("json", "msgpack", "all"),
    "transport": ("inline", "http", "all"),
}


@dataclass
class RunResult:
    """One run of the selection: outcome per test node id, and pytest's exit codes."""

    outcomes: dict[str, str] = field(default_factory=dict)
    exit_codes: list[int] = field(default_factory=list)
    log: str = ""
    seconds: float = 0.0

    @property
    def failed(self) -> list[str]:
        return [n for n, o in self.outcomes.items() if o in ("failed", "error")]

    @property
    def usage_error(self) -> bool:
        return any(code in (2, 3, 4) for code in self.exit_codes)


def _outcomes(junit: Path) -> dict[str, str]:
    if not junit.exists():
        return {}
    out: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        classname = case.get("classname", "")
        name = case.get("name", "")
        node = f"{classname.replace('.', '/')}.py::{name}" if classname else name
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                break
        # a test can appear twice (call failed + teardown error); the worse outcome wins
        if out.get(node) in ("failed", "error"):
            continue
        out[node] = outcome
    return out


def _pytest_args(paths: list[str], driver: str, encoding: str, transport: str, keyword: str | None) -> list[str]:
    args = list(paths) if paths else ["--pyargs", "driver_tests"]
    args += [f"--rivet-driver={driver}", f"--rivet-encoding={encoding}", f"--rivet-transport={transport}"]
    if keyword:
        args += ["-k", keyword]
    return args


def run_once(base: list[str], workers: int, capture: bool, stream_to_stderr: bool,
             markexpr: str | None = None) -> RunResult:
    """Both phases once. ``capture`` keeps the output (for flake logs) instead of streaming it;
    ``markexpr`` narrows both phases (``-m timing`` runs only the single-worker phase's tests)."""
    result = RunResult()
    started = time.monotonic()
    logs: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rivet-test-") as tmp:
        extra = f" and ({markexpr})" if markexpr else ""
        phases = [
            (f"(not timing){extra}", ["-n", str(workers)] if workers > 1 else ["-n", "0"]),
            (f"timing{extra}", ["-n", "0"]),
        ]
        for i, (marker, dist) in enumerate(phases):
            junit = Path(tmp) / f"phase{i}.xml"
            cmd = [sys.executable, "-m", "pytest", *base, "-m", marker, *dist, f"--junitxml={junit}",
                   "-o", "junit_family=xunit1", "-q"]
            if capture:
                proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True)
                logs.append(f"$ {' '.join(cmd)}\n{proc.stdout}")
                code = proc.returncode
            else:
                code = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                                      stdout=sys.stderr if stream_to_stderr else None).returncode
            result.exit_codes.append(code)
            result.outcomes.update(_outcomes(junit))
            if code in (2, 3, 4):
                break
    result.log = "\n".join(logs)
    result.seconds = time.monotonic() - started
    return result


def _state_dir() -> Path:
    try:
        project = find_project(Path.cwd())
    except ProjectError:
        project = None
    if project is not None:
        state = project.config.state_dir or ".rivet"
        return (project.root / state).resolve()
    return (Path.cwd() / ".rivet").resolve()


@dataclass
class TestStats:
    runs: int = 0
    passed: int = 0
    failed: int = 0
    first_failure: int | None = None
    log: str | None = None


def _summary(result: RunResult) -> dict[str, object]:
    counts: dict[str, int] = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for outcome in result.outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    return {
        "tests": len(result.outcomes),
        **counts,
        "failures": sorted(result.failed),
        "seconds": round(result.seconds, 2),
        "pytest_exit_codes": result.exit_codes,
    }


def _flake_loop(base: list[str], workers: int, iterations: int, max_minutes: float | None, fail_fast: bool,
                as_json: bool, markexpr: str | None = None) -> int:
    run_dir = _state_dir() / "flake" / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    stats: dict[str, TestStats] = {}
    started = time.monotonic()
    done = 0
    failures = 0
    console = stderr()

    def line() -> Text:
        return Text(f"{done} runs so far, {failures} failures, {time.monotonic() - started:.0f} s")

    with Live(line(), console=console, refresh_per_second=2, transient=False) as live:
        for iteration in range(1, iterations + 1):
            if max_minutes is not None and time.monotonic() - started >= max_minutes * 60:
                break
            result = run_once(base, workers, capture=True, stream_to_stderr=True, markexpr=markexpr)
            if result.usage_error:
                live.stop()
                console.print(result.log[-4000:], markup=False, highlight=False)
                return EXIT_USAGE
            done = iteration
            log_path: Path | None = None
            if result.failed:
                failures += 1
                log_path = run_dir / f"iteration-{iteration}.log"
                log_path.write_text(result.log)
            for node, outcome in result.outcomes.items():
                s = stats.setdefault(node, TestStats())
                if outcome == "skipped":
                    continue
                s.runs += 1
                if outcome == "passed":
                    s.passed += 1
                else:
                    s.failed += 1
                    if s.first_failure is None:
                        s.first_failure = iteration
                        s.log = str(log_path)
            live.update(line())
            if fail_fast and result.failed:
                break

    flaky = {n: s for n, s in stats.items() if s.failed}
    table = Table(title=f"flake loop: {done} runs, {len(stats)} tests, logs in {run_dir}")
    for col in ("test", "runs", "passed", "failed", "failure rate", "first failing run", "log"):
        table.add_column(col, overflow="fold")
    rows = sorted(stats.items(), key=lambda kv: (-kv[1].failed, kv[0]))
    shown = rows if len(rows) <= 40 else [r for r in rows if r[1].failed] or rows[:40]
    for node, s in shown:
        rate = f"{100 * s.failed / s.runs:.1f}%" if s.runs else "-"
        table.add_row(node, str(s.runs), str(s.passed), str(s.failed), rate,
                      str(s.first_failure or "-"), s.log or "-")
    console.print(table)
    if len(shown) < len(rows):
        console.print(f"({len(rows) - len(shown)} tests that never failed are not listed)")
    if as_json:
        print_json({
            "runs": done,
            "failed_runs": failures,
            "seconds": round(time.monotonic() - started, 1),
            "log_dir": str(run_dir),
            "tests": {n: {"runs": s.runs, "passed": s.passed, "failed": s.failed,
                          "first_failure": s.first_failure, "log": s.log} for n, s in sorted(stats.items())},
        })
    if not stats:
        console.print("no tests were selected")
        return EXIT_FAILURE
    return EXIT_FAILURE if flaky else EXIT_OK


def test(
    paths: list[str] = typer.Argument(None, help="Test files or folders of your project. Default: the bundled "
                                      "driver suite (driver_tests)."),
    driver: str = typer.Option("all", "--driver", help="Storage driver: memory, file or all."),
    encoding: str = typer.Option("all", "--encoding", help="Wire encoding for networked tests: json, msgpack or all."),
    transport: str = typer.Option("all", "--transport", help="How tests reach actors: inline (in-process), "
                                  "http (a real server on 127.0.0.1) or all."),
    keyword: str = typer.Option(None, "-k", help="Only tests matching this pytest -k expression."),
    markexpr: str = typer.Option(None, "-m", help="Only tests matching this pytest -m marker expression "
                                 "(e.g. -m timing for the wall-clock tests)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Spread the tests NOT marked timing over N "
                                "pytest-xdist workers. Timing tests always run on one worker."),
    flake_loop: int = typer.Option(0, "--flake-loop", min=0, help="Run the selection N times and report per-test "
                                   "failure rates (never retries; exit 1 if anything failed)."),
    max_minutes: float = typer.Option(None, "--max-minutes", min=0, help="With --flake-loop: start no new run "
                                      "after M minutes."),
    fail_fast: bool = typer.Option(False, "--fail-fast", help="With --flake-loop: stop after the first failing run."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout (pytest's output goes to "
                                 "stderr): tests, passed, failed, error, skipped, failures, seconds."),
) -> None:
    """Run the driver suite, or your project's tests, with rivet's harness.

    Tests marked @pytest.mark.timing always run single-worker, after the others. Your tests get
    the fixtures rivet_client, rivet_runtime and rivet_registry (from [tool.rivet] registry) and
    the helper `from runtime.testing import eventually`.
    """
    for name, value in (("driver", driver), ("encoding", encoding), ("transport", transport)):
        if value not in _CHOICES[name]:
            fail(f"--{name} {value!r} is not one of {', '.join(_CHOICES[name])}", code=EXIT_USAGE, json_output=as_json)
    if max_minutes is not None and not flake_loop:
        fail("--max-minutes only applies with --flake-loop N", code=EXIT_USAGE, json_output=as_json)
    if fail_fast and not flake_loop:
        fail("--fail-fast only applies with --flake-loop N", code=EXIT_USAGE, json_output=as_json)
    base = _pytest_args(list(paths or []), driver, encoding, transport, keyword)
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    if flake_loop:
        raise typer.Exit(_flake_loop(base, workers, flake_loop, max_minutes, fail_fast, as_json, markexpr))
    result = run_once(base, workers, capture=False, stream_to_stderr=as_json, markexpr=markexpr)
    summary = _summary(result)
    if as_json:
        print_json(summary)
    if result.usage_error:
        raise typer.Exit(EXIT_USAGE)
    if not result.outcomes:
        stderr().print("no tests were selected (check the paths and -k)")
        raise typer.Exit(EXIT_FAILURE)
    console = stderr()
    console.print(f"rivet test: {summary['tests']} tests in {summary['seconds']} s "
                  f"({summary['error']} errors counted as failed)")
    # the closing line, in the plain form CI systems read: "N passed, N failed, N skipped"
    failed = int(summary["failed"]) + int(summary["error"])  # type: ignore[call-overload]
    console.print(f"rivet: {summary['passed']} passed, {failed} failed, {summary['skipped']} skipped")
    raise typer.Exit(EXIT_FAILURE if result.failed else EXIT_OK)
