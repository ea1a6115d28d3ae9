"""``python -m comm_diag``: the ``comm-diag`` command."""

from comm_diag.cli import app

app(prog_name="comm-diag")
