"""Sweeps (``ptlab train -m``) on Hydra's sweepers and launchers.

    dirs.py            where a sweep and its jobs live: keys of the command line and of each job's config
    job.py             one job: skip it if finished, else train with resume=auto; a failure does not end the sweep
    preemption.py      under submitit (SLURM): preemption stops training at a checkpoint, then the job is requeued
    summary.py         the Hydra callback that prints the table of all jobs and writes summary.csv
    optuna_sweeper.py  ptlab's Optuna sweeper (hydra/sweeper=optuna, the ``hparams_search=`` presets): ask, launch, tell
    search_space.py    its search space, from Hydra's override grammar (choice, range, interval, tag(log, ...))
    optuna_study.py    its study, continued across re-runs of the same sweep: n_trials in all, interrupted trials again
    optuna_trial.py    the job's side of a trial: report each validation, stop when the pruner says so

Launchers run jobs in other processes (joblib workers, submitit jobs) that unpickle
the summary callback before they resolve ``hydra.sweep.subdir``; importing this
package registers ptlab's resolvers there. It also registers the Optuna sweeper
with Hydra: Hydra finds plugins by scanning the ``hydra_plugins`` folders on
``sys.path``, and an editable install (``pip install -e .``) maps ours without one.
"""

from ptlab.hydra_support import register_resolvers


def _register_optuna_sweeper() -> None:
    from hydra.core.plugins import Plugins

    from hydra_plugins.ptlab_optuna_sweeper import OptunaSweeper

    Plugins.instance().register(OptunaSweeper)


register_resolvers()
_register_optuna_sweeper()
