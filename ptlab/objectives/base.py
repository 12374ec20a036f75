"""The contract between the trainer and the task logic."""

from __future__ import annotations

from typing import Any, ClassVar, Iterable, Protocol, Sequence

from torch import Tensor, nn


class Optimize(Protocol):
    """What the trainer offers an objective during a training step."""

    @property
    def step(self) -> int:
        """Optimizer steps taken before this one (0 during the first training step)."""

    def optimize(self, name: str, loss: Tensor) -> None:
        """Backpropagate ``loss`` into optimizer ``name`` (and step it at the end of the window)."""

    def log_image(self, tag: str, image: Tensor) -> None:
        """Keep an image (C×H×W in [0, 1]) with the run's logs (TensorBoard), at the current step."""

    def log_text(self, tag: str, text: str) -> None:
        """Keep a Markdown text with the run's logs (TensorBoard), at the current step."""


class Objective:
    """Turns a batch into a loss; the trainer owns everything else (devices, steps, logging)."""

    target_kind: ClassVar[str]  # "regression" or "classification": tells the data how to read targets
    metrics: Sequence[str] = ()  # names in the metric registry, reported as "split/name"

    def loss(self, model: nn.Module, batch: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """(scalar loss, model output, target) for one batch."""
        raise NotImplementedError

    def training_step(self, model: nn.Module, batch: Sequence[Tensor], trainer: Optimize) -> dict[str, Tensor]:
        """Compute the losses of one batch, hand each to ``trainer.optimize``; return what to log as train/*."""
        loss, _, _ = self.loss(model, batch)
        trainer.optimize("main", loss)
        return {"loss": loss}

    def parameters(self, model: nn.Module) -> dict[str, Iterable[nn.Parameter]]:
        """Trainable parameters per optimizer name; one optimizer, "main", by default."""
        return {"main": [p for p in model.parameters() if p.requires_grad]}

    def start_evaluation(self, rank: int = 0, world_size: int = 1) -> None:
        """Called before each evaluation pass (e.g. to reset a fixed evaluation noise).

        Under torchrun, ``rank`` of ``world_size`` evaluates every ``world_size``-th sample of
        the split, from sample ``rank`` (ptlab.data.loaders.shard_order).
        """

    def callbacks(self, run_dir: Any) -> list:
        """Extra trainer callbacks this objective needs (e.g. sample grids); none by default."""
        return []

    def loss_weight(self, target: Tensor) -> Tensor | int:
        """What a batch's loss is a mean over, so that a split's loss is the mean over all of them: its samples by
        default (a seq2seq objective: its real target tokens)."""
        return len(target)

    def predict(self, output: Tensor) -> Tensor:
        """What the metrics compare with the target (class ids, regression values)."""
        return output

    def baselines(self, data: Any, results: dict[str, float]) -> dict[str, float]:
        """Reference numbers computed outside gradient descent (closed form, scikit-learn); none by default."""
        return {}
