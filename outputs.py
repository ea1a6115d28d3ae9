"""Output folders: what kind of comm-diag artefact a folder holds, who may write it, and
when it may be replaced.

Every command that writes (``generate``, ``train``, ``quickstart``, ``ablate``,
``check``) goes through ``claim``:

- the folder is claimed exclusively for the whole command (an advisory ``flock`` on a
  lock file beside it, ``PARENT/.NAME.lock``, removed when the command ends): a second
  writer of the same folder stops at once with one line instead of mixing its files
  with the first's;
- a folder is written only if it is absent, empty, or already an artefact of the same
  kind (a run is resumed, an experiment continued, a dataset replaced with ``force``);
  anything else (user files, another kind of artefact) is refused, force or not;
- no output may lie inside a dataset or a run (a later ``generate --force`` of the
  dataset would delete it).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator, Optional

# kind -> the file that marks a folder as that artefact
MARKERS = {"dataset": "manifest.json", "run": "config.json", "experiment": "sweep.json",
           "calibration": "calibration.json"}
NO_NESTING = ("dataset", "run")  # artefacts that may not contain another output


class OutputError(ValueError):
    """An output folder that may not be written (one line for the user)."""


def kind_of(folder: Path | str) -> Optional[str]:
    """The artefact a folder holds ('dataset', 'run', 'experiment'), or None."""
    folder = Path(folder)
    for kind, marker in MARKERS.items():
        if (folder / marker).is_file():
            return kind
    return None


def _has_user_files(folder: Path) -> bool:
    return any(not p.name.startswith(".") for p in folder.iterdir())


def check(out: Path | str, kind: str, *, force: bool = False, reuse: bool = True) -> Path:
    """Whether ``out`` may receive a ``kind`` artefact; returns it as a Path, else OutputError.

    ``reuse``: an existing artefact of the same kind may be written into (resume,
    continue); ``force``: it may be replaced. Neither ever touches other files.
    """
    out = check_parents(Path(out))
    if not out.exists():
        return out
    if not out.is_dir():
        raise OutputError(f"{out} is a file, not a folder: choose another --out")
    found = kind_of(out)
    if found is None and not _has_user_files(out):
        return out
    if found == kind and (reuse or force):
        return out
    what = f"a comm-diag {found}" if found else "files that comm-diag did not write"
    if found == kind:
        raise OutputError(f"{out} already holds {_a(kind)}; pass --force to replace it or choose another --out")
    raise OutputError(f"{out} holds {what}, not {_a(kind)}: choose another --out"
                      + (f" (--force replaces only an empty folder or {_a(kind)})" if force else ""))


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def check_parents(out: Path) -> Path:
    """OutputError if ``out`` lies under a file or inside a dataset or a run."""
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise OutputError(f"cannot write {out}: {parent} is a file, not a folder")
        if parent.is_dir() and kind_of(parent) in NO_NESTING:
            raise OutputError(f"cannot write {out} inside the {kind_of(parent)} {parent}: "
                              f"choose an --out outside it")
    return out


def lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed, removed on release), or
    OutputError at once if another process holds it.

    filelock leaves its lock files behind on POSIX by design; this one removes its file,
    so no ``.NAME.lock`` litters the folders. Removing a lock file is safe with the
    usual check: the file is unlinked before it is unlocked, and a process that locked
    an unlinked file (it opened the path just before) sees that the path no longer
    names its file and starts again.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(f"{path.parent / path.name[1:-5]} is being written by another comm-diag process; "
                              f"wait for it to finish or choose another --out") from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # the previous holder removed it after we opened it: lock the new file
    try:
        yield
    finally:
        os.unlink(path)
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def claim(out: Path | str, kind: str, *, force: bool = False, reuse: bool = True) -> Iterator[Path]:
    """Hold ``out`` exclusively while the block writes it (``check`` first, then the lock)."""
    out = check(out, kind, force=force, reuse=reuse)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {out.parent}: {e.strerror}") from None
    with exclusive(lock_path(out)):
        yield check(out, kind, force=force, reuse=reuse)  # again, now that nobody else writes it
