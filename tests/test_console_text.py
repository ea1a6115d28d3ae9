"""What a command prints is what the user typed: paths and labels are plain text on every
console (never markup, never emoji codes), and styles are applied apart (#51: ``--out
'dmark[/]x'`` wrote everything, then exited 1 with "unexpected MarkupError"; ``r[bold]b``
printed as ``rb``; a class named Boom printed as an emoji)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from comm_diag.cli import app

TINY = ["--size", "32", "--train-pairs", "64", "--probe-pairs", "64", "--test-pairs", "32"]


@pytest.mark.parametrize("name", ["dmark[/]x", "r[bold]b", "a:boom:b", "[link=http://x]y"])
def test_a_path_is_printed_as_typed(tmp_path, name):
    out = tmp_path / name
    r = CliRunner().invoke(app, ["generate", *TINY, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert f"wrote {out}" in r.output.replace("\n", "")
    assert (out / "manifest.json").is_file()


@pytest.mark.parametrize("name", ["no[red]such", "x:boom:y"])
def test_an_error_line_quotes_the_path_as_typed(tmp_path, name):
    r = CliRunner().invoke(app, ["report", str(tmp_path / name), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 1
    text = r.output.replace("\n", "")
    assert text.startswith("error:") and name in text and "💥" not in text


def test_styles_still_apply_to_the_words_comm_diag_colours():
    from rich.console import Console

    from comm_diag.cli_errors import styled

    console = Console(record=True, markup=False, emoji=False, force_terminal=True, color_system="standard")
    console.print(styled("error:", "bold red", "in [red]x[/] :boom:"))
    assert "\x1b[" in console.export_text(styles=True, clear=False)  # the head is styled
    assert console.export_text() == "error: in [red]x[/] :boom:\n"  # the rest is as typed


def test_a_missing_extra_is_one_line_that_names_the_extra(tmp_path, monkeypatch):
    """0.8: "unexpected TensorBoardMissing ... a comm-diag bug; please report it"."""
    import sys

    data = tmp_path / "d"
    assert CliRunner().invoke(app, ["generate", *TINY, "--out", str(data)]).exit_code == 0
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # not installed
    r = CliRunner().invoke(app, ["train", "--data", str(data), "--preset", "smoke", "--epochs", "1", "--tensorboard",
                                 "--out", str(tmp_path / "r")])
    text = r.output.replace("\n", "")
    assert r.exit_code == 1 and "Traceback" not in text
    assert 'error: --tensorboard needs tensorboardX: pip install -e ".[tensorboard]"' in text and "bug" not in text


def test_an_unreadable_thread_count_is_one_line_that_names_the_variable(tmp_path, monkeypatch):
    """0.8: "invalid literal for int() with base 10: 'abc'"."""
    data = tmp_path / "d"
    assert CliRunner().invoke(app, ["generate", *TINY, "--out", str(data)]).exit_code == 0
    monkeypatch.setenv("COMM_DIAG_THREADS", "abc")
    r = CliRunner().invoke(app, ["train", "--data", str(data), "--preset", "smoke", "--epochs", "1", "--out",
                                 str(tmp_path / "r")])
    text = r.output.replace("\n", "")
    assert r.exit_code == 1 and "Traceback" not in text
    assert "error: COMM_DIAG_THREADS must be a whole number of threads, got 'abc'" in text


def test_a_command_called_in_process_puts_the_signal_handlers_back():
    """A notebook or a script calling the app keeps its own Ctrl-C once the command ends
    (0.8 left comm-diag's handlers installed by the app's callback for good)."""
    import signal

    def mine(signum, frame):
        pass

    before = signal.signal(signal.SIGINT, mine)
    try:
        r = CliRunner().invoke(app, ["methods"])
        assert r.exit_code == 0
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_users_error_is_one_line_and_a_bugs_valueerror_keeps_its_traceback(tmp_path, monkeypatch):
    """#52: 0.8 printed every ValueError as a user's one-line error, so a bug raising one lost
    its traceback. A refusal is an ``errors.InputError`` (one line); anything else is shown
    with its traceback and called a bug."""
    import comm_diag.api as api

    r = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--set", "method_settings=x", "--out",
                                 str(tmp_path / "r")])
    assert r.exit_code == 1 and r.output.startswith("error: method_settings is not a setting")
    assert "Traceback" not in r.output  # 0.8: "unexpected TypeError: 'str' object is not a mapping"

    def buggy(*args, **kwargs):
        raise ValueError("an internal inconsistency")
    monkeypatch.setattr(api, "generate", buggy)
    r = CliRunner().invoke(app, ["generate", *TINY, "--out", str(tmp_path / "g")])
    assert r.exit_code == 1 and "Traceback" in r.output and 'raise ValueError("an internal inconsistency")' in r.output
    assert "error: unexpected ValueError: an internal inconsistency (a comm-diag bug" in r.output.replace("\n", " ")
