"""comm-diag: which multimodal interactions (redundancy, uniqueness, synergy) does a
self-supervised method learn? Installed as the one import namespace ``comm_diag``:

- ``comm_diag.trifeature_gen``: the seeded bimodal Trifeature generator (repository folder ``trifeature_gen/``)
- ``comm_diag.comm``: CoMM, the baselines, encoders, losses, training (``comm/``)
- ``comm_diag.probes``: probes, verdicts, reports, studies (``probes/``)
- ``comm_diag.cli``: the ``comm-diag`` command (``cli.py``)

The repository keeps those folders at its top level; the distribution installs them
under ``comm_diag`` only, so it never owns a generic top-level name (Jupyter's ``comm``
package, for one) and uninstalling it removes only its own files.
"""

__version__ = "0.9.0"
