"""``metrics.json``: the final flat metrics of a run, written atomically at its end."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptlab.atomic import write_json
from ptlab.engine.callbacks import Callback

if TYPE_CHECKING:
    from ptlab.engine.trainer import Trainer


class MetricsFile(Callback):
    def __init__(self, path: Path) -> None:
        self.path = path

    def on_fit_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        write_json(self.path, metrics)
