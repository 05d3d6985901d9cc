"""``rivet new``: scaffold a project, or add an actor to the project you are in.

Outside a project, ``rivet new NAME [-t TEMPLATE]`` renders ``templates/_project`` plus the
template's actor and test into a temporary directory next to the target, then moves it to
``NAME/`` in one rename, so a failure never leaves a half-written project.

Inside a project (a ``pyproject.toml`` with ``[tool.rivet]`` at or above the cwd), it adds actor
``NAME``: ``<package>/NAME.py``, ``tests/test_NAME.py`` and an entry in the registry module. The
registry module carries a machine-maintained block between ``# rivet:actors:begin`` and
``# rivet:actors:end`` (one import and one ``ACTORS`` entry per actor). ``rivet new`` parses the
actor list from that block, checks that rendering the list reproduces the block exactly (so it
never overwrites a hand edit), and replaces it with the rendering of the list plus ``NAME``.
Nothing else in the project is touched; a name that exists is refused.

Every file is rendered with Jinja2 from ``templates/`` (see ``templates/__init__.py``).
"""

from __future__ import annotations

import keyword
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import typer
from rich.table import Table

from rivet_cli.console import EXIT_FAILURE, EXIT_USAGE, fail, print_json, stderr
from runtime.project import Project, ProjectError, find_project, parse_registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_TEMPLATE = "counter"
STATE_DIR = ".rivet"
BLOCK_BEGIN = "# rivet:actors:begin"
BLOCK_END = "# rivet:actors:end"

# Names the generated code itself uses, or that would shadow rivet's own packages.
RESERVED = {
    "actor": "it is the name the actor modules import from runtime",
    "setup": "it is the name registry.py imports from runtime",
    "registry": "it is the registry module of the project",
    "runtime": "it would shadow rivet's runtime package",
    "rivet_cli": "it would shadow rivet's command package",
    "driver_tests": "it would shadow rivet's test helpers",
    "templates": "it would shadow rivet's templates package",
    "tests": "it is the tests folder of the project",
    "conftest": "it is pytest's configuration module",
}
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_MAX_NAME = 64


# --------------------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    actor: str
    path: Path


def templates_root() -> Path:
    """``templates/`` beside ``rivet_cli/``: both are top-level packages of the rivet-actors wheel
    (and of the source tree), so this holds for editable and regular installs alike, and a user's
    own ``templates`` folder on ``sys.path`` can never be picked up instead."""
    return Path(__file__).resolve().parent.parent / "templates"


def load_templates() -> dict[str, Template]:
    """Every template directory that has a ``template.toml`` (``_project`` is the skeleton)."""
    found: dict[str, Template] = {}
    for meta in sorted(templates_root().glob("*/template.toml")):
        data = tomllib.loads(meta.read_text(encoding="utf-8"))
        name = meta.parent.name
        found[name] = Template(name, str(data["description"]), str(data["actor"]), meta.parent)
    order = [DEFAULT_TEMPLATE, *sorted(n for n in found if n != DEFAULT_TEMPLATE)]
    return {n: found[n] for n in order if n in found}


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_root())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(env: jinja2.Environment, name: str, **context: Any) -> str:
    return env.get_template(name).render(**context)


# ------------------------------------------------------------------------------------------- names


def suggest(name: str, suffix: str) -> str:
    """A valid name close to ``name`` (lower snake case, letter first, not reserved)."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    s = re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")
    s = re.sub(r"_+", "_", s)
    if not s:
        s = "my"
    if not s[0].isalpha():
        s = f"my_{s}"
    s = s[:_MAX_NAME - len(suffix) - 1]
    if keyword.iskeyword(s) or s in sys.stdlib_module_names or s in RESERVED:
        s = f"{s}_{suffix}"
    return s


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a project package or actor name, or None if it can."""
    if not name:
        return "the name is empty"
    if len(name) > _MAX_NAME:
        return f"{name!r} is longer than {_MAX_NAME} characters"
    if not _NAME_RE.match(name):
        return (f"{name!r} is not a snake_case Python identifier "
                "(lower-case letters, digits and underscores, starting with a letter)")
    if keyword.iskeyword(name):
        return f"{name!r} is a Python keyword"
    if name in sys.stdlib_module_names:
        return f"{name!r} is the name of a standard-library module; importing it would be ambiguous"
    if name in RESERVED:
        return f"{name!r} cannot be used: {RESERVED[name]}"
    return None


# --------------------------------------------------------------------------------- registry block


def render_block(env: jinja2.Environment, actors: list[str], import_prefix: str) -> str:
    return render(env, "_project/actors_block.py.jinja", actors=sorted(actors), import_prefix=import_prefix)


_ENTRY_RE = re.compile(r'^    "([a-z][a-z0-9_]*)": \1,$')


def split_registry(text: str) -> tuple[str, str, str] | None:
    """``(before, block, after)`` around the marked block (markers included), or None."""
    lines = text.splitlines(keepends=True)
    begin = [i for i, line in enumerate(lines) if line.startswith(BLOCK_BEGIN)]
    end = [i for i, line in enumerate(lines) if line.startswith(BLOCK_END)]
    if len(begin) != 1 or len(end) != 1 or end[0] < begin[0]:
        return None
    b, e = begin[0], end[0]
    return "".join(lines[:b]), "".join(lines[b:e + 1]), "".join(lines[e + 1:])


def block_actors(block: str) -> list[str]:
    return [m.group(1) for line in block.splitlines() if (m := _ENTRY_RE.match(line))]


# ------------------------------------------------------------------------------------------ output


def _list(as_json: bool) -> None:
    found = load_templates()
    if as_json:
        print_json({"default": DEFAULT_TEMPLATE, "templates": [
            {"name": t.name, "description": t.description, "actor": t.actor} for t in found.values()]})
        return
    table = Table(title="rivet new -t TEMPLATE", title_justify="left")
    table.add_column("template", style="bold cyan", no_wrap=True)
    table.add_column("actor", no_wrap=True)
    table.add_column("shows")
    for t in found.values():
        label = f"{t.name} (default)" if t.name == DEFAULT_TEMPLATE else t.name
        table.add_row(label, t.actor, t.description)
    stderr().print(table)


def _next_steps(lines: list[str]) -> None:
    console = stderr()
    console.print("\nnext:")
    for line in lines:
        console.print(f"  {line}", markup=False, highlight=False)


# ----------------------------------------------------------------------------------- new project


def create_project(name: str, template: Template, parent: Path, force: bool) -> tuple[Path, list[str]]:
    """Render the project into a temp dir beside ``parent/name``, then move it in place."""
    target = parent / name
    if target.exists() and not target.is_dir():
        raise _Refused(f"{target} exists and is not a directory")
    occupied = target.is_dir() and any(target.iterdir())
    if occupied and not force:
        raise _Refused(f"{target} exists and is not empty",
                       "choose another name, or pass --force to write the template's files into it "
                       "(files of the same name are overwritten, others are kept)")
    env = environment()
    context = {
        "project": name,
        "package": name,
        "import_prefix": f"{name}.",
        "actor": template.actor,
        "module": f"{name}.{template.actor}",
        "template": template.name,
        "template_dir": template.name,
        "description": template.description,
        "state_dir": STATE_DIR,
        "actors": [template.actor],
    }
    files = {
        "pyproject.toml": "_project/pyproject.toml.jinja",
        "README.md": "_project/README.md.jinja",
        ".gitignore": "_project/gitignore.jinja",
        f"{name}/__init__.py": "_project/package_init.py.jinja",
        f"{name}/registry.py": "_project/registry.py.jinja",
        f"{name}/{template.actor}.py": f"{template.name}/actor.py.jinja",
        f"tests/test_{template.actor}.py": f"{template.name}/test.py.jinja",
    }
    rendered = {rel: render(env, src, **context) for rel, src in files.items()}
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.rivet-new-", dir=parent))
    try:
        for rel, text in rendered.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        if not target.exists():
            os.rename(tmp, target)
        elif not occupied:
            target.rmdir()
            os.rename(tmp, target)
        else:  # --force into a non-empty directory: move the files over one by one
            for rel in rendered:
                dest = target / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp / rel, dest)
            shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target, sorted(rendered)


# ------------------------------------------------------------------------------------- add actor


def _registry_file(project: Project) -> tuple[Path, str]:
    """The registry module's file and the import prefix of modules beside it."""
    if not project.config.registry:
        raise _Refused(f"{project.pyproject}: [tool.rivet] has no registry = \"module:attribute\"",
                       "add it (rivet new creates it for new projects) to add actors here")
    module, _attr = parse_registry(project.config.registry)
    rel = Path(*module.split("."))
    for base in (project.root, project.root / "src"):
        for candidate in (base / rel.with_suffix(".py"), base / rel / "__init__.py"):
            if candidate.is_file():
                package = module if candidate.name == "__init__.py" else module.rpartition(".")[0]
                return candidate, f"{package}." if package else ""
    raise _Refused(f"cannot find the file of registry module {module!r} under {project.root}",
                   "rivet new looks for it at <root>/<module path>.py and <root>/src/<module path>.py")


def add_actor(name: str, template: Template, project: Project) -> tuple[Path, list[str]]:
    registry_path, import_prefix = _registry_file(project)
    package_dir = registry_path.parent
    original = registry_path.read_text(encoding="utf-8")
    env = environment()
    parts = split_registry(original)
    if parts is None:
        raise _Refused(
            f"{registry_path} has no block between '{BLOCK_BEGIN}' and '{BLOCK_END}' (or more than one)",
            f"register the actor by hand: `from {import_prefix}{name} import {name}` and "
            f"\"{name}\": {name} in setup(use=...); the module and test were not written")
    before, block, after = parts
    actors = block_actors(block)
    if render_block(env, actors, import_prefix) != block:
        raise _Refused(
            f"the rivet:actors block of {registry_path} was edited by hand and rivet new will not "
            "overwrite it",
            "keep it as `rivet new` writes it (one sorted import and one sorted ACTORS entry per actor), "
            "or delete the markers and register actors by hand")
    module_path = package_dir / f"{name}.py"
    test_path = project.root / "tests" / f"test_{name}.py"
    clashes = [str(p) for p in (module_path, package_dir / name, test_path) if p.exists()]
    if name in actors or clashes:
        where = ", ".join(clashes) if clashes else str(registry_path)
        raise _Refused(f"actor {name!r} already exists ({where}); nothing was changed",
                       "choose another name, or remove the existing actor first")
    context = {
        "project": project.root.name,
        "package": import_prefix.rstrip("."),
        "import_prefix": import_prefix,
        "actor": name,
        "module": f"{import_prefix}{name}",
        "template": template.name,
        "template_dir": template.name,
        "description": template.description,
        "state_dir": project.config.state_dir or STATE_DIR,
        "actors": sorted([*actors, name]),
    }
    module_text = render(env, f"{template.name}/actor.py.jinja", **context)
    test_text = render(env, f"{template.name}/test.py.jinja", **context)
    registry_text = before + render_block(env, [*actors, name], import_prefix) + after

    written: list[Path] = []
    try:
        for path, text in ((module_path, module_text), (test_path, test_text)):
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("x", encoding="utf-8") as fh:  # never overwrite
                written.append(path)
                fh.write(text)
        tmp = registry_path.with_name(f".{registry_path.name}.rivet-new.tmp")
        tmp.write_text(registry_text, encoding="utf-8")
        os.replace(tmp, registry_path)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        registry_path.with_name(f".{registry_path.name}.rivet-new.tmp").unlink(missing_ok=True)
        raise
    root = project.root
    return root, sorted(str(p.relative_to(root)) for p in (module_path, test_path, registry_path))


# ------------------------------------------------------------------------------------------ command


class _Refused(Exception):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def new(
    name: str = typer.Argument(None, help="Project name outside a project; actor name inside one. "
                               "snake_case, not a keyword or a standard-library module."),
    template: str = typer.Option(DEFAULT_TEMPLATE, "-t", "--template", help="The template (see --list)."),
    force: bool = typer.Option(False, "--force", help="Write a new project into an existing non-empty "
                               "directory (the template's files are overwritten, others are kept)."),
    list_templates: bool = typer.Option(False, "--list", help="List the templates and exit."),
    as_json: bool = typer.Option(False, "--json", help="Machine output on stdout: the templates with --list, "
                                 "else what was created."),
) -> None:
    """Create a project from a template, or add an actor to the current project.

    Outside a project: NAME/ with pyproject.toml ([tool.rivet]), the package NAME/ (actor module and
    registry.py), tests/, a README and a .gitignore. Inside a project (a [tool.rivet] found upward):
    adds NAME as an actor (module, registry entry, test) and touches nothing else.
    """
    if list_templates:
        _list(as_json)
        return
    found = load_templates()
    if name is None:
        fail("missing NAME", "rivet new NAME [-t TEMPLATE]; `rivet new --list` shows the templates",
             code=EXIT_USAGE, json_output=as_json)
    if template not in found:
        _list(False)
        fail(f"unknown template {template!r}", f"choose one of: {', '.join(found)}", code=EXIT_USAGE,
             json_output=as_json)
    try:
        project = find_project(Path.cwd())
    except ProjectError as exc:
        fail(str(exc), json_output=as_json)
    problem = name_problem(name)
    if problem:
        fixed = suggest(name, "actor" if project else "app")
        fail(f"invalid name: {problem}", f"try: rivet new {fixed}" + (f" -t {template}" if template !=
             DEFAULT_TEMPLATE else ""), code=EXIT_USAGE, json_output=as_json)
    chosen = found[template]
    started = time.perf_counter()
    try:
        if project is None:
            root, files = create_project(name, chosen, Path.cwd(), force)
            mode = "project"
            steps = [f"cd {name}", "pip install -e .", "rivet dev", "rivet test tests"]
            headline = f"created project {name}/ from template {template!r} (actor {chosen.actor!r})"
        else:
            if force:
                stderr().print("note: --force does not apply when adding an actor; existing names are "
                               "always refused", markup=False)
            root, files = add_actor(name, chosen, project)
            mode = "actor"
            rel = os.path.relpath(root, Path.cwd())
            steps = ([] if rel == "." else [f"cd {rel}"]) + [f"rivet test tests/test_{name}.py",
                                                            "rivet dev   # or: a running rivet dev reloads it"]
            headline = f"added actor {name!r} from template {template!r} to the project at {root}"
    except _Refused as exc:
        fail(str(exc), exc.hint, code=EXIT_FAILURE, json_output=as_json)
    except (OSError, jinja2.TemplateError) as exc:
        fail(f"nothing was written: {exc}", json_output=as_json)
    seconds = time.perf_counter() - started
    console = stderr()
    console.print(f"{headline} in {seconds * 1000:.0f} ms", markup=False, highlight=False)
    for rel_file in files:
        console.print(f"  {rel_file}", markup=False, highlight=False)
    _next_steps(steps)
    if as_json:
        print_json({"mode": mode, "name": name, "template": template, "root": str(root),
                    "files": files, "next": steps, "seconds": round(seconds, 4)})
