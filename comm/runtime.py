"""Where and how a run computes, decided once: the ``Runtime`` (device, precision,
determinism, CPU threads) is made at the edge (``train``, ``probe_run``, a benchmark) and
handed down; everything that depends on the device asks it instead of testing
``device.type`` itself. The same code path runs on CPU in the tests."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterable, Optional

import torch

from comm_diag.errors import InputError, SettingError


def gpu_available() -> bool:
    """Whether this machine has a CUDA GPU torch can use."""
    return torch.cuda.is_available()


def is_gpu(device: str | torch.device) -> bool:
    """Whether ``device`` (a resolved device or its name) is a GPU."""
    return torch.device(device).type == "cuda"


def resolve_device(name: str | torch.device) -> torch.device:
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if gpu_available() else "cpu")
    if name == "cuda" and not gpu_available():
        raise InputError("--device cuda was asked for but CUDA is not available on this machine")
    return torch.device(name)


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 autocast
    trains the CPU preset 1.3-1.8x faster; elsewhere it is emulated and slower."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without these probes
        return False


def native_bf16_gpu(device: torch.device) -> bool:
    """Whether the GPU has bf16 arithmetic (compute capability 8.0, Ampere, and later); older
    ones emulate it, slower than fp32."""
    return torch.cuda.get_device_capability(device) >= (8, 0)


def resolve_precision(precision: str, device: torch.device) -> str:
    """'bf16' or 'fp32': what ``precision`` ('auto', 'bf16', 'fp32') means on this device
    (auto: bf16 where the hardware computes it natively)."""
    if precision != "auto":
        return precision
    native = native_bf16_gpu(device) if is_gpu(device) else native_bf16_cpu()
    return "bf16" if native else "fp32"


def autocast(precision: str, device: torch.device):
    """The forward's autocast context: bf16 matmuls and convolutions, losses in fp32."""
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def full_precision(device: str | torch.device):
    """A context where autocast is off (fp32 whatever the forward's precision): the losses'
    similarities, the augmentation's pixels."""
    return torch.autocast(torch.device(device).type, enabled=False)


@contextlib.contextmanager
def global_seed_within(seed: int):
    """The process-wide CPU generator seeded with ``seed`` inside the block and restored after
    it (a library that draws from it, torchvision's transforms, gets the step's own draws)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def compiled(fn, backend: Optional[str] = None, dynamic: bool = False):
    """``fn`` compiled whole (``torch.compile``: no graph break allowed): inductor's fused
    kernels, or ``backend``; one shape per call site, or ``dynamic`` (sizes symbolic: a
    function called on many shapes compiles once instead of once per shape)."""
    return torch.compile(fn, fullgraph=True, dynamic=dynamic, backend=backend or "inductor")


def seed_global(seed: int) -> None:
    """Seed the process-wide generators (every device's): what draws without a generator of
    its own (a module's initial weights, dropout) starts from ``seed``."""
    torch.manual_seed(seed)


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def core_share() -> int:
    """The cores this process's work may take: COMM_DIAG_THREADS where its parent shares the
    cores between processes (a sweep's workers, data-parallel ranks, pytest-xdist's workers),
    else every core it may run on."""
    given = os.environ.get("COMM_DIAG_THREADS")
    if given is None:
        return usable_cores()
    try:
        return max(1, int(given))
    except ValueError:
        raise SettingError(f"COMM_DIAG_THREADS must be a whole number of threads, got {given!r}") from None


def set_threads(n: Optional[int] = None) -> int:
    """Use ``n`` CPU threads (default: this process's share of the cores, ``core_share``)."""
    n = core_share() if n is None else n
    torch.set_num_threads(n)
    return n


# steps between two read-backs of the loss terms on a GPU (train's sync_every); on CPU every step
GPU_SYNC_EVERY = 50


@dataclass(frozen=True)
class Runtime:
    """One run's device, precision ('bf16' or 'fp32', resolved), determinism and whether it
    takes the fast path (``fast``: bf16, and on a GPU the augmentation compiled)."""

    device: torch.device
    precision: str
    deterministic: bool = False
    fast: bool = False

    @classmethod
    def create(cls, device: str | torch.device = "auto", precision: str = "auto",
               deterministic: bool = False, fast: bool = False) -> "Runtime":
        dev = resolve_device(device)
        return cls(dev, "bf16" if fast else resolve_precision(precision, dev), deterministic, fast)

    @classmethod
    def of(cls, cfg, device: Optional[str | torch.device] = None) -> "Runtime":
        """The runtime a run's settings (a ``TrainConfig``) ask for (``device``: overrides its own)."""
        return cls.create(device or cfg.device, cfg.precision, cfg.deterministic, cfg.fast)

    @property
    def on_gpu(self) -> bool:
        return self.device.type == "cuda"

    @property
    def sync_every(self) -> int:
        """How many steps the loss terms stay on the device between read-backs (1 on CPU:
        a read-back costs nothing there)."""
        return GPU_SYNC_EVERY if self.on_gpu else 1

    def activate(self) -> "Runtime":
        """Process-wide settings for this run: CPU threads; on a GPU cuDNN's autotuner
        (every step has the same shapes), or, ``deterministic``, deterministic algorithms
        only (bit-identical reruns and resumes, somewhat slower)."""
        if not self.on_gpu:
            set_threads()
        else:
            torch.backends.cudnn.benchmark = not self.deterministic
        if self.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what cuBLAS needs to be deterministic
            torch.backends.cudnn.deterministic = True
            torch.use_deterministic_algorithms(True, warn_only=True)
        return self

    def autocast(self):
        """The training forward's autocast context (a fresh one: enter it every step)."""
        return autocast(self.precision, self.device)

    def fuse(self, fn, backend: Optional[str] = None):
        """``fn`` (a pure function of tensors: an augmentation's ``apply``) compiled whole into a
        few kernels on the fast path on a GPU (``compiled``); elsewhere ``fn`` itself, the eager
        fallback. ``backend`` forces a compile (the CPU tests use "aot_eager": the same
        capture, no code generation)."""
        if backend is None and not (self.fast and self.on_gpu):
            return fn
        return compiled(fn, backend)

    def generator(self, seed: int) -> torch.Generator:
        """A generator on this device, seeded: every random draw of a run comes from one."""
        return torch.Generator(device=self.device).manual_seed(seed)

    def optimizer(self, groups: Iterable[dict], lr: float, weight_decay: float,
                  capturable: bool = False) -> torch.optim.AdamW:
        """AdamW; on a GPU the fused kernel (one launch for every parameter, no host read of
        the step count), ``capturable`` for a step recorded in a CUDA graph."""
        extra = {"fused": True} if self.on_gpu else {}
        if capturable and self.on_gpu:
            extra["capturable"] = True
        return torch.optim.AdamW(list(groups), lr=torch.tensor(lr, device=self.device) if capturable and self.on_gpu
                                 else lr, weight_decay=weight_decay, **extra)

    def numerics(self, compile: Optional[str] = None) -> dict:
        """What, besides the settings and the data, changes a run's weights by rounding, and
        so is part of its identity (``run_folder.run_id``): the compile backend (fused kernels
        round otherwise) and, on CPU, the thread count (BLAS splits its sums by thread)."""
        return {"compile": compile or None, "cpu_threads": None if self.on_gpu else torch.get_num_threads()}

    def describe(self) -> dict:
        return {"device": str(self.device), "precision": self.precision, "deterministic": self.deterministic,
                "fast": self.fast,
                **({"gpu": torch.cuda.get_device_name(self.device)} if self.on_gpu else {})}


def runtime_for(config: dict, device: Optional[str] = None) -> Runtime:
    """The runtime of a recorded run on this machine (``device`` overrides its setting; a run
    trained with ``cuda`` is read on the CPU of a machine without a GPU)."""
    recorded = config.get("device", "auto")
    if recorded == "cuda" and not torch.cuda.is_available():
        recorded = "cpu"
    return Runtime.create(device or recorded, config.get("precision", "auto"), bool(config.get("deterministic", False)),
                          bool(config.get("fast", False)))
