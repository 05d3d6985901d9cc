"""Scaffolding templates for ``rivet new`` (shipped inside the wheel as package data).

Layout (rendered with Jinja2 by ``rivet_cli.new_cmd``)::

    _project/             the project skeleton shared by every template
        pyproject.toml.jinja  README.md.jinja  gitignore.jinja  package_init.py.jinja  registry.py.jinja
    <template>/           one directory per template (counter, chat-room, ...)
        template.toml     description (one line), default actor name
        actor.py.jinja    the actor module     → <package>/<actor>.py
        test.py.jinja     its tests            → tests/test_<actor>.py

Variables every file sees: ``project`` (project / package name), ``package`` (import prefix of the
actor modules, e.g. ``"myapp"``), ``actor`` (actor name = module name = variable name),
``template`` and ``description``.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent
PROJECT_DIR = ROOT / "_project"
