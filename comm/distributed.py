"""Data-parallel training across processes (torchrun + DistributedDataParallel).

With N processes of batch B, every contrastive loss sees the N*B samples of all
processes as negatives: each process gathers the others' embeddings with their
gradient (``gather``) and scores its own B anchors against all of them. The mean
of the N local losses is the single-process loss on the concatenated batch, and
DDP's gradient averaging makes the parameter gradients equal too (tested).

Outside torchrun (no WORLD_SIZE in the environment) every function here is the
identity of one process, so single-process code needs no branch.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor

from comm_diag.errors import InputError
from comm_diag.comm.runtime import gpu_available

TIMEOUT = timedelta(minutes=10)  # a rank stuck longer than this in a collective ends the run


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def launched() -> bool:
    """True inside a process started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str = "auto") -> torch.device | None:
    """Join the process group torchrun describes: NCCL with one GPU per process, or
    gloo on CPU (``device`` cpu, or no CUDA). Returns this process's CUDA device
    (None on CPU). Does nothing outside torchrun."""
    if not launched() or dist.is_initialized():
        return None
    cuda = device != "cpu" and gpu_available()
    n = int(os.environ["WORLD_SIZE"])
    if cuda and torch.cuda.device_count() < n:
        raise InputError(f"{n} processes need {n} GPUs with NCCL but this machine has "
                         f"{torch.cuda.device_count()}; use --nproc {torch.cuda.device_count()} or --device cpu")
    gpu = None
    if cuda:
        gpu = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(gpu)
    dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)
    return gpu


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class _Gather(torch.autograd.Function):
    """all_gather whose backward hands each process the gradient of the SUM of all
    processes' losses with respect to its own rows (an all_reduce, then its slice)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)  # (N*B)xD

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        b = grad.shape[0] // dist.get_world_size()
        return grad[dist.get_rank() * b:(dist.get_rank() + 1) * b]  # BxD


def gather(x: Tensor) -> Tensor:
    """All processes' x, concatenated in rank order, with gradient flowing back to
    each process's own part: BxD -> (N*B)xD (identity for one process)."""
    return _Gather.apply(x) if is_distributed() else x


def offset(batch: int) -> int:
    """Index of this process's first sample in the gathered batch."""
    return rank() * batch


def mean_over_ranks(values: Tensor) -> Tensor:
    """Mean over processes of a (detached) tensor, e.g. the logged loss terms."""
    if not is_distributed():
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / world_size()


def barrier() -> None:
    if is_distributed():
        dist.barrier()
