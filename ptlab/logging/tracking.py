"""What the experiment trackers (MLflow, Weights & Biases) share: the run's parameters, its scalars, the file that
keeps a tracking run's id in the run directory, and the filter that keeps a resumed run from logging a point twice.

A run killed after its last checkpoint has logged steps that the resumed run trains again, with
bit-identical values (docs/resume.md). A tracker's history is append-only, so the resumed run
skips every (metric, step) the tracking run already has: each metric's curve reads as one run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptlab.atomic import read_json, write_json

if TYPE_CHECKING:
    import torch
    from omegaconf import DictConfig


def run_params(cfg: DictConfig, model: torch.nn.Module) -> dict[str, Any]:
    """The flattened config (``trainer.max_epochs`` → 3) and the model's size (``model/parameters``), as
    TensorBoard's hparams have them."""
    from ptlab.logging import model_summary
    from ptlab.logging.tensorboard import hparams

    return hparams(cfg) | model_summary.hparams(model_summary.summarize(model))


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The ``split/metric`` numbers of ``metrics`` (not ``epoch``, ``step``, ``train_seconds``)."""
    return {k: float(v) for k, v in metrics.items() if "/" in k and isinstance(v, (int, float))}


def final_scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """Every number of a run's final metrics (metrics.json), ``epoch`` and ``step`` included."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class NewPoints:
    """Per metric, the last step a tracking run already holds; :meth:`take` keeps what comes after it."""

    def __init__(self, last_steps: dict[str, int] | None = None) -> None:
        self.last = dict(last_steps or {})

    def take(self, metrics: dict[str, float], step: int) -> dict[str, float]:
        """The entries of ``metrics`` that the tracking run lacks at ``step``; they count as logged from now on."""
        new = {k: v for k, v in metrics.items() if step > self.last.get(k, -1)}
        self.last.update(dict.fromkeys(new, step))
        return new


def recorded_run(path: Path, cfg: DictConfig, where: dict[str, Any]) -> str | None:
    """The tracking run id kept at ``path`` for a run that resumes (``resume=...``) into the same place
    (``where``: the tracking URI, project, ...); None for a fresh run, which starts a new tracking run."""
    record = read_json(path) if cfg.get("resume") is not None else None
    if not isinstance(record, dict) or {k: record.get(k) for k in where} != where:
        return None
    return record.get("run_id")


def record_run(path: Path, run_id: str, where: dict[str, Any]) -> None:
    """Keep the tracking run's id in the run directory, so ``resume=auto`` continues it."""
    write_json(path, {"run_id": run_id, **where})
