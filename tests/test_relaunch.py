"""Relaunch the same command after any ending: finished runs stay finished, signals land safely anywhere."""

from __future__ import annotations

import json
import random
import textwrap
from pathlib import Path

import pytest
import torch

import ptlab
from conftest import computed, read_metrics, run_ptlab, train_here
from ptlab.engine.callbacks import Callback
from ptlab.engine.trainer import Trainer

QUIET = ["trainer.progress=plain", "device=cpu"]
LOGREG = ["task=logreg", "trainer.progress=plain"]

SIGNAL_OBJECTIVE = '''
    import os
    import signal

    from ptlab.objectives.classification import Classification


    class SignalAtEvaluation(Classification):
        """Classification that sends itself SIGTERM when its ``at``-th evaluation pass of this process starts."""

        def __init__(self, at: int, baseline: str | None = None) -> None:
            super().__init__(baseline=baseline)
            self.at, self.passes = at, 0

        def start_evaluation(self, rank: int = 0, world_size: int = 1) -> None:
            self.passes += 1
            if self.passes == self.at:
                os.kill(os.getpid(), signal.SIGTERM)
'''


def last_step(run_dir: Path) -> int:
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["loop"]["step"]


def without_time(metrics: dict) -> dict:
    return computed(metrics)


def test_an_early_stopped_run_stays_stopped_unless_the_budget_is_raised(workdir: Path) -> None:
    run_dir = workdir / "run"
    args = [*LOGREG, "trainer.max_epochs=30", "trainer.early_stopping.patience=2",
            "trainer.early_stopping.min_delta=100", "resume=auto", f"hydra.run.dir={run_dir}"]  # stops at epoch 3
    train_here(*args[:-1], run_dir=run_dir)  # the first launch, in this process: the relaunches are under test
    assert read_metrics(run_dir)["epoch"] == 3 and last_step(run_dir) == 39
    assert "early stopping" in torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["loop"]["stop_reason"]
    written = (run_dir / "metrics.json").read_bytes()

    again = run_ptlab("train", *args, cwd=workdir, check=True)
    assert "finished earlier: nothing to train" in again.stdout + again.stderr
    assert "test/acc" in again.stdout  # the final metrics table
    assert last_step(run_dir) == 39 and (run_dir / "metrics.json").read_bytes() == written

    raised = run_ptlab("train", *args[:-2], "trainer.max_epochs=40", *args[-2:], cwd=workdir, check=True)
    assert "the raised budget lets it go on" in (run_dir / "train.log").read_text()
    assert read_metrics(run_dir)["epoch"] == 4  # one more validation without improvement: patience is spent
    assert "Traceback" not in raised.stderr


def test_a_finished_run_relaunched_prints_its_metrics_and_trains_nothing(workdir: Path) -> None:
    run_dir = workdir / "run"
    args = [*LOGREG, "trainer.max_epochs=2", "resume=auto", f"hydra.run.dir={run_dir}"]
    train_here(*args[:-1], run_dir=run_dir)
    written = (run_dir / "metrics.json").read_bytes()
    again = run_ptlab("train", *args, cwd=workdir, check=True)
    assert "finished earlier" in again.stdout + again.stderr and "test/acc" in again.stdout
    assert (run_dir / "metrics.json").read_bytes() == written and last_step(run_dir) == 26


@pytest.fixture
def signal_objective(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    folder = tmp_path / "user_modules"
    folder.mkdir()
    (folder / "signal_objective.py").write_text(textwrap.dedent(SIGNAL_OBJECTIVE))
    monkeypatch.setenv("PYTHONPATH", str(folder))
    return ["~objective", "+objective._target_=signal_objective.SignalAtEvaluation", "+objective.baseline=logistic"]


@pytest.mark.parametrize("phase, at", [("the last validation", 2), ("the test pass", 3)])
def test_sigterm_in_the_final_phases_exits_143_and_the_relaunch_completes_the_run(
        workdir: Path, signal_objective: list[str], phase: str, at: int) -> None:
    reference = workdir / "reference"
    args = [*LOGREG, "trainer.max_epochs=2"]
    ptlab.train(ptlab.compose(args), run_dir=reference)  # the uninterrupted run, in this process

    run_dir = workdir / "run"
    stopped_args = [*args, *signal_objective, f"+objective.at={at}", "resume=auto", f"hydra.run.dir={run_dir}"]
    stopped = run_ptlab("train", *stopped_args, cwd=workdir)
    assert stopped.returncode == 143, stopped.stderr
    assert "stopped by SIGTERM" in stopped.stderr and "Traceback" not in stopped.stderr
    assert not (run_dir / "metrics.json").exists()  # nothing final was written, so nothing half-written
    assert last_step(run_dir) == 26  # the state after the last step is saved

    done = run_ptlab("train", *stopped_args, cwd=workdir, check=True)  # the same command; only the test pass is left
    assert "Traceback" not in done.stderr
    assert without_time(read_metrics(run_dir)) == without_time(read_metrics(reference))


def test_every_schedule_ends_on_the_last_step_whatever_d_steps_is() -> None:
    cfg = ptlab.compose([*QUIET, "task=gan", "objective.d_steps=2", "scheduler=cosine", "trainer.max_steps=6",
                         "trainer.log_every_n_steps=1", "objective.metrics=[]", "checkpoint.monitor=val/loss",
                         "model.width=8"])

    class LearningRates(Callback):
        def __init__(self) -> None:
            self.seen: list[dict[str, float]] = []

        def on_log(self, trainer: Trainer, metrics: dict[str, float]) -> None:
            self.seen.append({k: v for k, v in metrics.items() if k.startswith("train/lr_")})

    rates = LearningRates()
    Trainer(ptlab.build(cfg), [rates]).fit()
    assert len(rates.seen) == 6
    for name in ("train/lr_generator", "train/lr_discriminator"):
        assert [r[name] for r in rates.seen] == pytest.approx([r["train/lr_generator"] for r in rates.seen])
        assert rates.seen[-1][name] == pytest.approx(0.0, abs=1e-12)
        assert rates.seen[-2][name] > 0


def cosine_rates(total: int, steps: int, resumes: dict[int, int] | None = None) -> list[float]:
    """The rate at each step of a cosine schedule, resumed at each step of ``resumes`` with its new horizon."""
    from ptlab.optim import cosine

    def fresh(horizon: int):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        return optimizer, cosine(optimizer, horizon, min_lr_ratio=0.1)

    optimizer, schedule = fresh(total)
    rates = []
    for step in range(steps):
        if step in (resumes or {}):
            saved_optimizer, saved_schedule = optimizer.state_dict(), schedule.state_dict()
            optimizer, schedule = fresh(resumes[step])
            optimizer.load_state_dict(saved_optimizer)
            schedule.load_state_dict(saved_schedule)
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return rates


def test_raising_the_budget_stretches_the_rest_of_the_schedule_without_a_jump() -> None:
    plain = cosine_rates(20, 21)  # the rate at steps 0..20; 20: the schedule's end, min_lr_ratio
    stretched = cosine_rates(20, 41, {10: 40})  # resumed at step 10 with 40 steps in all
    assert stretched[:10] == plain[:10]
    assert stretched[10] == pytest.approx(plain[10])  # no jump at the resume
    assert all(a > b for a, b in zip(stretched[:40], stretched[1:]))  # still decaying
    assert stretched[10 + 3 * 5] == pytest.approx(plain[10 + 5])  # the last 10 steps spread over 30
    assert stretched[40] == pytest.approx(plain[20]) == pytest.approx(0.1)  # the end, on the new last step
    twice = cosine_rates(20, 61, {10: 40, 30: 60})  # raised again: the first stretch is kept in the state
    assert twice[:31] == pytest.approx(stretched[:31])
    assert twice[30 + 3 * 3] == pytest.approx(stretched[30 + 3])
    assert all(a > b for a, b in zip(twice[:60], twice[1:])) and twice[60] == pytest.approx(0.1)


def test_raising_the_budget_of_an_ended_schedule_keeps_its_final_rate() -> None:
    ended = cosine_rates(20, 30, {20: 30})
    assert ended[20:] == pytest.approx([0.1] * 10)  # min_lr_ratio: the end of the schedule


def test_a_damaged_last_with_default_settings_resumes_from_previous_and_deletes_nothing(workdir: Path) -> None:
    run_dir = workdir / "run"
    args = [*LOGREG, "trainer.max_epochs=2", f"hydra.run.dir={run_dir}"]
    train_here(*args[:-1], run_dir=run_dir)
    folder = run_dir / "checkpoints"
    assert {p.name for p in folder.glob("*.pt")} == {"last.pt", "previous.pt", "best.pt"}
    assert torch.load(folder / "previous.pt", weights_only=True)["loop"]["step"] == 13
    with open(folder / "last.pt", "r+b") as f:  # damage written in place, into the file itself
        f.seek(f.seek(0, 2) // 2)
        f.write(random.Random(0).randbytes(4096))
    damaged = (folder / "last.pt").read_bytes()
    proc = run_ptlab("train", *args[:-2], "trainer.max_epochs=3", *args[-1:], "resume=auto", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    log = (run_dir / "train.log").read_text()
    assert "skipped damaged checkpoints (last.pt" in log and f"resuming from {folder / 'previous.pt'}" in log
    assert read_metrics(run_dir)["epoch"] == 3 and last_step(run_dir) == 39
    kept = list(folder.glob("damaged-last-*.pt"))
    assert len(kept) == 1 and kept[0].read_bytes() == damaged  # kept, not deleted
    manifest = json.loads((folder / "manifest.json").read_text())["files"]
    assert manifest["last.pt"]["step"] == 39 and manifest["previous.pt"]["step"] == 26


def test_a_torn_metrics_file_in_a_sweep_is_not_finished(workdir: Path) -> None:
    args = ["train", "-m", *LOGREG, "trainer.max_epochs=1", "seed=0,1", "hydra.sweep.dir=sweep"]
    run_ptlab(*args, cwd=workdir, check=True)
    jobs = sorted(p for p in (workdir / "sweep").iterdir() if (p / "metrics.json").is_file())
    assert len(jobs) == 2
    complete = (jobs[0] / "metrics.json").read_text()
    (jobs[0] / "metrics.json").write_text(complete[: len(complete) // 2])  # torn by something else
    again = run_ptlab(*args, cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr and "JSONDecodeError" not in again.stderr
    assert computed(json.loads((jobs[0] / "metrics.json").read_text())) == computed(json.loads(complete))


def test_each_rank_selects_its_gpu_before_the_process_group(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.distributed as dist

    from ptlab.engine import distributed

    calls: list[tuple[str, object]] = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: calls.append(("set_device", index)))
    monkeypatch.setattr(dist, "init_process_group", lambda backend: calls.append(("init_process_group", backend)))
    distributed.join(distributed.World(rank=3, local_rank=1, size=4), "cuda")
    assert calls == [("set_device", 1), ("init_process_group", "nccl")]
    calls.clear()
    distributed.join(distributed.World(rank=1, local_rank=1, size=2), "cpu")
    assert calls == [("init_process_group", "gloo")]


def test_gan_evaluation_noise_is_the_same_per_sample_for_any_number_of_processes() -> None:
    from ptlab.models.gan import GAN
    from ptlab.objectives.adversarial import Adversarial

    model = GAN(torch.nn.Identity(), torch.nn.Linear(1, 1), latent_dim=3)
    objective = Adversarial()

    def noise(rank: int, world_size: int, batch: int, n: int) -> dict[int, torch.Tensor]:
        objective.start_evaluation(rank=rank, world_size=world_size)
        rows: dict[int, torch.Tensor] = {}
        local = 0
        while local < n:
            size = min(batch, n - local)
            samples = (torch.arange(local, local + size) * world_size + rank)
            for sample, row in zip(samples.tolist(), objective.eval_noise(model, samples)):
                rows[sample] = row
            local += size
        return rows

    one = noise(0, 1, batch=64, n=600)
    two = {**noise(0, 2, batch=32, n=300), **noise(1, 2, batch=32, n=300)}
    assert one.keys() == two.keys() == set(range(600))
    assert all(torch.equal(one[i], two[i]) for i in one)
    assert len({tuple(row.tolist()) for row in one.values()}) == 600  # distinct samples, also across blocks


@pytest.mark.slow
def test_ranks_that_find_different_checkpoints_stop_with_one_error(workdir: Path) -> None:
    """Nodes without a shared filesystem: each rank's run directory is its own (by LOCAL_RANK), only rank 0's
    holds the checkpoint. Resuming must refuse, not let the ranks go on from different states."""
    from test_distributed import torchrun

    args = ["task=logreg", "trainer.progress=plain", "trainer.max_epochs=1", "device=cpu"]
    run_ptlab("train", *args, f"hydra.run.dir={workdir}/node0", cwd=workdir, check=True)
    proc = torchrun(*args[:-2], "trainer.max_epochs=2", "device=cpu", "resume=auto",
                    f"hydra.run.dir={workdir}/node${{oc.env:LOCAL_RANK}}", cwd=workdir)
    assert proc.returncode != 0
    assert "resume: the processes found different checkpoints (rank 0: " in proc.stderr
    assert "rank 1: nothing" in proc.stderr
    assert not [line for line in proc.stderr.splitlines() if 'File "' in line and "/ptlab/" in line]  # torchrun's own
    assert read_metrics(workdir / "node0")["epoch"] == 1  # nothing trained on, nothing overwritten
