"""The logger group: logger=[tensorboard,csv] by default; metrics.csv has one row per logging point."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

import ptlab
from ptlab.api import check
from conftest import run_ptlab
from ptlab.errors import ConfigError
from ptlab.logging.csv_logger import read_rows

torch.set_num_threads(1)

RUN = ["task=logreg", "trainer.max_epochs=3", "trainer.log_every_n_steps=5", "trainer.progress=plain"]


def test_metrics_csv_has_a_row_per_logging_point_with_the_run_s_names(tmp_path: Path) -> None:
    metrics = ptlab.train(ptlab.compose(RUN), run_dir=tmp_path)
    rows = read_rows(tmp_path / "metrics.csv")
    steps = [int(row["step"]) for row in rows]
    assert steps == sorted(set(steps))  # one row per step, in order
    assert [s for s, row in zip(steps, rows) if "val/loss" in row] == [13, 26, 39]  # the three validations
    # every log_every_n_steps, and at the end of each epoch before its validation
    assert [s for s, row in zip(steps, rows) if "train/loss" in row] == sorted({*range(5, 40, 5), 13, 26, 39})
    assert {int(row["epoch"]) for row in rows} == {1, 2, 3}
    last = rows[-1]
    assert float(last["test/acc"]) == metrics["test/acc"] and float(last["val/acc"]) == pytest.approx(
        json.loads((tmp_path / "metrics.json").read_text())["val/acc"])
    with (tmp_path / "metrics.csv").open() as f:
        header = next(csv.reader(f))
    assert header[:2] == ["step", "epoch"] and "train/lr" in header and "test/acc_sklearn" in header
    assert (tmp_path / "tb").is_dir()


def test_the_loggers_are_chosen_by_the_logger_group(tmp_path: Path) -> None:
    ptlab.train(ptlab.compose([*RUN, "trainer.max_epochs=1", "logger=[csv]"]), run_dir=tmp_path / "csv")
    assert (tmp_path / "csv" / "metrics.csv").is_file() and not (tmp_path / "csv" / "tb").exists()
    ptlab.train(ptlab.compose([*RUN, "trainer.max_epochs=1", "logger=[]"]), run_dir=tmp_path / "none")
    assert not (tmp_path / "none" / "metrics.csv").exists() and not (tmp_path / "none" / "tb").exists()
    assert (tmp_path / "none" / "metrics.json").is_file()


def test_a_logger_key_or_option_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^logger\.csv\.fil: unknown key for csv\. Did you mean 'file'\?"):
        check(ptlab.compose(["task=logreg", "+logger.csv.fil=x"]))
    proc = run_ptlab("train", "task=logreg", "logger=[csv,mlfow]", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "ptlab: error: logger: unknown option 'mlfow'. Did you mean 'mlflow'? Valid options: csv, mlflow, tensorboard, "
        "wandb."]
    assert not (tmp_path / "run").exists()


def test_a_torn_last_line_is_not_a_row(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("step,epoch,train/loss\n5,1,0.5\n10,1,0.4\n15,2,0.3")  # killed while writing the last row
    assert [row["step"] for row in read_rows(path)] == ["5", "10"]


def test_a_resumed_run_adds_a_step_s_later_values_to_its_row_and_drops_later_rows(tmp_path: Path) -> None:
    """Killed after the checkpoint of an epoch's last step but before its validation: the resumed run validates
    that step, and its values join the step's row instead of making a second one."""
    from types import SimpleNamespace

    from ptlab.logging.csv_logger import CSVLogger

    path = tmp_path / "metrics.csv"
    path.write_text("step,epoch,train/loss\n9,1,0.5\n18,2,0.4\n27,3,0.3\n")  # 27: after the checkpoint
    trainer = SimpleNamespace(state=SimpleNamespace(step=18, epoch=2, batch_in_epoch=0))
    logger = CSVLogger(tmp_path)
    logger.on_fit_start(trainer)
    logger.on_validation_end(trainer, {"val/loss": 0.45}, True)
    rows = read_rows(path)
    assert [row["step"] for row in rows] == ["9", "18"]
    assert rows[1] == {"step": "18", "epoch": "2", "train/loss": "0.4", "val/loss": "0.45"}


def test_a_resumed_run_hides_the_tensorboard_events_after_its_checkpoint(tmp_path: Path) -> None:
    """A killed run logged steps 1..5; resumed from the checkpoint of step 3, the curve reads 1, 2, 3, 4 again."""
    from types import SimpleNamespace

    from torch.utils.tensorboard import SummaryWriter

    from ptlab.logging.tensorboard import TensorBoardLogger

    killed = SummaryWriter(str(tmp_path / "tb"))
    for step in range(1, 6):
        killed.add_scalar("val/loss", 1.0 / step, step)
    killed.close()
    trainer = SimpleNamespace(state=SimpleNamespace(step=3))
    logger = TensorBoardLogger(tmp_path)
    logger.on_fit_start(trainer)
    trainer.state.step = 4
    logger.on_validation_end(trainer, {"val/loss": 0.2}, True)
    logger.writer.close()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curve = EventAccumulator(str(tmp_path / "tb"))  # the folder, as TensorBoard reads a run
    curve.Reload()
    assert [(e.step, round(e.value, 4)) for e in curve.Scalars("val/loss")] == [(1, 1.0), (2, 0.5), (3, 0.3333), (4, 0.2)]

