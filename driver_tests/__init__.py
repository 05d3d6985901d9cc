"""The rivet conformance suite: behaviour of the public API (API.md) on every driver.

Run it with ``pytest driver_tests`` or ``rivet test``. See README.md for the rules a test follows.
"""
