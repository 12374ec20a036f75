"""Console output: a Rich progress bar on a terminal, plain log lines otherwise, a final table.

Every line also goes to ``train.log`` through the ``ptlab`` logger; Hydra's job
logging config routes the console side through :class:`RichConsoleHandler`, so
log lines print above a live progress bar instead of breaking it.

The bar assumes no metric name: it shows the losses an objective logs (every
``train/*`` value whose name has ``loss`` as a ``_``-separated part: ``loss``,
``d_loss`` and ``g_loss``, ...), or the first value it logs if none is a loss.
"""

from __future__ import annotations

import atexit
import logging
from typing import TYPE_CHECKING, Any

from rich.console import Console

from ptlab.engine.callbacks import Callback

if TYPE_CHECKING:
    from rich.progress import Progress

    from ptlab.engine.trainer import Trainer

log = logging.getLogger("ptlab")
_console: Console | None = None
_live_bar: Progress | None = None  # the bar on screen; Rich allows one live display per process


def console() -> Console:
    """The one Rich console of the process (progress bar and log lines share it)."""
    global _console
    if _console is None:
        _console = Console(highlight=False, emoji=False)
    return _console


class RichConsoleHandler(logging.Handler):
    """A logging handler that prints through the shared Rich console; skips records marked console=False."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "console", True):
            console().print(self.format(record), markup=False, soft_wrap=True)


def format_metrics(metrics: dict[str, Any]) -> str:
    """``key value | key value ...`` with floats to 6 significant digits (log lines)."""
    return " | ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())


def compact_number(value: float) -> str:
    """A count with 3 significant digits and a k/M/G suffix: ``950``, ``12.3k``, ``1.23M``."""
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def bar_stats(metrics: dict[str, float], samples_per_second: float) -> str:
    """The bar's text for one training log: the logged losses (4 significant digits), then the throughput.

    A name counts as a loss when ``loss`` is one of its ``_``-separated parts; an objective that logs
    no loss shows its first logged value instead.
    """
    names = {key: key.split("/", 1)[-1] for key in metrics}
    shown = [key for key, name in names.items() if "loss" in name.split("_")] or list(metrics)[:1]
    values = " ".join(f"{names[key]} {metrics[key]:.4g}" for key in shown)
    return f"{values} · {compact_number(samples_per_second)} samples/s"


def print_metrics_table(metrics: dict[str, Any], title: str = "metrics") -> None:
    """A two-column table (metric, value) on the console; names are printed as they are, never read as markup."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(Text(key), Text(f"{value:.6g}" if isinstance(value, float) else str(value)))
    console().print(table)


def start_bar(total: int, completed: int, epoch: int) -> Progress:
    """Put a training bar on screen (after stopping one a failed run of this process left there).

    Layout: ``epoch N ━━━━╸      M/TOTAL 0:01:23 d_loss 1.386 g_loss 0.6931 · 12.3k samples/s``;
    the bar shrinks first (down to 10 columns), then the stats are cut with an ellipsis, so
    everything stays on one line in any terminal width.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Column

    global _live_bar
    stop_bar()
    fixed = {"table_column": Column(no_wrap=True)}
    _live_bar = Progress(
        TextColumn("epoch {task.fields[epoch]}", **fixed),
        BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=10, no_wrap=True)),
        MofNCompleteColumn(**fixed), TimeRemainingColumn(**fixed),
        TextColumn("{task.fields[stats]}", markup=False, table_column=Column(no_wrap=True, overflow="ellipsis")),
        console=console(), expand=True, transient=False,
    )
    _live_bar.add_task("train", total=total, completed=completed, epoch=epoch, stats="")
    _live_bar.start()
    return _live_bar


@atexit.register
def stop_bar() -> None:
    """Take the bar off the live display, leaving its last state on screen and the cursor visible.

    Also runs at exit: a run that ends in an exception (a non-finite loss, a failing callback)
    must not leave the terminal's cursor hidden.
    """
    global _live_bar
    if _live_bar is not None:
        _live_bar.stop()
        _live_bar = None


def current_epoch(trainer: Trainer) -> int:
    """The epoch (from 1) that the last step belongs to: the one in progress, or the one just completed."""
    return trainer.state.epoch + (1 if trainer.state.batch_in_epoch else 0)


class ConsoleLogger(Callback):
    """Progress, periodic training lines, validation lines and the final metrics table."""

    def __init__(self, progress: str, monitor: str) -> None:
        self.mode = progress
        self.monitor = monitor
        self.bar: Progress | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self.total = trainer.total_steps
        if self.mode == "bar" or (self.mode == "auto" and console().is_terminal and not console().is_dumb_terminal):
            self.bar = start_bar(self.total, trainer.state.step, trainer.state.epoch + 1)

    def on_step_end(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.update(self.bar.task_ids[0], completed=trainer.state.step, epoch=trainer.state.epoch + 1)

    def on_log(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        from ptlab.engine.throughput import SPEED_KEYS  # (imports torch: not at ptlab list's start)

        shown = {key: value for key, value in metrics.items() if key not in SPEED_KEYS}
        rate = metrics.get("train/samples_per_s", 0.0)  # the speed metrics go to TensorBoard; the line shows this one
        epoch = current_epoch(trainer)  # the epoch this loss is from
        line = f"epoch {epoch} step {trainer.state.step}/{self.total} | {format_metrics(shown)} | {rate:,.0f} samples/s"
        if self.bar is not None:
            self.bar.update(self.bar.task_ids[0], stats=bar_stats(shown, rate))
        log.info(line, extra={"console": self.bar is None})

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        mark = f" (best {self.monitor})" if improved else ""
        log.info("epoch %d step %d | %s%s", current_epoch(trainer), trainer.state.step, format_metrics(metrics), mark)

    def on_interrupt(self, trainer: Trainer) -> None:
        self._stop_bar()

    def on_exception(self, trainer: Trainer, error: BaseException) -> None:
        self._stop_bar()

    def on_fit_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self._stop_bar()
        log.info("final | %s", format_metrics(metrics), extra={"console": False})
        print_metrics_table(metrics)

    def _stop_bar(self) -> None:
        if self.bar is not None:
            stop_bar()
            self.bar = None
