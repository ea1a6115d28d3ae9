"""A report's reading in plain words: what each method captured, how sure, on what budget,
and what to run next on this machine. Pure functions of a summarized result
(``report.summary.summarize``), shared by quickstart, studies and ``check``."""

from __future__ import annotations

from typing import Sequence

from comm_diag.comm.config import PRESETS
from comm_diag.comm.methods.registry import display_name

from comm_diag.probes.measure.tasks import NAMES
from comm_diag.probes.measure.verdict import over_seeds

PLUMBING = ("**The {presets} preset checks that everything runs: its verdicts are a plumbing check, not a "
            "measurement** (tiny images, one epoch, a few hundred pairs). Run the cpu preset "
            "(`comm-diag quickstart`) for an answer.")


def plumbing_only(presets: Sequence[str]) -> bool:
    """Whether every run came from a preset that only checks the plumbing (smoke)."""
    return bool(presets) and all(PRESETS[p].plumbing for p in presets if p in PRESETS) \
        and all(p in PRESETS for p in presets)


def plumbing_note(presets: Sequence[str]) -> list[str]:
    """The warning a smoke report opens with; nothing for a real budget."""
    return [PLUMBING.format(presets=", ".join(presets))] if plumbing_only(presets) else []


def next_step(presets: Sequence[str], gpu: bool) -> str:
    """The next budget worth running, for what ran and where: smoke -> cpu; cpu -> more
    seeds or epochs on a CPU, the paper preset on a GPU; paper -> more seeds."""
    if plumbing_only(presets):
        return "run --preset cpu (the default) for a real answer"
    if "paper" in presets:
        return "more seeds (--seeds 0,1,2) narrow the intervals"
    if gpu:
        return "raise --epochs, or use --preset paper (the paper's budget, on this GPU)"
    return "raise --epochs or add seeds (--seeds 0,1,2); --preset paper needs a GPU"


def listing(xs: list[str], conj: str = "and") -> str:
    """['a', 'b', 'c'] -> 'a, b and c' (``conj``: or)."""
    return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + f" {conj} " + xs[-1]


def method_sentence(method: str, verdicts: dict) -> str:
    """'CoMM captures redundancy and synergy but not uniqueness (inconclusive: ...)'."""
    by = {v: [NAMES[k] for k in "RUS" if k in verdicts and verdicts[k].verdict == v]
          for v in ("captured", "not captured", "inconclusive")}
    name = display_name(method)
    if by["captured"]:
        text = f"{name} captures {listing(by['captured'])}"
        text += f" but not {listing(by['not captured'], 'or')}" if by["not captured"] else ""
    elif by["not captured"]:
        text = f"{name} does not capture {listing(by['not captured'], 'or')}"
    else:
        text = f"{name} captures nothing for certain"
    return text + (f"; {listing(by['inconclusive'])} inconclusive" if by["inconclusive"] else "") + "."


def overview(result: dict, gpu: bool) -> list[str]:
    """The report's opening lines: one sentence per method,
    how sure (seeds) and on what budget (preset, epochs), and the next step."""
    seeds = max((v.n_seeds for vs in result["verdicts"].values() for v in vs.values()), default=1)
    presets, epochs = result.get("presets", []), result.get("train_epochs", [])
    budget = (f"{', '.join(presets)} preset, {'/'.join(map(str, epochs))} epoch{'s' if epochs != [1] else ''}, "
              f"{over_seeds(seeds)}")
    sure = ("each verdict needs the 95% interval of the mean over seeds clear of its line"
            if seeds > 1 else "one seed gives no interval: the point estimate decides, so a score near its line "
                              "could fall on the other side with another seed")
    return ["## Conclusion", "", " ".join(method_sentence(m, vs) for m, vs in result["verdicts"].items()),
            "", f"Budget: {budget}; {sure}. Next: {next_step(presets, gpu)}."]
