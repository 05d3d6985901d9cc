"""The registry that `rivet dev` serves (see [tool.rivet] in pyproject.toml)."""

from lobby_app.lobby import lobby
from runtime import setup

registry = setup(use={"lobby": lobby})
