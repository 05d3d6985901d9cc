"""Generated projects work as generated (issue 5, point 4).

- Every template, generated as a project, passes its own tests with `rivet test tests` (this
  venv's interpreter, the project on PYTHONPATH).
- Every template, added as an actor to an existing project, passes too, all in one project.
- The default template, `pip install -e .` into a fresh virtualenv, passes with the README's
  commands verbatim (`pip install -e .`, `rivet test tests`), with no PYTHONPATH.

Only runs that include clock-bound generated tests (the scheduler's) are marked `timing` (they run
single-worker, after the others); the rest run in the parallel phase.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from tests.new.helpers import clean_env, rivet, run_project_tests

TEMPLATES = ["counter", "chat-room", "rate-limiter", "raw-http", "scheduler"]



def _passed(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    summary = [line for line in proc.stderr.splitlines() if line.startswith("rivet: ")]
    assert summary and " 0 failed" in summary[-1], proc.stderr[-3000:]
    return summary[-1]


@pytest.mark.parametrize("template", [
    pytest.param(t, marks=[pytest.mark.timing] if t == "scheduler" else []) for t in TEMPLATES])
def test_every_template_as_a_project_passes_its_tests(tmp_path: Path, template: str) -> None:
    assert rivet("new", "app", "-t", template, cwd=tmp_path).returncode == 0
    _passed(run_project_tests(tmp_path / "app"))


@pytest.mark.timing
def test_every_template_added_as_an_actor_passes_its_tests(tmp_path: Path) -> None:
    assert rivet("new", "app", cwd=tmp_path).returncode == 0
    root = tmp_path / "app"
    for template in TEMPLATES:  # the counter twice: a second actor of the same template
        proc = rivet("new", f"added_{template.replace('-', '_')}", "-t", template, cwd=root)
        assert proc.returncode == 0, proc.stderr
    # both drivers are covered per template above; here: all six actors side by side in one registry
    summary = _passed(run_project_tests(root, "--driver", "memory", "--workers", "2"))
    assert "0 skipped" in summary


def test_default_template_in_a_fresh_venv_with_the_readme_commands(tmp_path: Path) -> None:
    """A fresh venv that reuses this venv's installed packages through a .pth file (rivet-actors and
    its dependencies are not downloaded again); then the README's commands."""
    started = time.perf_counter()
    assert rivet("new", "app", cwd=tmp_path).returncode == 0
    generated = time.perf_counter()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # this venv's site-packages (pip, setuptools and rivet's dependencies), *after* the fresh venv's own
    ours = sysconfig.get_paths()["purelib"]
    Path(purelib, "zz_reuse_outer_venv.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    env = clean_env(VIRTUAL_ENV=str(venv), PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
                    PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PIP_ROOT_USER_ACTION="ignore",
                    )

    def run(*cmd: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)

    # rivet-actors itself comes from this checkout through the .pth above (it is installed editable
    # here); give the fresh venv the console script its wheel would install
    launcher = bindir / "rivet"
    launcher.write_text(f"#!{python}\nimport sys\nfrom rivet_cli.main import app\nsys.exit(app())\n")
    launcher.chmod(0o755)

    install_started = time.perf_counter()
    # README: `pip install -e .`, verbatim: the dependency on rivet-actors is resolved (and satisfied
    # by the checkout); the build backend (setuptools) is fetched into pip's isolated build env
    proc = run(str(python), "-m", "pip", "install", "--quiet", "-e", ".",
               cwd=tmp_path / "app")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # README: `rivet test tests`, the venv's own console script, no PYTHONPATH
    proc = run("rivet", "test", "tests", cwd=tmp_path / "app")
    summary = _passed(proc)
    done = time.perf_counter()
    print(f"\nrivet new: {generated - started:.2f} s; pip install -e . → passing tests: "
          f"{done - install_started:.2f} s ({summary})")
    # the tests imported the installed package, not a copy on sys.path
    proc = run(str(python), "-c", "import app.registry, sys; print(app.registry.__file__)", cwd=tmp_path)
    assert proc.stdout.strip() == str(tmp_path / "app" / "app" / "registry.py"), proc.stderr
