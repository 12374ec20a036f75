"""Where a run is, and the best it has done: the trainer's own state, saved in every checkpoint (``loop``, ``best``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LoopState:
    """Where the run is: enough to continue with exactly the next batch."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    batch_in_epoch: int = 0  # batches of the current epoch already trained on
    samples: int = 0  # training samples seen
    train_seconds: float = 0.0
    validated_at_step: int = -1  # the step of the latest validation
    world_size: int = 1  # processes that trained (torchrun)
    skipped_steps: int = 0  # steps skipped for a non-finite loss or gradient (trainer.skip_nonfinite)
    stop_reason: str | None = None  # why the run stopped before its budget (early stopping); None while it may go on


@dataclass
class BestMetric:
    """The best value of the monitored metric so far, and how long ago it was."""

    monitor: str
    mode: str
    min_delta: float = 0.0
    value: float | None = None
    epoch: int = 0
    step: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    validations_since: int = 0

    def update(self, metrics: dict[str, float], epoch: int, step: int) -> bool:
        current = metrics[self.monitor]
        better = self.value is None or (
            current < self.value - self.min_delta if self.mode == "min" else current > self.value + self.min_delta
        )
        if better:
            self.value, self.epoch, self.step, self.metrics = current, epoch, step, dict(metrics)
            self.validations_since = 0
        else:
            self.validations_since += 1
        return better
