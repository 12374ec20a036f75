"""An Optuna study that continues across runs of the same sweep (the ``hparams_search=`` presets).

The study lives in the sweep folder (``sqlite:///${hydra.sweep.dir}/optuna.db``), so
running the same command again finds it, and:

- ``hydra.sweeper.n_trials`` is the study's total: a re-run of an interrupted
  search runs only the trials still to go;
- trials that an interrupted run left RUNNING are marked failed and their
  parameters (and attributes) queued again: the same parameters make the same
  job config, so the same job folder, where the job resumes from its
  checkpoints. Their numbers are kept in the study (``ptlab_requeued_trials``),
  so they never count towards ``n_trials``, however often the search is
  interrupted;
- the sampler's seed is offset by the number of trials already in the study, so
  a continued search draws new points instead of replaying the first run's.

Complete, pruned and failed trials count towards ``n_trials``, as in Optuna.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ptlab.errors import ConfigError

if TYPE_CHECKING:
    import optuna

log = logging.getLogger("ptlab")

REQUEUED = "ptlab_requeued_trials"  # study attribute: numbers of the trials an interruption left unfinished
PRUNED_AT = "ptlab_pruned_at"  # trial attribute, set by the job that the pruner stopped: the step it stopped at
DIRECTIONS = {"min": "minimize", "max": "maximize"}  # sweep.mode → the study's direction


def storage_url(url: str, cwd: str | Path) -> str:
    """``url`` with a relative SQLite path made absolute from ``cwd`` (where the sweep was started), so that a
    job running in another folder (a submitit job) opens the same file."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or Path(url[len(prefix):]).is_absolute():
        return url
    return prefix + str(Path(cwd) / url[len(prefix):])


def quiet_storage_logs() -> None:
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines when a storage opens say nothing to a user


def trials_in(storage: str, study_name: str) -> int:
    """How many trials the study holds already (0: no such study yet)."""
    import optuna

    quiet_storage_logs()
    try:
        return len(optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False))
    except KeyError:  # no such study yet
        return 0
    except RuntimeError as err:  # e.g. a study written by optuna 2.x (hydra-optuna-sweeper): its tables need upgrading
        raise ConfigError(f"hydra.sweeper.storage: {storage}: {err}") from None


def open_study(storage: str, study_name: str, mode: str, sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    """The study ``study_name`` in ``storage``, made if it is not there; its direction must be ``sweep.mode``'s."""
    import optuna

    quiet_storage_logs()
    try:
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
    except KeyError:  # no such study yet
        return optuna.create_study(storage=storage, study_name=study_name, sampler=sampler, direction=DIRECTIONS[mode])
    found = study.direction.name.lower()
    if found != DIRECTIONS[mode]:
        mode_of_study = next(m for m, d in DIRECTIONS.items() if d == found)
        raise ConfigError(f"sweep.mode: {mode}, but the study {study_name!r} in {storage} was made to {found}; "
                          f"pass sweep.mode={mode_of_study} to continue it, or hydra.sweep.dir=NEW for a new study")
    return study


def continue_study(study: optuna.Study, n_trials: int) -> tuple[int, int]:
    """Requeue the interrupted trials of ``study``; return (trials still to go, trials in the study)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    requeued = set(study.user_attrs.get(REQUEUED, []))  # failed by us for an interruption, not by the job
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            or (t.state == TrialState.FAIL and t.number not in requeued)]
    stale = [t for t in trials if t.state == TrialState.RUNNING]
    for trial in stale:
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs=trial.user_attrs)
    study.set_user_attr(REQUEUED, sorted(requeued | {t.number for t in stale}))
    to_go = max(0, n_trials - len(done))
    if trials:
        log.info("optuna: study %r continues: %d trials finished, %d interrupted (asked again with the same "
                 "parameters), %d to go", study.study_name, len(done), len(stale), to_go)
    return to_go, len(trials)
