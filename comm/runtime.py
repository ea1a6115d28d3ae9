"""Where and how a run computes: device, precision (bf16 autocast where the hardware has
it), CPU threads. No state: each function reads the machine or its arguments."""

from __future__ import annotations

import contextlib
import os

import torch


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but CUDA is not available on this machine")
    return torch.device(name)


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 autocast
    trains the CPU preset 1.3-1.8x faster; elsewhere it is emulated and slower."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without these probes
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """'bf16' or 'fp32': what ``precision`` ('auto', 'bf16', 'fp32') means on this device."""
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cuda" or native_bf16_cpu() else "fp32"


def autocast(precision: str, device: torch.device):
    """The forward's autocast context: bf16 matmuls and convolutions, losses in fp32."""
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def set_threads() -> int:
    """Use every core this process may run on, or COMM_DIAG_THREADS where a sweep
    shares the cores between worker processes."""
    n = int(os.environ.get("COMM_DIAG_THREADS", usable_cores()))
    torch.set_num_threads(n)
    return n
