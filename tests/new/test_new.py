"""`rivet new`: the command's behaviour (names, templates, refusals, atomicity, add mode).

The command runs in-process (Typer's CliRunner, cwd switched to ``tmp_path``) to keep this file
fast; one test runs it as a real subprocess. Whether the generated projects' own tests pass is in
test_generated.py.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.new.helpers import REPO_ROOT, ruff_check, tree
from tests.new.helpers import rivet as rivet_subprocess

TEMPLATES = ["counter", "chat-room", "rate-limiter", "raw-http", "scheduler"]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def rivet(*args: str, cwd: Path) -> Result:
    """``rivet ARGS`` in-process, in ``cwd``; stdout and stderr apart, as a subprocess would see them."""
    from typer.testing import CliRunner

    from rivet_cli.main import app

    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner(env={"NO_COLOR": "1", "COLUMNS": "200"}).invoke(app, list(args))
    finally:
        os.chdir(old)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Result(result.exit_code, result.stdout, result.stderr)


def test_list_json_names_every_template_with_a_description(tmp_path: Path) -> None:
    proc = rivet("new", "--list", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["default"] == "counter"
    assert [t["name"] for t in data["templates"]] == TEMPLATES
    for t in data["templates"]:
        assert t["description"] and "\n" not in t["description"]
        assert t["actor"].isidentifier()


def test_list_is_a_table_on_stderr(tmp_path: Path) -> None:
    proc = rivet("new", "--list", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout == ""
    for name in TEMPLATES:
        assert name in proc.stderr
    assert "(default)" in proc.stderr


def test_new_project_layout_and_next_steps(tmp_path: Path) -> None:
    proc = rivet_subprocess("new", "shop", "--json", cwd=tmp_path)  # the real command, once
    assert proc.returncode == 0, proc.stderr
    root = tmp_path / "shop"
    assert sorted(tree(root)) == [".gitignore", "README.md", "pyproject.toml", "shop/__init__.py",
                                  "shop/counter.py", "shop/registry.py", "tests/test_counter.py"]
    out = json.loads(proc.stdout)
    assert out["mode"] == "project" and out["root"] == str(root)
    steps = ["cd shop", "pip install -e .", "rivet dev", "rivet test tests"]
    assert out["next"] == steps
    assert "\n".join(f"  {s}" for s in steps) in proc.stderr

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    py = tomllib.loads((root / "pyproject.toml").read_text())
    assert py["project"]["dependencies"] == ["rivet-actors"]
    assert py["tool"]["rivet"] == {"registry": "shop.registry:registry", "state_dir": ".rivet", "watch": ["shop"]}
    assert any(m.startswith("timing:") for m in py["tool"]["pytest"]["ini_options"]["markers"])
    assert "/.rivet/" in (root / ".gitignore").read_text().splitlines()
    readme = (root / "README.md").read_text()
    for step in steps:
        assert step in readme
    test_text = (root / "tests" / "test_counter.py").read_text()
    assert "rivet_client" in test_text and "from runtime.testing import eventually" in test_text
    # nothing left behind beside the project
    assert [p.name for p in tmp_path.iterdir()] == ["shop"]


@pytest.mark.parametrize("template", TEMPLATES)
def test_generated_code_is_ruff_clean(tmp_path: Path, template: str) -> None:
    assert rivet("new", "app", "-t", template, cwd=tmp_path).returncode == 0
    # and the same template added to a project as a second actor
    assert rivet("new", "extra", "-t", template, cwd=tmp_path / "app").returncode == 0
    proc = ruff_check(tmp_path / "app")
    if proc is None:
        pytest.skip("ruff is not installed")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(("name", "why", "suggestion"), [
    ("My-App", "snake_case", "my_app"),
    ("2fast", "snake_case", "my_2fast"),
    ("class", "keyword", "class_app"),
    ("json", "standard-library", "json_app"),
    ("runtime", "shadow", "runtime_app"),
    ("_private", "snake_case", "private"),
])
def test_invalid_names_are_refused_with_a_suggestion(tmp_path: Path, name: str, why: str, suggestion: str) -> None:
    proc = rivet("new", name, cwd=tmp_path)
    assert proc.returncode == 2
    assert why in proc.stderr
    assert f"try: rivet new {suggestion}" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_unknown_template_lists_the_templates_and_exits_2(tmp_path: Path) -> None:
    proc = rivet("new", "app", "-t", "nope", cwd=tmp_path)
    assert proc.returncode == 2
    assert "unknown template 'nope'" in proc.stderr
    for name in TEMPLATES:
        assert name in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_missing_name_is_a_usage_error(tmp_path: Path) -> None:
    assert rivet("new", cwd=tmp_path).returncode == 2


def test_non_empty_target_is_refused_unless_force(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "notes.txt").write_text("mine")
    proc = rivet("new", "app", cwd=tmp_path)
    assert proc.returncode == 1
    assert "not empty" in proc.stderr and "--force" in proc.stderr
    assert tree(tmp_path / "app") == {"notes.txt": b"mine"}

    proc = rivet("new", "app", "--force", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    files = tree(tmp_path / "app")
    assert files["notes.txt"] == b"mine"
    assert "app/registry.py" in files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app"]


def test_an_empty_target_directory_is_fine(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    assert rivet("new", "app", cwd=tmp_path).returncode == 0
    assert (tmp_path / "app" / "app" / "counter.py").is_file()


def test_a_failure_leaves_no_half_written_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The renderer fails on the 5th file: neither the project nor the temp dir may remain."""
    from typer.testing import CliRunner

    from rivet_cli import new_cmd
    from rivet_cli.main import app

    real = new_cmd.render
    calls = {"n": 0}

    def failing(env, name, **context):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full (simulated)")
        return real(env, name, **context)

    monkeypatch.setattr(new_cmd, "render", failing)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["new", "app"])
    assert result.exit_code == 1
    assert calls["n"] == 5
    assert list(tmp_path.iterdir()) == []

    # and a failure while writing (after rendering) also cleans up the temporary directory
    monkeypatch.setattr(new_cmd, "render", real)
    real_write = Path.write_text

    def failing_write(self: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.name == "registry.py":
            raise OSError("no space left (simulated)")
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", failing_write)
    result = CliRunner().invoke(app, ["new", "app"])
    assert result.exit_code == 1
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------- add mode


@pytest.fixture
def project(tmp_path: Path) -> Path:
    assert rivet("new", "app", cwd=tmp_path).returncode == 0
    return tmp_path / "app"


def test_add_actor_touches_only_its_files_and_the_registry_block(project: Path) -> None:
    before = tree(project)
    proc = rivet("new", "lobby", "-t", "chat-room", "--json", cwd=project / "tests")  # from a subfolder
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["mode"] == "actor"
    assert out["files"] == ["app/lobby.py", "app/registry.py", "tests/test_lobby.py"]
    after = tree(project)
    assert set(after) - set(before) == {"app/lobby.py", "tests/test_lobby.py"}
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"app/registry.py"}
    registry = after["app/registry.py"].decode()
    assert "from app.counter import counter\nfrom app.lobby import lobby\n" in registry
    assert '    "counter": counter,\n    "lobby": lobby,\n' in registry
    assert 'lobby = actor(state={"messages": []}' in after["app/lobby.py"].decode()
    assert 'get_or_create("lobby", ' in after["tests/test_lobby.py"].decode()
    # the block outside the markers is byte-identical
    old, new = before["app/registry.py"].decode(), registry
    assert old.split("# rivet:actors:begin")[0] == new.split("# rivet:actors:begin")[0]
    assert old.split("# rivet:actors:end")[1] == new.split("# rivet:actors:end")[1]


def test_add_actor_refuses_an_existing_name_and_changes_nothing(project: Path) -> None:
    assert rivet("new", "lobby", cwd=project).returncode == 0
    before = tree(project)
    for name in ("lobby", "counter"):
        proc = rivet("new", name, "-t", "scheduler", cwd=project)
        assert proc.returncode == 1
        assert "already exists" in proc.stderr
    (project / "app" / "orphan.py").write_text("x = 1\n")  # a module the registry does not list
    proc = rivet("new", "orphan", cwd=project)
    assert proc.returncode == 1 and "already exists" in proc.stderr
    (project / "app" / "orphan.py").unlink()
    assert tree(project) == before


def test_add_actor_refuses_a_hand_edited_block(project: Path) -> None:
    registry = project / "app" / "registry.py"
    edited = registry.read_text().replace('    "counter": counter,\n', '    "counter": counter,  # mine\n')
    registry.write_text(edited)
    before = tree(project)
    proc = rivet("new", "lobby", cwd=project)
    assert proc.returncode == 1
    assert "edited by hand" in proc.stderr
    assert tree(project) == before


def test_add_actor_without_markers_is_refused_with_instructions(project: Path) -> None:
    registry = project / "app" / "registry.py"
    registry.write_text("from runtime import setup\n\nfrom app.counter import counter\n\n"
                        "registry = setup(use={'counter': counter})\n")
    before = tree(project)
    proc = rivet("new", "lobby", cwd=project)
    assert proc.returncode == 1
    assert "from app.lobby import lobby" in proc.stderr
    assert tree(project) == before


def test_add_actor_validates_the_name(project: Path) -> None:
    proc = rivet("new", "Lobby", cwd=project)
    assert proc.returncode == 2 and "try: rivet new lobby" in proc.stderr
    proc = rivet("new", "setup", cwd=project)
    assert proc.returncode == 2 and "try: rivet new setup_actor" in proc.stderr


def test_templates_ship_as_package_data() -> None:
    """Every template file is matched by pyproject's package-data globs (so the wheel has them)."""
    import fnmatch

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = data.get("templates", [])
    root = REPO_ROOT / "templates"
    files = [p.relative_to(root).as_posix() for p in root.rglob("*")
             if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts]
    assert files
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert missing == []
