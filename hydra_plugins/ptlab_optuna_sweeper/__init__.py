"""ptlab's Optuna sweeper as Hydra finds it (``hydra/sweeper=optuna``, configs/hydra/sweeper/optuna.yaml).

Hydra instantiates a sweeper only from a class in the ``hydra_plugins`` namespace
package, which it imports whole at every start: so this module imports nothing
heavy and hands the work to :mod:`ptlab.sweep.optuna_sweeper` once a sweep runs.
"""

from __future__ import annotations

from typing import Any, List

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class OptunaSweeper(Sweeper):
    """A Hydra sweeper on Optuna's ask-and-tell API; its settings are the keys of configs/hydra/sweeper/optuna.yaml."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.search: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from ptlab.sweep.optuna_sweeper import OptunaSearch

        self.search = OptunaSearch(self.settings, hydra_context=hydra_context, task_function=task_function,
                                   config=config)

    def sweep(self, arguments: List[str]) -> None:
        self.search.sweep(arguments)
