"""Where the runs of a sweep execute: this process, local worker processes, or Ray tasks.

Every executor takes the same ``RunJob`` list and leaves the same files: each job
writes only its own run folder, so jobs never share a file whatever runs them.
An executor returns when every job finished; the first failing job's error is
raised (the other jobs still finish or stop with what they saved).
"""

from __future__ import annotations

import os
import queue
import time
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Callable, Optional, Sequence

from comm_diag.errors import InputError
from comm_diag.comm.runtime import core_share, gpu_available, is_gpu, resolve_device
from comm_diag.comm.together import train_together

from comm_diag.probes.hooks import Hooks

from comm_diag.probes.studies.sweep import RunJob, execute, is_done, training_of


_EVENTS = None  # the worker's queue to the parent process (set by _worker_init)
STEP_EVERY_S = 0.5  # a worker reports training progress at most this often
TOGETHER_ON_GPU = 6  # runs trained at once on one GPU: Figure 4's six (0.5 measured six on an H200)


def gpu_of_worker(index: int, visible: Sequence[str]) -> Optional[str]:
    """The GPU a worker trains on: workers take the visible GPUs in turn (worker i the
    (i mod n)-th), so K workers on a machine of n GPUs spread over all of them."""
    return visible[index % len(visible)] if visible else None


def _die_with_parent() -> None:
    """Linux: this process gets SIGTERM when its parent dies (a `kill -9` of the command
    must not leave its workers training into the run folders)."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _worker_init(threads: int, events=None, counter=None, gpus: Sequence[str] = ()) -> None:
    global _EVENTS
    import signal

    # Ctrl-C reaches the whole terminal's process group: the parent alone answers it (one
    # line, then it ends the workers); a worker that took it printed its own traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    if counter is not None and gpus:
        with counter.get_lock():
            index, counter.value = counter.value, counter.value + 1
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu_of_worker(index, gpus)  # before this process touches CUDA
    import torch

    torch.set_num_threads(threads)
    os.environ["COMM_DIAG_THREADS"] = str(threads)  # comm_diag.comm.runtime.set_threads honours it
    _EVENTS = events


def _relaying_hooks(job: RunJob) -> Hooks:
    """Hooks that send a worker's stages and (throttled) steps to the parent's queue."""
    if _EVENTS is None:
        return Hooks()
    last = [0.0]

    def on_step(info) -> None:
        now = time.monotonic()
        if now - last[0] >= STEP_EVERY_S or info.step == info.steps_per_epoch:
            last[0] = now
            _EVENTS.put(("step", job.name, info))

    return Hooks(on_stage=lambda msg: _EVENTS.put(("stage", job.name, msg)), on_step=on_step)


def _execute_quietly(job: RunJob) -> str:
    return execute(job, _relaying_hooks(job))


def _relay(events, hooks: Hooks) -> None:
    """Hand the workers' queued events to the parent's hooks (bars are drawn here only)."""
    while True:
        try:
            kind, name, payload = events.get_nowait()
        except queue.Empty:
            return
        if kind == "stage":
            hooks.on_stage(payload)
        elif hooks.on_job_step:
            hooks.on_job_step(name, payload)


def auto_workers(jobs: Sequence[RunJob]) -> int:
    """One worker per core of this process's share (``core_share``), at most one per
    unfinished run, when training on CPU: two one-thread processes trained ~1.2x more
    pairs/s than one two-thread process on 2 cores (docs/benchmarks.md). One worker when a
    GPU trains (runs would share it)."""
    todo = [j for j in jobs if not is_done(j)]
    if not todo or any(is_gpu(resolve_device(j.config.get("device", "auto"))) for j in todo):
        return 1
    return max(1, min(core_share(), len(todo)))


def unguarded_main() -> Optional[str]:
    """Why worker processes cannot be started from here, or None. A spawned worker imports
    the ``__main__`` script again, running its top-level code: called from a script's top
    level outside ``if __name__ == "__main__":`` (the README's example pasted into a file),
    every worker would run the whole script again; from ``python -`` there is no file to
    import at all."""
    import ast
    import inspect
    import sys

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None:  # a notebook or an interactive session: nothing to re-run
        return None
    frame = next((f for f in inspect.stack(0) if f.frame.f_globals is vars(main) and f.function == "<module>"), None)
    if frame is None:  # called from a function: the script's own guard (or none) decides, not this call
        return None
    if not os.path.isfile(path):
        return f"the script comes from {path}, which a worker process cannot import"
    try:
        tree = ast.parse(open(path).read())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) and "__main__" in ast.unparse(node.test) \
                and node.lineno <= frame.lineno <= (node.end_lineno or node.lineno):
            return None
    return f"{path} calls comm-diag outside `if __name__ == \"__main__\":`, so worker processes would run it again"


def auto_together(jobs: Sequence[RunJob]) -> int:
    """How many runs one process trains together: on a GPU every unfinished run, up to
    ``TOGETHER_ON_GPU``; on CPU one (each trained, then probed, before the next starts)."""
    todo = [j for j in jobs if not is_done(j)]
    if any(is_gpu(resolve_device(j.config.get("device", "auto"))) for j in todo):
        return max(1, min(TOGETHER_ON_GPU, len(todo)))
    return 1


def _train_together(jobs: Sequence[RunJob], hooks: Hooks, together: int) -> None:
    """The trainings left of ``jobs``, ``together`` at a time in this process
    (``comm.together``: interleaved on CUDA streams on a GPU, in turn on CPU); each job is
    probed afterwards by ``execute``, which finds it trained."""
    todo = [job for job in jobs if not is_done(job)]
    for start in range(0, len(todo), together):
        group = [(job, t) for job in todo[start:start + together] for t in [training_of(job, hooks)] if t is not None]
        if len(group) > 1:
            hooks.on_stage(f"{len(group)} runs train together in this process")
        for job, t in group:
            t.on_step = (lambda info, name=job.name: hooks.on_job_step(name, info)) if hooks.on_job_step \
                else hooks.on_step
        train_together([t for _, t in group])


def run_local(jobs: Sequence[RunJob], hooks: Hooks, workers: int = 0, together: int = 0) -> list[str]:
    """``workers`` = 1: in this process, with step-level progress; 0: ``auto_workers``. More: that many
    spawned processes sharing the cores (torch threads = cores // workers each),
    whose stages and steps are relayed to ``hooks`` (``on_job_step``: one bar per run).

    ``together`` (one worker): how many runs this process trains at once
    (``comm.together``), each probed once the group is trained; 0: ``auto_together`` (on a
    GPU a study's runs share it, interleaved: 0.5 measured 3,757 pairs/s for six CoMM runs
    in one process on an H200, 2,944 for one)."""
    if workers == 0:  # the options were settled by ``settle_options`` (api)
        workers = 1 if together > 1 else auto_workers(jobs)
    why = unguarded_main() if workers > 1 else None
    if why:
        hooks.on_stage(f"note: runs in this process, one at a time: {why}")
        workers = 1
    if workers == 1:
        together = together or auto_together(jobs)
        if together > 1:
            _train_together(jobs, hooks, together)
        done = []
        for job in jobs:
            done.append(execute(job, hooks))
            if hooks.on_done:
                hooks.on_done(job)
        return done
    threads = max(1, core_share() // workers)
    hooks.on_stage(f"{len(jobs)} runs on {workers} worker processes, {threads} thread(s) each")
    ctx = get_context("spawn")
    events = ctx.Queue()
    gpus = _visible_gpus()
    if len(gpus) > 1:
        hooks.on_stage(f"the workers take the {len(gpus)} GPUs in turn")
    init = (threads, events, ctx.Value("i", 0), gpus)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=init) as pool:
        futures = {pool.submit(_execute_quietly, job): job for job in jobs}
        try:
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
                _relay(events, hooks)
                for f in finished:
                    f.result()  # re-raises the job's error here
                    hooks.on_stage(f"{futures[f].name}: finished")
                    if hooks.on_done:
                        hooks.on_done(futures[f])
        except BaseException:
            # queued runs are cancelled by the executor itself: cancelling its futures from here
            # raced its manager thread (InvalidStateError tracebacks after "error: interrupted");
            # running runs are ended here (the workers ignore Ctrl-C): their last finished epoch
            # is kept, as an interrupted `train` keeps it
            procs, manager = _worker_processes(pool), getattr(pool, "_executor_manager_thread", None)
            pool.shutdown(wait=False, cancel_futures=True)  # forgets its processes: taken above
            _end_workers(pool, procs)
            if manager is not None:
                manager.join(60)  # its queues closed: nothing left for the resource tracker to warn about
            raise
        finally:
            _relay(events, hooks)
    return [job.run for job in jobs]


def _worker_processes(pool: ProcessPoolExecutor) -> list:
    """The pool's worker processes (``shutdown`` forgets them: take them before)."""
    return list((getattr(pool, "_processes", None) or {}).values())


def _end_workers(pool: ProcessPoolExecutor, procs: list, grace_s: float = 60.0) -> None:
    """SIGTERM to every worker process (Python 3.14's ``terminate_workers`` where there is
    one), then wait for each to end (its run keeps its last finished epoch; SIGKILL after
    ``grace_s``): the command ends after its workers, never beside them."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(grace_s)
        if proc.is_alive():
            proc.kill()
            proc.join()


def _visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (none without CUDA)."""
    import torch

    if not gpu_available():
        return []
    named = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return named or [str(i) for i in range(torch.cuda.device_count())]


RAY_HINT = "the ray executor needs Ray: pip install -e '.[ray]' (or pip install 'ray>=2.9')"


def run_ray(jobs: Sequence[RunJob], hooks: Hooks, address: Optional[str] = None, cpus_per_run: float = 1.0,
            gpus_per_run: float = 0.0) -> list[str]:
    """Each job a Ray task with its own CPU/GPU request, on a local Ray instance
    (``address`` None) or the cluster at ``address``. Every node must see the
    dataset and output folders at the same paths (a shared file system)."""
    try:
        import ray
    except ImportError:
        raise InputError(RAY_HINT) from None
    todo = [j for j in jobs if not is_done(j)]
    for j in jobs:
        if j not in todo:
            hooks.on_stage(f"{j.name}: done already, skipped")
    if not todo:
        return [j.run for j in jobs]
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"COMM_DIAG_THREADS": str(max(1, int(cpus_per_run)))}})
    try:
        remote = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(_execute_quietly)
        refs = {remote.remote(job): job for job in todo}
        hooks.on_stage(f"{len(todo)} runs submitted to Ray ({cpus_per_run:g} CPU, {gpus_per_run:g} GPU each)")
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            try:
                ray.get(ready[0])
            except ray.exceptions.RayTaskError as e:
                for r in pending:
                    ray.cancel(r)
                cause = e.cause if getattr(e, "cause", None) is not None else e
                raise cause from None
            hooks.on_stage(f"{refs[ready[0]].name}: finished")
            if hooks.on_done:
                hooks.on_done(refs[ready[0]])
    finally:
        if started_here:
            ray.shutdown()
    return [j.run for j in jobs]


EXECUTORS: dict[str, Callable[..., list[str]]] = {"local": run_local, "ray": run_ray}


def run_jobs(jobs: Sequence[RunJob], hooks: Optional[Hooks] = None, executor: str = "local", **options) -> list[str]:
    """Run every job with the named executor (options: workers; address, cpus_per_run, gpus_per_run)."""
    check_options(executor, options)
    return EXECUTORS[executor](jobs, hooks or Hooks(), **options)


def executor_options(executor: str) -> tuple[str, ...]:
    """The keyword options an executor takes (its function's own parameters)."""
    import inspect

    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r}; choose from {', '.join(EXECUTORS)}")
    return tuple(inspect.signature(EXECUTORS[executor]).parameters)[2:]  # after (jobs, hooks)


# every executor option, and its value when not given
OPTION_DEFAULTS = {"workers": 0, "together": 0, "address": None, "cpus_per_run": 1.0, "gpus_per_run": 0.0}


def settle_options(executor: str, options: dict) -> dict:
    """The one check of the executor options (``OPTION_DEFAULTS``), before any byte: the
    executor exists, each value is in range, none contradicts another, and an option of the
    other executor is refused unless left at its default (then dropped). Returns the options
    the executor takes."""
    import math

    own = executor_options(executor)
    foreign = [k for k, v in options.items() if k in OPTION_DEFAULTS and k not in own and v != OPTION_DEFAULTS[k]]
    if foreign and executor == "local":  # silently ignored, it would run something else than asked
        raise InputError("--address, --cpus-per-run and --gpus-per-run are for --executor ray "
                         "(the local executor takes --workers)")
    if foreign:
        raise InputError("--workers and --together are for the local executor (Ray takes --cpus-per-run and "
                         "--gpus-per-run)")
    for name in ("workers", "together"):
        value = options.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"--{name} must be an integer >= 0 (0: automatic), got {value!r}")
    if options.get("together", 0) > 1 and options.get("workers", 0) > 1:
        raise InputError("--together trains several runs in one process; it takes --workers 1 (or 0)")
    for name in ("cpus_per_run", "gpus_per_run"):
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value < 0):
            raise InputError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value!r}")
    return {k: v for k, v in options.items() if k in own or k not in OPTION_DEFAULTS}


def check_options(executor: str, options: dict, also: Sequence[str] = ()) -> None:
    """TypeError naming a misspelt or foreign option and the valid ones (``also``: the
    caller's own), as the CLI refuses an unknown flag: a silently ignored option would
    run something else than what was asked."""
    valid = tuple(dict.fromkeys((*also, *executor_options(executor))))  # each name once
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise TypeError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                        f"valid options with executor={executor!r}: {', '.join(valid)}")
