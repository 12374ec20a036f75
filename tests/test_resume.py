"""Stop a run any way you like, resume it, and get exactly the run you would have had."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import computed, read_metrics, run_ptlab, subprocess_env, train_here
from ptlab.atomic import read_json

# Budgets that take a few seconds with a checkpoint every step, so a kill lands mid-run.
TASKS = {
    "linreg": ["task=linreg", "trainer.max_epochs=12"],
    "logreg": ["task=logreg", "trainer.max_epochs=8", "data.batch_size=16"],
    "cnn": ["task=cnn", "trainer.max_epochs=2", "data.batch_size=32", "scheduler.warmup_steps=5"],
    "gan": ["task=gan", "trainer.max_epochs=2", "model.width=16", "trainer.ema.decay=0.9"],  # the average resumes too
    # 26 steps per epoch: the run crosses an epoch boundary (a new window phase and order) and validates.
    "rnn": ["task=rnn", "trainer.max_steps=40", "data.block_size=32", "data.batch_size=512", "model.hidden_size=32",
            "model.embedding_dim=16", "model.dropout=0.1"],
    # 4 epochs of 8 batches: negatives are drawn afresh per (seed, epoch), so a resumed epoch must draw the same.
    "recsys": ["task=recsys", "data.num_users=200", "data.num_items=120", "data.mean_interactions=12",
               "trainer.max_epochs=4"],
    # Dropout on, 4 epochs of 7 batches with a validation (decoding) after each.
    "translate": ["task=translate", "data.train_size=400", "data.val_size=32", "data.test_size=32",
                  "model.encoder_layers=1", "model.decoder_layers=1", "model.n_embd=32", "model.n_head=2",
                  "trainer.max_epochs=4"],
    "transformer": ["task=transformer", "trainer.max_steps=40", "data.block_size=32", "data.batch_size=512",
                    "model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.dropout=0.1"],
}
COMMON = ["checkpoint.every_n_steps=1", "checkpoint.keep_last=2", "trainer.log_every_n_steps=7",
          "trainer.progress=plain"]


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ptlab", "train", *args], cwd=cwd, env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def reference_run(args: list[str], run_dir: Path) -> None:
    """The uninterrupted run to compare with, trained in this process (the killed ones are real CLI processes):
    the same config, data and single thread give the same bits, without another interpreter's start-up."""
    import ptlab

    ptlab.train(ptlab.compose(args), run_dir=run_dir)


def saved_step(run_dir: Path) -> int:
    """The step of the newest complete last.pt, from the manifest (-1 before the first)."""
    files = read_json(run_dir / "checkpoints" / "manifest.json") or {}
    return files.get("files", {}).get("last.pt", {}).get("step", -1)


def wait_for_step(run_dir: Path, proc: subprocess.Popen, past: int = -1, timeout: float = 120) -> int:
    """Wait until the run has saved a checkpoint of a step after ``past`` (it is then training on); return it."""
    deadline = time.monotonic() + timeout
    while (step := saved_step(run_dir)) <= past:
        assert proc.poll() is None, f"run ended before it saved a step after {past}: {proc.stderr.read()}"
        assert time.monotonic() < deadline, f"no checkpoint after step {past} appeared"
        time.sleep(0.02)
    return step


def final_state(run_dir: Path) -> tuple[dict[str, torch.Tensor], dict]:
    payload = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    metrics = computed(read_metrics(run_dir))
    return payload["model"], metrics


def logged_rows(run_dir: Path) -> list[dict]:
    """The computed values of metrics.csv, row by row (speed and times differ between runs)."""
    from ptlab.logging.csv_logger import read_rows

    return [computed(row) for row in read_rows(run_dir / "metrics.csv")]


def assert_same_run(a: Path, b: Path) -> None:
    (weights_a, metrics_a), (weights_b, metrics_b) = final_state(a), final_state(b)
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a), "weights differ"
    assert metrics_a == metrics_b
    rows_a = logged_rows(a)
    assert rows_a and "val/loss" in rows_a[-1] and rows_a == logged_rows(b)  # not a row lost or logged twice
@pytest.mark.parametrize("task", [t if t == "logreg" else pytest.param(t, marks=pytest.mark.slow)
                                  for t in sorted(TASKS)])
def test_kill_9_then_resume_auto_is_bit_identical(workdir: Path, task: str) -> None:
    args = [*TASKS[task], *COMMON]
    reference = workdir / "reference"
    reference_run(args, reference)

    total = read_metrics(reference)["step"]

    run_dir = workdir / "killed"
    rng = random.Random(task)
    landed: list[int] = []  # the saved step each kill left behind
    for kill in range(2):  # two SIGKILLs at random moments (mid-step, mid-save, mid-validation)
        proc = start([*args, "resume=auto", f"hydra.run.dir={run_dir}"], workdir)
        wait_for_step(run_dir, proc, past=landed[-1] if landed else -1)  # the resumed run has trained on
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL, "the run finished before it could be killed"
        assert not (run_dir / "metrics.json").exists()
        landed.append(saved_step(run_dir))
    assert 0 <= landed[0] < landed[1] < total, f"kills landed at steps {landed} of {total}"
    run_ptlab("train", *args, "resume=auto", f"hydra.run.dir={run_dir}", cwd=workdir, check=True)
    assert_same_run(reference, run_dir)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143),
                                          pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow)])
def test_sigterm_and_sigint_checkpoint_and_exit(workdir: Path, signum: int, code: int) -> None:
    args = [*TASKS["cnn"], "trainer.progress=plain", "trainer.log_every_n_steps=1"]  # no step checkpoints
    reference = workdir / "reference"
    reference_run(args, reference)

    run_dir = workdir / "stopped"
    proc = start([*args, f"hydra.run.dir={run_dir}"], workdir)
    deadline = time.monotonic() + 120
    while "step 7/" not in (run_dir / "train.log").read_text() if (run_dir / "train.log").exists() else True:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.02)
    proc.send_signal(signum)
    assert proc.wait(timeout=60) == code
    stderr = proc.stderr.read()
    assert "resume with resume=auto" in stderr and "Traceback" not in stderr
    saved = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert 0 < saved["loop"]["step"] < 68 and saved["loop"]["batch_in_epoch"] > 0  # mid-epoch
    run_ptlab("train", *args, "resume=auto", f"hydra.run.dir={run_dir}", cwd=workdir, check=True)
    assert_same_run(reference, run_dir)


def test_resume_auto_starts_fresh_when_there_is_nothing(workdir: Path) -> None:
    run_dir = workdir / "run"
    proc = run_ptlab("train", "task=logreg", "trainer.max_epochs=1", "resume=auto", "trainer.progress=plain",
                     f"hydra.run.dir={run_dir}", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "starting fresh" in (run_dir / "train.log").read_text()


SHORT = ["task=logreg", "trainer.max_epochs=2", "checkpoint.every_n_steps=5", "checkpoint.keep_last=2",
         "trainer.progress=plain"]


def short_run(workdir: Path, run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_ptlab("train", *SHORT, f"hydra.run.dir={run_dir}", *extra, cwd=workdir)


def first_run(run_dir: Path) -> None:
    """The run a test then relaunches: trained in this process (the relaunch is the command under test)."""
    train_here(*SHORT, run_dir=run_dir)


@pytest.mark.parametrize("damage", ["truncate", "random_bytes"])
def test_damaged_last_falls_back_to_newest_valid(workdir: Path, damage: str) -> None:
    run_dir = workdir / "run"
    first_run(run_dir)
    folder = run_dir / "checkpoints"
    assert sorted(p.name for p in folder.glob("step-*.pt")) == ["step-00000025.pt", "step-00000026.pt"]
    last = folder / "last.pt"
    newest = (folder / "step-00000026.pt").read_bytes()
    with open(last, "r+b") as f:  # damaged in place: the same inode, as a disk or a stray write would
        if damage == "truncate":
            f.truncate(len(newest) // 2)
        else:
            f.write(random.Random(0).randbytes(len(newest)))
    assert (folder / "step-00000026.pt").read_bytes() == newest  # the damage reached one file only
    proc = short_run(workdir, run_dir, "resume=auto", "trainer.max_epochs=3")
    assert proc.returncode == 0, proc.stderr
    log = (run_dir / "train.log").read_text()
    assert "skipped damaged checkpoints (last.pt" in log and "resuming from" in log and "step-00000026.pt" in log
    assert read_metrics(run_dir)["step"] == 39


def test_no_valid_checkpoint_is_an_error_and_nothing_is_deleted(workdir: Path) -> None:
    run_dir = workdir / "run"
    first_run(run_dir)
    folder = run_dir / "checkpoints"
    for path in [folder / "last.pt", *folder.glob("step-*.pt")]:
        path.unlink()
        path.write_bytes(b"garbage")
    before = sorted((p.name, p.read_bytes()) for p in folder.iterdir())
    proc = short_run(workdir, run_dir, "resume=auto")
    assert proc.returncode == 2 and "resume: no valid checkpoint" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted((p.name, p.read_bytes()) for p in folder.iterdir()) == before


def test_resume_reports_changes_and_refuses_the_ones_it_cannot_honour(workdir: Path) -> None:
    run_dir = workdir / "run"
    first_run(run_dir)
    refused = short_run(workdir, run_dir, "resume=auto", "seed=3", "optimizer.lr=0.5")
    assert refused.returncode == 2
    assert "optimizer.lr 0.1 → 0.5" in refused.stderr and "seed 0 → 3" in refused.stderr
    accepted = short_run(workdir, run_dir, "resume=auto", "trainer.max_epochs=3")
    assert accepted.returncode == 0, accepted.stderr
    assert "resume: trainer.max_epochs 2 → 3" in (run_dir / "train.log").read_text()
    assert read_metrics(run_dir)["epoch"] == 3


def test_resume_path_continues_that_run_in_its_own_directory(workdir: Path) -> None:
    run_dir = workdir / "run"
    proc = run_ptlab("train", "task=logreg", "optimizer.lr=0.05", "trainer.max_epochs=2", "trainer.progress=plain",
                     f"hydra.run.dir={run_dir}", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    # From another folder, with only the path: the saved overrides (task, lr) come back.
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    proc = run_ptlab("train", f"resume={run_dir}", "trainer.max_epochs=3", "trainer.progress=plain", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert not (elsewhere / "outputs").exists()
    assert read_metrics(run_dir)["epoch"] == 3
    proc = run_ptlab("train", f"resume={run_dir}/checkpoints/last.pt", "trainer.max_epochs=4", "trainer.progress=plain",
                     cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert read_metrics(run_dir)["epoch"] == 4


def test_keys_added_after_a_checkpoint_count_as_their_defaults() -> None:
    """A checkpoint written before trainer.limit_train_batches existed resumes unless the new key is really set."""
    import ptlab
    from omegaconf import OmegaConf

    from ptlab.engine.resume import check_config_changes
    from ptlab.errors import ConfigError

    current = OmegaConf.to_container(ptlab.compose(["task=logreg"]), resolve=True)
    saved = OmegaConf.to_container(ptlab.compose(["task=logreg"]), resolve=True)
    for key in ("limit_train_batches", "overfit_batches", "skip_nonfinite"):
        del saved["trainer"][key]
    check_config_changes(saved, current)
    current["trainer"]["skip_nonfinite"] = True  # a debugging switch: it changes nothing already computed
    check_config_changes(saved, current)
    current["trainer"]["limit_train_batches"] = 2
    with pytest.raises(ConfigError, match="trainer.limit_train_batches None → 2"):
        check_config_changes(saved, current)
