"""Interaction files → one :class:`Interactions` table: MovieLens in GroupLens's own layouts, and a generic CSV.

The layouts, as the archives unpack them:

- ``ml-100k/u.data``: ``user<TAB>item<TAB>rating<TAB>timestamp``, no header; titles in ``u.item``,
  ``id|title|release date|video release date|IMDb URL|19 genre flags``, encoded latin-1.
- ``ml-1m/ratings.dat``: ``UserID::MovieID::Rating::Timestamp``; titles in ``movies.dat``,
  ``MovieID::Title::Genres``, latin-1.
- ``ml-latest-small/ratings.csv``: the header ``userId,movieId,rating,timestamp`` (half-star ratings);
  titles in ``movies.csv``, ``movieId,title,genres``, UTF-8 CSV with quoted titles
  (``"American President, The (1995)"``).
- your CSV: a header row; the columns named by ``data.user``, ``data.item`` and optionally
  ``data.rating`` and ``data.timestamp``; ids may be any strings.

Titles are optional: without the titles file the table has none. Timestamps stay the numbers the
file holds (seconds for MovieLens); only their order matters to the splits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ptlab.data.files import csv_rows, read_text_file
from ptlab.errors import ConfigError
from ptlab.formatting import is_number

Rows = list[tuple[int, list[str]]]  # (line number, fields) of each non-blank line
ROLES = ("user", "item", "rating", "timestamp")
LATEST_HEADER = ["userId", "movieId", "rating", "timestamp"]


@dataclass
class Interactions:
    """One row per interaction: raw user and item ids, ratings and timestamps (None when absent), item titles."""

    users: list[str]
    items: list[str]
    ratings: Optional[np.ndarray] = None  # float64, one per row
    timestamps: Optional[np.ndarray] = None  # float64, one per row
    titles: dict[str, str] = field(default_factory=dict)  # raw item id → title; may be empty

    def __len__(self) -> int:
        return len(self.users)


def read_movielens_100k(folder: Path) -> Interactions:
    """``folder/u.data`` with the titles of ``folder/u.item`` (MovieLens 100k)."""
    path = folder / "u.data"
    header = ["user id", "item id", "rating", "timestamp"]  # u.data has none; these are the names its README gives
    body = _split_lines(read_text_file(path, "data.root"), None)
    table = _table(path, header, body, dict(zip(ROLES, header)), dict.fromkeys(ROLES, "data.root"), "data.root")
    table.titles = _latin1_titles(folder / "u.item", "|", "id|title|release date|...")
    return table


def read_movielens_1m(folder: Path) -> Interactions:
    """``folder/ratings.dat`` with the titles of ``folder/movies.dat`` (MovieLens 1M)."""
    path = folder / "ratings.dat"
    header = ["UserID", "MovieID", "Rating", "Timestamp"]
    body = _split_lines(read_text_file(path, "data.root"), "::")
    table = _table(path, header, body, dict(zip(ROLES, header)), dict.fromkeys(ROLES, "data.root"), "data.root")
    table.titles = _latin1_titles(folder / "movies.dat", "::", "MovieID::Title::Genres")
    return table


def read_movielens_latest(folder: Path) -> Interactions:
    """``folder/ratings.csv`` with the titles of ``folder/movies.csv`` (MovieLens latest-small)."""
    path = folder / "ratings.csv"
    rows = csv_rows(path, "data.root")
    header, body = (rows[0][1], rows[1:]) if rows else ([], [])
    if header != LATEST_HEADER:
        raise ConfigError(f"data.root: {path} starts with {','.join(header) or 'nothing'}, not MovieLens's header "
                          f"{','.join(LATEST_HEADER)}; delete {folder} and pass data.download=true")
    table = _table(path, header, body, dict(zip(ROLES, header)), dict.fromkeys(ROLES, "data.root"), "data.root")
    table.titles = _csv_titles(folder / "movies.csv")
    return table


def read_interactions_csv(path: Path, user: str, item: str, rating: Optional[str] = None,
                          timestamp: Optional[str] = None) -> Interactions:
    """A UTF-8 CSV with a header row, one interaction per row; ``user`` … ``timestamp`` name its columns."""
    rows = csv_rows(path, "data.path")
    header, body = (rows[0][1], rows[1:]) if rows else ([], [])
    columns = {"user": user, "item": item, "rating": rating, "timestamp": timestamp}
    for role, name in columns.items():
        if name is not None and body and name not in header:
            raise ConfigError(f"data.{role}: column {name!r} is not in {path} (its columns: {', '.join(header)}); "
                              f"set data.{role}=COLUMN")
    return _table(path, header, body, columns, {role: f"data.{role}" for role in ROLES}, "data.path")


def _split_lines(text: str, sep: Optional[str]) -> Rows:
    """The fields of each non-blank line, split at ``sep`` (at runs of whitespace when None)."""
    return [(number, line.split(sep)) for number, line in enumerate(text.split("\n"), start=1) if line.strip()]


def _table(path: Path, header: list[str], body: Rows, columns: dict[str, Optional[str]], keys: dict[str, str],
           file_key: str) -> Interactions:
    """The table of ``body``'s rows: ``columns`` names the header column of each role (None: the file has none),
    ``keys`` the config key each role's errors name, ``file_key`` the key naming the file."""
    if not body:
        raise ConfigError(f"{file_key}: {path} has no data rows; give a file with one interaction per row")
    for line, row in body:
        if len(row) != len(header):
            raise ConfigError(f"{file_key}: {path} line {line} has {len(row)} fields, not {len(header)}; fix that line")
    position = {role: header.index(name) for role, name in columns.items() if name is not None}

    def ids(role: str) -> list[str]:
        values = [row[position[role]].strip() for _, row in body]
        if not all(values):
            raise ConfigError(f"{keys[role]}: column {columns[role]!r} of {path} is empty on line "
                              f"{body[values.index('')][0]}; give every row an id there")
        return values

    def numbers(role: str) -> Optional[np.ndarray]:
        if role not in position:
            return None
        values = [row[position[role]] for _, row in body]
        try:
            parsed = np.asarray(values, dtype=np.float64)
            finite = np.isfinite(parsed)
            bad = None if finite.all() else int(np.argmin(finite))
        except ValueError:  # some value is not a number: find the first, for the message
            bad = next(k for k, value in enumerate(values) if not is_number(value))
        if bad is not None:
            unset = "" if keys[role] == file_key else f", or set {keys[role]}=null"
            raise ConfigError(f"{keys[role]}: column {columns[role]!r} of {path} is not a number on line "
                              f"{body[bad][0]} ({values[bad]!r}); fix that line{unset}")
        return parsed

    return Interactions(ids("user"), ids("item"), numbers("rating"), numbers("timestamp"))


def _latin1_titles(path: Path, sep: str, layout: str) -> dict[str, str]:
    """Item id → title from the first two fields of each line of a latin-1 file (none when there is no file)."""
    if not path.is_file():
        return {}
    titles = {}
    for line, fields in _split_lines(path.read_bytes().decode("latin-1").replace("\r\n", "\n"), sep):
        if len(fields) < 2:
            raise ConfigError(f"data.root: {path} line {line} is not {layout}; fix that line or delete the file")
        titles[fields[0].strip()] = fields[1].strip()
    return titles


def _csv_titles(path: Path) -> dict[str, str]:
    """Item id → title from MovieLens's ``movies.csv`` (none when there is no file)."""
    if not path.is_file():
        return {}
    rows = csv_rows(path, "data.root")
    if not rows or rows[0][1][:2] != ["movieId", "title"]:
        raise ConfigError(f"data.root: {path} does not start with MovieLens's header movieId,title,genres; "
                          "fix it or delete the file")
    titles = {}
    for line, fields in rows[1:]:
        if len(fields) < 2:
            raise ConfigError(f"data.root: {path} line {line} has {len(fields)} field, not movieId,title,genres; "
                              "fix that line or delete the file")
        titles[fields[0].strip()] = fields[1].strip()
    return titles
