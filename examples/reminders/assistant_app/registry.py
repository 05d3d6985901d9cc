"""The registry that `rivet dev` serves (see [tool.rivet] in pyproject.toml)."""

from assistant_app.assistant import assistant
from runtime import setup

registry = setup(use={"assistant": assistant})
