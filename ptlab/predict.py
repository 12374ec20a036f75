"""``ptlab predict``: a checkpoint's predictions for new rows of a file, as new columns of that file.

The checkpoint's data kind picks the reader (:data:`PREDICTORS`); tabular checkpoints (``data=csv``)
are read so far. Their rows go through exactly the training preprocessing: the categories, fill
values and standardization refitted on the checkpoint's training rows (which ``rebuild`` checks
against the ones the checkpoint saved).
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from ptlab.errors import ConfigError

log = logging.getLogger("ptlab")


@dataclass
class Predictions:
    """The input file's header and rows, each followed by the new columns (``prediction``, then ``p_<class>``)."""

    header: list[str]
    rows: list[list[str]]

    def to_csv(self) -> str:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(self.header)
        writer.writerows(self.rows)
        return text.getvalue()


def predict(ckpt: str | Path, input: str | Path, device: Optional[str] = None) -> Predictions:
    """The predictions of checkpoint ``ckpt`` for every row of file ``input``."""
    from ptlab.engine.checkpoint import load_checkpoint

    config = load_checkpoint(ckpt)["config"]
    kind = data_kind(config)
    if kind not in PREDICTORS:
        raise ConfigError(f"ckpt: {ckpt} is a checkpoint of task={config.get('task', '?')} with "
                          f"data={config['data'].get('name', '?')}; ptlab predict reads tabular checkpoints "
                          "(trained with data=csv)")
    return PREDICTORS[kind](ckpt, Path(input).expanduser(), device or "cpu")


def data_kind(config: dict[str, Any]) -> Optional[str]:
    """"tabular" for a checkpoint trained on CSV tables; else the data builder's ``kind`` mark (None if unmarked)."""
    from ptlab import catalog
    from ptlab.data.tabular import csv_table

    builder, _ = catalog.DATASETS.resolve(config["data"], "data")
    return "tabular" if builder is csv_table else getattr(builder, "kind", None)


def predict_table(ckpt: str | Path, path: Path, device: str) -> Predictions:
    """Tabular checkpoints: ``path`` is a CSV with the training file's feature columns (others, the target among
    them, are ignored)."""
    from ptlab.api import rebuild
    from ptlab.data.table_preprocessing import Tally, check_numbers, shown_cell, summary
    from ptlab.data.tabular import csv_features, read_rows, table_of

    _, run = rebuild(ckpt, device=device)
    classify = run.objective.target_kind == "classification"
    features = csv_features(run.cfg.data, run.objective.target_kind)
    fitted = features.preprocessing
    header, body = read_rows(path, "input")
    absent = [column for column in fitted.columns if column not in header]
    if absent:
        raise ConfigError(f"input: {path} has no column {absent[0]!r}; the checkpoint expects the columns "
                          f"{', '.join(fitted.columns)}")
    new = ["prediction", *(f"p_{label}" for label in features.classes or ())]
    taken = [column for column in new if column in header]
    if taken:
        raise ConfigError(f"input: {path} already has a column {taken[0]!r}, which ptlab predict writes; rename it")
    table = table_of(path, "input", header, body, fitted.columns, None)
    blank = table.missing()
    if fitted.missing != "mean" and blank.any():  # error: refused in training; drop: no row left to predict
        r = int(np.argmax(blank.any(1)))
        c = int(np.argmax(blank[r]))
        raise ConfigError(f"input: column {fitted.columns[c]!r} of {path} has no value at line {table.lines[r]} "
                          f"({shown_cell(table.cells[r, c])}); the checkpoint was trained with "
                          f"data.missing={fitted.missing}, which fills in no value; fill it in or remove the row")
    check_numbers(table, list(fitted.categories), fitted.categorical)
    tally = Tally()
    x = features.transform(table, tally).to(run.device)
    said = summary(fitted, tally)
    if said:
        log.info(said.replace("data: ", "input: ", 1))
    run.model.eval()
    with torch.no_grad():
        z = run.model(x).float().cpu()
    if classify:
        labels = features.classes or []
        p = torch.sigmoid(z) if z.shape[-1] == 1 else torch.softmax(z, -1)
        p = torch.cat([1 - p, p], -1) if z.shape[-1] == 1 else p
        columns = [[labels[k] for k in run.objective.predict(z).tolist()], *p.T.tolist()]
    else:
        info = run.data.info
        columns = [(z.reshape(len(z)).double() * info["target_std"] + info["target_mean"]).tolist()]
    cells = [[value if isinstance(value, str) else f"{value:.8g}" for value in row] for row in zip(*columns)]
    return Predictions(header + new, [row + added for (_, row), added in zip(body, cells)])


PREDICTORS: dict[str, Callable[[str | Path, Path, str], Predictions]] = {"tabular": predict_table}
