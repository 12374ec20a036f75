"""Every subcommand under a real pseudo-terminal, as a user runs ptlab: progress bars, live display, tables.

The other CLI tests read ptlab through a pipe (plain log lines); here stdout and stderr are a pty of
40×100 (80 where the width matters), ``TERM=xterm-256color`` and ``COLUMNS`` unset, and no test passes
``trainer.progress``: ptlab must find the terminal itself. One tiny run per task is trained once a
session and reused by ``eval``, ``generate`` and ``report``.
"""

from __future__ import annotations

import fcntl
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import run_ptlab_in_pty
from ptlab.logging.console import bar_stats


TASKS = ["linreg", "logreg", "cnn", "rnn", "transformer", "gan", "recsys", "translate"]
# One epoch of three batches, logged every step, one batch of validation and test: seconds per run.
BUDGET = ["trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.log_every_n_steps=1",
          "trainer.limit_val_batches=1", "trainer.limit_test_batches=1"]
WIDTH = 80
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BAR = re.compile(r"epoch \d+ [━╸╺]+ \d+/\d+ ")  # epoch N ━━━━╸    M/TOTAL 0:00:01 d_loss ...
PLAIN_TRAINING_LINE = re.compile(r"step \d+/\d+ \|")  # the line ptlab prints instead of a bar, off a terminal


def screen_lines(output: str) -> list[str]:
    """The output as the terminal shows it line by line: escape codes removed, split where a line ends,
    where the cursor returns to the line's start and where Rich erases a line to redraw its live display."""
    lines = (ANSI.sub("", piece).strip() for piece in re.split(r"\r\n|\n|\r|\x1b\[2K", output))
    return [line for line in lines if line]


def bar_lines(output: str) -> list[str]:
    """Every state of Rich's progress bar that was drawn."""
    return [line for line in screen_lines(output) if BAR.match(line)]


def assert_clean(rc: int, output: str) -> None:
    """Exit 0, no traceback, and a cursor that Rich hid for a live display was shown again."""
    assert rc == 0, output
    assert "Traceback" not in output, output
    assert output.count("\x1b[?25l") <= output.count("\x1b[?25h"), f"the cursor is left hidden:\n{output}"


def assert_bar_was_used(output: str) -> None:
    """Training drew a live progress bar, printed no plain per-step lines, and showed the final table."""
    assert bar_lines(output), f"no progress bar on a terminal:\n{output}"
    assert not PLAIN_TRAINING_LINE.search(ANSI.sub("", output)), f"plain training lines on a terminal:\n{output}"
    assert "┏" in output and "test/loss" in output, f"no final metrics table:\n{output}"


@pytest.fixture(scope="module")
def cwd(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The folder the commands run in: one per pytest session, seen by every xdist worker."""
    base = tmp_path_factory.getbasetemp()
    folder = (base if worker_id == "master" else base.parent) / "terminal"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def trained(cwd: Path) -> Callable[[str], tuple[int, str, Path]]:
    """``trained(task)``: (exit code, terminal output, run dir) of a tiny run trained under the pty.

    Once per task and session: the first caller trains (holding a lock on the task), every other
    test and xdist worker reads the recorded result.
    """

    def train(task: str) -> tuple[int, str, Path]:
        run_dir, record = cwd / "runs" / task, cwd / f"{task}.json"
        with open(cwd / f"{task}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not record.exists():
                rc, output = run_ptlab_in_pty("train", f"task={task}", *BUDGET, f"hydra.run.dir={run_dir}",
                                              cwd=cwd, columns=WIDTH)
                record.write_text(json.dumps({"rc": rc, "output": output}))
        result = json.loads(record.read_text())
        return result["rc"], result["output"], run_dir

    return train


@pytest.mark.parametrize("task", [t if t in ("logreg", "gan", "recsys", "translate") else pytest.param(t, marks=pytest.mark.slow)
                                  for t in TASKS])
def test_train_draws_a_bar_of_the_logged_losses(trained: Callable, task: str) -> None:
    rc, output, run_dir = trained(task)
    assert_clean(rc, output)
    assert_bar_was_used(output)
    assert (run_dir / "metrics.json").is_file()
    bars = bar_lines(output)
    assert all(len(line) <= WIDTH for line in bars), "\n".join(bars)  # one line each at 80 columns
    losses = ["d_loss", "g_loss"] if task == "gan" else ["loss"]
    assert any(all(f"{name} " in line for name in losses) and "samples/s" in line for line in bars), "\n".join(bars)
    # A log line printed during training (the validation) sits on its own line above the bar, not inside it.
    lines = screen_lines(output)
    validation = [line for line in lines if "val/loss" in line and "|" in line]
    assert validation and all(line.startswith("epoch 1 step 3 | val/loss") for line in validation), "\n".join(lines)


def test_eval_under_a_terminal(trained: Callable, cwd: Path) -> None:
    _, _, run_dir = trained("logreg")
    rc, output = run_ptlab_in_pty("eval", f"ckpt={run_dir / 'checkpoints' / 'best.pt'}", cwd=cwd)
    assert_clean(rc, output)
    assert "test metrics" in output and "test/acc" in output, output


def test_generate_a_gan_grid_under_a_terminal(trained: Callable, cwd: Path) -> None:
    _, _, run_dir = trained("gan")
    rc, output = run_ptlab_in_pty("generate", f"ckpt={run_dir / 'checkpoints' / 'best.pt'}", "n=4",
                                  f"out={cwd / 'grid.png'}", cwd=cwd)
    assert_clean(rc, output)
    assert (cwd / "grid.png").is_file() and "4 samples" in output, output


def test_generate_text_under_a_terminal(trained: Callable, cwd: Path) -> None:
    _, _, run_dir = trained("transformer")
    rc, output = run_ptlab_in_pty("generate", f"ckpt={run_dir / 'checkpoints' / 'best.pt'}", "prompt=The ",
                                  "max_new_tokens=20", cwd=cwd)
    assert_clean(rc, output)
    assert "The " in output, output


def test_translate_under_a_terminal(trained: Callable, cwd: Path) -> None:
    _, _, run_dir = trained("translate")
    rc, output = run_ptlab_in_pty("translate", f"ckpt={run_dir / 'checkpoints' / 'best.pt'}", "text=einundsiebzig",
                                  "beam=2", cwd=cwd)
    assert_clean(rc, output)
    assert screen_lines(output), output


def test_report_under_a_terminal(trained: Callable, cwd: Path) -> None:
    _, _, run_dir = trained("logreg")
    rc, output = run_ptlab_in_pty("report", str(run_dir), f"out={cwd / 'report'}", cwd=cwd)
    assert_clean(rc, output)
    assert (cwd / "report" / "report.md").is_file(), output


def test_lr_find_under_a_terminal(cwd: Path) -> None:
    rc, output = run_ptlab_in_pty("lr-find", "task=logreg", "lr_find.steps=10", f"hydra.run.dir={cwd / 'lr_find'}",
                                  cwd=cwd)
    assert_clean(rc, output)
    assert (cwd / "lr_find" / "lr_find.png").is_file(), output


def test_list_under_a_terminal(cwd: Path) -> None:
    rc, output = run_ptlab_in_pty("list", cwd=cwd)
    assert_clean(rc, output)
    assert all(task in output for task in TASKS), output


def test_a_sweep_under_a_terminal(cwd: Path) -> None:
    """Two jobs, one bar each, then the sweep's summary table."""
    rc, output = run_ptlab_in_pty("train", "-m", "task=logreg", "seed=0,1", *BUDGET,
                                  f"hydra.sweep.dir={cwd / 'sweep'}", cwd=cwd)
    assert_clean(rc, output)
    assert_bar_was_used(output)
    assert output.count("\x1b[?25l") == 2, output  # one live display per job
    assert "2 jobs" in output and len(list((cwd / "sweep").glob("*/metrics.json"))) == 2, output


def test_a_failed_sweep_job_leaves_no_bar_behind(cwd: Path) -> None:
    """A job that stops with an error takes its bar off the display: the next job draws its own and finishes."""
    rc, output = run_ptlab_in_pty("train", "-m", "task=linreg", "optimizer.lr=1e30,0.01", *BUDGET,
                                  f"hydra.sweep.dir={cwd / 'failed_sweep'}", cwd=cwd)
    assert rc == 1, output  # a failed job makes the sweep exit 1, after the summary
    assert "Traceback" not in output and "non-finite loss" in output, output
    assert output.count("\x1b[?25l") == output.count("\x1b[?25h") == 2, output
    assert len(list((cwd / "failed_sweep").glob("*/metrics.json"))) == 1, output


def test_a_dumb_terminal_gets_plain_lines(cwd: Path) -> None:
    """TERM=dumb cannot redraw a line: ptlab prints its plain per-step lines there instead of a bar."""
    rc, output = run_ptlab_in_pty("train", "task=logreg", *BUDGET, "checkpoint.save=false",
                                  f"hydra.run.dir={cwd / 'dumb'}", cwd=cwd, env={"TERM": "dumb"})
    assert_clean(rc, output)
    assert not bar_lines(output) and PLAIN_TRAINING_LINE.search(output), output


def test_the_bar_shows_whatever_losses_an_objective_logs() -> None:
    gan = {"train/d_loss": 1.3863, "train/d_real": 0.5, "train/d_fake": 0.5, "train/g_loss": 0.69314,
           "train/lr_generator": 1e-3, "train/lr_discriminator": 1e-3}
    assert bar_stats(gan, 12_345.0) == "d_loss 1.386 g_loss 0.6931 · 12.3k samples/s"
    assert bar_stats({"train/loss": 2.5, "train/lr": 0.1}, 950.0) == "loss 2.5 · 950 samples/s"
    # An objective that logs no loss at all: its first value, not a KeyError.
    assert bar_stats({"train/reward": 0.25, "train/lr": 0.1}, 1.5e6) == "reward 0.25 · 1.5M samples/s"
