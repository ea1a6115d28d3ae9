import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_example__library_pipeline_runs_end_to_end(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "library_pipeline.py"), str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "synergy information (bits): 0.469" in r.stdout
    assert "comm@init" in r.stdout and (tmp_path / "report" / "report.md").is_file()
