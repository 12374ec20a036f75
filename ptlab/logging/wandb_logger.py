"""Weights & Biases: the run's config, its ``split/metric`` curves (W&B's step is ptlab's step) and final metrics.

Offline by default: the run is written under ``RUN_DIR/wandb/offline-run-TIME-ID/`` with no
network and no account; ``wandb sync`` uploads it later. ``mode: online`` logs to the W&B server
(after ``wandb login``). The run's summary holds the final metrics (``val/*``: the best
checkpoint's, as in metrics.json).

The run id is kept in ``RUN_DIR/wandb_run.json``: ``resume=...`` continues the same W&B run and
skips the points its earlier processes already wrote (read back from their transaction logs,
see ptlab.logging.wandb_files); a fresh run starts a new W&B run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional

from ptlab.engine.callbacks import Callback
from ptlab.logging.tracking import NewPoints, final_scalars, record_run, recorded_run, run_params, scalars

if TYPE_CHECKING:
    from ptlab.engine.trainer import Trainer

log = logging.getLogger("ptlab")
RECORD = "wandb_run.json"


class WandbLogger(Callback):
    """Weights & Biases config, metrics and summary, offline in the run directory unless mode=online; needs ptlab[track]."""

    requires = {"wandb": "ptlab[track]"}

    def __init__(self, run_dir: Path, project: Optional[str] = None, entity: Optional[str] = None,
                 mode: Literal["offline", "online"] = "offline") -> None:
        """``project``: the W&B project; null: the task's name. ``entity``: a team or user; null: your default."""
        self.run_dir = Path(run_dir)
        self.project, self.entity, self.mode = project, entity, mode
        self.run: Any = None
        self.points = NewPoints()

    def on_fit_start(self, trainer: Trainer) -> None:
        import wandb
        from wandb.sdk.lib.runid import generate_id

        from ptlab.logging import wandb_files

        project = self.project or trainer.cfg.task
        where = {"project": project, "entity": self.entity}
        run_id = recorded_run(self.run_dir / RECORD, trainer.cfg, where)
        if run_id is not None:
            self.points = NewPoints(wandb_files.last_steps(self.run_dir / "wandb", run_id))
        self.run = wandb.init(project=project, entity=self.entity, mode=self.mode, id=run_id or generate_id(),
                              resume="allow" if run_id else None, name=self.run_dir.name, dir=str(self.run_dir),
                              settings=wandb.Settings(console="off", silent=True))  # train.log has the console
        self.run.config.update(run_params(trainer.cfg, trainer.model), allow_val_change=True)
        record_run(self.run_dir / RECORD, self.run.id, where)
        started = "resumed" if run_id else "started"
        if self.mode == "online":
            log.info("wandb: %s run %s: %s", started, self.run.id, self.run.url)
        else:
            log.info("wandb: %s offline run %s; upload it with: wandb sync %s", started, self.run.id,
                     Path(self.run.dir).parent)

    def on_log(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        self._log(scalars(metrics), trainer.state.step)

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        self._log(scalars(metrics), trainer.state.step)

    def on_fit_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self._log({k: v for k, v in scalars(metrics).items() if k.startswith("test/")}, trainer.state.step)
        self.run.summary.update(final_scalars(metrics))
        self._finish(0)

    def on_interrupt(self, trainer: Trainer) -> None:
        self._finish(1)

    def on_exception(self, trainer: Trainer, error: BaseException) -> None:
        self._finish(1)

    def _finish(self, exit_code: int) -> None:
        """End the run, and wait until W&B's service process has written its files: it goes on writing after
        ``finish()`` returns, and a resume in this process (ptlab.train again) reads them."""
        import wandb

        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None
            wandb.teardown()

    def _log(self, values: dict[str, float], step: int) -> None:
        new = self.points.take(values, step)
        if new:
            self.run.log(new, step=step)
