"""`ptlab report`: PNG curves from TensorBoard events, report.md with the final metrics, sweep plots, sample grids."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import TINY, run_ptlab
from ptlab.cli import main
from ptlab.tools.report import (RunRecord, Sweep, curve_figure, name_runs, read_run, read_scalars, sweep_figure,
                                sweep_jobs, write_report)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A real two-job sweep (Hydra's multirun folder) over the learning rate of logreg."""
    workdir = tmp_path_factory.mktemp("report")
    folder = workdir / "sweep"
    proc = run_ptlab("train", "-m", "task=logreg", "optimizer.lr=0.01,0.5", *TINY, f"hydra.sweep.dir={folder}",
                     cwd=workdir, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return folder


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5_000, path


def test_report_of_one_run(sweep: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(sweep_jobs(sweep)[0], run)
    assert main(["report", str(run)]) == 0
    out = run / "report"
    page = (out / "report.md").read_text()
    for name in ("loss", "acc", "lr"):
        assert_png(out / f"curve_{name}.png")
        assert f"(curve_{name}.png)" in page
    metrics = json.loads((run / "metrics.json").read_text())
    assert f"{metrics['test/acc']:.4g}" in page and "| run | val/acc | val/loss | test/acc" in page
    assert "optimizer.lr=0.01" in page and "Sweep" not in page and "Samples" not in page


def test_report_of_a_sweep_plots_the_objective_against_the_swept_parameter(sweep: Path, tmp_path: Path) -> None:
    page = write_report([sweep], tmp_path / "out")
    text = page.read_text()
    assert_png(tmp_path / "out" / "sweep_optimizer.lr.png")
    assert_png(tmp_path / "out" / "curve_loss.png")
    assert "val/loss vs each swept parameter" in text and "(sweep_optimizer.lr.png)" in text
    assert "| optimizer.lr=0.01 |" in text and "| optimizer.lr=0.5 |" in text  # legend names: what differs
    jobs = sweep_jobs(sweep)
    assert len(jobs) == 2 and "optimizer.lr=0.01" in (jobs[0] / ".hydra" / "overrides.yaml").read_text()
    best = min(json.loads((job / "metrics.json").read_text())["val/loss"] for job in jobs)
    assert f"Best val/loss: {best:.6g}" in text


def swept_runs(sweep: Path) -> list[RunRecord]:
    """The sweep's jobs as the report reads and names them."""
    runs = [read_run(job) for job in sweep_jobs(sweep)]
    name_runs(runs)
    return runs


def synthetic_run(name: str, scalars: dict[str, list[tuple[int, float]]]) -> RunRecord:
    run = RunRecord(Path(name), {}, {}, None, scalars, None)
    run.label = name
    return run


def test_the_loss_figure_shows_every_run_in_its_colour_train_solid_and_val_dashed(sweep: Path) -> None:
    runs = swept_runs(sweep)
    ax = curve_figure(runs, "loss").axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {f"optimizer.lr={lr} · {split}" for lr in ("0.01", "0.5") for split in ("train", "val")}
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [line.get_label() for line in ax.get_lines()]
    for run in runs:
        train, val = lines[f"{run.label} · train"], lines[f"{run.label} · val"]
        assert train.get_linestyle() == "-" and val.get_linestyle() == "--"
        assert train.get_color() == val.get_color()  # one colour per run
        assert list(zip(train.get_xdata(), train.get_ydata())) == run.scalars["train/loss"]
        assert list(zip(val.get_xdata(), val.get_ydata())) == run.scalars["val/loss"]
    assert lines["optimizer.lr=0.01 · train"].get_color() != lines["optimizer.lr=0.5 · train"].get_color()
    assert ax.get_yscale() == "linear" and ax.get_xlabel() == "optimizer step" and ax.get_title() == "loss"


def test_one_run_is_labelled_by_split_and_test_scalars_are_not_drawn(sweep: Path) -> None:
    run = swept_runs(sweep)[:1]
    assert "test/loss" in run[0].scalars
    assert [line.get_label() for line in curve_figure(run, "loss").axes[0].get_lines()] == ["train", "val"]


def test_a_curve_that_spans_two_decades_gets_a_log_axis() -> None:
    falling = synthetic_run("falling", {"train/loss": [(1, 2.0), (2, 0.1), (3, 0.01)], "val/loss": [(3, 0.5)]})
    assert curve_figure([falling], "loss").axes[0].get_yscale() == "log"
    near = synthetic_run("near", {"train/loss": [(1, 2.0), (2, 1.0)], "test/loss": [(2, 0.001)]})
    assert curve_figure([near], "loss").axes[0].get_yscale() == "linear"  # a test value far off is not drawn


def test_the_sweep_figure_plots_each_jobs_objective_on_a_log_axis(sweep: Path) -> None:
    runs = swept_runs(sweep)
    ax = sweep_figure(Sweep(sweep, runs), "optimizer.lr").axes[0]
    (points,) = ax.collections
    drawn = sorted(map(tuple, points.get_offsets().tolist()))
    assert drawn == sorted((float(run.overrides["optimizer.lr"]), run.metrics["val/loss"]) for run in runs)
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "optimizer.lr" and ax.get_ylabel() == "val/loss"
    assert not ax.get_lines()  # each value once: no line of means


def test_a_generative_run_shows_its_last_sample_grid(sweep: Path, tmp_path: Path) -> None:
    import torch
    from torchvision.utils import save_image

    run = tmp_path / "gan_like"
    shutil.copytree(sweep_jobs(sweep)[1], run)
    (run / "samples").mkdir()
    for epoch in (1, 2):  # PNG grids, as the sample-grid callback writes them
        save_image(torch.rand(3, 16, 16), run / "samples" / f"epoch_{epoch:03d}.png")
    page = write_report([run], tmp_path / "out").read_text()
    assert "## Samples" in page and "epoch_002.png" in page and "epoch_001.png" not in page
    assert (tmp_path / "out" / "samples_0.png").read_bytes() == (run / "samples" / "epoch_002.png").read_bytes()


def test_a_resumed_run_keeps_the_last_value_per_step(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    before_kill = [(0, 1.0), (1, 2.0), (2, 3.0)]
    after_resume_from_step_1 = [(2, 30.0), (3, 40.0)]  # a second event file repeats step 2
    for points in (before_kill, after_resume_from_step_1):
        writer = SummaryWriter(str(tmp_path))
        for step, value in points:
            writer.add_scalar("train/loss", value, step)
        writer.close()
    assert read_scalars(tmp_path)["train/loss"] == [(0, 1.0), (1, 2.0), (2, 30.0), (3, 40.0)]


def test_a_folder_that_is_not_a_run_is_refused(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "is neither a ptlab run" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_a_sweep_is_judged_by_its_sweep_objective_and_mode(sweep: Path, tmp_path: Path) -> None:
    """sweep.objective/sweep.mode, not checkpoint.monitor, say what a sweep optimizes (as `ptlab train -m` ranks it)."""
    import yaml

    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy)
    for job in sweep_jobs(copy):
        config_file = job / ".hydra" / "config.yaml"
        config = yaml.safe_load(config_file.read_text())
        assert {k: config["sweep"][k] for k in ("objective", "mode")} == {"objective": "${checkpoint.monitor}", "mode": "${checkpoint.mode}"}
        config["sweep"] = {"objective": "val/acc", "mode": "max"}
        config_file.write_text(yaml.safe_dump(config))
    text = write_report([copy], tmp_path / "out").read_text()
    assert "val/acc vs each swept parameter" in text
    best = max(json.loads((job / "metrics.json").read_text())["val/acc"] for job in sweep_jobs(copy))
    assert f"Best val/acc: {best:.6g}" in text
