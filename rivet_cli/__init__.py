"""The ``rivet`` command line: a Typer app (see :mod:`rivet_cli.main`).

Messages go to stderr, machine output (``--json``) to stdout. Exit codes: 0 success, 1 failure
(for example drift found by ``rivet errors gen --check``), 2 usage error.
"""
