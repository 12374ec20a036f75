"""Sweeps (``ptlab train -m``) on Hydra's sweepers and launchers.

    dirs.py            where a sweep and its jobs live: keys of the command line and of each job's config
    job.py             one job: skip it if finished, else train with resume=auto; a failure does not end the sweep
    preemption.py      under submitit (SLURM): preemption stops training at a checkpoint, then the job is requeued
    summary.py         the Hydra callback that prints the table of all jobs and writes summary.csv
    optuna_study.py    a callback that continues an Optuna study across re-runs (``hparams_search=``)

Launchers run jobs in other processes (joblib workers, submitit jobs) that unpickle
the summary callback before they resolve ``hydra.sweep.subdir``; importing this
package registers ptlab's resolvers there.
"""

from ptlab.hydra_support import register_resolvers

register_resolvers()
