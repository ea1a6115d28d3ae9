"""The Python API (``comm_diag.api``): the README's "From Python" block runs as written, and
the functions refuse what the command refuses: a misspelt argument, an unknown setting."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import comm_diag.api as cd

ROOT = Path(__file__).resolve().parents[1]


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## From Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_from_python_block_runs_as_written(tmp_path):
    """From an empty folder outside the repository, with what the README's install brings (0.8's
    block needed the repository as its folder and the tensorboard extra)."""
    r = subprocess.run([sys.executable, "-c", readme_block()], cwd=tmp_path, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "cross {'R':" in r.stdout and "ClipConcat" in r.stdout and "cross: " in r.stdout
    for f in ("nb-out/report.html", "nb-check/report.md", "nb-dose/dose.csv", "nb-run/probes.csv",
              "nb-report/report.html"):
        assert (tmp_path / f).is_file(), f
    # the check's setting reached the user's method, not the defaults, and check.json says so
    assert '"temperature": 0.2' in next((tmp_path / "nb-check" / "runs").glob("ClipConcat-unbiased-*/config.json")
                                         ).read_text().replace("'", '"')
    record = json.loads((tmp_path / "nb-check" / "check.json").read_text())
    assert record["configs"]["ClipConcat"]["method"].endswith("examples/clip_concat.py:ClipConcat")
    mine = record["configs"]["ClipConcat"]
    assert (mine["dim"], mine["temperature"]) == (64, 0.2) and "proj_dim" not in mine  # its settings, no one else's


def test_an_example_is_found_by_name_from_any_folder():
    from comm_diag import examples

    assert Path(examples.path("clip_concat")).read_text().startswith('"""A method written')
    with pytest.raises(ValueError, match="no example named 'nope'; the examples are byol, clip_concat"):
        examples.path("nope")


def test_api_refuses_misspelt_arguments_and_unknown_settings(tmp_path):
    # every keyword of the function is listed (0.4 listed only the executor's: "... 'local': workers")
    with pytest.raises(TypeError, match="unknown option 'preset_name'; valid options with executor='local': "
                                        "preset, seeds, epochs, every, methods, workers, executor, progress, hooks"):
        cd.quickstart(tmp_path / "q", preset_name="smoke")
    with pytest.raises(TypeError, match="unknown option 'worker'; valid options"):
        cd.check("cross", tmp_path / "c", preset="smoke", worker=2)
    with pytest.raises(TypeError, match="unknown dataset setting 'sizes'; valid: "):
        cd.generate(tmp_path / "g", sizes=32)
    with pytest.raises(ValueError, match="does not use") as refused:
        cd.check("cross", tmp_path / "c", preset="smoke", controls=[], settings={"proj_dim": 8})
    listed = str(refused.value).split("a run setting: ")[1].split(", ")
    assert "epochs" in listed and not {"image_size", "preset", "method"} & set(listed)  # never settable
    with pytest.raises(ValueError, match="unknown preset 'tiny'"):
        cd.generate(tmp_path / "g", preset="tiny")
    assert not any(tmp_path.iterdir())  # refused before any byte


def test_a_study_on_data_of_another_size_than_its_presets_skips_its_finished_runs(tmp_path):
    """The image size has one owner, the data: 0.8 planned runs at the preset's size (32 px at
    smoke), trained them at the data's (48 px) and then compared the two, so a second
    ``check`` on a 48 px dataset failed with "holds a run with other settings"."""
    data = cd.generate(tmp_path / "d48", size=48, train_pairs=128, probe_pairs=128, test_pairs=64)
    first = cd.check("cross", tmp_path / "c", data=[data], preset="smoke", controls=[], epochs=1, progress="off")
    stages = []
    from comm_diag.probes.hooks import Hooks

    again = cd.check("cross", tmp_path / "c", data=[data], preset="smoke", controls=[], epochs=1, progress="off",
                     hooks=Hooks(on_stage=stages.append))
    assert any("done already, skipped" in s for s in stages), stages
    assert again["conclusion"] == first["conclusion"]
    config = json.loads(next((tmp_path / "c" / "runs").glob("*/config.json")).read_text())
    assert config["train"]["image_size"] == 48

    # a run probed again by hand with fewer probes than the study's is probed again by the
    # study, not skipped (0.8 skipped it and the conclusion shrank in silence); and a report
    # of runs without the verdicts' probe is one line, not an empty verdict table
    run = next((tmp_path / "c" / "runs").glob("*seed0"))
    cd.probe(run, probe="linear_unweighted", progress="off")
    with pytest.raises(ValueError, match="probed with linear_unweighted only; verdicts read the linear probe"):
        cd.report([run], tmp_path / "rep")
    stages.clear()
    third = cd.check("cross", tmp_path / "c", data=[data], preset="smoke", controls=[], epochs=1, progress="off",
                     hooks=Hooks(on_stage=stages.append))
    assert any(f"{run.name}: probing" in s for s in stages) and not any("skipped" in s for s in stages), stages
    assert third["conclusion"] == first["conclusion"]
