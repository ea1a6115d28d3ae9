"""A user method for ``comm-diag check``, given as a file: late fusion of per-modality SimCLR.

    comm-diag check examples/late_fusion_simclr.py:LateFusionSimCLR

Any subclass of ``comm_diag.comm.methods.Method`` in a file, a module or an installed
package (entry-point group ``comm_diag.methods``) plugs in the same way. This one is the
built-in ``simclr`` (``comm_diag/comm/methods/simclr.py``, a complete method in ~40 lines:
``__init__`` from the config, ``encode``/``fuse`` for the frozen representation, ``step``
for one training forward), renamed so that ``check`` shows how a user's own class is
named, loaded, preflighted and reported beside the references.
"""

from comm_diag.comm.methods.simclr import LateFusionSimCLR as _BuiltIn


class LateFusionSimCLR(_BuiltIn):
    """SimCLR per modality, concatenated pooled features as the pair's representation."""
