"""Sweeps: the summary table and CSV, resumable sweep folders, Optuna presets, joblib and submitit launchers."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import TINY, read_metrics, run_ptlab, subprocess_env
from ptlab.paths import CONFIG_DIR
from ptlab.sweep.dirs import job_key, with_sweep_dir


def only_sweep(workdir: Path, task: str) -> Path:
    """The one sweep folder ``ptlab train -m`` made under outputs/<task>/multirun."""
    folders = list((workdir / "outputs" / task / "multirun").iterdir())
    assert len(folders) == 1, folders
    return folders[0]


def summary(sweep: Path) -> list[dict[str, str]]:
    with (sweep / "summary.csv").open() as f:
        return list(csv.DictReader(f))


def job_with(sweep: Path, override: str) -> Path | None:
    """The job folder whose overrides include ``override``."""
    for folder in sweep.iterdir():
        overrides = folder / ".hydra" / "overrides.yaml"
        if overrides.is_file() and override in (yaml.safe_load(overrides.read_text()) or []):  # may be half-written
            return folder
    return None


def wait_for(path_of, timeout: float, proc: subprocess.Popen) -> Path:
    """Poll until ``path_of()`` names an existing file (the process must still run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = path_of()
        if path is not None and path.exists():
            return path
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else proc.returncode
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_the_sweep_key_is_the_command_and_the_job_key_is_the_config() -> None:
    a = with_sweep_dir(["-m", "task=logreg", "seed=0,1", "hydra/launcher=joblib"], "logreg")[-1]
    b = with_sweep_dir(["seed=0,1", "task=logreg", "sweep.mode=max", "resume=auto", "--multirun"], "logreg")[-1]
    c = with_sweep_dir(["-m", "task=logreg", "seed=0,1,2"], "logreg")[-1]
    assert a == b != c and a.startswith("hydra.sweep.dir=outputs/logreg/multirun/")
    assert with_sweep_dir(["-m", "hydra.sweep.dir=mine"], "cnn") == ["-m", "hydra.sweep.dir=mine"]
    assert with_sweep_dir(["seed=0,1"], "cnn") == ["seed=0,1"]  # not a multirun

    import ptlab

    def key(*overrides: str) -> str:
        return job_key(_root_=ptlab.compose(["task=logreg", *overrides]))

    assert key() == key("resume=auto", "sweep.objective=val/acc") != key("optimizer.lr=0.5")


def test_multirun_prints_and_writes_a_ranked_summary_and_a_rerun_skips_finished_jobs(workdir: Path) -> None:
    args = ("train", "-m", "task=logreg", "optimizer.lr=0.01,0.1,1.0", "seed=0,1", *TINY)
    proc = run_ptlab(*args, cwd=workdir, timeout=300)
    assert proc.returncode == 0, proc.stderr
    sweep = only_sweep(workdir, "logreg")
    rows = summary(sweep)
    assert sorted((r["optimizer.lr"], r["seed"]) for r in rows) == [(lr, s) for lr in ("0.01", "0.1", "1.0") for s in "01"]
    losses = [float(r["val/loss"]) for r in rows]
    assert losses == sorted(losses) and len(set(losses)) > 1  # ranked by sweep.objective (checkpoint.monitor), min first
    assert {r["status"] for r in rows} == {"completed"}
    assert {r["job"] for r in rows} == {p.name for p in sweep.iterdir() if p.is_dir()}  # job folders keyed by config
    assert "6 jobs, best val/loss (min) first" in proc.stdout
    header = next(line for line in proc.stdout.splitlines() if line.startswith("┃ #"))
    assert all(name in header for name in ("optimizer.lr", "seed", "val/loss", "val/acc", "test/acc", "status"))
    finished = {p: p.stat().st_mtime_ns for p in sweep.glob("*/metrics.json")}

    again = run_ptlab(*args, cwd=workdir, timeout=300)
    assert again.returncode == 0, again.stderr
    assert only_sweep(workdir, "logreg") == sweep  # the same command finds the same folder
    assert {r["status"] for r in summary(sweep)} == {"skipped"}
    assert {p: p.stat().st_mtime_ns for p in sweep.glob("*/metrics.json")} == finished


def test_a_killed_sweep_skips_finished_jobs_and_resumes_the_interrupted_one(workdir: Path) -> None:
    args = ["train", "-m", "task=logreg", "trainer.max_epochs=2,3,60", "trainer.progress=plain",
            "trainer.log_every_n_steps=1000"]
    proc = subprocess.Popen([sys.executable, "-m", "ptlab", *args], cwd=workdir, env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def checkpoint_of_the_long_job() -> Path | None:
        for sweep in workdir.glob("outputs/logreg/multirun/*"):
            long = job_with(sweep, "trainer.max_epochs=60")
            return long / "checkpoints" / "last.pt" if long else None
        return None

    try:
        wait_for(checkpoint_of_the_long_job, 120, proc)
        proc.send_signal(signal.SIGTERM)  # what a scheduler or Ctrl-C does
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        proc.kill()
    sweep = only_sweep(workdir, "logreg")
    long = job_with(sweep, "trainer.max_epochs=60")
    assert not (long / "metrics.json").exists()
    assert json.loads((long / "job.json").read_text())["status"] == "interrupted"
    short = [job_with(sweep, f"trainer.max_epochs={n}") for n in (2, 3)]
    written = {p: p.stat().st_mtime_ns for job in short for p in (job / "metrics.json", job / "checkpoints/last.pt")}

    again = run_ptlab(*args, cwd=workdir, timeout=300)
    assert again.returncode == 0, again.stderr
    statuses = {r["trainer.max_epochs"]: r["status"] for r in summary(sweep)}
    assert statuses == {"2": "skipped", "3": "skipped", "60": "resumed"}
    assert {p: p.stat().st_mtime_ns for p in written} == written  # finished jobs were not run again
    assert "resuming from" in (long / "train.log").read_text()
    assert read_metrics(long)["epoch"] == 60


def test_joblib_runs_jobs_side_by_side_on_their_share_of_threads_and_a_failed_job_is_listed(workdir: Path) -> None:
    sweep = workdir / "sweep"
    proc = run_ptlab("train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=-1", "task=logreg",
                     "trainer.max_epochs=1,0", "trainer.max_steps=3", "trainer.progress=plain",
                     f"hydra.sweep.dir={sweep}", cwd=workdir, timeout=300, env={"OMP_NUM_THREADS": "2"})
    assert proc.returncode == 1, proc.stderr  # a job failed; the others still ran and the summary was written
    rows = summary(sweep)
    assert [(r["trainer.max_epochs"], r["status"]) for r in rows] == [("1", "completed"), ("0", "failed")]
    assert "trainer.max_epochs: 0 is out of range" in rows[1]["error"]
    assert "failed" in proc.stdout and "trainer.max_epochs: 0 is out of range" in proc.stdout
    for row in rows:  # n_jobs=-1: one job per CPU, so one torch thread each (the environment said 2)
        assert "sweep job: 1 torch thread" in (sweep / row["job"] / "train.log").read_text()


def optuna_study(sweep: Path, name: str):
    import optuna

    return optuna.load_study(study_name=name, storage=f"sqlite:///{sweep}/optuna.db")


def test_optuna_preset_runs_n_trials_side_by_side_into_its_study(workdir: Path) -> None:
    """hparams_search=cnn_optuna with a fixed and a choice override from the command line, 2 trials in one joblib
    batch: the study in optuna.db holds them, minimizing sweep.objective as sweep.mode says."""
    proc = run_ptlab("train", "-m", "hparams_search=cnn_optuna", *TINY, "sweep.objective=val/loss", "sweep.mode=min",
                     "model.dropout=0.1", "data.batch_size=32,64", "hydra.sweeper.n_trials=2",
                     "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2", cwd=workdir, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "is launching 2 jobs" in proc.stdout + proc.stderr  # one batch of n_jobs trials, side by side
    sweep = only_sweep(workdir, "cnn")
    rows = summary(sweep)
    assert len(rows) == 2 and {r["status"] for r in rows} == {"completed"}
    assert {r["model.dropout"] for r in rows} == {"0.1"} and {r["data.batch_size"] for r in rows} <= {"32", "64"}
    losses = [float(r["val/loss"]) for r in rows]
    assert losses == sorted(losses)
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(losses[0])  # `ptlab train` returned sweep.objective, not val/acc

    study = optuna_study(sweep, "cnn")
    assert study.direction.name == "MINIMIZE"
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 2
    for trial in study.trials:
        assert set(trial.params) == {"optimizer.lr", "optimizer.weight_decay", "data.batch_size"}  # dropout: fixed
        assert trial.user_attrs["model.dropout"] == "0.1"
        row = next(r for r in rows if r["sweep.trial"] == str(trial.number))
        assert float(row["optimizer.lr"]) == trial.params["optimizer.lr"]
        assert list(trial.intermediate_values.values()) == [pytest.approx(float(row["val/loss"]))]  # from the worker


def test_the_median_pruner_stops_a_trial_that_validates_worse_than_the_finished_ones(workdir: Path) -> None:
    import optuna

    sweep = workdir / "sweep"
    sweep.mkdir()
    study = optuna.create_study(study_name="logreg", storage=f"sqlite:///{sweep}/optuna.db", direction="minimize")
    for lr, seed in [(1.0, 0), (1.0, 1), (1e-6, 2)]:  # the order the sampler asks in: the hopeless lr comes last
        study.enqueue_trial({"optimizer.lr": lr, "seed": seed})
    proc = run_ptlab("train", "-m", "hydra/sweeper=optuna", "task=logreg", "optimizer.lr=1e-6,1.0", "seed=range(0,3)",
                     "hydra.sweeper.n_trials=3", "sweep.pruner=median", "sweep.pruner_startup_trials=2",
                     "trainer.max_epochs=5", "trainer.progress=plain", f"hydra.sweep.dir={sweep}", cwd=workdir,
                     timeout=300)
    assert proc.returncode == 0, proc.stderr
    trials = optuna_study(sweep, "logreg").trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "PRUNED"]  # a pruned trial counts to n_trials
    assert len(trials[2].intermediate_values) == 1 and len(trials[0].intermediate_values) == 5
    rows = summary(sweep)
    assert [(r["seed"], r["status"]) for r in rows][-1] == ("2", "pruned")  # ranked after the finished trials
    pruned = sweep / rows[-1]["job"]
    assert read_metrics(pruned)["epoch"] == 1 and read_metrics(sweep / rows[0]["job"])["epoch"] == 5
    assert "optuna: trial 2 pruned after" in (pruned / "train.log").read_text()


def test_the_search_space_reads_hydra_sweeps_and_a_fixed_value_takes_its_key_out(tmp_path: Path) -> None:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from ptlab.errors import ConfigError
    from ptlab.sweep.optuna_study import open_study
    from ptlab.sweep.search_space import search_space

    space = search_space({"optimizer.lr": "tag(log, interval(1e-4, 1e-2))", "model.dropout": "interval(0.0, 0.5)",
                          "data.batch_size": "choice(32, 64, 128)"},
                         ["model.dropout=0.1", "model.depth=range(1,5)", "model.act=choice(relu,'leaky relu')",
                          "trainer.max_epochs=3"])
    assert space.distributions == {
        "optimizer.lr": FloatDistribution(1e-4, 1e-2, log=True),
        "data.batch_size": CategoricalDistribution([32, 64, 128]),
        "model.depth": IntDistribution(1, 4),  # the stop of range(1,5) is excluded, as in Hydra's basic sweeper
        "model.act": CategoricalDistribution(["relu", "leaky relu"])}
    assert space.overrides({"optimizer.lr": 0.001, "model.act": "leaky relu"}) == [
        "optimizer.lr=0.001", "model.act=leaky\\ relu", "model.dropout=0.1", "trainer.max_epochs=3"]
    with pytest.raises(ConfigError, match="glob"):
        search_space(None, ["model=glob(*)"])
    storage = f"sqlite:///{tmp_path}/optuna.db"
    open_study(storage, "s", "max", None)
    with pytest.raises(ConfigError, match="sweep.mode: min, but the study 's'.*pass sweep.mode=max"):
        open_study(storage, "s", "min", None)


def test_an_interrupted_optuna_trial_is_asked_again_with_its_parameters(tmp_path: Path) -> None:
    import optuna
    from optuna.trial import TrialState

    from ptlab.sweep.optuna_study import PRUNED_AT, continue_study

    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="s", storage=storage)
    done = study.ask()
    study.tell(done, done.suggest_float("x", 0, 1))
    cut = study.ask()  # left RUNNING, as by a killed sweep, after its job was pruned
    x = cut.suggest_float("x", 0, 1)
    cut.set_user_attr(PRUNED_AT, 397)
    assert continue_study(optuna.load_study(study_name="s", storage=storage), n_trials=4) == (3, 2)
    again = optuna.load_study(study_name="s", storage=storage)
    assert again.trials[1].state == TrialState.FAIL
    trial = again.ask()
    assert trial.suggest_float("x", 0, 1) == x  # same parameters → same job folder → resume
    assert trial.user_attrs[PRUNED_AT] == 397  # a job found finished and pruned is told PRUNED again


def test_an_optuna_search_interrupted_twice_completes_exactly_n_trials(tmp_path: Path) -> None:
    import optuna
    from optuna.trial import TrialState

    from ptlab.sweep.optuna_study import continue_study

    storage = f"sqlite:///{tmp_path}/optuna.db"
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def sweep(n_trials: int, interrupt_after: int | None) -> None:
        """One run of the sweep: what a real one does with its study (ask, train, tell), cut after some trials."""
        study = optuna.load_study(study_name="s", storage=storage)
        to_go, _ = continue_study(study, n_trials)
        for i in range(to_go):
            trial = study.ask()
            x = trial.suggest_float("x", 0, 1)
            if i == interrupt_after:
                return  # killed mid-trial: left RUNNING
            study.tell(trial, x)

    optuna.create_study(study_name="s", storage=storage)
    sweep(5, interrupt_after=1)
    sweep(5, interrupt_after=0)  # the requeued trial is interrupted again
    sweep(5, interrupt_after=None)
    sweep(5, interrupt_after=None)  # a finished search runs nothing more
    states = [t.state for t in optuna.load_study(study_name="s", storage=storage).trials]
    assert states.count(TrialState.COMPLETE) == 5 and TrialState.RUNNING not in states


@pytest.mark.slow
def test_a_killed_optuna_sweep_continues_to_exactly_n_trials_and_the_killed_trial_resumes(workdir: Path) -> None:
    sweep = workdir / "sweep"
    args = ["train", "-m", "hydra/sweeper=optuna", "task=logreg", "seed=range(0,1000)", "hydra.sweeper.sampler.seed=0",
            "hydra.sweeper.n_trials=3", "trainer.max_epochs=120", "trainer.progress=plain",
            "trainer.log_every_n_steps=1000", f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen([sys.executable, "-m", "ptlab", *args], cwd=workdir, env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        second = wait_for(lambda: job_with(sweep, "sweep.trial=1") if sweep.is_dir() else None, 180, proc)
        wait_for(lambda: second / "checkpoints" / "last.pt", 120, proc)
        proc.kill()  # kill -9 in the middle of the second trial
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert [t.state.name for t in optuna_study(sweep, "logreg").trials] == ["COMPLETE", "RUNNING"]
    assert not (second / "metrics.json").exists()

    again = run_ptlab(*args, cwd=workdir, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "1 trials finished, 1 interrupted (asked again" in again.stderr + again.stdout
    trials = optuna_study(sweep, "logreg").trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]  # 3 complete in all
    assert trials[2].params == trials[1].params and trials[3].params != trials[1].params
    statuses = {r["job"]: r["status"] for r in summary(sweep)}
    assert len(statuses) == 3 and statuses[second.name] == "resumed"
    assert "resuming from" in (second / "train.log").read_text() and read_metrics(second)["epoch"] == 120


@pytest.mark.parametrize("preset, task", [("cnn_optuna", "cnn"), ("transformer_optuna", "transformer")])
def test_optuna_presets_search_keys_of_their_task(preset: str, task: str) -> None:
    from omegaconf import OmegaConf

    import ptlab
    from ptlab.config import validate

    node = yaml.safe_load((CONFIG_DIR / "hparams_search" / f"{preset}.yaml").read_text())
    cfg = ptlab.compose([f"hparams_search={preset}"])
    assert cfg.task == task
    validate(cfg)
    for key in node["hydra"]["sweeper"]["params"]:
        assert OmegaConf.select(cfg, key) is not None, key
    assert "direction" not in node["hydra"]["sweeper"]  # the study's direction is sweep.mode's
    assert {"override /hydra/sweeper": "optuna"} in node["defaults"]


def test_hydra_finds_ptlabs_optuna_sweeper() -> None:
    """configs/hydra/sweeper/optuna.yaml names a class Hydra instantiates (in hydra_plugins, known to Plugins)."""
    from hydra.core.plugins import Plugins
    from hydra.plugins.sweeper import Sweeper

    import ptlab.sweep  # noqa: F401 - registers it (an editable install hides it from Hydra's scan)

    target = yaml.safe_load((CONFIG_DIR / "hydra" / "sweeper" / "optuna.yaml").read_text())["_target_"]
    assert Plugins.is_in_toplevel_plugins_module(target)
    assert issubclass(Plugins.instance().class_name_to_class[target], Sweeper)


def test_slurm_launcher_defaults_render_a_requeueable_sbatch_script(tmp_path: Path, monkeypatch) -> None:
    """hydra/launcher=slurm: time, GPUs and CPUs set, partition left to the cluster, requeues allowed."""
    import submitit
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path}"],
                      return_hydra_config=True)
        params = instantiate(cfg.hydra.launcher).params
    GlobalHydra.instance().clear()
    assert params["partition"] is None and params["max_num_timeout"] > 0
    # The executor that Hydra's SlurmLauncher builds from these parameters; submitit only looks for `srun`.
    (tmp_path / "srun").write_text("#!/bin/sh\n")
    (tmp_path / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    executor = submitit.AutoExecutor(folder=params["submitit_folder"], cluster="slurm",
                                     slurm_max_num_timeout=params["max_num_timeout"])
    base = {"timeout_min", "cpus_per_task", "gpus_per_node", "tasks_per_node", "mem_gb", "nodes", "name",
            "stderr_to_stdout"}
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()
                                  if k not in ("submitit_folder", "max_num_timeout")})
    script = executor._executor._make_submission_file_text("python -m ptlab", "uid")
    for line in ("--time=240", "--gpus-per-node=1", "--cpus-per-task=8", "--signal=USR2@120"):
        assert f"#SBATCH {line}" in script, line
    assert "--partition" not in script


def submitit_tasks(sweep: Path) -> list[int]:
    """Process ids of the submitit job processes working for ``sweep``."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"submitit.core._submit" in cmdline and any(str(sweep).encode() in part for part in cmdline):
            pids.append(int(proc.name))
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the submitit job process through /proc")
def test_submitit_preemption_checkpoints_requeues_and_resumes(workdir: Path) -> None:
    sweep = workdir / "sweep"
    args = ["train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=1", "task=logreg", "seed=0",
            "trainer.max_epochs=60", "trainer.progress=plain", "trainer.log_every_n_steps=1000",
            f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen([sys.executable, "-m", "ptlab", *args], cwd=workdir,
                            env=subprocess_env() | {"OMP_NUM_THREADS": "2"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: next(sweep.glob("*/checkpoints/last.pt"), None), 120, proc)
        for pid in submitit_tasks(sweep):
            os.kill(pid, signal.SIGUSR2)  # SLURM's warning before preemption or the time limit
        out, _ = proc.communicate(timeout=240)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    (row,) = summary(sweep)
    job = sweep / row["job"]
    assert row["status"] == "resumed"
    log = (job / "train.log").read_text()
    assert "resuming from" in log and "sweep job: 1 torch thread" in log  # cpus_per_task=1
    assert read_metrics(job)["epoch"] == 60
    assert "Requeued job" in "".join(p.read_text() for p in sweep.glob(".submitit/*/*_log.out"))
