"""``metrics.csv``: one row per logging point (a step at which anything was logged), the ``split/metric`` names as
columns, readable with any spreadsheet or ``pandas.read_csv``.

Each row is written as soon as it is logged (a step's training and validation values share
one row); a column that appears later (``val/*`` at the first validation, ``test/*`` at
the end) or a row that gains values rewrites the file, atomically. A resumed run keeps the rows up
to the step it resumed from and drops the ones a killed run wrote after its last
checkpoint, so the file reads as one uninterrupted run.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptlab.atomic import write_text
from ptlab.engine.callbacks import Callback
from ptlab.logging.console import current_epoch

if TYPE_CHECKING:
    from ptlab.engine.trainer import Trainer

FIRST = ["step", "epoch"]


class CSVLogger(Callback):
    """The run's scalars in a CSV file of the run directory, one row per logging point."""

    def __init__(self, run_dir: Path, file: str = "metrics.csv") -> None:
        self.path = Path(run_dir) / file
        self.rows: list[dict[str, Any]] = []
        self.columns: list[str] = list(FIRST)

    def on_fit_start(self, trainer: Trainer) -> None:
        resumed_at = trainer.state.step
        kept = [{**row, "step": int(row["step"])} for row in read_rows(self.path)] if resumed_at else []
        self.rows = [row for row in kept if row["step"] <= resumed_at]  # a step's later values join its row
        self.columns = list(dict.fromkeys([*FIRST, *(key for row in self.rows for key in row)]))
        self._rewrite()

    def on_log(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        self._add(trainer, metrics)

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        self._add(trainer, metrics)

    def on_fit_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self._add(trainer, {k: v for k, v in metrics.items() if k.startswith("test/")})

    def _add(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        """Put ``metrics`` in the row of the current step and write it at once, so a checkpoint never holds a step
        the file lacks: appended as a new row, or the file rewritten when the row was on disk or the header grows."""
        values = {k: v for k, v in metrics.items() if "/" in k and isinstance(v, (int, float))}
        if not values:
            return
        step, grown = trainer.state.step, [k for k in values if k not in self.columns]
        self.columns += sorted(grown)
        if self.rows and self.rows[-1]["step"] == step:
            self.rows[-1].update(values)
            self._rewrite()
            return
        self.rows.append({"step": step, "epoch": current_epoch(trainer), **values})
        if grown or not self.path.is_file():
            self._rewrite()
            return
        with self.path.open("a", encoding="utf-8", newline="") as f:
            csv.DictWriter(f, self.columns).writerow(self.rows[-1])

    def _rewrite(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, self.columns)
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.path, buffer.getvalue())


def read_rows(path: Path) -> list[dict[str, str]]:
    """The complete rows of a metrics.csv (a last line torn by a kill, without its newline, is left out)."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return [{k: v for k, v in row.items() if v != ""} for row in csv.DictReader(io.StringIO(text))]
