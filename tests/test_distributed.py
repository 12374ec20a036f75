"""torchrun: one run directory, sharded epochs, all-reduced metrics, resumable with any number of processes."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import read_metrics, run_ptlab, subprocess_env

TIMEOUT = 240  # a hung rank must not hang the suite


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str, cwd: Path, nproc: int = 2, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", *extra,
           "-m", "ptlab", "train", *args]
    if not extra:
        cmd[3:3] = ["--master_addr=127.0.0.1", f"--master_port={free_port()}"]
    return subprocess.run(cmd, cwd=cwd, env=subprocess_env(), capture_output=True, text=True, timeout=TIMEOUT)


def test_shard_order_covers_the_global_batches() -> None:
    from ptlab.data.loaders import TensorBatches

    x = torch.arange(10)
    whole = [b[0].tolist() for b in TensorBatches([x], 4, shuffle=True, seed=3).batches(epoch=1)]
    ranks = [[b[0].tolist() for b in TensorBatches([x], 4, shuffle=True, seed=3).shard(r, 2, 2).batches(epoch=1)]
             for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 3
    for i in range(2):  # full batches: the union over ranks is the unsharded batch
        assert sorted(ranks[0][i] + ranks[1][i]) == sorted(whole[i])
    evaluated = [TensorBatches([x], 4, shuffle=False, seed=3).shard(r, 3, 2) for r in range(3)]
    assert sorted(v for part in evaluated for b in part.batches() for v in b[0].tolist()) == list(range(10))


@pytest.mark.parametrize("task, budget", [
    ("linreg", "trainer.max_epochs=10"),  # 308 training rows: every global batch splits evenly
    ("logreg", "trainer.max_epochs=2"),  # 397 training rows: the last global batch of an epoch splits 7 + 6
])
@pytest.mark.slow
def test_two_processes_train_the_same_weights_as_one(workdir: Path, task: str, budget: str) -> None:
    """No BatchNorm or dropout: the same global batches, averaged gradients and schedule give the same weights.

    Also one run directory (no per-rank folders), evaluation all-reduced over the shards of val and test.
    """
    args = [f"task={task}", budget, "trainer.progress=plain"]
    proc = torchrun(*args, cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list((workdir / "outputs" / task).iterdir())
    assert len(runs) == 1, runs  # no per-rank folders
    ddp_dir, one_dir = runs[0], workdir / "single"
    assert (ddp_dir / ".hydra" / "config.yaml").exists()
    run_ptlab("train", *args, f"hydra.run.dir={one_dir}", cwd=workdir, check=True)
    for name in ("last.pt", "best.pt"):
        ddp = torch.load(ddp_dir / "checkpoints" / name, weights_only=True)
        one = torch.load(one_dir / "checkpoints" / name, weights_only=True)
        assert ddp["loop"]["step"] == one["loop"]["step"] > 0  # the global batch is unchanged
        assert ddp["model"].keys() == one["model"].keys()
        for key, weights in ddp["model"].items():
            difference = (weights - one["model"][key]).abs().max().item()
            assert torch.allclose(weights, one["model"][key], rtol=0, atol=1e-6), f"{name} {key}: {difference:.3g}"
    assert ddp["loop"]["world_size"] == 2 and isinstance(ddp["rng"], list) and len(ddp["rng"]) == 2
    ddp_metrics, one_metrics = read_metrics(ddp_dir), read_metrics(one_dir)
    measured = [k for k in one_metrics if k.startswith(("val/", "test/"))]
    assert measured and {k: ddp_metrics[k] for k in measured} == {k: pytest.approx(one_metrics[k], rel=1e-5, abs=1e-6)
                                                                    for k in measured}


@pytest.mark.slow
def test_resume_with_the_same_and_another_number_of_processes(workdir: Path) -> None:
    common = ["task=cnn", "data.batch_size=32", "model.channels=[8,16]", "scheduler=constant", "trainer.progress=plain",
              "trainer.limit_train_batches=6"]
    reference, stopped = workdir / "reference", workdir / "stopped"
    assert torchrun(*common, "trainer.max_epochs=2", f"hydra.run.dir={reference}", cwd=workdir).returncode == 0
    assert torchrun(*common, "trainer.max_epochs=1", f"hydra.run.dir={stopped}", cwd=workdir).returncode == 0
    proc = torchrun(*common, "trainer.max_epochs=2", "resume=auto", f"hydra.run.dir={stopped}", cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = torch.load(reference / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(stopped / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # M = N: exact
    proc = run_ptlab("train", *common, "trainer.max_epochs=3", "resume=auto", f"hydra.run.dir={stopped}", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "resuming a 2-process run with 1 processes" in (stopped / "train.log").read_text()
    assert read_metrics(stopped)["epoch"] == 3


@pytest.mark.slow
def test_two_nodes_on_loopback(workdir: Path) -> None:
    port = free_port()
    procs = []
    for node in range(2):
        rdzv = ["--nnodes=2", f"--node_rank={node}", "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}",
                "--rdzv_id=ptlab-test"]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=1", *rdzv, "-m", "ptlab", "train",
               "task=logreg", "trainer.max_epochs=2", "trainer.progress=plain"]
        procs.append(subprocess.Popen(cmd, cwd=workdir, env=subprocess_env(), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    for proc in procs:
        out, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, err[-3000:]
    runs = list((workdir / "outputs" / "logreg").iterdir())
    assert len(runs) == 1 and read_metrics(runs[0])["epoch"] == 2


@pytest.mark.slow
def test_batch_size_must_split_across_processes(workdir: Path) -> None:
    proc = torchrun("task=logreg", "data.batch_size=33", "trainer.max_epochs=1", cwd=workdir)
    assert proc.returncode != 0 and "data.batch_size: 33 does not split across 2 processes" in proc.stderr
    ok = torchrun("task=logreg", "data.batch_size=33", "+data.batch_size_per_device=8", "trainer.max_epochs=1",
                  "trainer.progress=plain", f"hydra.run.dir={workdir / 'run'}", cwd=workdir)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert read_metrics(workdir / "run")["step"] == 25  # 397 rows, 16 per global step


@pytest.mark.slow
def test_gan_trains_under_torchrun_with_the_same_weights_on_every_rank(workdir: Path) -> None:
    """Two optimizers: each one's gradients are averaged over ranks before it steps; evaluation uses rank 0's
    BatchNorm statistics everywhere; a resumed run continues exactly."""
    budget = ["task=gan", "trainer.max_epochs=1", "trainer.max_steps=6", "trainer.progress=plain",
              "trainer.ema.decay=0.9"]  # the average too is the same on every rank
    probe = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                            "--master_addr=127.0.0.1", f"--master_port={free_port()}",
                            str(Path(__file__).with_name("ddp_probe.py")), *budget],
                           cwd=workdir, env=subprocess_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert "identical on all ranks: True; step 6" in probe.stdout
    common = ["task=gan", "scheduler=constant", "trainer.progress=plain", "trainer.limit_train_batches=4",
              "trainer.limit_val_batches=2", "trainer.limit_test_batches=2"]
    reference, stopped = workdir / "reference", workdir / "stopped"
    for run_dir, extra in ((reference, ["trainer.max_epochs=2"]), (stopped, ["trainer.max_epochs=1"]),
                           (stopped, ["trainer.max_epochs=2", "resume=auto"])):
        proc = torchrun(*common, *extra, f"hydra.run.dir={run_dir}", cwd=workdir)
        assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = read_metrics(stopped)
    assert metrics["epoch"] == 2 and torch.isfinite(torch.tensor(metrics["test/fid"]))
    assert len(list((stopped / "samples").glob("epoch_*.png"))) == 2  # rank 0 alone writes
    a = torch.load(reference / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(stopped / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # resumed 2 → 2 processes: exact


def test_accumulated_batches_all_reduce_once_per_step() -> None:
    """DDP's no_sync: with trainer.grad_accum=4 the gradients cross processes at the window's last batch only."""
    import dataclasses

    import torch.distributed as dist
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    import ptlab
    from ptlab.engine.distributed import World
    from ptlab.engine.trainer import Trainer

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    try:
        cfg = ptlab.compose(["task=logreg", "trainer.grad_accum=4", "trainer.max_steps=3", "trainer.progress=plain"])
        run = dataclasses.replace(ptlab.build(cfg), world=World(0, 0, 2))  # a DDP-wrapped model, in one process
        trainer = Trainer(run, [])
        reduced: list[int] = []

        def counting_allreduce(state, bucket):
            reduced.append(trainer.state.batch_in_epoch)
            return default_hooks.allreduce_hook(None, bucket)

        trainer.train_model.register_comm_hook(None, counting_allreduce)
        trainer.fit()
        assert reduced == [3, 7, 11]  # the 4th, 8th and 12th batch: one all-reduce per optimizer step
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_translate_under_torchrun_decodes_and_scores_like_one_process(workdir: Path) -> None:
    """The decoded metrics (torchmetrics' BLEU and chrF states, the exact-match sums) and the baselines, summed over
    two ranks' shards of val and test, equal one process's on the same weights (a trained checkpoint, lr 1e-12).

    Training itself is not compared: each rank's loss is the mean over its target tokens and ranks are weighed by
    samples, so two ranks differ from one process by how target lengths split between them (docs/translate.md)."""
    from conftest import train_here

    trained = workdir / "trained"
    train_here("task=translate", "data.train_size=1500", "data.val_size=40", "data.test_size=40",
               "data.batch_size=32", "model.encoder_layers=1", "model.decoder_layers=1", "model.n_embd=64",
               "model.n_head=2", "optimizer.lr=0.003", "trainer.max_epochs=2", "logger=[]", run_dir=trained)
    args = ["task=translate", "data.train_size=1500", "data.val_size=40", "data.test_size=40", "data.batch_size=32",
            "model.encoder_layers=1", "model.decoder_layers=1", "model.n_embd=64", "model.n_head=2",
            f"finetune.from={trained / 'checkpoints' / 'last.pt'}", "optimizer.lr=1e-12",
            "optimizer.weight_decay=0", "trainer.max_steps=2",
            "trainer.progress=plain", "logger=[]"]
    proc = torchrun(*args, f"hydra.run.dir={workdir / 'ddp'}", cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_ptlab("train", *args, f"hydra.run.dir={workdir / 'one'}", cwd=workdir, check=True)
    ddp_metrics, one_metrics = read_metrics(workdir / "ddp"), read_metrics(workdir / "one")
    measured = [k for k in one_metrics if k.startswith(("val/", "test/"))]
    assert "test/chrf_dictionary" in measured and one_metrics["test/chrf"] > 30  # a model that decodes something
    assert {k: ddp_metrics[k] for k in measured} == {k: pytest.approx(one_metrics[k], rel=1e-5, abs=1e-5)
                                                    for k in measured}
