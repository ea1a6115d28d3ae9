"""Where one model's scikit-learn fits run: in this process, or spread over worker processes.

The workers are joblib's loky processes (scikit-learn's own: they need no ``__main__`` guard in
a user's script, memory-map large feature arrays and give each worker one BLAS thread). loky
keeps them alive 300 s after their last fit, for the next model; they hold the command's
output pipes that long, and ``cli_errors.run_to_the_end`` ends a command by ``os._exit``
where any non-daemon thread (loky's manager) is left, skipping loky's own shut-down: in 0.7 a
``comm-diag probe`` with 2 workers wrote its result in seconds and then took ~6 minutes to
release its caller. So their owner, ``workers_released``, shuts them down when its work ends.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional, Sequence

from comm_diag.errors import InputError
from comm_diag.comm.runtime import core_share

_started = False  # loky's executor is process-wide: whether this process started one


def resolve_jobs(jobs: Optional[int], fits: int) -> int:
    """How many worker processes fit ``fits`` problems: ``jobs``, None meaning this process's
    share of the cores (``runtime.core_share``), never more than there are fits."""
    if jobs is None:
        jobs = core_share()
    if isinstance(jobs, bool) or not isinstance(jobs, int):  # 2.5, "2" and True were taken as counts
        raise InputError(f"jobs must be a whole number of worker processes (None: this process's share of the "
                        f"cores), got {jobs!r}")
    if jobs < 1:
        raise InputError(f"jobs must be >= 1 worker process (None: this process's share of the cores), got {jobs}")
    return max(1, min(jobs, fits))


def run_fits(fit: Callable[..., dict], calls: Sequence[tuple], jobs: int) -> list[dict]:
    """``[fit(*c) for c in calls]``, in ``jobs`` worker processes when more than one (the
    same rows in the same order: each fit draws from its own generator)."""
    global _started
    if jobs <= 1:
        return [fit(*c) for c in calls]
    from joblib import Parallel, delayed

    _started = True
    return Parallel(n_jobs=jobs, backend="loky")(delayed(fit)(*c) for c in calls)


def release() -> None:
    """Shut this process's fit workers down (waiting for them), if it started any."""
    global _started
    if _started:
        from joblib.externals.loky import get_reusable_executor

        # reuse=True: the running one itself (by default loky would swap it for a fresh one first)
        get_reusable_executor(reuse=True).shutdown(wait=True)
        _started = False


@contextlib.contextmanager
def workers_released() -> Iterator[None]:
    """The fit workers started inside live until the block ends, however it ends."""
    try:
        yield
    finally:
        release()
