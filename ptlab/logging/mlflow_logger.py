"""MLflow tracking: the run's parameters, its ``split/metric`` curves, final metrics and summaries as artifacts.

Where: ``logger.mlflow.tracking_uri`` (a server, ``sqlite:///mlflow.db``, ...), else the
``MLFLOW_TRACKING_URI`` environment variable, else a file store in the run directory
(``RUN_DIR/mlruns``). MLflow 3 keeps its file store in maintenance mode and refuses it unless
``MLFLOW_ALLOW_FILE_STORE=true``; ptlab sets that for a local file store it is asked to use:
a store of plain files needs no database schema (a new SQLite store costs seconds of migrations
per run) and moves with the run directory, like ``tb/`` and ``metrics.csv``.

Metric names are ptlab's, but for the characters MLflow refuses: ``@`` becomes ``_at_``
(``val/ndcg@10`` → ``val/ndcg_at_10``) and any other one ``_``. The id of the tracking run is kept
in ``RUN_DIR/mlflow_run.json``: ``resume=...`` continues that run, and skips the points the run
already has (see ptlab.logging.tracking); a fresh run starts a new tracking run.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ptlab.engine.callbacks import Callback
from ptlab.logging.tracking import NewPoints, final_scalars, record_run, recorded_run, run_params, scalars

if TYPE_CHECKING:
    from ptlab.engine.trainer import Trainer

log = logging.getLogger("ptlab")
RECORD = "mlflow_run.json"
BATCH = 100  # MLflow takes at most 100 params and 1000 metrics per log_batch call


def mlflow_name(name: str) -> str:
    """``name`` with the characters MLflow refuses in metric and param names replaced (``@`` → ``_at_``)."""
    return re.sub(r"[^/\w.\- ]", "_", name.replace("@", "_at_"))


class MLflowLogger(Callback):
    """MLflow params, metrics and artifacts, in a file store in the run directory unless tracking_uri; needs ptlab[track]."""

    requires = {"mlflow": "ptlab[track]"}

    def __init__(self, run_dir: Path, tracking_uri: Optional[str] = None, experiment: Optional[str] = None) -> None:
        """``experiment``: the MLflow experiment; null: the task's name."""
        self.run_dir = Path(run_dir)
        self.tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None
        self.experiment = experiment
        self.client: Any = None
        self.run_id: str | None = None
        self.points = NewPoints()

    def on_fit_start(self, trainer: Trainer) -> None:
        from mlflow.tracking import MlflowClient

        uri = self.tracking_uri or (self.run_dir / "mlruns").resolve().as_uri()
        if re.match(r"^(file:|[^:]*$)", uri):  # a local file store: the one MLflow 3 only uses when allowed
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        self.client = MlflowClient(uri)
        where = {"tracking_uri": self.tracking_uri}  # None: this run directory's own store
        run = self._existing(recorded_run(self.run_dir / RECORD, trainer.cfg, where))
        resumed = run is not None
        if resumed:
            self.client.update_run(run.info.run_id, status="RUNNING")
        else:
            run = self.client.create_run(self._experiment_id(trainer.cfg.task), run_name=self.run_dir.name,
                                         tags={"ptlab.run_dir": str(self.run_dir.resolve())})
            record_run(self.run_dir / RECORD, run.info.run_id, where)
        self.run_id = run.info.run_id
        log.info("mlflow: %s run %s in %s", "resumed" if resumed else "started", self.run_id, uri)
        self.points = NewPoints({key: self._last_step(key) for key in run.data.metrics})
        self._log_params(run_params(trainer.cfg, trainer.model), run.data.params)
        from ptlab.logging.model_summary import summarize

        self.client.log_dict(self.run_id, summarize(trainer.model), "model_summary.json")

    def on_log(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        self._log(scalars(metrics), trainer.state.step)

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        self._log(scalars(metrics), trainer.state.step)

    def on_fit_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        """The test metrics on their curves, every final value as ``final/NAME`` (``val/*`` are the best
        checkpoint's), metrics.json and the run's config as artifacts."""
        step = trainer.state.step
        self._log({k: v for k, v in scalars(metrics).items() if k.startswith("test/")}, step)
        self._log({f"final/{k}": v for k, v in final_scalars(metrics).items()}, step)
        self.client.log_dict(self.run_id, metrics, "metrics.json")
        config = self.run_dir / ".hydra" / "config.yaml"
        if config.is_file():
            self.client.log_artifact(self.run_id, str(config))
        self.client.set_terminated(self.run_id, "FINISHED")

    def on_interrupt(self, trainer: Trainer) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, "KILLED")

    def on_exception(self, trainer: Trainer, error: BaseException) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, "FAILED")

    def _existing(self, run_id: str | None) -> Any:
        """The tracking run ``run_id`` (None if there is none, or it was deleted)."""
        from mlflow.exceptions import MlflowException

        if run_id is None:
            return None
        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return None
        return run if run.info.lifecycle_stage == "active" else None

    def _experiment_id(self, task: str) -> str:
        """The id of the experiment (made if it is new; another job of a sweep may make it at the same time)."""
        from mlflow.exceptions import MlflowException

        name = self.experiment or task
        for _ in range(2):
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                return found.experiment_id
            try:
                return self.client.create_experiment(name)
            except MlflowException:  # made meanwhile by another process: read it again
                continue
        raise RuntimeError(f"MLflow experiment {name!r} could be neither found nor created")

    def _last_step(self, key: str) -> int:
        return max((m.step for m in self.client.get_metric_history(self.run_id, key)), default=-1)

    def _log_params(self, params: dict[str, Any], logged: dict[str, str]) -> None:
        """Params the run lacks; a value that changed on resume (params are immutable) as tag ``resumed/KEY``."""
        from mlflow.entities import Param, RunTag

        values = {mlflow_name(k): str(v) for k, v in params.items()}
        new = [Param(k, v) for k, v in values.items() if k not in logged]
        changed = [RunTag(f"resumed/{k}", v) for k, v in values.items() if k in logged and logged[k] != v]
        for i in range(0, max(len(new), len(changed)), BATCH):
            self.client.log_batch(self.run_id, params=new[i:i + BATCH], tags=changed[i:i + BATCH])

    def _log(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        new = self.points.take({mlflow_name(k): v for k, v in values.items()}, step)
        if new:
            now = int(time.time() * 1000)
            self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in new.items()])
