"""``python -m rivet_cli`` runs the same app as the ``rivet`` console script."""

from rivet_cli.main import app

app(prog_name="rivet")
