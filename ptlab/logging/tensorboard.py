"""TensorBoard scalars under the same ``split/metric`` names, plus the run's hyperparameters."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptlab.config import PositiveInt
from ptlab.engine.callbacks import Callback

if TYPE_CHECKING:
    from torch import Tensor

    from ptlab.engine.trainer import Trainer


class TensorBoardLogger(Callback):
    """TensorBoard event files in a folder of the run directory; a resumed run hides what a killed one wrote later."""

    def __init__(self, run_dir: Path, folder: str = "tb", flush_secs: PositiveInt = 10) -> None:
        self.folder = Path(run_dir) / folder
        self.flush_secs = flush_secs
        self.writer = None

    def on_fit_start(self, trainer: Trainer) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # Resumed at step S: the events a killed run wrote after S are hidden, so the curves read as one run.
        purge = trainer.state.step + 1 if trainer.state.step else None
        self.writer = SummaryWriter(str(self.folder), flush_secs=self.flush_secs, purge_step=purge)

    def _scalars(self, metrics: dict[str, Any], step: int) -> None:
        for key, value in metrics.items():
            if "/" in key and isinstance(value, (int, float)):
                self.writer.add_scalar(key, value, step)

    def on_log(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        self._scalars(metrics, trainer.state.step)

    def on_image(self, trainer: Trainer, tag: str, image: Tensor) -> None:
        self.writer.add_image(tag, image, trainer.state.step)

    def on_text(self, trainer: Trainer, tag: str, text: str) -> None:
        self.writer.add_text(tag, text, trainer.state.step)

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        self._scalars(metrics, trainer.state.step)

    def on_interrupt(self, trainer: Trainer) -> None:
        self.writer.close()

    def on_fit_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        final = {k: v for k, v in metrics.items() if "/" in k and isinstance(v, (int, float))}
        self._scalars({k: v for k, v in final.items() if k.startswith("test/")}, trainer.state.step)
        from ptlab.logging import model_summary

        settings = hparams(trainer.cfg) | model_summary.hparams(model_summary.summarize(trainer.model))
        self.writer.add_hparams(settings, final, run_name=".", global_step=trainer.state.step)
        self.writer.close()


def hparams(cfg) -> dict[str, Any]:
    """The config flattened to ``section.key`` → int/float/str/bool (lists become strings)."""
    from omegaconf import OmegaConf

    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}{key}.", value)
        else:
            flat[prefix[:-1]] = node if isinstance(node, (int, float, str, bool)) else str(node)

    walk("", OmegaConf.to_container(cfg, resolve=True))
    return flat
