"""ptlab's Optuna sweeper (``hydra/sweeper=optuna``): Optuna's ask-and-tell API driving Hydra's launcher.

Each batch asks the study for ``n_jobs`` trials, turns their parameters into
overrides (search_space.py), has the launcher run them (side by side under
``hydra/launcher=joblib``), and tells the study what each job returned: its
``sweep.objective`` (ptlab/sweep/job.py). A job that failed (NaN, no objective)
is a FAIL; one the pruner stopped (optuna_trial.py) is PRUNED. The direction is
``sweep.mode``'s. The study continues across runs of the same command
(optuna_study.py), up to ``n_trials`` in all; at the end the best trial goes to
``optimization_results.yaml`` in the sweep folder.

Each job gets one more override, ``sweep.trial=N``: the trial it reports its
validations to. It travels with the job's config, so it reaches the job under
every launcher, and ``sweep.*`` is not part of a job's folder name (dirs.py).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ptlab.errors import ConfigError, PtlabError

if TYPE_CHECKING:
    import optuna
    from hydra.core.utils import JobReturn
    from hydra.types import HydraContext, TaskFunction
    from omegaconf import DictConfig

    from ptlab.sweep.search_space import SearchSpace

log = logging.getLogger("ptlab")

RESULTS = "optimization_results.yaml"


class OptunaSearch:
    """One run of an Optuna search: the state behind hydra_plugins.ptlab_optuna_sweeper.OptunaSweeper."""

    def __init__(self, settings: Mapping[str, Any], *, hydra_context: HydraContext, task_function: TaskFunction,
                 config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.settings = settings
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function)

    def sweep(self, arguments: Sequence[str]) -> None:
        """Run the trials still to go; a bad setting is one line and exit code 2, before anything is written."""
        try:
            study, space, to_go = self._prepare(list(arguments))
        except PtlabError as err:
            print(f"ptlab: error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        job_idx, n_jobs = 0, int(self.settings["n_jobs"])
        while to_go > 0:
            trials = [study.ask(fixed_distributions=space.distributions) for _ in range(min(n_jobs, to_go))]
            self._run_batch(study, space, trials, job_idx)
            job_idx, to_go = job_idx + len(trials), to_go - len(trials)
        write_results(study, Path(str(self.config.hydra.sweep.dir)) / RESULTS)

    def _run_batch(self, study: optuna.Study, space: SearchSpace, trials: list[optuna.Trial], job_idx: int) -> None:
        """Launch one job per trial (side by side if the launcher can), then tell the study how each ended."""
        for trial in trials:
            for key, override in space.fixed.items():  # what else the trial ran with, for Optuna's tools
                trial.set_user_attr(key, override.partition("=")[2])
        reports = bool(self.settings.get("storage"))  # a job can open the study only from a storage
        overrides = [(*space.overrides(t.params), *([f"sweep.trial={t.number}"] * reports)) for t in trials]
        returns = self.launcher.launch(overrides, initial_job_idx=job_idx)
        for trial, ret in zip(trials, returns):
            log.info("optuna: trial %d %s: %s", trial.number, tell(study, trial, ret), trial.params)
        for ret in returns:
            ret.return_value  # noqa: B018 - a job that raised (not one that failed and said so): raise it here

    def _prepare(self, arguments: list[str]) -> tuple[optuna.Study, SearchSpace, int]:
        from hydra.utils import instantiate
        from omegaconf import OmegaConf

        from ptlab.sweep.optuna_study import continue_study, open_study, storage_url, trials_in
        from ptlab.sweep.search_space import search_space

        if importlib.util.find_spec("optuna") is None:
            raise PtlabError("hydra/sweeper=optuna needs Optuna: pip install 'ptlab[sweep]'")
        settings, config = self.settings, self.config
        if int(settings["n_trials"]) < 0 or int(settings["n_jobs"]) < 1:
            raise ConfigError("hydra.sweeper: n_trials must be >= 0 and n_jobs >= 1 (trials per batch)")
        space = search_space(settings.get("params"), arguments)
        if not space.distributions:
            raise ConfigError("hydra.sweeper.params: nothing to search; give a search space, e.g. "
                              "'optimizer.lr=tag(log, interval(1e-4, 1e-1))' (or pick an hparams_search= preset)")
        storage = storage_url(str(settings["storage"]), Path.cwd()) if settings.get("storage") else None
        if storage is None and config.sweep.pruner != "none":
            raise ConfigError("sweep.pruner: the jobs report to the study through its storage; set hydra.sweeper."
                              "storage (e.g. sqlite:///${hydra.sweep.dir}/optuna.db) or sweep.pruner=none")
        name = str(settings.get("study_name") or config.task)
        if storage and storage.startswith("sqlite:///"):
            Path(storage[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        sampler = OmegaConf.to_container(settings["sampler"], resolve=True) if settings.get("sampler") else None
        existing = trials_in(storage, name) if storage else 0
        if sampler and sampler.get("seed") is not None:
            sampler["seed"] = int(sampler["seed"]) + existing  # a continued search draws new points
        study = open_study(storage, name, str(config.sweep.mode), instantiate(sampler) if sampler else None)
        to_go, _ = continue_study(study, int(settings["n_trials"]))
        log.info("optuna: study %r (%s %s) in %s, sampler %s", name, study.direction.name.lower(),
                 config.sweep.objective, storage or "memory", type(study.sampler).__name__)
        return study, space, to_go


def tell(study: optuna.Study, trial: optuna.Trial, ret: JobReturn) -> str:
    """Tell ``study`` how the job of ``trial`` ended: PRUNED if its pruner stopped it, FAIL without a finite
    objective (the job failed, raised, or did not report ``sweep.objective``), else COMPLETE with the value.
    Returns what it told, as a log line says it."""
    from hydra.core.utils import JobStatus
    from optuna.trial import TrialState

    from ptlab.sweep.optuna_study import PRUNED_AT

    value = ret.return_value if ret.status == JobStatus.COMPLETED else None
    stored = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)  # the job's attributes too
    if PRUNED_AT in stored.user_attrs:
        study.tell(trial, state=TrialState.PRUNED)
        return f"pruned after {stored.user_attrs[PRUNED_AT]} training samples"
    if isinstance(value, (int, float)) and math.isfinite(value):
        study.tell(trial, float(value))
        return f"complete: {value:.6g}"
    study.tell(trial, state=TrialState.FAIL)
    return "failed"


def write_results(study: optuna.Study, path: Path) -> None:
    """``optimization_results.yaml``: the best trial's parameters and value (nothing when no trial completed)."""
    import yaml

    from ptlab.atomic import write_text

    completed = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not completed:
        log.warning("optuna: no trial of study %r has completed", study.study_name)
        return
    best = study.best_trial
    log.info("Best value: %s (trial %d: %s)", best.value, best.number, best.params)
    write_text(path, yaml.safe_dump({"name": "optuna", "best_params": best.params, "best_value": best.value,
                                     "best_trial": best.number}, sort_keys=False))
