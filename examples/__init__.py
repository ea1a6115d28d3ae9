"""Example methods, installed with the package as ``comm_diag.examples`` so that a script or a
notebook in any folder finds them: ``path("clip_concat")`` is the file to give ``check``."""

from __future__ import annotations

from pathlib import Path


def path(name: str) -> str:
    """The example ``name``'s file (``name`` without ``.py``), e.g. for
    ``api.check(f"{path('clip_concat')}:ClipConcat", ...)``; ValueError if there is none."""
    file = Path(__file__).with_name(f"{name}.py")
    if name.startswith("_") or not file.is_file():
        found = sorted(p.stem for p in Path(__file__).parent.glob("*.py") if not p.stem.startswith("_"))
        raise ValueError(f"no example named {name!r}; the examples are {', '.join(found)}")
    return str(file)
