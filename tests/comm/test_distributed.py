"""Data-parallel training on 2 gloo processes equals one process on the concatenated batch."""

import csv
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from comm_diag.comm.config import preset
from comm_diag.comm.losses import clip_loss, comm_loss, info_nce
from comm_diag.comm.methods import build_method

ROOT = Path(__file__).resolve().parents[2]
WORLD, B, D = 2, 4, 16  # 2 processes x 4 samples = the single process's 8


def _inputs():
    g = torch.Generator().manual_seed(0)
    emb = {k: torch.randn(WORLD * B, D, generator=g) for k in ("a", "b", "m1a", "m1b", "m2a", "m2b")}
    images = [torch.rand(WORLD * B, 3, 32, 32, generator=g) for _ in range(2)]
    return emb, images


def _losses(e: dict, scale: torch.Tensor) -> dict:
    return {"info_nce": info_nce(e["a"], e["b"], 0.1),
            "clip": clip_loss(e["a"], e["b"], scale),
            "comm": comm_loss(e["a"], e["b"], [e["m1a"], e["m2a"]], [e["m1b"], e["m2b"]], 0.1)["loss"]}


def _cross_model():
    torch.manual_seed(0)
    return build_method(preset("smoke").replace(method="cross"))


def _worker(rank: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    emb, images = _inputs()
    mine = slice(rank * B, (rank + 1) * B)
    result = {}
    for name in ("info_nce", "clip", "comm"):
        local = {k: v[mine].clone().requires_grad_() for k, v in emb.items()}
        scale = torch.tensor(2.0, requires_grad=True)
        loss = _losses(local, scale)[name]
        (loss / WORLD).backward()  # the global loss is the mean over processes
        if scale.grad is not None:  # clip only; a shared parameter's gradient is summed over processes
            dist.all_reduce(scale.grad)
        result[name] = {"loss": loss.detach(), "grads": {k: v.grad for k, v in local.items()}, "scale": scale.grad}
    model = torch.nn.parallel.DistributedDataParallel(_cross_model())
    out_terms = model([x[mine] for x in images], [lambda x: x, lambda x: x])
    out_terms["loss"].backward()  # DDP averages the gradients over processes
    result["model"] = {"loss": out_terms["loss"].detach(),
                       "grads": {n: p.grad.clone() for n, p in model.module.named_parameters()}}
    torch.save(result, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_two_processes_equal_one_on_the_concatenated_batch(tmp_path):
    mp.start_processes(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, start_method="spawn")
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    emb, images = _inputs()
    for name in ("info_nce", "clip", "comm"):
        full = {k: v.clone().requires_grad_() for k, v in emb.items()}
        scale = torch.tensor(2.0, requires_grad=True)
        loss = _losses(full, scale)[name]
        loss.backward()
        mean = sum(r[name]["loss"] for r in ranks) / WORLD
        assert torch.allclose(mean, loss.detach(), atol=1e-6), name
        for k in (k for k in emb if full[k].grad is not None):
            got = torch.cat([r[name]["grads"][k] for r in ranks])
            assert torch.allclose(got, full[k].grad, atol=1e-6), (name, k)
        if name == "clip":
            assert torch.allclose(ranks[0][name]["scale"], scale.grad, atol=1e-6)
    model = _cross_model()
    out = model.step(images, [lambda x: x, lambda x: x])
    out["loss"].backward()
    assert torch.allclose(sum(r["model"]["loss"] for r in ranks) / WORLD, out["loss"].detach(), atol=1e-5)
    for n, p in model.named_parameters():
        for r in ranks:
            assert torch.allclose(r["model"]["grads"][n], p.grad, atol=1e-5, rtol=1e-4), n


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "comm_diag.cli", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


PAUSING = """
import os, time
from comm_diag.comm.methods import Cross

class Pausing(Cross):
    def step(self, xs, augment):
        # once epoch 1 is saved, the run waits in epoch 2's first step until it is stopped:
        # stopped in epoch 2 whatever the machine's speed (0.8 slept 0.5 s a step and hoped)
        while os.path.exists(os.environ["PAUSE_FLAG"]) and os.path.exists(os.environ["PAUSE_AFTER"]):
            time.sleep(0.05)
        return super().step(xs, augment)
"""


def test_ddp_run_checkpoints_and_resumes_after_a_kill_to_the_same_weights(tmp_path, tiny_dataset, monkeypatch):
    import os
    import signal
    import time

    (tmp_path / "m.py").write_text(PAUSING)
    flag = tmp_path / "pause"
    monkeypatch.setenv("PAUSE_FLAG", str(flag))
    monkeypatch.setenv("PAUSE_AFTER", str(tmp_path / "never"))
    args = ["train", "--data", tiny_dataset.root, "--preset", "smoke", "--batch-size", 32, "--nproc", 2, "--device", "cpu",
            "--epochs", 2, "--method", f"{tmp_path / 'm.py'}:Pausing"]
    r = _cli(*args, "--out", tmp_path / "whole")
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "whole" / "checkpoints").iterdir()) == \
        ["epoch_000.pt", "epoch_001.pt", "epoch_002.pt", "last.pt"]
    assert len(list(csv.DictReader(open(tmp_path / "whole" / "log.csv")))) == 2 * 256 // (2 * 32)

    out = tmp_path / "stopped"
    monkeypatch.setenv("PAUSE_AFTER", str(out / "checkpoints" / "epoch_001.pt"))
    flag.touch()
    proc = subprocess.Popen([sys.executable, "-m", "comm_diag.cli", *map(str, args), "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not (out / "checkpoints" / "epoch_001.pt").is_file() and time.time() < deadline:
        time.sleep(0.1)
    assert (out / "checkpoints" / "epoch_001.pt").is_file(), "epoch 1 was never saved"
    os.killpg(proc.pid, signal.SIGTERM)  # stopped during epoch 2, where the run waits
    proc.wait(timeout=60)
    assert not (out / "checkpoints" / "epoch_002.pt").is_file()
    flag.unlink()
    r = _cli(*args, "--out", out, "--resume")
    assert r.returncode == 0, r.stderr[-3000:]
    whole = torch.load(tmp_path / "whole" / "checkpoints" / "epoch_002.pt")["model"]
    resumed = torch.load(out / "checkpoints" / "epoch_002.pt")["model"]
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    steps = [int(r["global_step"]) for r in csv.DictReader(open(out / "log.csv"))]
    assert steps == list(range(1, 9))


FAILING = """
import torch.distributed as dist
from comm_diag.comm.methods import Cross

class FailsOnRank1(Cross):
    def step(self, xs, augment):
        if dist.get_rank() == 1:
            raise RuntimeError("rank 1 fails on purpose")
        return super().step(xs, augment)
"""


def test_a_failed_rank_ends_the_run_with_a_message(tmp_path, tiny_dataset):
    (tmp_path / "m.py").write_text(FAILING)
    r = _cli("train", "--data", tiny_dataset.root, "--preset", "smoke", "--batch-size", 32, "--nproc", 2, "--device", "cpu",
             "--method", f"{tmp_path / 'm.py'}:FailsOnRank1", "--out", tmp_path / "run", timeout=240)
    assert r.returncode == 1
    assert "rank 1 fails on purpose" in r.stderr and "a training process failed" in r.stderr
    assert "Traceback" not in r.stderr  # torchrun's own report of the failure is left out
