"""How a ``comm-diag`` command ends: one ``error:`` line and exit 1 for anything a user's input
can cause (never a traceback), and SIGTERM or a second Ctrl-C handled as one interrupt."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Callable, Iterator

import typer
from rich.console import Console
from rich.text import Text

from comm_diag.errors import InputError, MissingExtra

# Plain-text consoles: what they print is never read as markup or emoji codes, so a path, a
# label or a class name prints as typed ("d[/]x" once raised MarkupError after the work was
# done, "r[bold]b" printed "rb", a class Boom an emoji); styles go through ``styled``.
err = Console(stderr=True, markup=False, emoji=False, highlight=False)


def styled(head: str, style: str, rest: str = "") -> Text:
    """``head`` in ``style``, then ``rest`` as plain text (never markup)."""
    return Text.assemble((head, style), " " if rest else "", rest)


def fail(msg: str) -> None:
    err.print(styled("error:", "bold red", msg), soft_wrap=True)  # one line, never wrapped
    raise typer.Exit(code=1)


@contextlib.contextmanager
def user_errors(writes: bool = True) -> Iterator[None]:
    """Turn the library's input errors into one line and exit 1, never a traceback
    (``writes``: the command writes files, so an I/O failure says none was left half-written)."""
    from comm_diag.comm.run_folder import TrainingError

    try:
        yield
    except (InputError, FileExistsError, FileNotFoundError, TrainingError, MissingExtra) as e:
        fail(str(e))
    except MemoryError:
        fail("out of memory: use a smaller --size, --views, --batch-size or fewer pairs")
    except OSError as e:  # a full disk, a read-only folder, a path under a file: the system's reason
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        reason = e.strerror or f"{e} (is the disk full?)"  # numpy's short writes carry no errno
        fail(f"input/output failed: {reason}{where}" + ("; nothing half-written was kept" if writes else ""))
    except KeyboardInterrupt:
        fail("interrupted")
    except RecursionError:
        fail("an input is nested too deeply to read (a damaged or hostile JSON file)")
    except Exception as e:  # a bug, or an input no check foresaw: its traceback, then one line saying so
        if os.environ.get("COMM_DIAG_DEBUG"):
            raise
        import traceback

        err.print(traceback.format_exc().rstrip())
        fail(f"unexpected {type(e).__name__}: {e} (a comm-diag bug or an input it does not check: please "
             f"report it with the traceback above)")


def terminate_as_interrupt() -> Callable[[], object]:
    """SIGTERM (``kill``, a job scheduler's stop) ends a command as Ctrl-C does: its
    ``finally`` blocks run, so lock files and temporary folders go with it and the
    last finished epoch is kept; the default handler would end the process on the spot.
    Returns what puts the handlers back as they were (a notebook's own stay its own once
    the command ends)."""
    import signal
    import threading

    def interrupt(signum, frame):
        # once: a second Ctrl-C (or SIGTERM) while the first one's clean-up runs would
        # interrupt the clean-up itself and print its traceback from wherever it landed
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        signal.signal(signal.SIGTERM, interrupt)
        signal.signal(signal.SIGINT, interrupt)
        return lambda: [signal.signal(sig, handler) for sig, handler in previous.items()]
    return lambda: None


def run_to_the_end(app, name: str) -> None:
    """Run the Typer ``app``, then exit in a way no thread a plugin started can hold up (a
    non-daemon thread would keep the process alive after its work, with the command's result
    already printed)."""
    import threading

    try:
        app(prog_name=name)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if others:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
