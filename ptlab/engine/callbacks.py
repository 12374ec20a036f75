"""Optional parts of training, kept out of the loop (checkpoints: ptlab.engine.checkpoint).

A callback implements any of the hooks below; the trainer calls them in order. A callback
with ``state_dict()`` and ``load_state_dict(state)`` has its state saved in every last.pt and
given back on resume (plain data only; ptlab.engine.trainer_state). Your own callbacks: the
``callbacks:`` list of the config or ``ptlab.train(cfg, callbacks=[...])`` (docs/callbacks.md).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from torch import Tensor
    from torch.optim import Optimizer

    from ptlab.engine.trainer import Trainer

log = logging.getLogger("ptlab")


class Callback:
    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_train_batch_end(self, trainer: Trainer, batch: Any, logs: dict[str, Tensor]) -> None: ...  # after a batch
    def on_before_optimizer_step(self, trainer: Trainer, name: str, optimizer: Optimizer) -> None: ...  # grads ready
    def on_step_end(self, trainer: Trainer) -> None: ...  # an optimizer step is complete (trainer.state.step counts it)
    def on_log(self, trainer: Trainer, metrics: dict[str, float]) -> None: ...
    def on_image(self, trainer: Trainer, tag: str, image: Tensor) -> None: ...  # C×H×W in [0, 1] (trainer.log_image)
    def on_text(self, trainer: Trainer, tag: str, text: str) -> None: ...  # Markdown (trainer.log_text)
    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None: ...
    def on_epoch_end(self, trainer: Trainer) -> None: ...
    def on_checkpoint_saved(self, trainer: Trainer, path: Path) -> None: ...  # last.pt or best.pt written
    def on_interrupt(self, trainer: Trainer) -> None: ...
    def on_exception(self, trainer: Trainer, error: BaseException) -> None: ...  # the run failed (not a signal)
    def on_fit_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None: ...


class EarlyStopping(Callback):
    """Stop when the monitored metric has not improved for ``patience`` validations."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        if trainer.best.validations_since >= self.patience:
            trainer.request_stop(f"early stopping: {trainer.best.monitor} has not improved for "
                                 f"{self.patience} validations (best {trainer.best.value:.6g} at epoch "
                                 f"{trainer.best.epoch})")
