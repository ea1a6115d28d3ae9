"""``python -m comm_diag``: the ``comm-diag`` command."""

from comm_diag.cli import run

run()
