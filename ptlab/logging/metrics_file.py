"""``metrics.json``: the final flat metrics of a run, written atomically at its end."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptlab.engine.callbacks import Callback

if TYPE_CHECKING:
    from ptlab.engine.trainer import Trainer


def write_json(data: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class MetricsFile(Callback):
    def __init__(self, path: Path) -> None:
        self.path = path

    def on_fit_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        write_json(metrics, self.path)
