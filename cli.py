"""The ``comm-diag`` command: thin Typer wrappers over the library functions."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

import trifeature_gen as tg
from trifeature_gen.factors import FACTOR_NAMES

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Which multimodal interactions does a self-supervised method learn? "
                       "Controlled bimodal Trifeature experiments (CoMM, ICLR 2025).")
console = Console()
err = Console(stderr=True)


class UserError(Exception):
    """Bad input: reported as one line, exit code 1."""


def fail(msg: str) -> None:
    err.print(f"[bold red]error:[/] {msg}", highlight=False)
    raise typer.Exit(code=1)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's input errors into one line and exit 1, never a traceback."""
    try:
        yield
    except (UserError, ValueError, FileExistsError, FileNotFoundError, tg.DatasetError) as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail("interrupted")


def progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                    console=err, transient=False)


def _version(value: bool) -> None:
    if value:
        console.print(f"comm-diag {tg.__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                         help="Print the version and exit.")] = None) -> None:
    pass


# ----------------------------------------------------------------------------- generate / info

def default_data_dir(size: int, synergy: bool) -> Path:
    return Path("data") / f"trifeature-{size}{'-synergy' if synergy else ''}"


def parse_synergy_attrs(text: str) -> tuple[str, str]:
    parts = text.split(":")
    if len(parts) != 2 or not all(parts):
        raise UserError(f"--synergy-attrs must look like SRC:TGT (e.g. texture:color), got {text!r}")
    for p in parts:
        if p not in FACTOR_NAMES:
            raise UserError(f"unknown attribute {p!r} in --synergy-attrs; choose from {', '.join(FACTOR_NAMES)}")
    return parts[0], parts[1]


def generate_dataset(spec: tg.DatasetSpec, out: Path, *, force: bool = False, png: bool = False) -> Path:
    """Generate with a progress bar and printed warnings (library: ``tg.generate``)."""
    tg.io.check_output(out, force)
    with progress_bar() as bar:
        task = bar.add_task("rendering", total=None, info=str(out))

        def step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return tg.generate(spec, out, force=force, png=png, progress=step,
                           warn=lambda m: err.print(f"[yellow]warning:[/] {m}", highlight=False))


@app.command()
def generate(
    out: Annotated[Optional[Path], typer.Option(help="Output folder [default: data/trifeature-SIZE[-synergy]].")] = None,
    size: Annotated[int, typer.Option(help="Image side in px (>= 32; 224 is the paper's).")] = 64,
    synergy: Annotated[bool, typer.Option("--synergy", help="Bias the train pairs to obey the synergy mapping.")] = False,
    shared: Annotated[str, typer.Option(help="Attribute both images share (redundancy).")] = "shape",
    unique: Annotated[str, typer.Option(help="Attribute drawn independently per image (uniqueness).")] = "texture",
    synergy_attrs: Annotated[str, typer.Option(help="SRC:TGT, synergy label = [TGT(x2) == m(SRC(x1))].")] = "texture:color",
    train_pairs: Annotated[int, typer.Option(help="Training pairs.")] = 10_000,
    probe_pairs: Annotated[int, typer.Option(help="Unbiased pairs of train images for fitting probes.")] = 10_000,
    test_pairs: Annotated[int, typer.Option(help="Unbiased pairs of test images (clamped to those allowed).")] = 4_096,
    views: Annotated[int, typer.Option(help="Renders per train combination.")] = 3,
    share_prob: Annotated[float, typer.Option(help="Fraction of pairs that must share the shared attribute.")] = 1.0,
    synergy_prob: Annotated[float, typer.Option(help="Fraction of biased train pairs that must obey the mapping.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of split, mapping, pairs and pixels.")] = 0,
    png: Annotated[bool, typer.Option("--png", help="Also write every image as PNG.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty output folder.")] = False,
) -> None:
    """Render a bimodal Trifeature dataset with controlled redundancy, uniqueness and synergy."""
    with user_errors():
        src, tgt = parse_synergy_attrs(synergy_attrs)
        spec = tg.DatasetSpec(size=size, seed=seed, synergy=synergy, shared=shared, unique=unique,
                              synergy_src=src, synergy_tgt=tgt, train_pairs=train_pairs,
                              probe_pairs=probe_pairs, test_pairs=test_pairs, views=views,
                              share_prob=share_prob, synergy_prob=synergy_prob).validate()
        out = out or default_data_dir(size, synergy)
        generate_dataset(spec, out, force=force, png=png)
        console.print(f"wrote {out}")


def info_tables(manifest: dict) -> list[Table]:
    spec = manifest["spec"]
    t = Table(title="dataset", show_header=False)
    t.add_row("size", f"{spec['size']} px (texture period {manifest['texture_period_px']:.2f} px)")
    t.add_row("seed", str(spec["seed"]))
    t.add_row("train set", "synergy-biased" if spec["synergy"] else "unbiased")
    t.add_row("roles", f"shared={spec['shared']}  unique={spec['unique']}  "
                       f"synergy={spec['synergy_src']}(x1)->{spec['synergy_tgt']}(x2)")
    t.add_row("share-prob / synergy-prob", f"{spec['share_prob']} / {spec['synergy_prob']}")
    t.add_row("mapping", ", ".join(f"{a}->{b}" for a, b in manifest["mapping"]))
    c = manifest["counts"]
    t.add_row("images", ", ".join(f"{k} {v}" for k, v in c["images"].items()))
    t.add_row("pairs", ", ".join(f"{k} {v}" for k, v in c["pairs"].items()))
    t.add_row("synergy positive rate", ", ".join(f"{k} {v:.3f}" for k, v in c["synergy_positive_rate"].items()))
    pid = Table(title="partial information decomposition, bits (H: H(T), I: I(T; X1, X2))")
    for col in ("set", "task", "H", "I", "R", "U1", "U2", "S"):
        pid.add_column(col, justify="right" if col not in ("set", "task") else "left")
    for split, tasks in manifest["pid"].items():
        for task, v in tasks.items():
            pid.add_row(split, task, *(f"{v[k]:.3f}" for k in ("entropy", "mutual_information", "redundant",
                                                               "unique1", "unique2", "synergistic")))
    return [t, pid]


@app.command()
def info(data: Annotated[Path, typer.Argument(help="A dataset folder written by `comm-diag generate`.")]) -> None:
    """Counts, roles, mapping, PID table and synergy positive rates of a dataset."""
    with user_errors():
        manifest = tg.verify(data)
        for table in info_tables(manifest):
            console.print(table)


if __name__ == "__main__":
    app()
