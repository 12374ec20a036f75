"""Console output: a Rich progress bar on a terminal, plain log lines otherwise, a final table.

Every line also goes to ``train.log`` through the ``ptlab`` logger; Hydra's job
logging config routes the console side through :class:`RichConsoleHandler`, so
log lines print above a live progress bar instead of breaking it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console

from ptlab.engine.callbacks import Callback

if TYPE_CHECKING:
    from ptlab.engine.trainer import Trainer

log = logging.getLogger("ptlab")
_console: Console | None = None


def console() -> Console:
    """The one Rich console of the process (progress bar and log lines share it)."""
    global _console
    if _console is None:
        _console = Console(highlight=False)
    return _console


class RichConsoleHandler(logging.Handler):
    """A logging handler that prints through the shared Rich console; skips records marked console=False."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "console", True):
            console().print(self.format(record), markup=False, soft_wrap=True)


def format_metrics(metrics: dict[str, Any]) -> str:
    return " | ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())


def print_metrics_table(metrics: dict[str, Any], title: str = "metrics") -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
    console().print(table)


class ConsoleLogger(Callback):
    """Progress, periodic training lines, validation lines and the final metrics table."""

    def __init__(self, progress: str, monitor: str) -> None:
        self.mode = progress
        self.monitor = monitor
        self.bar = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self.total = trainer.total_steps
        self.last_time, self.last_samples = time.perf_counter(), trainer.state.samples
        if self.mode == "bar" or (self.mode == "auto" and console().is_terminal):
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"), TimeRemainingColumn(), console=console(), transient=False,
            )
            self.task = self.bar.add_task("train", total=self.total, completed=trainer.state.step,
                                          epoch=trainer.state.epoch + 1, stats="")
            self.bar.start()

    def on_step_end(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=trainer.state.step, epoch=trainer.state.epoch + 1)

    def on_log(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        now, samples = time.perf_counter(), trainer.state.samples
        rate = (samples - self.last_samples) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_samples = now, samples
        epoch = trainer.state.epoch + (1 if trainer.state.batch_in_epoch else 0)  # the epoch this loss is from
        line = f"epoch {epoch} step {trainer.state.step}/{self.total} | {format_metrics(metrics)} | {rate:,.0f} samples/s"
        if self.bar is not None:
            self.bar.update(self.task, stats=f"loss {metrics['train/loss']:.4f} · {rate:,.0f} samples/s")
        log.info(line, extra={"console": self.bar is None})

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        mark = f" (best {self.monitor})" if improved else ""
        log.info("epoch %d step %d | %s%s", trainer.state.epoch, trainer.state.step, format_metrics(metrics), mark)

    def on_interrupt(self, trainer: Trainer) -> None:
        self._stop_bar()

    def on_fit_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self._stop_bar()
        log.info("final | %s", format_metrics(metrics), extra={"console": False})
        print_metrics_table(metrics)

    def _stop_bar(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
