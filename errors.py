"""Exception types a user's setup or input causes, in the lowest layer so every part can raise
them and the command (``cli_errors.user_errors``) turns each into one line, never a traceback."""

from __future__ import annotations


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""

    def __init__(self, what: str, extra: str, package: str):
        super().__init__(f"{what} needs {package}: pip install -e \".[{extra}]\" (or pip install {package})")
        self.extra, self.package = extra, package


class InputError(ValueError):
    """A user's input, setting or received file that comm-diag refuses, with the message the
    user reads: one ``error:`` line from a command. A ValueError that is not one (raised by a
    bug, or by a library on an input no check foresaw) is shown with its traceback."""


class SettingError(InputError):
    """An environment variable or setting that cannot be read (its name and the value given)."""


class OutputError(InputError):
    """An output folder that may not be written (one line for the user)."""
