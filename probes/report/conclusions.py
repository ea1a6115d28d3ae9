"""A report's reading in plain words: what each method captured, how sure, on what budget,
and what to run next on this machine. Pure functions of a summarized result
(``report.summary.summarize``), shared by quickstart, studies and ``check``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

from comm_diag.comm.config import PRESETS
from comm_diag.comm.methods.registry import display_name

from comm_diag.probes.measure.readouts import RECOVERABLE, readouts
from comm_diag.trifeature_gen.tasks import TASKS
from comm_diag.probes.measure.tasks import NAMES
from comm_diag.probes.measure.verdict import Verdict, over_seeds, with_interval

if TYPE_CHECKING:
    from comm_diag.probes.report.result import StudyResult

# the next step is the same command at the next preset: a check's or an ablation's smoke run
# is answered by that check or ablation, not by quickstart (which trains neither)
PLUMBING = ("**The {presets} preset checks that everything runs: its verdicts are a plumbing check, not a "
            "measurement** (tiny images, {epochs}, a few hundred pairs). Run the same command with "
            "`--preset cpu` (the default) for an answer.")
PLUMBING_SOME = ("**Runs of the {presets} preset are in this report: a verdict that includes them is a plumbing "
                 "check, not a measurement** (tiny images, a few hundred pairs).")


def plumbing_only(presets: Sequence[str]) -> bool:
    """Whether every run came from a preset that only checks the plumbing (smoke)."""
    return bool(presets) and all(PRESETS[p].plumbing for p in presets if p in PRESETS) \
        and all(p in PRESETS for p in presets)


def plumbing_note(presets: Sequence[str], epochs: Sequence[int] = (1,)) -> list[str]:
    """The warning a report with smoke runs opens with (``epochs``: the runs' epochs); nothing
    for a real budget alone."""
    smoke = [p for p in presets if p in PRESETS and PRESETS[p].plumbing]
    if not smoke:
        return []
    if plumbing_only(presets):
        said = " or ".join(f"{e} epoch{'s' if e != 1 else ''}" for e in sorted(set(epochs))) or "one epoch"
        return [PLUMBING.format(presets=", ".join(presets), epochs=said)]
    return [PLUMBING_SOME.format(presets=", ".join(smoke))]


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


def _described(key: str) -> str:
    """A reading that is not an interaction's own (U2, a task added): its task in words."""
    task = next(r.task for r in readouts() if r.key == key)
    return TASKS[task].description or task


def _reading(key: str, v: Verdict) -> str:
    """'synergy fused into the representation (linear probe, fused representation: 72.0 ±1.5,
    line 60.0)': the interaction, its level and where it was read, the score and its line."""
    if key == RECOVERABLE:
        what, probe = "synergy recoverable from the representation", "MLP probe"
    else:
        what = NAMES[key] + (" fused into the representation" if key == "S" else "") if key in NAMES else \
            f"{_described(key)} ({key})"
        probe = "linear probe"
    return f"{what} ({probe}, fused representation: {with_interval(v.mean, v.ci95)}, line {v.threshold:.1f})"


def conclude(levels: dict[str, Verdict], name: str, *, plumbing: bool = False,
             alone: Optional[dict[str, Verdict]] = None) -> list[str]:
    """The sentences about one method, each derived from its verdict table and saying no more:
    ``levels``: readout key (R, U, U2, S, S recoverable) -> Verdict; ``alone``: the synergy
    label's verdicts on each modality's own representation (modality1, modality2), where
    probed. At a plumbing preset nothing is claimed. An inconclusive reading is called so; an
    MLP reading below the linear one is reported as such, with why."""
    if plumbing:
        return [f"{name}: plumbing check only; the smoke preset shows that everything runs, and its scores "
                f"make no claim about any interaction."]
    keys = [r.key for r in readouts() if r.key in levels]  # every reading, a task added included
    by = {v: [_reading(k, levels[k]) for k in keys if levels[k].verdict == v]
          for v in ("captured", "not captured", "inconclusive")}
    said = []
    if by["captured"]:
        said.append(f"{name} captures {listing(by['captured'])}.")
    if by["not captured"]:
        said.append(f"{name} does not capture {listing(by['not captured'], 'or')}.")
    if by["inconclusive"]:
        said.append(f"Inconclusive for {name}, the 95% interval straddling the line: {listing(by['inconclusive'])}.")
    s, rec = levels.get("S"), levels.get(RECOVERABLE)
    if s is not None and rec is not None and rec.mean < s.mean:
        said.append(f"The MLP probe reads synergy below the linear probe ({rec.mean:.1f} vs {s.mean:.1f}): the MLP "
                    f"probe keeps whichever of its candidates (an MLP, a linear fit) scores better on a held-out "
                    f"quarter of the probe pairs, and that choice can lose on the test pairs; it does not show "
                    f"less synergy than the linear reading.")
    if s is not None and s.verdict == "captured" and alone:
        captured = [rep for rep, v in alone.items() if v.verdict == "captured"]
        if captured:
            said.append(f"Synergy is also read from {listing(sorted(captured))} alone, so it is not the fusion's "
                        f"alone: check that the pairs are the synergy ones.")
        elif all(v.verdict == "not captured" for v in alone.values()) and len(alone) == 2:
            best = max(v.mean for v in alone.values())
            said.append(f"Neither modality alone carries it (best {best:.1f}, below its line): the fused "
                        f"representation computes what the two images say only together.")
    return said


def overview(result: "StudyResult", gpu: bool) -> list[str]:
    """The report's opening lines: what each method captured (``conclude``), how sure (seeds,
    intervals) and on what budget (preset, epochs), and the next step."""
    seeds = max((v.n_seeds for vs in result.verdicts.values() for v in vs.values()), default=1)
    presets, epochs = list(result.presets), list(result.train_epochs)
    plumbing = plumbing_only(presets)
    budget = (f"{', '.join(presets)} preset, {'/'.join(map(str, epochs))} epoch{'s' if epochs != [1] else ''}, "
              f"{over_seeds(seeds)}")
    sure = ("every verdict needs the 95% interval of its score clear of its line (with one seed the interval is "
            "the test pairs' sampling error alone; more seeds add the seed-to-seed spread)")
    said = [" ".join(conclude(result.levels(m), display_name(m), plumbing=plumbing, alone=result.alone(m)))
            for m in result.verdicts]
    return ["## Conclusion", "", " ".join(said), "", f"Budget: {budget}; {sure}. Next: {next_step(presets, gpu)}."]
