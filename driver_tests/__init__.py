"""The rivet conformance suite: behaviour of the public API (API.md) on every driver.

Run it with ``rivet test`` (or ``pytest --pyargs driver_tests``). See README.md for the rules a
test follows. ``eventually`` is exported for projects' own tests.
"""

from runtime.testing import eventually

__all__ = ["eventually"]
