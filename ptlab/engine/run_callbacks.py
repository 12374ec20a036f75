"""Which callbacks a run's config asks for: console, early stopping, checkpoints, the loggers (TensorBoard,
metrics.csv, ...), metrics.json, the objective's own (sample grids) and the profiler."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ptlab.atomic import write_text
from ptlab.config import checkpoint_settings, trainer_settings
from ptlab.engine.callbacks import Callback, EarlyStopping
from ptlab.engine.checkpointer import Checkpointer
from ptlab.logging.console import ConsoleLogger
from ptlab.logging.metrics_file import MetricsFile
from ptlab.logging.model_summary import ModelSummary

if TYPE_CHECKING:
    from ptlab.api import Run


def callbacks_for_run(run: Run, run_dir: Path | None, extra: Sequence[Callback] = ()) -> list[Callback]:
    """The callbacks the run's config asks for, then the user's (``callbacks:`` and ``extra``, before the
    checkpointer); files only with a run directory, and only rank 0 writes."""
    from ptlab.engine.user_callbacks import build_callbacks

    settings, checkpointing = trainer_settings(run.cfg), checkpoint_settings(run.cfg)
    main = run.world.is_main  # under torchrun only rank 0 writes; every rank takes part in checkpointing
    callbacks: list = []
    if main:
        summary_file = None if run_dir is None else run_dir / "model_summary.json"
        callbacks += [ModelSummary(summary_file), ConsoleLogger(settings.progress, checkpointing.monitor)]
        if run.cfg.sweep.get("trial") is not None:  # a job of an Optuna sweep: report to its trial, maybe pruned
            from ptlab.sweep.optuna_trial import ReportToTrial  # optuna: imported only for its trials

            callbacks.append(ReportToTrial.of(run.cfg))
    if settings.early_stopping.patience:
        callbacks.append(EarlyStopping(settings.early_stopping.patience))
    if run_dir is not None:
        if run.data.tokenizer is not None and main:
            write_text(run_dir / "tokenizer.json", run.data.tokenizer)
        if main:  # before the checkpointer: a step is logged before a checkpoint can hold it (resume drops the rest)
            callbacks += loggers(run.cfg, run_dir)
    callbacks += build_callbacks(run.cfg.get("callbacks"), extra)  # their state then is that of the saved step
    if run_dir is not None:
        if checkpointing.save:
            callbacks.append(Checkpointer(run_dir / "checkpoints", checkpointing, write=main))
        if main:
            callbacks += [MetricsFile(run_dir / "metrics.json"), *run.objective.callbacks(run_dir)]
        if main and settings.profile_steps:
            from ptlab.engine.profiler import StepProfiler  # torch.profiler: imported only when asked for

            callbacks.append(StepProfiler(run_dir / "profile", settings.profile_steps))
    return callbacks


def loggers(cfg, run_dir: Path) -> list[Callback]:
    """One callback per entry of ``cfg.logger`` (``logger=[tensorboard,csv]``), each built from its own keys."""
    from omegaconf import OmegaConf

    from ptlab import catalog

    chosen = OmegaConf.to_container(cfg.logger, resolve=True) if cfg.get("logger") else {}
    return [catalog.LOGGERS.build({"name": name, **(node or {})}, f"logger.{name}", run_dir=run_dir)
            for name, node in chosen.items()]
