"""Categorical columns and missing values of CSV tables: fitted on the training rows, applied to every split.

A cell is *missing* when, stripped of spaces, it is empty or one of :data:`MISSING` (the NA spellings
that pandas also reads as missing). ``data.missing`` says what happens to a missing feature:
``error`` (the default) refuses the file, ``drop`` drops the row, ``mean`` fills a numeric column with
its mean over the training rows and leaves a categorical one all-zero. A missing *target* cannot be
filled in: ``drop`` and ``mean`` drop its row, ``error`` refuses it.

A feature column of the training file that holds a value that is not a number (missing cells aside)
is categorical. ``data.categorical=onehot`` (the default) makes it one 0/1 feature ``COLUMN=VALUE`` per
category seen in the *training rows* (sorted, numbers first); a value those rows do not have
(a val/test row, or a later file) is all-zero, like a missing one. ``data.categorical=error`` refuses it.

Row dropping is row by row, so it comes before the splits are carved; the categories and the means
are fitted on the training rows only, after the carving. The 0/1 columns are left unstandardized
(:attr:`TablePreprocessing.onehot`): all-zero then means "no category's weight", and a rare
category's 1 does not become a large 1/√p.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ptlab.errors import ConfigError
from ptlab.formatting import number_first

log = logging.getLogger("ptlab")

MISSING = ("", "NA", "N/A", "nan", "NaN", "null", "None")  # a missing cell, once stripped of spaces


@dataclass
class Table:
    """One CSV file as read: its feature cells (stripped strings), its target cells and their line numbers."""

    path: Path
    key: str  # the config key that named the file
    target: str  # the target column's name
    columns: list[str]  # the feature columns' names
    cells: np.ndarray  # (rows, columns), dtype object
    targets: np.ndarray  # (rows,), dtype object, as written
    lines: np.ndarray  # (rows,) line numbers in the file

    def __len__(self) -> int:
        return len(self.lines)

    def take(self, rows: np.ndarray) -> Table:
        """The rows ``rows`` (indices or a boolean mask) of this table."""
        return Table(self.path, self.key, self.target, self.columns, self.cells[rows], self.targets[rows],
                     self.lines[rows])

    def missing(self) -> np.ndarray:
        """(rows, columns): which feature cells are missing."""
        return np.isin(self.cells, MISSING)


@dataclass
class Tally:
    """What preprocessing did to all the splits, for the one log line."""

    filled: Counter = field(default_factory=Counter)  # numeric column → cells filled with the training mean
    blank: Counter = field(default_factory=Counter)  # categorical column → missing cells left all-zero
    unseen: Counter = field(default_factory=Counter)  # categorical column → values not in the training rows
    dropped: int = 0  # rows with a missing feature (data.missing=drop)
    no_target: int = 0  # rows with a missing target


@dataclass(frozen=True)
class TablePreprocessing:
    """The fitted encoding: what ``Data.state`` keeps, and what turns any file's cells into features."""

    categorical: str  # data.categorical
    missing: str  # data.missing
    columns: list[str]  # the feature columns of the files
    categories: dict[str, list[str]]  # categorical column → its training categories, in feature order
    fill_values: dict[str, float]  # numeric column → its training mean (data.missing=mean only)

    @property
    def features(self) -> list[str]:
        """The names of the features after encoding: a numeric column keeps its name, a categorical one
        becomes ``COLUMN=VALUE`` per category."""
        return [name for column in self.columns for name in
                ([f"{column}={value}" for value in self.categories[column]] if column in self.categories else [column])]

    @property
    def onehot(self) -> np.ndarray:
        """Which features are 0/1 category indicators (left unstandardized)."""
        flags: list[bool] = []
        for column in self.columns:
            flags += [True] * len(self.categories[column]) if column in self.categories else [False]
        return np.asarray(flags, dtype=bool)

    def state(self) -> dict[str, Any]:
        """Plain data for ``Data.state`` (and so checkpoints)."""
        return {"features": self.features, "categories": self.categories, "fill_values": self.fill_values,
                "categorical": self.categorical, "missing": self.missing}

    def transform(self, table: Table, tally: Tally) -> np.ndarray:
        """The (rows, features) float64 matrix of ``table``; counts what was filled or unseen in ``tally``."""
        blanks = table.missing()
        parts = []
        for j, column in enumerate(self.columns):
            cells, blank = table.cells[:, j], blanks[:, j]
            if column in self.categories:
                index = {value: k for k, value in enumerate(self.categories[column])}
                codes = np.asarray([index.get(value, -1) for value in cells], dtype=np.int64)
                parts.append((codes[:, None] == np.arange(len(index))).astype(np.float64))
                _count(tally.blank, column, blank)
                _count(tally.unseen, column, (codes < 0) & ~blank)
                continue
            values = np.zeros(len(table))
            values[~blank] = [float(cell) for cell in cells[~blank]]
            if blank.any():  # only data.missing=mean keeps rows with a missing feature
                values[blank] = self.fill_values[column]
                _count(tally.filled, column, blank)
            parts.append(values[:, None])
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(table), 0))


def categorical_columns(train: Table, mode: str) -> list[str]:
    """The feature columns of the training file that are not all numbers (missing cells aside).

    With ``data.categorical=error`` the first such column is refused instead.
    """
    found = []
    for j, column in enumerate(train.columns):
        cells = train.cells[:, j]
        present = ~np.isin(cells, MISSING)
        numbers = np.asarray([_is_float(cell) for cell in cells]) & present
        others = np.flatnonzero(present & ~numbers)
        if not len(others):
            continue
        if mode == "error":
            raise _not_numeric(train, column, others[0])
        if numbers.sum() > present.sum() / 2:
            log.warning("data: column %r is one-hot encoded because line %d of %s holds %r, though %d of its %d "
                        "values are numbers; if it is numeric, make the other cells numbers or blank (missing)",
                        column, train.lines[others[0]], train.path, cells[others[0]], numbers.sum(), present.sum())
        found.append(column)
    return found


def check_numbers(table: Table, categorical: list[str], mode: str) -> None:
    """Refuse a cell of a numeric column (not in ``categorical``) that is neither missing nor a finite number;
    ``mode`` is data.categorical."""
    for j, column in enumerate(table.columns):
        if column in categorical:
            continue
        cells = table.cells[:, j]
        present = np.flatnonzero(~np.isin(cells, MISSING))
        bad = [r for r in present if not _is_float(cells[r])]
        if bad and mode == "error":
            raise _not_numeric(table, column, bad[0])
        if bad:
            raise ConfigError(f"{table.key}: column {column!r} of {table.path} is numeric in the training file, but "
                              f"line {table.lines[bad[0]]} holds {cells[bad[0]]!r}; make it a number, or blank for "
                              "a missing value")
        infinite = [r for r in present if not np.isfinite(float(cells[r]))]
        if infinite:
            raise ConfigError(f"{table.key}: column {column!r} of {table.path} holds nan or inf (line "
                              f"{table.lines[infinite[0]]}: {cells[infinite[0]]!r}); fill in or drop those rows")


def drop_missing(table: Table, missing: str, tally: Tally) -> Table:
    """``table`` without the rows that ``data.missing`` drops; refuses what it does not allow."""
    no_target = np.isin(np.asarray([str(t).strip() for t in table.targets], dtype=object), MISSING)
    blank = table.missing()
    if missing == "error":
        if no_target.any():
            r = int(np.argmax(no_target))
            raise ConfigError(f"data.missing: the target {table.target!r} of {table.path} has no value at line "
                              f"{table.lines[r]} ({shown_cell(table.targets[r])}), and a target cannot be filled in; "
                              "set data.missing=drop to drop the rows without one (data.missing=mean drops them too), "
                              "or fill it in")
        if blank.any():
            r = int(np.argmax(blank.any(1)))
            c = int(np.argmax(blank[r]))
            raise ConfigError(f"data.missing: column {table.columns[c]!r} of {table.path} has no value at line "
                              f"{table.lines[r]} ({shown_cell(table.cells[r, c])}); set data.missing=drop to drop the "
                              "rows with a missing value, or data.missing=mean to fill numeric cells with the "
                              "training rows' mean (a missing category is all-zero)")
    dropped = no_target | (blank.any(1) if missing == "drop" else False)
    tally.no_target += int(no_target.sum())
    tally.dropped += int((dropped & ~no_target).sum())
    if dropped.all():
        what, fix = ("target", "fill in the targets") if no_target.all() else \
            ("value", "fill in the cells, or set data.missing=mean")
        raise ConfigError(f"data.missing: every row of {table.path} has a missing {what}, so data.missing={missing} "
                          f"leaves none; {fix}")
    return table.take(~dropped)


def fit(train: Table, categorical: list[str], mode: str, missing: str) -> TablePreprocessing:
    """Categories and means of the training rows ``train`` (after the carving, so val and test cannot leak in)."""
    blanks = train.missing()
    categories, fill_values = {}, {}
    for j, column in enumerate(train.columns):
        present = train.cells[~blanks[:, j], j]
        if column in categorical:
            categories[column] = sorted(set(present), key=number_first)
        elif missing == "mean":
            if not len(present):
                raise ConfigError(f"data.missing: column {column!r} has no value in the training rows of "
                                  f"{train.path}, so there is no mean to fill it in with; drop the column")
            fill_values[column] = float(np.mean([float(cell) for cell in present]))
    return TablePreprocessing(mode, missing, list(train.columns), categories, fill_values)


def summary(fitted: TablePreprocessing, tally: Tally) -> str | None:
    """One line on what was done, or None when every column was numeric and every cell there."""
    said = []
    if fitted.categories:
        said.append("one-hot encoded " + ", ".join(f"{column} ({len(values)}{' categories' if i == 0 else ''})"
                                                   for i, (column, values) in enumerate(fitted.categories.items())))
    if tally.filled:
        said.append(f"filled {_counted(tally.filled, 'missing value')} with the training mean")
    if tally.blank:
        said.append(f"encoded {_counted(tally.blank, 'missing value')} as all-zero")
    if tally.unseen:
        said.append(f"encoded {_counted(tally.unseen, 'value')} unseen in the training rows as all-zero")
    if tally.dropped:
        said.append(f"dropped {_plural(tally.dropped, 'row')} with a missing value")
    if tally.no_target:
        said.append(f"dropped {_plural(tally.no_target, 'row')} without a target")
    return "data: " + "; ".join(said) if said else None


def _count(counts: Counter, column: str, cells: np.ndarray) -> None:
    if cells.any():
        counts[column] += int(cells.sum())


def _counted(counts: Counter, noun: str) -> str:
    """'2 missing values of a, 1 of b'."""
    return ", ".join(f"{_plural(n, noun) if i == 0 else n} of {column}" for i, (column, n) in enumerate(counts.items()))


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def shown_cell(cell: str) -> str:
    """A cell as an error message shows it: "a blank cell", or its repr."""
    return "a blank cell" if not str(cell).strip() else repr(cell)


def _is_float(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _not_numeric(table: Table, column: str, row: int) -> ConfigError:
    return ConfigError(f"data.categorical: column {column!r} of {table.path} is not numeric (line "
                       f"{table.lines[row]}: {table.cells[row, table.columns.index(column)]!r}); set "
                       "data.categorical=onehot to one-hot encode it, or drop the column")
