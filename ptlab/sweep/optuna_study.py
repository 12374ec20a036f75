"""An Optuna search that continues across runs of the same sweep (the ``hparams_search=`` presets).

The presets keep the study in the sweep folder (``storage:
sqlite:///${hydra.sweep.dir}/optuna.db``) and add this Hydra callback, which
runs before Hydra's Optuna sweeper is made:

- ``hydra.sweeper.n_trials`` becomes the study's total: a re-run of an
  interrupted search runs only the trials still to go (the sweeper alone would
  run ``n_trials`` more each time);
- trials that an interrupted run left RUNNING are marked failed and their
  parameters queued again: the same parameters make the same job config, so the
  same job folder, where the job resumes from its checkpoints. Their numbers are
  kept in the study (``ptlab_requeued_trials``), so they never count towards
  ``n_trials``, however often the search is interrupted;
- the sampler's seed is offset by the number of trials already in the study, so
  a continued search draws new points instead of replaying the first run's.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

log = logging.getLogger("ptlab")

REQUEUED = "ptlab_requeued_trials"  # study attribute: numbers of the trials an interruption left unfinished


class ContinueStudy(Callback):
    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        from omegaconf import read_write

        sweeper = config.hydra.sweeper
        if sweeper.get("storage") is None:
            return
        Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)  # where the SQLite file goes
        to_go, existing = continue_study(str(sweeper.storage), str(sweeper.study_name), int(sweeper.n_trials))
        with read_write(sweeper):
            sweeper.n_trials = to_go
            if existing and sweeper.sampler.get("seed") is not None:
                sweeper.sampler.seed = int(sweeper.sampler.seed) + existing


def continue_study(storage: str, study_name: str, n_trials: int) -> tuple[int, int]:
    """Requeue the interrupted trials of an existing study; return (trials still to go, trials in the study)."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines on import say nothing to a user
    import optuna
    from optuna.trial import TrialState

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:  # no such study yet
        return n_trials, 0
    trials = study.trials
    requeued = set(study.user_attrs.get(REQUEUED, []))  # failed by us for an interruption, not by the job
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            or (t.state == TrialState.FAIL and t.number not in requeued)]
    stale = [t for t in trials if t.state == TrialState.RUNNING]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # enqueue_trial, in optuna 2.x
        for trial in stale:
            study.tell(trial.number, state=TrialState.FAIL)
            study.enqueue_trial(trial.params)
    study.set_user_attr(REQUEUED, sorted(requeued | {t.number for t in stale}))
    to_go = max(0, n_trials - len(done))
    log.info("optuna: study %r continues: %d trials finished, %d interrupted (asked again with the same "
             "parameters), %d to go", study_name, len(done), len(stale), to_go)
    return to_go, len(trials)
