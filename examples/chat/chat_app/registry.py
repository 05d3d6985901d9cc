"""The registry that `rivet dev` serves (see [tool.rivet] in pyproject.toml)."""

from chat_app.room import room
from runtime import setup

registry = setup(use={"room": room})
