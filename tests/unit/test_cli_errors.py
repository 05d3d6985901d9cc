"""`rivet errors gen`, tested through the real command in a subprocess (`python -m rivet_cli`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# API.md §4: the catalogue must contain at least these.
REQUIRED = {
    *(
        ("actor", code)
        for code in (
            "not_found not_registered action_not_found action_timed_out duplicate_key overloaded "
            "state_mutation_reentrant state_not_enabled starting stopping destroying not_ready aborted "
            "invalid_request method_not_allowed callback_timed_out key_too_large input_too_large"
        ).split()
    ),
    ("core", "internal_error"),
    ("message", "incoming_too_long"),
    ("message", "outgoing_too_long"),
    ("protocol", "unsupported_encoding"),
    ("kv", "key_too_large"),
    ("kv", "value_too_large"),
    ("kv", "batch_too_large"),
    ("schedule", "max_schedules_exceeded"),
    ("inspector", "unauthorized"),
    ("user", "user_error"),
}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE")}
    env.update(extra)
    return env


def rivet(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rivet_cli", *args],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def artifact_bytes(data: dict[str, str]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


@pytest.fixture(scope="module")
def expected() -> dict[str, bytes]:
    """File name → bytes for `runtime.errors.catalogue()`, computed in a fresh interpreter.

    A fresh process sees the same catalogue as the command (errors that other tests declare in
    this process would otherwise leak in).
    """
    code = (
        "import json, runtime, runtime.errors\n"
        "print(json.dumps([e.artifact() for e in runtime.errors.catalogue().values()]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    entries = json.loads(proc.stdout)
    assert REQUIRED <= {(e["group"], e["code"]) for e in entries}
    return {f"{e['group']}.{e['code']}.json": artifact_bytes(e) for e in entries}


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def gen_into(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    proc = rivet("errors", "gen", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return out


# --------------------------------------------------------------------------------------------
# gen
# --------------------------------------------------------------------------------------------


def test_gen_writes_exactly_the_catalogue(tmp_path: Path, expected: dict[str, bytes]) -> None:
    out = gen_into(tmp_path)
    assert snapshot(out) == expected
    for name, content in snapshot(out).items():
        data = json.loads(content)
        assert name == f"{data['group']}.{data['code']}.json"
        assert content.endswith(b"}\n") and b'\n  "code": ' in content


def test_gen_is_byte_stable_and_leaves_unchanged_files_alone(tmp_path: Path) -> None:
    out = gen_into(tmp_path)
    first = snapshot(out)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    proc = rivet("errors", "gen", "--out", str(out), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert snapshot(out) == first
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes
    summary = json.loads(proc.stdout)
    assert summary == {
        "out_dir": str(out.resolve()),
        "check": False,
        "catalogue": len(first),
        "created": [],
        "updated": [],
        "removed": [],
        "unchanged": len(first),
        "drift": False,
    }
    assert "up to date" in proc.stderr


def test_gen_json_reports_what_it_wrote(tmp_path: Path, expected: dict[str, bytes]) -> None:
    out = tmp_path / "out"
    proc = rivet("errors", "gen", "--out", str(out), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)  # stdout is only the JSON document
    assert summary["created"] == sorted(expected)
    assert summary["drift"] is True and summary["unchanged"] == 0


def test_gen_removes_stale_owned_files_and_keeps_everything_else(
    tmp_path: Path, expected: dict[str, bytes]
) -> None:
    out = gen_into(tmp_path)
    stale = {"code": "gone", "group": "actor", "message": "No longer declared"}
    (out / "actor.gone.json").write_bytes(artifact_bytes(stale))
    unrelated = {
        # artifact-like content, but not named {group}.{code}.json → not ours
        "notes.json": artifact_bytes(stale),
        "team.notes.json": b'{"todo": ["write docs"]}\n',
        "misnamed.file.json": artifact_bytes(stale),
        # one extra key → not an artifact
        "actor.extra.json": b'{"code": "extra", "group": "actor", "message": "m", "x": 1}\n',
        "README.md": b"generated by rivet errors gen\n",
    }
    for name, content in unrelated.items():
        (out / name).write_bytes(content)

    proc = rivet("errors", "gen", "--out", str(out), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["removed"] == ["actor.gone.json"]
    assert "actor.gone.json" in proc.stderr
    assert snapshot(out) == {**expected, **unrelated}


def test_gen_restores_edited_and_missing_files(tmp_path: Path, expected: dict[str, bytes]) -> None:
    out = gen_into(tmp_path)
    (out / "actor.not_found.json").write_text('{"code": "not_found", "group": "actor", "message": "edited"}')
    (out / "kv.key_too_large.json").unlink()
    proc = rivet("errors", "gen", "--out", str(out), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["updated"] == ["actor.not_found.json"]
    assert summary["created"] == ["kv.key_too_large.json"]
    assert snapshot(out) == expected


# --------------------------------------------------------------------------------------------
# --check
# --------------------------------------------------------------------------------------------


def test_check_in_sync_exits_0(tmp_path: Path) -> None:
    out = gen_into(tmp_path)
    proc = rivet("errors", "gen", "--check", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "in sync" in proc.stderr


def _missing(out: Path) -> str:
    (out / "actor.overloaded.json").unlink()
    return "actor.overloaded.json"


def _edited(out: Path) -> str:
    path = out / "core.internal_error.json"
    path.write_bytes(path.read_bytes().replace(b"An internal error", b"A hand-edited error"))
    return "core.internal_error.json"


def _reformatted(out: Path) -> str:
    path = out / "user.user_error.json"
    path.write_text(json.dumps(json.loads(path.read_text())))  # same data, other bytes
    return "user.user_error.json"


def _stale(out: Path) -> str:
    (out / "actor.retired.json").write_bytes(
        artifact_bytes({"code": "retired", "group": "actor", "message": "Retired"})
    )
    return "actor.retired.json"


@pytest.mark.parametrize(
    ("damage", "label"),
    [(_missing, "missing"), (_edited, "changed"), (_reformatted, "changed"), (_stale, "stale")],
    ids=["missing", "edited", "reformatted", "stale"],
)
def test_check_reports_drift_and_changes_nothing(tmp_path: Path, damage, label: str) -> None:
    out = gen_into(tmp_path)
    name = damage(out)
    before = snapshot(out)

    proc = rivet("errors", "gen", "--check", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert name in proc.stderr and label in proc.stderr
    assert "drift" in proc.stderr
    assert snapshot(out) == before

    proc = rivet("errors", "gen", "--check", "--out", str(out), "--json", cwd=tmp_path)
    assert proc.returncode == 1
    summary = json.loads(proc.stdout)
    assert summary["drift"] is True and summary["check"] is True
    assert name in summary["created"] + summary["updated"] + summary["removed"]
    assert snapshot(out) == before


def test_check_on_a_missing_directory_reports_drift_and_creates_nothing(tmp_path: Path) -> None:
    out = tmp_path / "nothing-here"
    proc = rivet("errors", "gen", "--check", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 1
    assert "actor.not_found.json" in proc.stderr
    assert not out.exists()


def test_committed_artifacts_are_in_sync() -> None:
    proc = rivet("errors", "gen", "--check", cwd=REPO_ROOT)
    assert proc.returncode == 0, f"run `rivet errors gen` at the repo root and commit errors/:\n{proc.stderr}"


# --------------------------------------------------------------------------------------------
# a project with [tool.rivet]
# --------------------------------------------------------------------------------------------


def make_project(root: Path, registry: str = "myapp.registry:registry", extra: str = "") -> Path:
    (root / "myapp").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [project]
            name = "myapp"
            version = "0.0.1"

            [tool.rivet]
            registry = "{registry}"
            {extra}
            """
        )
    )
    (root / "myapp" / "__init__.py").write_text("")
    (root / "myapp" / "registry.py").write_text(
        textwrap.dedent(
            """\
            from runtime import UserError, actor, setup


            class RateLimited(UserError):
                code = "rate_limited"
                message = "Too many requests; retry in a minute"


            limiter = actor(state={"calls": 0})


            @limiter.action
            def call(c) -> int:
                if c.state["calls"] >= 3:
                    raise RateLimited()
                c.state["calls"] += 1
                return c.state["calls"]


            registry = setup(use={"limiter": limiter})
            """
        )
    )
    return root


RATE_LIMITED = artifact_bytes(
    {"code": "rate_limited", "group": "user", "message": "Too many requests; retry in a minute"}
)


def test_project_errors_are_catalogued(tmp_path: Path, expected: dict[str, bytes]) -> None:
    project = make_project(tmp_path / "proj")
    proc = rivet("errors", "gen", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr
    assert snapshot(project / "errors") == {**expected, "user.rate_limited.json": RATE_LIMITED}

    # From a subdirectory the project (and its errors/) is found upward.
    proc = rivet("errors", "gen", "--check", cwd=project / "myapp")
    assert proc.returncode == 0, proc.stderr
    assert not (project / "myapp" / "errors").exists()


def test_project_errors_dir_and_out_override(tmp_path: Path, expected: dict[str, bytes]) -> None:
    project = make_project(tmp_path / "proj", extra='errors_dir = "generated/errors"')
    proc = rivet("errors", "gen", cwd=project / "myapp")
    assert proc.returncode == 0, proc.stderr
    assert snapshot(project / "generated" / "errors") == {**expected, "user.rate_limited.json": RATE_LIMITED}
    assert not (project / "errors").exists()

    proc = rivet("errors", "gen", "--out", "elsewhere", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "user.rate_limited.json" in snapshot(project / "elsewhere")


def test_error_that_is_no_longer_declared_is_removed(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj")
    assert rivet("errors", "gen", cwd=project).returncode == 0
    assert (project / "errors" / "user.rate_limited.json").exists()

    registry = project / "myapp" / "registry.py"
    registry.write_text(registry.read_text().replace('code = "rate_limited"', 'code = "slow_down"'))
    proc = rivet("errors", "gen", "--check", cwd=project)
    assert proc.returncode == 1
    assert "user.rate_limited.json" in proc.stderr and "user.slow_down.json" in proc.stderr

    proc = rivet("errors", "gen", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert not (project / "errors" / "user.rate_limited.json").exists()
    assert (project / "errors" / "user.slow_down.json").exists()


def test_registry_import_failure_is_a_clear_error(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", registry="myapp.broken:registry")
    (project / "myapp" / "broken.py").write_text("raise RuntimeError('boom at import')\n")
    proc = rivet("errors", "gen", cwd=project)
    assert proc.returncode == 1
    assert "myapp.broken" in proc.stderr
    assert "RuntimeError: boom at import" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (project / "errors").exists()

    proc = rivet("errors", "gen", "--json", cwd=project)
    assert proc.returncode == 1
    assert "myapp.broken" in json.loads(proc.stdout)["error"]


def test_missing_registry_module_is_a_clear_error(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", registry="nosuchpkg.mod:registry")
    proc = rivet("errors", "gen", "--check", cwd=project)
    assert proc.returncode == 1
    assert "nosuchpkg.mod" in proc.stderr and "ModuleNotFoundError" in proc.stderr


def test_invalid_project_config_is_a_clear_error(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", registry="not a registry")
    proc = rivet("errors", "gen", cwd=project)
    assert proc.returncode == 1
    assert "registry" in proc.stderr and "pkg.module:attribute" in proc.stderr
    assert not (project / "errors").exists()


# --------------------------------------------------------------------------------------------
# failures, help, colour
# --------------------------------------------------------------------------------------------


def test_unwritable_out_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    proc = rivet("errors", "gen", "--out", str(blocker / "errors"), cwd=tmp_path)
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "cannot write" in proc.stderr
    assert "Traceback" not in proc.stderr

    proc = rivet("errors", "gen", "--out", str(blocker), cwd=tmp_path)
    assert proc.returncode == 1
    assert "Not a directory" in proc.stderr
    assert blocker.read_text() == "not a directory\n"


def test_no_color_is_honoured(tmp_path: Path) -> None:
    # FORCE_COLOR makes rich style output even into a pipe; NO_COLOR must still win.
    colored = rivet(
        "errors", "gen", "--out", str(tmp_path / "a"), cwd=tmp_path, FORCE_COLOR="1", TERM="xterm"
    )
    assert colored.returncode == 0
    assert "\x1b[" in colored.stderr  # the check below would be meaningless otherwise

    plain = rivet(
        "errors",
        "gen",
        "--out",
        str(tmp_path / "b"),
        cwd=tmp_path,
        FORCE_COLOR="1",
        TERM="xterm",
        NO_COLOR="1",
    )
    assert plain.returncode == 0
    assert "actor.not_found.json" in plain.stderr
    assert "\x1b" not in plain.stderr

    failed = rivet(
        "errors", "gen", "--check", "--out", str(tmp_path / "c"), cwd=tmp_path, FORCE_COLOR="1", NO_COLOR="1"
    )
    assert failed.returncode == 1
    assert "\x1b" not in failed.stderr


def test_help(tmp_path: Path) -> None:
    proc = rivet("errors", "gen", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    for option in ("--check", "--out", "--json"):
        assert option in proc.stdout
    top = rivet("--help", cwd=tmp_path)
    assert top.returncode == 0
    assert "stateful actors" in top.stdout and "errors" in top.stdout


def test_usage_error_exits_2(tmp_path: Path) -> None:
    proc = rivet("errors", "gen", "--no-such-option", cwd=tmp_path)
    assert proc.returncode == 2
    assert not (tmp_path / "errors").exists()


def test_console_script_is_installed(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("rivet")
    if not script.exists():
        pytest.skip("the rivet console script is not installed next to this interpreter")
    proc = subprocess.run(
        [str(script), "errors", "gen", "--check", "--out", str(tmp_path / "none")],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "missing" in proc.stderr
