"""The job's side of an Optuna trial: report each validation to the trial, and stop when the pruner says so.

ptlab's Optuna sweeper gives each job ``sweep.trial=N``; the job finds the study
through its Hydra config (``hydra.sweeper.storage``, ``hydra.sweeper.study_name``),
which every launcher ships with the job. At each validation the job reports
``val/<metric of sweep.objective>`` (the direction of ``sweep.mode``, whatever
``checkpoint.monitor`` is) at the number of training samples seen so far: the same
at the end of an epoch for every trial, whatever its batch size, so the pruner
compares like with like. With ``sweep.pruner=median``, a trial whose value is worse
than the median of the finished trials' at the same point (after
``sweep.pruner_startup_trials`` have finished) stops there, as early stopping does:
its checkpoint says so, it writes its test metrics, and the sweeper tells the
study PRUNED.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping

from ptlab.engine.callbacks import Callback
from ptlab.errors import ConfigError
from ptlab.sweep.optuna_study import PRUNED_AT, quiet_storage_logs, storage_url

if TYPE_CHECKING:
    import optuna

    from ptlab.engine.trainer import Trainer


def build_pruner(sweep: Mapping[str, Any]) -> optuna.pruners.BasePruner:
    """``sweep.pruner``: ``none`` (no trial stops early) or ``median`` (Optuna's MedianPruner)."""
    import optuna

    if sweep.get("pruner", "none") == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=int(sweep.get("pruner_startup_trials", 5)))
    return optuna.pruners.NopPruner()


def open_trial(cfg: Any) -> optuna.Trial:
    """The trial ``cfg.sweep.trial`` of this job's study (only inside a job of ptlab's Optuna sweeper)."""
    import optuna
    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get() if HydraConfig.initialized() else None
    if hydra is None or not hydra.sweeper.get("storage"):
        raise ConfigError("sweep.trial: set by ptlab's Optuna sweeper for its jobs, whose study is in "
                          "hydra.sweeper.storage; leave it null")
    quiet_storage_logs()
    storage = optuna.storages.get_storage(storage_url(str(hydra.sweeper.storage), hydra.runtime.cwd))
    name = str(hydra.sweeper.get("study_name") or cfg.task)
    study = optuna.load_study(study_name=name, storage=storage, pruner=build_pruner(cfg.sweep))
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(name),
                                                                int(cfg.sweep.trial))
    return optuna.trial.Trial(study, trial_id)


def was_pruned(cfg: Any) -> bool:
    """Whether the pruner stopped this job's trial (its job reported so)."""
    return PRUNED_AT in open_trial(cfg).user_attrs


class ReportToTrial(Callback):
    """Report each validation's ``metric`` to ``trial``; stop training when the study's pruner says so."""

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial, self.metric = trial, metric

    @classmethod
    def of(cls, cfg: Any) -> ReportToTrial:
        """The callback of this job's trial, reporting the validation metric of ``sweep.objective``."""
        return cls(open_trial(cfg), f"val/{str(cfg.sweep.objective).partition('/')[2]}")

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return
        step = trainer.state.samples
        self.trial.report(float(value), step)
        if self.trial.should_prune():
            self.trial.set_user_attr(PRUNED_AT, step)
            trainer.request_stop(f"optuna: trial {self.trial.number} pruned after {step} training samples: "
                                 f"{self.metric} {value:.6g} is worse than the median of the finished trials there")
