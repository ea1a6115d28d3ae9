"""comm-diag in a Jupyter notebook (executed by nbclient in a real kernel): the Python API and the
command show their progress as plain lines (no terminal control frames, no widget warnings),
progress is off when asked, and the saved notebook stays small."""

from __future__ import annotations

import json

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

CELLS = [
    # the library: one quickstart at the smoke size
    """from comm_diag.probes.studies.quickstart import quickstart
result = quickstart("qs", preset="smoke", methods=["cross"])
print("verdicts:", sorted(result["verdicts"]))""",
    # again, with progress off: finished runs are skipped, in silence
    """result = quickstart("qs", preset="smoke", methods=["cross"], progress="off")
print("again:", sorted(result["verdicts"]))""",
    # the command from a cell, as `!comm-diag ...` runs it
    """import subprocess, sys
print(subprocess.run([sys.executable, "-m", "comm_diag", "generate", "--size", "32", "--train-pairs", "64",
                      "--probe-pairs", "64", "--test-pairs", "32", "--out", "gen"],
                     capture_output=True, text=True).stdout)""",
    # the command's app called in the kernel
    """from comm_diag.cli import app
try:
    app(["generate", "--size", "32", "--train-pairs", "64", "--probe-pairs", "64", "--test-pairs", "32",
         "--out", "gen2"])
except SystemExit as e:
    print("exit", e.code)""",
    # the user's own plot after comm-diag drew its figures: the notebook's backend is untouched
    """import matplotlib, matplotlib.pyplot as plt
print("backend:", matplotlib.get_backend())
plt.plot([0, 1], [1, 0])
plt.show()""",
]


def _texts(cell) -> list[str]:
    out = []
    for o in cell.outputs:
        if o.output_type == "stream":
            out.append(o.text)
        elif o.output_type in ("execute_result", "display_data"):
            out += [str(v) for v in o.data.values()]
        elif o.output_type == "error":
            out.append("\n".join(o.traceback))
    return out


def test_notebook_shows_light_progress_lines_and_no_control_frames(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in CELLS])
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    texts = [_texts(c) for c in nb.cells]
    everything = "".join("".join(t) for t in texts)
    assert "\x1b[" not in everything and "ipywidgets" not in everything and "Traceback" not in everything
    first = "".join(texts[0])
    for line in ("dataset: unbiased", "rendering:", "training cross", "epoch 1/1", "probing", "report",
                 "verdicts: ['cross']"):
        assert line in first, line
    assert len(nb.cells[0].outputs) <= 40  # lines, not a frame per refresh
    assert "".join(texts[1]).strip() == "again: ['cross']"  # progress off: only the cell's own print
    assert "rendering:" in "".join(texts[2]) and "wrote gen" in "".join(texts[2])
    assert "wrote gen2" in "".join(texts[3]) and "exit 0" in "".join(texts[3])
    assert (tmp_path / "qs" / "report.html").is_file()
    assert "inline" in "".join(texts[4]).lower()  # comm-diag never switched the backend to Agg
    assert any(o.output_type == "display_data" and "image/png" in o.data for o in nb.cells[4].outputs)
    assert len(json.dumps(nbformat.v4.upgrade(nb))) < 60_000  # the saved notebook stays small
