"""The device check's fidelity-study part (``device_check.py --study fidelity``): its epochs
priced from each variant's measured rate, its datasets made once as the data part, the study
run with every run's probe rows copied under OUT/fidelity/ as they come."""

from __future__ import annotations

import csv
import shutil
import threading
import time
from pathlib import Path
from typing import Callable

from comm_diag.comm.config import preset

PAPER_EPOCHS = preset("paper").epochs


def fidelity_epochs(rates: dict[str, float], pairs: int, probe_s: float, every: int, seconds: float,
                    runs_per_variant: int = 2, protocols: int = 2) -> int:
    """The most epochs (1 .. the paper's) whose training and probes fit in ``seconds``: each
    variant's ``runs_per_variant`` runs at its own pairs/s (``rates``, measured one run at a
    time: runs trained together go at least as fast in all), and every probed point counted
    as run: epoch 0, every ``every``-th and the last, each with ``protocols`` probes of
    ``probe_s`` seconds."""
    def cost(epochs: int) -> float:
        points = 1 + epochs // every + (epochs % every != 0)
        train = sum(runs_per_variant * epochs * pairs / max(r, 1e-9) for r in rates.values())
        return train + len(rates) * runs_per_variant * points * protocols * probe_s

    fits = [e for e in range(1, PAPER_EPOCHS + 1) if cost(e) <= seconds]
    return max(fits, default=1)


FIDELITY_FILES = ("report.md", "summary.csv", "learning_curves.png")
FIDELITY_VARIANTS = ("preset", "fast", "authors_renderer", "torchvision_aug")


def fidelity_data(preset_name: str, root: Path, epochs: int, every: int) -> dict:
    """The fidelity study's folder claimed and every dataset it trains on generated (the
    preset's pair and the authors' renderer's), nothing trained: the study reuses them."""
    from comm_diag.probes.studies.ablation import prepare_study

    t = time.perf_counter()
    made = prepare_study("fidelity", root / "fidelity", preset=preset_name, seeds=[0], epochs=epochs,
                         every=every)
    return {"seconds": round(time.perf_counter() - t, 1), "folders": {k: str(d.root) for k, d in made.items()},
            "probe_pairs": made["synergy"].n_samples("probe_train"), "test_pairs": made["synergy"].n_samples("test")}


def copy_probes(folder: Path, dest: Path) -> int:
    """Every run's probe rows so far (probes_by_epoch.csv, written at each probed epoch, and
    probes.csv once a run is probed at its end), merged into one file dest/probes.csv with
    the run's name (one file, however many runs: the device tool brings back <= 8).
    Returns the rows copied."""
    rows = []
    for path in sorted((folder / "runs").glob("*/probes*.csv")):
        try:
            with open(path, newline="") as f:
                rows += [{"run": path.parent.name, "file": path.name, **r} for r in csv.DictReader(f)]
        except (OSError, csv.Error):
            continue  # a file being written: the next copy has it
    if rows:
        dest.mkdir(exist_ok=True)
        columns = list(dict.fromkeys(k for r in rows for k in r))
        tmp = dest / "probes.csv.tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(dest / "probes.csv")
    return len(rows)


def fidelity_study(preset_name: str, root: Path, out: Path, epochs: int, every: int,
                   on_deadline: list[Callable]) -> dict:
    """``ablate fidelity`` (docs/fidelity.md) in the folder ``fidelity_data`` prepared: eight
    runs (four variants x unbiased and synergy-biased pairs), trained together in this
    process, probed every ``every`` epochs with comm-diag's linear probe and the authors'
    protocol. Every run's probes are copied under OUT/fidelity/ every 10 s while it runs
    (and at the deadline), so a check cut short keeps each finished point."""
    from comm_diag.probes.studies.ablation import run_study

    folder, dest = root / "fidelity", out / "fidelity"
    copy = lambda: copy_probes(folder, dest)  # noqa: E731
    on_deadline.append(copy)
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(10.0):
            copy()
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    t = time.perf_counter()
    try:
        result = run_study("fidelity", folder, preset=preset_name, seeds=[0], epochs=epochs, every=every,
                           workers=1, progress="lines")
    finally:
        stop.set()
        copied = copy()
    for name in FIDELITY_FILES:
        if (folder / name).is_file():
            shutil.copyfile(folder / name, dest / name)
    return {"epochs": epochs, "every": every, "wall_s": round(time.perf_counter() - t, 1), "probe_rows": copied,
            "lead": result.get("lead", []), "expectations": [[t_, ok] for t_, ok in result.get("expectations", [])]}
