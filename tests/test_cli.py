"""The CLI contract: subcommands, Hydra behind `train`, the run directory, bad input → exit 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import TINY, read_metrics, run_ptlab, subprocess_env, tensorboard_hparams, tensorboard_scalars, train_here


def test_help_and_list_do_not_import_heavy_modules(workdir: Path) -> None:
    code = (
        "import sys, contextlib, io\n"
        "from ptlab.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    assert main(['--help']) == 0 and main(['list']) == 0\n"
        "assert 'simple_cnn' in out.getvalue() and 'breast_cancer' in out.getvalue()\n"
        "heavy = [m for m in ('torch', 'torchvision', 'tensorboard', 'torchmetrics', 'sklearn') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=workdir, env=subprocess_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_console_script_and_module_entry_point(workdir: Path) -> None:
    script = Path(sys.executable).parent / "ptlab"
    proc = subprocess.run([str(script), "--help"], cwd=workdir, capture_output=True, text=True)
    assert proc.returncode == 0 and "ptlab COMMAND" in proc.stdout
    assert "ptlab COMMAND" in run_ptlab("--help", cwd=workdir).stdout


def test_list_one_group_and_unknown_group(workdir: Path) -> None:
    out = run_ptlab("list", "optimizers", cwd=workdir).stdout
    assert "adamw" in out and "simple_cnn" not in out and "lr=" in out
    bad = run_ptlab("list", "modles", cwd=workdir)
    assert bad.returncode == 2 and "Did you mean 'models'" in bad.stderr


def test_train_writes_the_run_directory(workdir: Path) -> None:
    run_dir = workdir / "run"
    proc = run_ptlab("train", "task=logreg", "trainer.max_epochs=2", "trainer.log_every_n_steps=5",
                     "trainer.progress=plain", f"hydra.run.dir={run_dir}", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", ".hydra/hydra.yaml", "train.log",
                 "metrics.json", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (run_dir / name).is_file(), name
    metrics = read_metrics(run_dir)
    assert {"val/acc", "val/loss", "test/acc", "test/loss", "epoch", "step", "train_seconds"} <= metrics.keys()
    assert metrics["epoch"] == 2 and metrics["step"] == 26
    log = (run_dir / "train.log").read_text()
    assert "train/loss" in log and "val/acc" in log
    scalars = tensorboard_scalars(run_dir / "tb")
    assert {"train/loss", "train/lr", "val/loss", "val/acc", "test/acc"} <= scalars.keys()
    assert [step for step, _ in scalars["val/acc"]][:2] == [13, 26]
    assert abs(scalars["test/acc"][-1][1] - metrics["test/acc"]) < 1e-6
    assert "_hparams_/session_start_info" in tensorboard_hparams(run_dir / "tb")
    assert "task=logreg" in (run_dir / ".hydra/overrides.yaml").read_text()


def test_default_run_dirs_are_unique_even_in_the_same_second(workdir: Path) -> None:
    args = [sys.executable, "-m", "ptlab", "train", "task=logreg", *TINY]
    procs = [subprocess.Popen(args, cwd=workdir, env=subprocess_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        assert proc.wait(timeout=180) == 0, proc.stderr.read()
    runs = sorted((workdir / "outputs" / "logreg").iterdir())
    assert len(runs) == 2
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(_\d+)?", r.name) for r in runs)
    assert all((r / "metrics.json").exists() for r in runs)


def test_cfg_job_prints_the_composed_config(workdir: Path) -> None:
    proc = run_ptlab("train", "task=linreg", "optimizer.lr=0.01", "--cfg", "job", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "task: linreg" in proc.stdout and "lr: 0.01" in proc.stdout and "name: diabetes" in proc.stdout
    assert not (workdir / "outputs").exists()


def test_hydra_help_lists_config_groups(workdir: Path) -> None:
    proc = run_ptlab("train", "--help", cwd=workdir)
    assert proc.returncode == 0
    assert "ptlab train" in proc.stdout and "task: cnn, gan, linreg, logreg" in proc.stdout


def test_shell_completion(workdir: Path) -> None:
    install = run_ptlab("train", "-sc", "install=bash", cwd=workdir)
    assert install.returncode == 0 and "hydra_bash_completion" in install.stdout

    def query(line: str) -> str:
        env = subprocess_env() | {"COMP_LINE": line, "COMP_POINT": str(len(line))}
        proc = subprocess.run([sys.executable, "-m", "ptlab", "-sc", "query=bash"], cwd=workdir, env=env,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert query("ptlab ").split() == ["train", "eval", "list", "generate", "recommend", "predict", "translate",
                                     "export", "lr-find", "report"]
    assert {"task=cnn", "task=gan", "task=linreg", "task=logreg"} <= set(query("ptlab train task=").split())


BAD_INPUT = [
    (["task=foo"], "task: unknown option 'foo'"),
    (["trainer.max_epoch=3"], "trainer.max_epoch: unknown key. Did you mean 'max_epochs'?"),
    (["trainer.max_epochs=abc"], "trainer.max_epochs: expected an integer"),
    (["optimizer.lr=-0.1"], "optimizer.lr: -0.1 is out of range"),
    (["data.batch_size=0"], "data.batch_size: 0 is out of range"),
    (["model=simple_cnnn"], "Did you mean 'simple_cnn'?"),
    (["task=linreg", "data=csv", "data.train_path=missing.csv", "data.target=y"], "data.train_path: 'missing.csv' does not exist"),
    (["task=linreg", "data=csv"], "data.train_path: required"),
    (["checkpoint.monitor=val/accuracy"], "checkpoint.monitor: 'val/accuracy' is not a metric"),
    (["trainer.precision=16", "device=cpu"], "trainer.precision: 16"),
    (["device=tpu"], "device: 'tpu' is not a device"),
]
if not torch.cuda.is_available():
    BAD_INPUT.append((["device=cuda"], "device: cuda was asked for but CUDA is not available"))


@pytest.mark.parametrize("overrides, message", BAD_INPUT, ids=[" ".join(o) for o, _ in BAD_INPUT])
def test_bad_input_is_one_message_and_exit_2(workdir: Path, overrides: list[str], message: str) -> None:
    run_dir = workdir / "run"
    proc = run_ptlab("train", *overrides, f"hydra.run.dir={run_dir}", cwd=workdir)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.count("ptlab: error:") == 1
    assert not run_dir.exists(), "bad input must not leave a run directory behind"


def test_eval_reproduces_test_metrics_and_rejects_missing_checkpoint(workdir: Path) -> None:
    run_dir = workdir / "run"
    train_here("task=logreg", "trainer.max_epochs=3", run_dir=run_dir)
    proc = run_ptlab("eval", f"ckpt={run_dir}/checkpoints/best.pt", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    evaluated = read_metrics_file(run_dir / "eval_test.json")
    trained = read_metrics(run_dir)
    assert evaluated["test/acc"] == pytest.approx(trained["test/acc"], abs=1e-6)
    assert evaluated["test/loss"] == pytest.approx(trained["test/loss"], rel=1e-5)
    missing = run_ptlab("eval", f"ckpt={workdir}/nope.pt", cwd=workdir)
    assert missing.returncode == 2 and "ckpt:" in missing.stderr and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr


def read_metrics_file(path: Path) -> dict:
    import json

    return json.loads(path.read_text())


def test_unknown_command_suggests(workdir: Path) -> None:
    proc = run_ptlab("trian", cwd=workdir)
    assert proc.returncode == 2 and "Did you mean 'train'" in proc.stderr


def test_progress_bar_mode_shows_a_bar_and_a_final_table(workdir: Path) -> None:
    proc = run_ptlab("train", "task=logreg", "trainer.max_epochs=2", "trainer.progress=bar",
                     f"hydra.run.dir={workdir / 'run'}", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "26/26" in proc.stdout and "━" in proc.stdout  # the bar, completed
    assert "step 13/26 | train/loss" not in proc.stdout  # per-step lines go to train.log only
    assert "step 13/26 | train/loss" in (workdir / "run" / "train.log").read_text()
    assert "test/acc" in proc.stdout and "┃ metric" in proc.stdout


def test_version_is_ptlabs_and_train_version_stays_hydras(workdir: Path) -> None:
    import ptlab

    proc = run_ptlab("--version", cwd=workdir)
    assert proc.returncode == 0 and proc.stdout == f"ptlab {ptlab.__version__}\n", proc.stderr
    hydra = run_ptlab("train", "--version", cwd=workdir)
    assert hydra.returncode == 0 and hydra.stdout.startswith("Hydra "), hydra.stderr


def _table_row(out: str, name: str) -> str:
    """The first line of a Rich table row whose first cell is ``name``."""
    return next(line for line in out.splitlines() if re.match(rf"│ {re.escape(name)} +│", line))


def test_list_shows_the_tasks_first_and_list_tasks_only_them(workdir: Path) -> None:
    out = run_ptlab("list", cwd=workdir, check=True).stdout
    titles = [line.strip() for line in out.splitlines() if line.strip().isalpha()]
    assert titles == ["tasks", "models", "datasets", "optimizers", "schedulers", "objectives", "metrics", "loggers"]
    for name, model, data in [("linreg", "linear_regression", "diabetes"), ("logreg", "logistic_regression", "breast_cancer"),
                              ("cnn", "simple_cnn", "digits"), ("rnn", "rnn", "python_docs"),
                              ("transformer", "transformer", "python_docs"), ("gan", "dcgan", "digits")]:
        row = _table_row(out, name)
        assert model in row and data in row, row
    assert "Logistic regression," in _table_row(out, "logreg")  # the first comment line of configs/task/logreg.yaml
    only = run_ptlab("list", "tasks", cwd=workdir, check=True).stdout
    assert "breast_cancer" in _table_row(only, "logreg") and "config keys" not in only and "adamw" not in only
    assert run_ptlab("list", "task", cwd=workdir, check=True).stdout == only
    bad = run_ptlab("list", "taks", cwd=workdir)
    assert bad.returncode == 2 and "Did you mean 'tasks'" in bad.stderr and "Traceback" not in bad.stderr


def test_list_tasks_reads_descriptions_and_defaults_from_the_task_files(tmp_path: Path) -> None:
    from ptlab.catalog import tasks
    from ptlab.errors import ConfigError

    (tmp_path / "task").mkdir()
    (tmp_path / "train.yaml").write_text("defaults:\n  - data: digits\n  - model: simple_cnn\n  - task: a\n  - _self_\n")
    (tmp_path / "task" / "a.yaml").write_text(
        "# @package _global_\n# A two-line\n# description.\n# Not this.\ndefaults:\n  - override /model: rnn  # not this\n")
    (tmp_path / "task" / "b.yaml").write_text("\n# One line.\ndefaults:\n  - /data: python_docs\n")
    assert tasks(tmp_path) == [("a", "A two-line description.", "rnn", "digits"),
                               ("b", "One line.", "simple_cnn", "python_docs")]
    (tmp_path / "task" / "c.yaml").write_text("defaults: [\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: not valid YAML .*fix the file"):
        tasks(tmp_path)


def test_a_refused_run_in_the_default_folder_leaves_no_empty_folders(workdir: Path) -> None:
    (workdir / "rows.csv").write_text("a,b\n1,x\n2,y\n")
    proc = run_ptlab("train", "task=logreg", "data=csv", "data.train_path=rows.csv", "data.target=nope", cwd=workdir)
    assert proc.returncode == 2 and "data.target: column 'nope' is not in rows.csv" in proc.stderr
    assert sorted(p.name for p in workdir.iterdir()) == ["rows.csv"]  # not even an empty outputs/logreg/


def test_eval_refuses_data_other_than_the_checkpoint_was_trained_on(workdir: Path) -> None:
    run_dir = workdir / "run"
    train_here("task=linreg", "trainer.max_epochs=1", run_dir=run_dir)
    other = run_ptlab("eval", f"ckpt={run_dir}/checkpoints/best.pt", "data.split_seed=7", cwd=workdir)
    assert other.returncode == 2 and "Traceback" not in other.stderr
    assert "data.split_seed=7: the data no longer matches the one the checkpoint was trained on (target_mean" in other.stderr
