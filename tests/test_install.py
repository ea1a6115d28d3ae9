"""Installing comm-diag beside Jupyter's ``comm`` package (ipykernel's dependency) leaves it
intact, and uninstalling comm-diag removes only comm-diag's own files.

Builds the wheel of this checkout and installs it, without dependencies, into a fresh
virtual environment that already holds Jupyter's ``comm`` from the package index, the way
a user's research environment would.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = ("Could not find a version", "No matching distribution", "NewConnectionError", "Temporary failure")


def _run(cmd: list, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=600)


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def env_with_jupyter_comm(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("install")
    venv.create(tmp / "venv", with_pip=True)
    py = tmp / "venv" / "bin" / "python"
    got = _run([py, "-m", "pip", "install", "-q", "comm"], tmp)
    if got.returncode and any(s in got.stdout + got.stderr for s in OFFLINE):
        pytest.skip("the package index cannot be reached, so Jupyter's comm cannot be installed")
    _ok(got)
    return tmp, py


JUPYTER_COMM_WORKS = "import comm; assert callable(comm.create_comm), comm.__file__; print(comm.__file__)"


def test_install__beside_jupyter_comm__both_import_and_uninstall_keeps_jupyter(env_with_jupyter_comm):
    tmp, py = env_with_jupyter_comm
    _ok(_run([py, "-c", JUPYTER_COMM_WORKS], tmp))
    src = tmp / "src"  # a copy, so that the build leaves nothing in the checkout
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", "tests",
                                                             "data", "runs", "comm-diag-out", ".venv"))
    _ok(_run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
              "-w", tmp / "dist", src], tmp))
    wheel = next((tmp / "dist").glob("comm_diag-*.whl"))
    _ok(_run([py, "-m", "pip", "install", "-q", "--no-deps", wheel], tmp))

    # every installed file lies under comm_diag/ (or is the distribution's metadata or its script)
    listing = _run([py, "-c", "import importlib.metadata as m; print('\\n'.join(map(str, m.files('comm-diag'))))"], tmp)
    _ok(listing)
    tops = {f.split("/")[0] for f in listing.stdout.split()}
    assert {t for t in tops if not t.startswith(("comm_diag", ".."))} == set(), tops
    assert "comm_diag/comm/methods/cross.py" in listing.stdout and "comm_diag/cli.py" in listing.stdout

    both = _run([py, "-c", JUPYTER_COMM_WORKS + "\nimport comm_diag, importlib.util as u\n"
                 "assert comm_diag.__version__\n"
                 "assert u.find_spec('comm_diag.comm.losses') and u.find_spec('comm_diag.probes.measure.suite')\n"
                 "assert u.find_spec('cli') is None and u.find_spec('probes') is None\n"], tmp)
    _ok(both)

    _ok(_run([py, "-m", "pip", "uninstall", "-y", "-q", "comm-diag"], tmp))
    _ok(_run([py, "-c", JUPYTER_COMM_WORKS + "\nimport importlib.util as u; assert u.find_spec('comm_diag') is None"],
             tmp))
