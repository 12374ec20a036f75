"""What the model is: parameters (total, trainable, frozen), size, and the same per top-level module.

Printed as a table when training starts, written to ``model_summary.json`` in the run
directory, and added to TensorBoard's hparams (``model/parameters``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptlab.atomic import write_json
from ptlab.engine.callbacks import Callback

if TYPE_CHECKING:
    import torch

    from ptlab.engine.trainer import Trainer


def count(module: torch.nn.Module) -> dict[str, Any]:
    """Parameters of ``module`` (each shared tensor once) and its size in MiB, buffers included."""
    params = list(module.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    size = sum(t.numel() * t.element_size() for t in [*params, *module.buffers()])
    return {"parameters": total, "trainable": trainable, "frozen": total - trainable, "size_mib": size / 2**20}


def summarize(model: torch.nn.Module) -> dict[str, Any]:
    """``count(model)`` plus ``modules``: the count of each top-level module, by name, with its class."""
    summary = count(model)
    summary["modules"] = [{"name": name, "type": type(child).__name__, **count(child)}
                          for name, child in model.named_children()]
    return summary


def hparams(summary: dict[str, Any]) -> dict[str, float]:
    """The summary's totals as TensorBoard hparams."""
    return {f"model/{key}": summary[key] for key in ("parameters", "trainable", "frozen", "size_mib")}


def print_summary(summary: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    from ptlab.logging.console import console

    table = Table(title="model")
    for column in ("module", "type", "parameters", "trainable", "MiB"):
        table.add_column(column, justify="left" if column in ("module", "type") else "right")

    def row(name: str, kind: str, part: dict[str, Any]) -> None:
        table.add_row(Text(name), Text(kind), f"{part['parameters']:,}", f"{part['trainable']:,}", f"{part['size_mib']:.3g}")

    for module in summary["modules"]:
        row(module["name"], module["type"], module)
    table.add_section()
    row("total", "", summary)
    console().print(table)


class ModelSummary(Callback):
    """At the start of training: the summary on the console and, with a run directory, in ``model_summary.json``."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def on_fit_start(self, trainer: Trainer) -> None:
        summary = summarize(trainer.model)
        print_summary(summary)
        if self.path is not None:
            write_json(self.path, summary)
