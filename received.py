"""What comm-diag reads from a folder it may have received (a run, a dataset, a study someone
sent): the folder holds only regular files of bounded size, no links of any kind
(``no_links``), and a JSON file is read size-bounded, its every fault one error (``read_json``)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from comm_diag.errors import OutputError

# The largest file of each kind a received folder may hold: far above anything comm-diag writes
# (a paper-preset checkpoint is ~0.2 GB, a 224 px dataset's images ~0.4 GB), far below what
# would take hours to hash (0.8 hashed a 200 GB sparse checkpoint in full).
MAX_BYTES = {".pt": 16 * 2**30, ".csv": 2 * 2**30, ".json": 256 * 2**20, ".md": 256 * 2**20, ".html": 256 * 2**20}
MAX_OTHER_BYTES = 64 * 2**30


def no_links(folder: Path | str, what: str = "folder") -> Path:
    """``folder``, after checking that it holds only what comm-diag could have written: no
    symbolic link (a read or a write would land outside it), no hard link (a file with
    another name elsewhere: rewriting it would rewrite that file too), nothing but regular
    files and folders (a FIFO would block a read forever, a device would be read for good),
    and no file larger than its kind allows (``MAX_BYTES``). OutputError naming the first
    entry that is not."""
    folder = Path(folder)
    if folder.is_symlink():
        return no_links(folder.resolve(), what)
    for p in folder.rglob("*"):
        check_entry(p, what)
    return folder


def check_entry(p: Path, what: str = "folder") -> None:
    """OutputError unless ``p`` is a folder or a regular file of one name within its kind's
    size (``no_links``'s rules, for one entry)."""
    info = p.lstat()
    if stat.S_ISLNK(info.st_mode):
        raise OutputError(f"{p} is a symbolic link: a comm-diag {what} holds none, and comm-diag neither "
                          f"reads nor writes through one; remove it")
    if stat.S_ISDIR(info.st_mode):
        return
    if not stat.S_ISREG(info.st_mode):
        raise OutputError(f"{p} is not a regular file (a FIFO, socket or device): a comm-diag {what} holds "
                          f"none, and reading it could block or never end; remove it")
    if info.st_nlink > 1:
        raise OutputError(f"{p} is a hard link ({info.st_nlink} names for one file): comm-diag would rewrite "
                          f"the other names' file too; replace it by a copy or remove it")
    limit = MAX_BYTES.get(p.suffix, MAX_OTHER_BYTES)
    if info.st_size > limit:
        raise OutputError(f"{p} holds {info.st_size / 2**30:.1f} GB, more than a comm-diag {what} holds in a "
                          f"{p.suffix or 'such'} file ({limit / 2**30:g} GB at most): a damaged or hostile file")


MAX_JSON_BYTES = 256 * 2**20  # far above any comm-diag record (a manifest of 100k PNGs is ~10 MB)


def read_json(path: Path | str):
    """A JSON file from a folder comm-diag may have received: size-bounded, and whatever is
    wrong with it (invalid, nested past Python's recursion limit, an integer of thousands of
    digits) a ``json.JSONDecodeError``, which every reader already turns into one line naming
    the file; OSError and UnicodeDecodeError as they come."""
    path = Path(path)
    if path.stat().st_size > MAX_JSON_BYTES:
        raise json.JSONDecodeError(f"larger than {MAX_JSON_BYTES // 2**20} MB", "", 0)
    text = path.read_text()
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text[:100], 0) from None
    except json.JSONDecodeError:
        raise
    except ValueError as e:  # int() refuses > 4300 digits
        raise json.JSONDecodeError(str(e).split(";")[0], text[:100], 0) from None
