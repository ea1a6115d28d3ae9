"""The probes' MLP in torch, on any device: scikit-learn's MLPClassifier (adam), same
objective and defaults, so that a run trained on a GPU is probed there (no host round trip
per fit). The logistic regressions are ``probes.measure.logistic_fit``'s (re-exported here).

Pure functions of (features, labels, settings, seed); ``probes.measure.backends`` wraps them in the
fitted-model interface the probe protocol uses (``predict``, ``predict_proba``, ``classes_``).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from comm_diag.comm.runtime import compiled, is_gpu


# scikit-learn's MLPClassifier defaults (solver="adam")
MLP_LR, MLP_ALPHA, MLP_BATCH, MLP_TOL, MLP_PATIENCE, MLP_VALIDATION = 1e-3, 1e-4, 200, 1e-4, 10, 0.1
MLP_CHECK_EVERY = 8  # epochs between the host's reads of the stopping rule on a GPU


class MLP(torch.nn.Module):
    """One hidden ReLU layer; Glorot-uniform weights and biases (bound sqrt(6 / (fan_in + fan_out))),
    as scikit-learn initialises them; Q = 1 output logit for two classes, else M."""

    def __init__(self, d: int, hidden: int, n_classes: int, gen: torch.Generator):
        super().__init__()
        q = 1 if n_classes == 2 else n_classes
        # created where the generator lives, so the draws and the parameters share one device
        # (0.4.0 built them on the CPU and drew with a CUDA generator: every GPU probe crashed)
        dev = gen.device
        self.hidden = torch.nn.Linear(d, hidden, device=dev)
        self.out = torch.nn.Linear(hidden, q, device=dev)
        with torch.no_grad():
            for layer in (self.hidden, self.out):
                bound = math.sqrt(6.0 / (layer.in_features + layer.out_features))
                for p in (layer.weight, layer.bias):
                    p.copy_(torch.rand(p.shape, generator=gen, device=dev) * 2 * bound - bound)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(torch.relu(self.hidden(x)))  # (N, Q) logits

    @property
    def weights(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(W1 (H, D), b1 (H,), W2 (Q, H), b2 (Q,)): what ``mlp_loss`` takes."""
        return self.hidden.weight, self.hidden.bias, self.out.weight, self.out.bias

    def proba(self, x: Tensor) -> Tensor:
        logits = self(x)
        if logits.shape[1] == 1:
            p1 = torch.sigmoid(logits)
            return torch.cat([1 - p1, p1], 1)  # (N, 2)
        return torch.softmax(logits, 1)

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        return mlp_loss(*self.weights, x, y)


def mlp_loss(w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """scikit-learn's MLP objective on a batch x (B, D), y (B,): mean log loss + alpha
    (||W1||^2 + ||W2||^2) / (2B) (weights, not biases); a pure function of tensors, so that
    on a GPU it is compiled once for every fit of a shape (``fused_mlp_loss``)."""
    logits = F.linear(torch.relu(F.linear(x, w1, b1)), w2, b2)  # (B, Q)
    ce = F.binary_cross_entropy_with_logits(logits[:, 0], y.float()) if logits.shape[1] == 1 \
        else F.cross_entropy(logits, y)
    return ce + MLP_ALPHA * ((w1 ** 2).sum() + (w2 ** 2).sum()) / (2 * len(y))


_FUSED_LOSS: dict = {}


def fused_mlp_loss(device: torch.device):
    """``mlp_loss`` on ``device``: fused into a few kernels on a GPU (compiled once per
    process, with symbolic sizes: its forward and backward are most of an MLP probe's
    thousands of small steps), the eager function elsewhere."""
    if not is_gpu(device):
        return mlp_loss
    if "gpu" not in _FUSED_LOSS:
        _FUSED_LOSS["gpu"] = compiled(mlp_loss, dynamic=True)  # batch sizes and widths vary by fit
    return _FUSED_LOSS["gpu"]


def fit_mlp(x: Tensor, y: Tensor, n_classes: int, hidden: int, seed: int, early_stopping: bool,
            max_epochs: int = 300, validation: Optional[tuple[Tensor, Tensor]] = None,
            check_every: Optional[int] = None, loss_fn=None) -> MLP:
    """scikit-learn's MLPClassifier(adam) on x (N, D), y (N,): mini-batches of 200 shuffled per
    epoch; stops when the score has not improved by 1e-4 for 10 epochs (the validation
    accuracy of ``validation`` with ``early_stopping``, keeping its best weights; else the
    training loss), or after ``max_epochs``.

    The shuffles of MLP_CHECK_EVERY epochs are drawn at once (one launch, not one per epoch).
    The stopping rule runs on the device, epoch by epoch, and freezes its result (the best
    weights, or the weights of the epoch it stopped at) when it fires; the host reads whether
    it fired every ``check_every`` epochs (default: every epoch on CPU, where a read-back
    costs nothing, every ``MLP_CHECK_EVERY`` on a GPU), so an epoch never waits for one there.
    The epochs trained past the stop change nothing returned: the same weights for any
    ``check_every`` (tested). ``loss_fn``: ``mlp_loss`` as it runs (default ``fused_mlp_loss``:
    compiled on a GPU)."""
    dev = x.device
    loss_fn = loss_fn or fused_mlp_loss(dev)
    check_every = check_every or (MLP_CHECK_EVERY if is_gpu(dev) else 1)
    gen = torch.Generator(device=dev).manual_seed(seed)
    model = MLP(x.shape[1], hidden, n_classes, gen)
    # fused on a GPU: one launch updates every parameter (the probe takes thousands of small steps)
    opt = torch.optim.Adam(model.parameters(), lr=MLP_LR, betas=(0.9, 0.999), eps=1e-8,
                           **({"fused": True} if is_gpu(dev) else {}))
    batch = min(MLP_BATCH, len(x))
    params = list(model.parameters())
    kept = [p.detach().clone() for p in params]  # the best weights, or those of the stopping epoch
    best = torch.full((), -math.inf, dtype=torch.float64, device=dev)
    stale = torch.zeros((), dtype=torch.int64, device=dev)
    stopped = torch.zeros((), dtype=torch.bool, device=dev)
    for epoch in range(max_epochs):
        if epoch % MLP_CHECK_EVERY == 0:  # the next epochs' shuffles in one draw (whatever check_every)
            orders = torch.rand(MLP_CHECK_EVERY, len(x), generator=gen, device=dev).argsort(1)  # (E, N)
        order = orders[epoch % MLP_CHECK_EVERY]
        total = torch.zeros((), device=dev)
        for s in range(0, len(x), batch):
            i = order[s:s + batch]
            loss = loss_fn(*model.weights, x[i], y[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(i)
        with torch.no_grad():
            if early_stopping:
                score = (model(validation[0]).argmax(1) if n_classes > 2
                         else (model(validation[0])[:, 0] > 0).long()).eq(validation[1]).float().mean()
            else:
                score = -(total / len(x))
            score = score.double()  # compared in float64, as the host compared its .item()
            running = ~stopped
            stale = torch.where(running, torch.where(score > best + MLP_TOL, 0, stale + 1), stale)
            better = running & (score > best)
            best = torch.where(better, score, best)
            fired = running & (stale > MLP_PATIENCE)
            keep = better if early_stopping else fired
            for k, p in zip(kept, params):
                k.copy_(torch.where(keep, p, k))
            stopped = stopped | fired
        if (epoch + 1) % check_every == 0 and bool(stopped):  # one read-back every check_every epochs
            break
    if early_stopping or bool(stopped):
        with torch.no_grad():
            for k, p in zip(kept, params):
                p.copy_(k)
    return model.eval()
