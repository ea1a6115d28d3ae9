"""The package's import graph: no circle anywhere (imports inside functions count too), and
the layers only look down: trifeature_gen <- comm <- probes <- api <- cli, and inside probes/
hooks <- measure <- report <- studies (measuring knows nothing of how it is shown or run)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("trifeature_gen", "comm", "probes")
LAYER = {"comm_diag": 0, "comm_diag.outputs": 0, "comm_diag.errors": 0, "comm_diag.received": 0, "comm_diag.dict_config": 0, "comm_diag.trifeature_gen": 1,
         "comm_diag.comm": 2,
         "comm_diag.probes": 3, "comm_diag.probes.hooks": 3.0, "comm_diag.probes.measure": 3.1,
         "comm_diag.probes.report": 3.2, "comm_diag.probes.studies": 3.3, "comm_diag.api": 4, "comm_diag.tables": 4,
         "comm_diag.cli_options": 5, "comm_diag.cli_errors": 5, "comm_diag.cli": 5}


def module_name(path: Path) -> str:
    parts = ["comm_diag", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    files = [ROOT / f for f in ("__init__.py", "cli.py", "cli_options.py", "cli_errors.py", "outputs.py", "dict_config.py",
                                "errors.py", "received.py", "api.py", "tables.py")]
    files += [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    return {module_name(p): p for p in files}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports, anywhere in the file (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # 'from pkg import module' imports the module; 'from pkg import name', the package
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def graph() -> dict[str, set[str]]:
    mods = sources()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def layer(module: str) -> int:
    return max(v for k, v in LAYER.items() if module == k or module.startswith(k + "."))


def test_no_import_circle():
    g = graph()
    # a package's __init__ re-exports its modules: an edge into the package itself from one of
    # its own modules is the circle we look for, so __init__ stays a node like any other
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(g[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_layers_only_import_downwards():
    upward = [(a, b) for a, deps in graph().items() for b in deps if layer(b) > layer(a)]
    assert not upward, f"upward imports: {upward}"


def test_a_host_fit_worker_imports_no_torch(tmp_path):
    """A fit worker process (probes.measure.fit_workers) imports what ``classifiers.probe_row``
    needs; torch and the model code are not among it, so a worker starts in about a second
    (0.7's workers imported torch: 13.6 s to start two on 2 cores)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np, comm_diag.probes.measure.classifiers as c\n"
            "rng = np.random.default_rng(0); x = rng.normal(size=(200, 4)); y = (x[:, 0] > 0).astype(int)\n"
            "row = c.probe_row('linear', 'synergy', 'fused', 0, (x[:150], x[150:]), (y[:150], y[150:]), 1.0)\n"
            "assert row['balanced_accuracy'] > 80, row\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('comm_diag.comm')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_every_module_path_named_in_comments_and_docs_exists():
    """A comment or a doc that names a module after it moved (0.8 named six such paths, e.g. the
    dose study's old place) sends a reader nowhere: every path into the package written in
    backquotes, in a comment or with the ``comm_diag.`` prefix names a module that exists, or
    an attribute of one; file names (probes.csv, ...) and docs/history.md (what earlier
    versions were) excepted."""
    import importlib
    import re

    modules = {m.removeprefix("comm_diag.") for m in sources()}
    pattern = re.compile(r"(?<![\w./-])((?:comm_diag\.)?(?:probes|comm|trifeature_gen)(?:[./][A-Za-z_]+)+)")
    files = [p for p in ROOT.rglob("*") if p.suffix in (".py", ".md") and ".git" not in p.parts
             and "egg-info" not in str(p) and p.name != "history.md"]
    stale = []
    for path in files:
        for number, line in enumerate(path.read_text(errors="ignore").splitlines(), 1):
            for m in pattern.finditer(line):
                named = m.group(1)
                quoted = line[max(0, m.start() - 1):m.start()] == "`"
                commented = path.suffix == ".py" and "#" in line[:m.start()]
                if not (quoted or commented or named.startswith("comm_diag.")):
                    continue  # code (a variable named comm), not a path
                if "/" in named:  # a path: a file or folder of the repository
                    tail = line[m.end():m.end() + 5]
                    full = named + (tail[:tail.index("`")] if "`" in tail else "")
                    if any((ROOT / f).exists() for f in (full, named, named + ".py")):
                        continue
                    stale.append(f"{path.relative_to(ROOT)}:{number}: {full}")
                    continue
                parts = named.removeprefix("comm_diag.").split(".")
                while parts and parts[-1] in ("csv", "json", "md", "tmp", "png", "pt", "py", "txt"):
                    parts = parts[:-1]  # a file name
                if ".".join(parts) in modules:
                    continue
                parent = ".".join(parts[:-1])
                if parent in modules and hasattr(importlib.import_module(f"comm_diag.{parent}"), parts[-1]):
                    continue
                if len(parts) <= 1:
                    continue  # a file of a top-level folder (probes.csv)
                stale.append(f"{path.relative_to(ROOT)}:{number}: {named}")
    assert not stale, "\n".join(stale)


def test_the_commands_help_imports_no_torch(tmp_path):
    """``comm-diag --help`` and each command's ``--help`` only parse options: torch (and the
    models) load when a command runs, so help answers in a fraction of a second (0.8 imported
    torch for it: 4-5 s, 830 MB)."""
    import subprocess
    import sys

    code = ("import sys\nfrom comm_diag.cli import app\n"
            "for argv in (['--help'], ['train', '--help'], ['check', '--help'], ['ablate', '--help']):\n"
            "    try:\n        app(argv)\n    except SystemExit:\n        pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("NO TORCH")


def test_no_python_file_is_over_400_lines():
    """A module with one job reads in one sitting; past 400 lines it has two (0.8: comm/train.py)."""
    import subprocess

    listed = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    files = [ROOT / f for f in listed] or [p for p in ROOT.rglob("*.py") if ".git" not in p.parts]
    long = {str(p.relative_to(ROOT)): n for p in files if p.is_file()
            and (n := len(p.read_text(errors="ignore").splitlines())) > 400}
    assert not long, long


def test_outputs_read_the_typed_result_and_name_no_task_by_hand():
    """#52: the probe table owns what a control is (``probes.measure.table``), the typed
    result (``probes.report.result.StudyResult``) is read by its fields, and no output names
    the interactions' letters as a string or filters rows by hand; a new task then reaches
    every output (tests/test_extending.py)."""
    import re

    owners = {ROOT / "probes" / "measure" / "table.py"}
    code = [p for p in ROOT.rglob("*.py") if "tests" not in p.parts and "benchmarks" not in p.parts
            and "egg-info" not in str(p) and p not in owners]
    found = []
    for p in code:
        for i, line in enumerate(p.read_text().splitlines(), 1):
            text = line.split("#")[0]
            if re.search(r'"@init"|@init"|"RUS"|result\["|result\.get\("', text) or \
                    re.search(r"for r in [\w.\[\]\"]+ if r(\[|\.get)", text):
                found.append(f"{p.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not found, "\n".join(found)


def test_every_device_precision_and_global_seeding_decision_is_the_runtimes():
    """#52: device (is there a GPU, is this one), precision (autocast on or off) and the
    process-wide generators are decided in ``comm/runtime.py`` alone, from the run's config;
    a study reads the device its runs were probed on, never this machine's "auto". Seeded
    generators of their own (``torch.Generator().manual_seed``) live where they are used."""
    import re

    banned = re.compile(r'torch\.cuda\.is_available|(?<!Generator\(\)\.)(?<!\w)torch\.manual_seed\(|torch\.autocast\('
                        r'|resolve_device\("auto"\)|\.type [!=]= "(cuda|cpu)"|fork_rng')
    runtime = ROOT / "comm" / "runtime.py"
    found = []
    for p in ROOT.rglob("*.py"):
        if p == runtime or {"tests", "benchmarks", "examples"} & set(p.parts) or "egg-info" in str(p):
            continue
        for i, line in enumerate(p.read_text().splitlines(), 1):
            if banned.search(line.split("#")[0]):
                found.append(f"{p.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not found, "\n".join(found)


def test_the_cli_reaches_the_library_through_api_only():
    """#52: ``ablate`` and ``check`` reached past ``api`` into ``probes`` (the plan, the study
    registry, --require's parsing), and the default output folders were computed twice."""
    text = (ROOT / "cli.py").read_text()
    assert "comm_diag.probes" not in text
    assert 'Path("check-out")' not in text and 'Path("ablations")' not in text and 'Path("runs")' not in text
