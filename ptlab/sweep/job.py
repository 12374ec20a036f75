"""One job of a sweep: what makes a sweep resumable, and keeps one failure from ending it.

- A job whose folder holds ``metrics.json`` finished in an earlier run of the sweep:
  it is skipped and its objective is read back.
- Any other job trains with ``resume=auto``: it continues from the checkpoints in
  its folder, if any (its folder is keyed by its config: see dirs.py).
- A job that fails is logged, recorded and returns NaN (Optuna marks the trial
  failed); the sweep goes on. SIGTERM/SIGINT still stop the whole sweep, after a
  checkpoint, and a re-run continues it.
- When a launcher runs jobs side by side on one machine (joblib), each job gets
  its share of the CPU threads; under submitit, ``cpus_per_task`` of them.

Each job leaves ``job.json`` ({"status": ..., "error": ...}) for the summary; a job of an Optuna
trial that the pruner stopped early says ``pruned``.
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ptlab.errors import PtlabError

if TYPE_CHECKING:
    from omegaconf import DictConfig

log = logging.getLogger("ptlab")

RECORD = "job.json"


def check_objective(cfg: DictConfig) -> None:
    """``sweep.objective`` must name a validation or test metric that the run reports."""
    from ptlab.api import build_objective
    from ptlab.errors import ConfigError

    names = ["loss", *build_objective(cfg).metrics]
    valid = [f"{split}/{name}" for split in ("val", "test") for name in names]
    if cfg.sweep.objective not in valid:
        raise ConfigError(f"sweep.objective: {cfg.sweep.objective!r} is not a metric of this run; "
                          f"use one of {', '.join(valid)}")


def objective_value(metrics: Mapping[str, Any], objective: str) -> float | None:
    """The value a sweeper optimizes: ``metrics[sweep.objective]`` (None when the run did not report it)."""
    value = metrics.get(objective)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def write_record(run_dir: Path, status: str, error: str | None = None) -> None:
    from ptlab.atomic import write_json

    write_json(run_dir / RECORD, {"status": status, "error": error})


def run_sweep_job(cfg: DictConfig, hydra_cfg: DictConfig, run_dir: Path) -> float | None:
    """Run (or skip) one job of a multirun in ``run_dir``; return its objective, NaN if it failed."""
    from ptlab.api import train
    from ptlab.atomic import read_json
    from ptlab.engine.trainer import TrainingInterrupted
    from ptlab.sweep.preemption import requeue_on_preemption

    limit_threads(hydra_cfg.launcher)
    finished = read_json(run_dir / "metrics.json")  # torn or missing: not finished, the job resumes
    if isinstance(finished, dict):
        log.info("%s finished in an earlier run of this sweep: skipped (to train it again, delete that folder "
                 "or pass hydra.sweep.dir=NEW)", run_dir)
        write_record(run_dir, "skipped")
        return objective_value(finished, cfg.sweep.objective)
    status = "resumed" if any((run_dir / "checkpoints").glob("*.pt")) else "completed"
    if cfg.resume is None:
        cfg.resume = "auto"
    try:
        with requeue_on_preemption(hydra_cfg.launcher):
            metrics = train(cfg, run_dir=run_dir)
    except TrainingInterrupted as err:
        write_record(run_dir, "interrupted", str(err))
        print(f"ptlab: {err}; run the same command again to continue the sweep", file=sys.stderr)
        sys.exit(err.exit_code)
    except Exception as err:  # noqa: BLE001 - one failed job must not end the sweep; it is logged and recorded
        if isinstance(err, PtlabError):
            log.error("ptlab: error: %s", err)
        else:
            log.exception("job failed")
        write_record(run_dir, "failed", str(err) if isinstance(err, PtlabError) else f"{type(err).__name__}: {err}")
        return math.nan
    if cfg.sweep.get("trial") is not None:
        from ptlab.sweep.optuna_trial import was_pruned

        status = "pruned" if was_pruned(cfg) else status
    write_record(run_dir, status)
    return objective_value(metrics, cfg.sweep.objective)


def thread_share(launcher: Mapping[str, Any]) -> int | None:
    """Torch threads for one job under ``launcher``; None when the launcher runs one job at a time here."""
    target = str(launcher.get("_target_", ""))
    if target.endswith("JoblibLauncher"):
        import joblib

        cpus = joblib.cpu_count()
        n_jobs = int(launcher["n_jobs"])
        side_by_side = n_jobs if n_jobs > 0 else max(1, cpus + 1 + n_jobs)  # joblib: -1 all CPUs, -2 all but one
        return max(1, cpus // side_by_side)
    if "submitit" in target and launcher.get("cpus_per_task"):
        return int(launcher["cpus_per_task"])
    return None


def limit_threads(launcher: Mapping[str, Any]) -> None:
    """Cap torch's intra-op threads at this job's share (never raise them above what the environment set)."""
    share = thread_share(launcher)
    if share is None:
        return
    import torch

    threads = min(share, torch.get_num_threads())
    torch.set_num_threads(threads)
    log.info("sweep job: %d torch thread%s (this job's share of the CPUs)", threads, "" if threads == 1 else "s")
