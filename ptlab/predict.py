"""``ptlab predict``: a checkpoint's predictions for new rows of a file, as new columns of that file.

The checkpoint's data kind picks the reader (:data:`PREDICTORS`): tabular checkpoints (``data=csv``),
here, and text classifiers (:mod:`ptlab.predict_text`). Tabular rows go through exactly the training
preprocessing: the categories, fill values and standardization refitted on the checkpoint's training
rows (which ``rebuild`` checks against the ones the checkpoint saved).
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

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


def predict(ckpt: str | Path, input: str | Path, device: Optional[str] = None,
            column: Optional[str] = None) -> Predictions:
    """The predictions of checkpoint ``ckpt`` for every row of file ``input`` (``column``: where a text
    classifier reads the texts of a CSV)."""
    from ptlab.data.text import LANGUAGE_MODEL
    from ptlab.engine.checkpoint import load_checkpoint

    config = load_checkpoint(ckpt)["config"]
    kind = data_kind(config)
    task, data = config.get("task", "?"), config["data"].get("name", "?")
    if kind == LANGUAGE_MODEL:
        raise ConfigError(f"ckpt: {ckpt} is a language model (task={task} on data={data}): it writes text rather "
                          f"than classifying it; use ptlab generate ckpt={ckpt} prompt=TEXT")
    if kind == "seq2seq":
        raise ConfigError(f"ckpt: {ckpt} is a seq2seq checkpoint (task={task} on data={data}): it writes text; use "
                          f"ptlab translate ckpt={ckpt} input=FILE")
    predictors = {"tabular": predict_table, "text_classification": predict_texts}
    if kind not in predictors:
        raise ConfigError(f"ckpt: {ckpt} is a checkpoint of task={task} with data={data}; ptlab predict reads "
                          "tabular checkpoints (data=csv) and text classifiers (data=imdb, ag_news, csv_text)")
    return predictors[kind](ckpt, Path(input).expanduser(), device or "cpu", column)


def check_out(input: str | Path, out: str | Path) -> None:
    """Refuse an ``out`` that is the ``input`` file: writing it would replace the rows the predictions are for."""
    source = Path(input).expanduser()
    if Path(out).expanduser().resolve() == source.resolve():
        raise ConfigError(f"out: {out} is the input file, which ptlab predict does not overwrite; write to another "
                          f"file, e.g. out={source.with_name(source.stem + '-predictions.csv')}")


def added_columns(path: Path, header: list[str], classes: Optional[list[str]]) -> list[str]:
    """The columns ptlab predict adds to ``header``: ``prediction``, then ``p_<class>`` for each class (if any)."""
    new = ["prediction", *(f"p_{label}" for label in classes or ())]
    taken = [column for column in new if column in header]
    if taken:
        raise ConfigError(f"input: {path} already has a column {taken[0]!r}, which ptlab predict writes; rename it")
    return new


def formatted(value: float | str) -> str:
    """A cell of the written predictions: a label as it is, a number with 8 significant digits."""
    return value if isinstance(value, str) else f"{value:.8g}"


def data_kind(config: dict[str, Any]) -> Optional[str]:
    """"tabular" for a checkpoint trained on CSV tables; else the data builder's ``kind`` mark (None if unmarked)."""
    from ptlab import catalog
    from ptlab.data.tabular import csv_table

    builder, _ = catalog.DATASETS.resolve(config["data"], "data")
    return "tabular" if builder is csv_table else getattr(builder, "kind", None)


def predict_table(ckpt: str | Path, path: Path, device: str, column: Optional[str]) -> Predictions:
    """Tabular checkpoints: ``path`` is a CSV with the training file's feature columns (others, the target among
    them, are ignored)."""
    if column:
        raise ConfigError("column: is for text classifiers; a tabular checkpoint reads its feature columns by their "
                          "training names, so drop column=")
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
    new = added_columns(path, header, features.classes)
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
    cells = [[formatted(value) for value in row] for row in zip(*columns)]
    return Predictions(header + new, [row + added for (_, row), added in zip(body, cells)])


def predict_texts(ckpt: str | Path, path: Path, device: str, column: Optional[str]) -> Predictions:
    """Text classifiers: ``path`` is a CSV whose ``column`` holds the texts (by default the checkpoint's
    ``data.text``), or any other file, read as one text a line (blank lines are skipped)."""
    from ptlab.data.files import read_text_file
    from ptlab.data.tabular import read_rows
    from ptlab.engine.checkpoint import load_checkpoint
    from ptlab.predict_text import class_names, classify

    payload = load_checkpoint(ckpt)
    if path.suffix.lower() == ".csv":
        header, body = read_rows(path, "input")
        name = column or payload["config"]["data"].get("text")
        if name is None:
            raise ConfigError(f"column: required for a CSV input (this checkpoint's data names no text column); "
                              f"pass column=NAME with one of its columns: {', '.join(header)}")
        if name not in header:
            raise ConfigError(f"{'column' if column else 'input'}: {path} has no column {name!r}; pass column=NAME "
                              f"with one of its columns: {', '.join(header)}")
        rows = [row for _, row in body]
        texts = [row[header.index(name)] for row in rows]
    else:
        if column is not None:
            raise ConfigError(f"column: {path} is read as plain text, one text a line; column= is for a .csv input")
        texts = [line for line in read_text_file(path, "input").split("\n") if line.strip()]
        if not texts:
            raise ConfigError(f"input: {path} holds no text (every line is blank); give one text a line")
        header, rows = ["text"], [[text] for text in texts]
    classes = class_names(ckpt, payload)
    new = added_columns(path, header, classes)
    z = classify(payload, texts, device)
    columns = [[classes[k] for k in z.argmax(-1).tolist()], *torch.softmax(z, -1).T.tolist()]
    cells = [[formatted(value) for value in row] for row in zip(*columns)]
    return Predictions(header + new, [row + added for row, added in zip(rows, cells)])
