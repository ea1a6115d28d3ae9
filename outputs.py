"""Output folders: what kind of comm-diag artefact a folder holds, who may write it, and
when it may be replaced.

Every command that writes (``generate``, ``train``, ``report``, ``quickstart``,
``ablate``, ``check``, ``calibrate``) goes through ``claim``:

- the path is resolved first (``~``, ``.``, ``..`` and symbolic links), so every rule
  applies to the real folder: ``--force`` through a link replaces the linked dataset,
  and a link into a run cannot smuggle an output inside it;
- the folder is claimed exclusively for the whole command (an advisory ``flock`` on a
  lock file beside it, ``PARENT/.NAME.lock``, removed when the command ends, on
  SIGTERM too): a second writer of the same folder stops at once with one line
  instead of mixing its files with the first's;
- a folder is written only if it is absent, **empty (no entry at all, hidden ones
  included: a folder holding only ``.git`` or ``.ssh`` is not empty)**, or already an
  artefact of the same kind (a run is resumed, an experiment continued, a dataset
  replaced with ``force``); anything else (user files, another kind of artefact) is
  refused, force or not;
- replacing (``generate --force``) removes only a dataset whose every file is one its
  manifest lists: a dataset into which a user put a file of their own is refused, and
  the file named;
- no output may lie inside a dataset or a run (a later ``generate --force`` of the
  dataset would delete it);
- what an interrupted writer left beside the folder (``.NAME.partial-*`` temporary
  folders, ``.NAME.old`` from a replacement cut short) is cleared by the next writer,
  and only when it carries comm-diag's own marker or manifest;
- every file is written by ``write_file``: a new temporary file of a fresh name in the
  target folder (created exclusively, so it never follows a link), renamed over the
  path (a link there is replaced, never written through);
- a folder received from someone else is read or written only if it holds no link
  (``no_links``): comm-diag never writes one, and one would lead outside the folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

from comm_diag.errors import OutputError  # noqa: F401  (raised here, and where callers catch it)
from comm_diag.received import check_entry, read_json

# kind -> the file that marks a folder as that artefact
MARKERS = {"dataset": "manifest.json", "run": "config.json", "experiment": "sweep.json",
           "calibration": "calibration.json", "report": "report.json"}
NO_NESTING = ("dataset", "run")  # artefacts that may not contain another output
PARTIAL_MARKER = ".comm-diag-partial"  # inside a temporary folder a writer is filling


def resolved(out: Path | str) -> Path:
    """The real path the rules apply to: ``~`` expanded, relative made absolute, links followed
    (OutputError for a loop of links, or a name too long for the file system)."""
    try:
        return Path(out).expanduser().resolve()
    except RuntimeError:  # Python < 3.13 reports a symlink loop so
        raise OutputError(f"{out} is a loop of symbolic links: choose another --out") from None
    except OSError as e:
        raise OutputError(f"{out}: {e.strerror}") from None


def kind_of(folder: Path | str) -> Optional[str]:
    """The artefact a folder holds ('dataset', 'run', 'experiment', ...), or None."""
    folder = Path(folder)
    for kind, marker in MARKERS.items():
        if (folder / marker).is_file():
            return kind
        if (folder / marker).is_symlink() or (folder / marker).exists() and not (folder / marker).is_dir():
            check_entry(folder / marker)  # a FIFO or device named like a marker: named, never read
    return None


def is_empty(folder: Path) -> bool:
    """No entry at all: a hidden file or folder (``.git``, ``.venv``, ``.ssh``) counts."""
    return next(folder.iterdir(), None) is None


def dataset_files(folder: Path) -> Optional[set[str]]:
    """The files (relative POSIX paths) a dataset's manifest lists, manifest.json
    included; None if the manifest cannot be read (then nobody knows what is ours)."""
    try:
        listed = read_json(folder / MARKERS["dataset"]).get("sha256")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(listed, dict):
        return None
    return {*listed, MARKERS["dataset"]}


def foreign_entries(folder: Path) -> Optional[list[str]]:
    """Entries of a dataset folder that its manifest does not list (a user's ``notes.txt``,
    a ``.venv/``), sorted; None if its manifest cannot be read."""
    listed = dataset_files(folder)
    if listed is None:
        return None
    parents = {p for rel in listed for p in map(str, Path(rel).parents) if p != "."}
    found = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink() or not (p.is_file() and rel in listed or p.is_dir() and rel in parents):
            found.append(rel)
    return [f for f in found if not any(f.startswith(g + "/") for g in found)]  # a foreign folder once


def remove_dataset(folder: Path) -> bool:
    """Delete a dataset folder if every entry in it is one its manifest lists; False
    (nothing deleted) otherwise."""
    if kind_of(folder) != "dataset" or foreign_entries(folder) != []:
        return False
    shutil.rmtree(folder)
    return True


def check(out: Path | str, kind: str, *, force: bool = False, reuse: bool = True) -> Path:
    """Whether ``out`` may receive a ``kind`` artefact; returns its resolved Path, else OutputError.

    ``reuse``: an existing artefact of the same kind may be written into (resume,
    continue); ``force``: it may be replaced, if all its files are its own. Neither
    ever touches other files.
    """
    out = check_parents(resolved(out))
    if not out.exists():
        return out
    if not out.is_dir():
        raise OutputError(f"{out} is a file, not a folder: choose another --out")
    found = kind_of(out)
    if found is None and is_empty(out):
        return out
    if found == kind and reuse:
        return out
    if found == kind and force:
        if kind == "dataset":
            _check_replaceable(out)
        return out
    inner = sorted({k for c in out.iterdir() if c.is_dir() and not c.is_symlink() and (k := kind_of(c))}) \
        if found is None else []
    what = f"a comm-diag {found}" if found else \
        (f"comm-diag {'s, '.join(inner)}s in its subfolders" if inner else "files that comm-diag did not write")
    if found == kind:
        raise OutputError(f"{out} already holds {_a(kind)}; pass --force to replace it or choose another --out")
    raise OutputError(f"{out} holds {what}, not {_a(kind)} (hidden files count): choose another --out"
                      + (f" (--force replaces only an empty folder or {_a(kind)})" if force else ""))


def _check_replaceable(out: Path) -> None:
    foreign = foreign_entries(out)
    if foreign is None:
        raise OutputError(f"{out}: its manifest.json cannot be read, so which files are comm-diag's is unknown; "
                          f"--force replaces only a dataset whose files its manifest lists: choose another --out")
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise OutputError(f"{out} holds files its manifest does not list ({', '.join(foreign[:3])}{more}); "
                          f"--force never deletes them: move them out or choose another --out")


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def check_parents(out: Path) -> Path:
    """OutputError if ``out`` lies under a file or inside a dataset or a run."""
    if out == Path(out.anchor):
        raise OutputError(f"{out} is the root of the file system: choose another --out")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise OutputError(f"cannot write {out}: {parent} is a file, not a folder")
        if parent.is_dir() and kind_of(parent) in NO_NESTING:
            raise OutputError(f"cannot write {out} inside the {kind_of(parent)} {parent}: "
                              f"choose an --out outside it")
    return out


Content = Union[str, bytes, Callable[[Path], None]]


def _public(path: Path | str) -> None:
    """mkstemp makes a file private; an output is not: the permissions the umask gives."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def write_file(path: Path | str, content: Content) -> Path:
    """Write ``path`` atomically and without following links: ``content`` (text, bytes, or a
    function that writes the file it is given, e.g. ``fig.savefig``) goes to a new
    temporary file of a fresh name beside ``path`` (``mkstemp``: created exclusively), which
    is then renamed over ``path``. A link at ``path`` is replaced by the file, never written
    through; a failed write leaves the old file and no temporary one."""
    path = Path(path)
    # the suffix keeps the extension, from which writers such as savefig take the format
    fd, name = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=".tmp" + path.suffix[:16], dir=path.parent)
    tmp = Path(name)
    try:
        if callable(content):
            os.close(fd)
            content(tmp)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(content.encode() if isinstance(content, str) else content)
        _public(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """A CSV cell a spreadsheet shows as text: a string that is not a number and starts like a
    formula (``= + - @``, tab, CR) gets a leading apostrophe (OWASP's CSV-injection rule);
    numbers and other text pass unchanged."""
    if not isinstance(value, str) or not value.startswith(FORMULA_START):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


def replace_and_open(path: Path | str, text: str):
    """A new file holding ``text`` renamed over ``path`` (never the existing file opened,
    which could be another name of a file outside), returned open for appending: a log
    continued after a resume writes only into the file this call created."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=".tmp", dir=path.parent)
    f = os.fdopen(fd, "w", newline="", encoding="utf-8")
    try:
        f.write(text)
        f.flush()
        _public(name)
        os.replace(name, path)
    except BaseException:
        f.close()
        Path(name).unlink(missing_ok=True)
        raise
    return f


LOCK_MARK = b"comm-diag lock\n"  # the content of a lock file comm-diag created


def _side_name(out: Path) -> str:
    """The name comm-diag's files beside ``out`` (lock, partial folder, replaced dataset) are
    made from: ``out``'s own, or for a long one (a file name has at most 255 bytes, and these
    add up to 25) its first 180 bytes, cut at a character's start, and a digest of the whole."""
    import hashlib

    raw = os.fsencode(out.name)  # bytes are what the limit counts (a name's characters may take 1-4)
    if len(raw) <= 200:
        return out.name
    cut = raw[:180]
    while cut and cut[-1] & 0xC0 == 0x80:  # a UTF-8 continuation byte: back to its character's start
        cut = cut[:-1]
    if cut and cut[-1] >= 0xC0:  # the start of a character the cut would split
        cut = cut[:-1]
    return os.fsdecode(cut) + "-" + hashlib.sha256(raw).hexdigest()[:12]


def lock_path(out: Path) -> Path:
    return out.parent / f".{_side_name(out)}.lock"


def partial_folder(out: Path) -> Path:
    """A new temporary folder beside ``out`` for a writer to fill, then rename into place;
    marked as comm-diag's so that a later writer may clear it if this one is killed."""
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix=f".{_side_name(out)}.partial-", dir=out.parent))
    (tmp / PARTIAL_MARKER).touch()
    return tmp


def old_folder(out: Path) -> Path:
    """Where a replaced dataset waits between the two renames of a replacement."""
    return out.with_name(f".{_side_name(out)}.old")


def clear_leftovers(out: Path) -> None:
    """Remove what a killed writer of ``out`` left beside it (call while holding its lock):
    marked temporary folders, and a replaced dataset (restored instead if the
    replacement was cut before the new one was in place)."""
    import glob

    for p in out.parent.glob(f".{glob.escape(_side_name(out))}.partial-*"):
        if p.is_dir() and not p.is_symlink() and (p / PARTIAL_MARKER).is_file():
            shutil.rmtree(p, ignore_errors=True)
    old = old_folder(out)
    why = None
    if old.is_dir() and not old.is_symlink() and kind_of(old) == "dataset":
        if not out.exists():
            os.replace(old, out)  # cut between the renames: the old dataset is all there is
        else:
            try:
                remove_dataset(old)
            except OSError as e:  # a read-only dataset that was replaced: comm-diag's, but not removable
                why = f"{old} is a dataset comm-diag replaced but could not delete ({e.strerror}): " \
                      f"make it writable (chmod -R u+w) or remove it, and run the command again"
    if old.exists() or old.is_symlink():
        raise OutputError(why or f"{old} is in the way of replacing {out} and is not comm-diag's to delete: "
                                 f"move it away and run the command again")


def replace_folder(tmp: Path, out: Path) -> None:
    """Put the finished folder ``tmp`` at ``out``: renamed into place, a dataset already
    there first set aside and then deleted (it holds only its own files: ``check``)."""
    (tmp / PARTIAL_MARKER).unlink(missing_ok=True)
    if not out.exists():
        os.replace(tmp, out)
        return
    old = old_folder(out)
    os.replace(out, old)
    os.replace(tmp, out)
    with contextlib.suppress(OSError):  # a failure here leaves .NAME.old, cleared by the next writer
        remove_dataset(old)


@contextlib.contextmanager
def exclusive(path: Path, what: Optional[Path] = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``, or OutputError at once if another process
    holds it.

    The lock file is removed on release only if comm-diag made it: this process created it,
    or it holds comm-diag's mark (left by a killed command). A file of the user's that
    happens to bear the name is locked, never deleted, and a link there is refused, never
    followed. Removing a lock file is safe with the usual check: the file is unlinked
    before it is unlocked, and a process that locked an unlinked file (it opened the path
    just before) sees that the path no longer names its file and starts again.
    """
    while True:
        try:
            fd, ours = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644), True
        except FileExistsError:
            try:
                fd, ours = os.open(path, os.O_RDWR | os.O_NOFOLLOW), False
            except FileNotFoundError:
                continue  # removed by its holder meanwhile
            except OSError as e:  # ELOOP: a link
                raise OutputError(f"{path} is in the way of comm-diag's lock ({e.strerror}): move it away") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(f"{what or path} is being written by another comm-diag process; "
                              f"wait for it to finish or choose another --out") from None
        try:
            if os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # the previous holder removed it after we opened it: lock the new file
    if ours:
        os.write(fd, LOCK_MARK)
    else:
        ours = os.pread(fd, len(LOCK_MARK) + 1, 0) == LOCK_MARK  # a killed command's lock file
    try:
        yield
    finally:
        if ours:
            with contextlib.suppress(FileNotFoundError):
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
    with exclusive(lock_path(out), out):
        clear_leftovers(out)
        yield check(out, kind, force=force, reuse=reuse)  # again, now that nobody else writes it
