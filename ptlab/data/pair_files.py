"""Sentence pairs from the user's files, for the ``translate`` task (translation and summarization).

Each reader returns ``{"train": [...], "val": [...], "test": [...]}``, each a list
of (source text, target text) strings; tokenization and batching happen elsewhere.

Three layouts:

- :func:`parallel_text`, line-aligned files in one folder (Multi30k's layout):
  ``root/train.en`` and ``root/train.de``, line i of one the translation of line i
  of the other. Validation: the first of ``val``, ``valid``, ``dev`` present for
  both languages; test: ``test``, else ``test2016`` or ``test_2016_flickr``.
  Blank lines at the end of one file beyond the other's last line are ignored.
- :func:`tsv_pairs`, tab-separated pairs, the Tatoeba / manythings.org ``.txt``
  layout: ``source<TAB>target[<TAB>attribution...]``, no header; columns after the
  second are ignored and blank lines skipped.
- :func:`pairs_csv`, CSV files with a header row; the columns named by
  ``data.source`` and ``data.target`` (say ``article`` and ``summary``). Cells may
  span lines inside quotes; their ``\\r\\n`` become ``\\n``.

Files are UTF-8 (a byte-order mark is dropped, ``\\r\\n`` line endings are fine);
each side is stripped of whitespace at its ends. A pair with an empty side is
dropped, with one warning per file saying how many. A split without a file is
carved out of the training pairs (:func:`carve_pairs`: a fraction of them, drawn
with ``split_seed``, not stratified); when both are given, train is used whole.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from ptlab.data.files import csv_rows, read_text_file
from ptlab.data.loaders import carve_splits
from ptlab.errors import ConfigError

log = logging.getLogger("ptlab")

Pair = tuple[str, str]
Splits = dict[str, list[Pair]]

SPLITS = ("train", "val", "test")
SPLIT_NAMES = {"val": ("val", "valid", "dev"), "test": ("test", "test2016", "test_2016_flickr")}  # first found wins


def carve_pairs(train: list[Pair], given: Mapping[str, list[Pair]], val_fraction: float, test_fraction: float,
                split_seed: int) -> Splits:
    """The three splits: those in ``given`` as they are, the others carved out of ``train`` (the rest is "train").

    Each carved split is ``data.{split}_fraction`` of the training pairs (test
    first, then val, as :func:`ptlab.data.text.csv_text` does), drawn with
    ``split_seed``: the same pairs and seed always give the same splits. Every
    split keeps the order of its file.
    """
    fractions = {split: fraction for split, fraction in (("test", test_fraction), ("val", val_fraction))
                 if split not in given}
    if not fractions:
        return {"train": list(train), "val": list(given["val"]), "test": list(given["test"])}
    index = carve_splits(np.zeros(len(train)), fractions, split_seed, stratify=False)
    splits = {split: [train[i] for i in np.sort(rows)] for split, rows in index.items()}
    for split in fractions:  # shuffle_split rounds a carved split up, so this is only a guard
        if not splits[split]:
            raise ConfigError(f"data.{split}_fraction: {fractions[split]:g} of {len(train)} training pairs carves no "
                              f"{split} pair; raise the fraction or give more pairs")
    return {split: splits[split] if split in splits else list(given[split]) for split in SPLITS}


# --- line-aligned parallel files ---------------------------------------------------------------


def parallel_text(root: str, source: str, target: str, val_fraction: float, test_fraction: float,
                  split_seed: int) -> Splits:
    """Line-aligned files ``root/{split}.{source}`` and ``root/{split}.{target}`` (Multi30k's layout)."""
    folder = Path(root).expanduser()
    holds = f"train.{source} and train.{target}"
    if not folder.exists():
        raise ConfigError(f"data.root: {folder} does not exist; give the folder that holds {holds} "
                          "(line i of one the translation of line i of the other)")
    if not folder.is_dir():
        raise ConfigError(f"data.root: {folder} is a file, not a folder; give the folder that holds {holds}")
    if source == target:
        raise ConfigError(f"data.target: it is {target!r}, the same as data.source; give the suffix of the "
                          "other language's files")
    for key, lang in (("data.source", source), ("data.target", target)):
        if not (folder / f"train.{lang}").is_file():
            raise ConfigError(_missing_train(folder, key, lang, holds))
    train = _aligned_pairs(folder / f"train.{source}", folder / f"train.{target}")
    given: Splits = {}
    for split in ("val", "test"):
        name = _split_name(folder, split, source, target)
        if name:
            given[split] = _aligned_pairs(folder / f"{name}.{source}", folder / f"{name}.{target}")
    return carve_pairs(train, given, val_fraction, test_fraction, split_seed)


def _missing_train(folder: Path, key: str, lang: str, holds: str) -> str:
    there = sorted(p.name for p in folder.iterdir() if p.name.startswith("train.") and not p.is_dir())
    if not there:
        others = sorted(p.name for p in folder.iterdir())
        listing = ", ".join(others[:10]) + (", ..." if len(others) > 10 else "") if others else "nothing"
        return (f"data.root: no train.{lang} in {folder}, nor any other train.* file (it holds {listing}); give the "
                f"folder that holds {holds}")
    hint = ""
    if f"train.{lang}.gz" in there:
        hint = f" (decompress them first: gunzip {folder}/*.gz)"
    return f"{key}: no train.{lang} in {folder}; the folder has {', '.join(there)}{hint}"


def _split_name(folder: Path, split: str, source: str, target: str) -> Optional[str]:
    """The stem of ``split``'s two files (the first name present for both languages), or None when it has none.

    A name present for one language only, with no other name present for both, is an error naming the other file.
    """
    names = SPLIT_NAMES[split]
    for name in names:
        if (folder / f"{name}.{source}").is_file() and (folder / f"{name}.{target}").is_file():
            return name
    for name in names:
        for have, lack in ((source, target), (target, source)):
            if (folder / f"{name}.{have}").is_file():
                raise ConfigError(f"data.root: {folder} has {name}.{have} but no {name}.{lack}; add {name}.{lack} "
                                  f"(its {split} split's other language) or remove {name}.{have} to carve the "
                                  f"{split} split out of train (with data.{split}_fraction)")
    return None


def _aligned_pairs(source_file: Path, target_file: Path) -> list[Pair]:
    sources, targets = _lines(source_file, "data.root"), _lines(target_file, "data.root")
    n = min(len(sources), len(targets))
    if not any(line.strip() for line in sources[n:] + targets[n:]):  # blank lines at the end of one file
        sources, targets = sources[:n], targets[:n]
    if len(sources) != len(targets):
        raise ConfigError(f"data.root: {source_file} and {target_file} are not line-aligned: {len(sources)} lines "
                          f"and {len(targets)}; give files with one sentence per line, line i of one the "
                          "translation of line i of the other")
    pairs = [(s.strip(), t.strip()) for s, t in zip(sources, targets)]
    where = f"{source_file} and {target_file.name}"
    return _kept(pairs, where, "data.root", f"{where} hold no pair with text on both sides; give files with one "
                                            "sentence per line")


def _lines(path: Path, key: str) -> list[str]:
    """The lines of a text file, split at ``\\n`` only (a ``\\r`` before it stays, to be stripped; other Unicode
    line breaks are text), as ``wc -l`` counts them plus a last line without ``\\n``."""
    text = read_text_file(path, key, universal_newlines=False)
    return text.removesuffix("\n").split("\n") if text else []


def _kept(pairs: list[Pair], where: str, key: str, none_left: str) -> list[Pair]:
    """``pairs`` without those with an empty side (one warning says how many); a ConfigError if none is left."""
    kept = [pair for pair in pairs if pair[0] and pair[1]]
    if not kept:
        raise ConfigError(f"{key}: {none_left}")
    if len(kept) < len(pairs):
        log.warning("data: %d of %d pairs of %s have an empty side and are dropped", len(pairs) - len(kept),
                    len(pairs), where)
    return kept


# --- tab-separated pairs -----------------------------------------------------------------------


def tsv_pairs(train_path: str, val_path: str | None, test_path: str | None, val_fraction: float,
              test_fraction: float, split_seed: int) -> Splits:
    """Tab-separated ``source<TAB>target[<TAB>...]`` lines (the Tatoeba / manythings.org ``.txt`` layout)."""
    train = _tsv_file(train_path, "data.train_path")
    given = {split: _tsv_file(path, f"data.{split}_path")
             for split, path in (("val", val_path), ("test", test_path)) if path}
    return carve_pairs(train, given, val_fraction, test_fraction, split_seed)


def _tsv_file(path: str, key: str) -> list[Pair]:
    file = Path(path).expanduser()
    pairs = []
    for number, line in enumerate(_lines(file, key), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise ConfigError(f"{key}: {file} line {number} has no tab; each line needs \"source<TAB>target\" "
                              "(more tab-separated columns are ignored)")
        pairs.append((fields[0].strip(), fields[1].strip()))
    if not pairs:
        raise ConfigError(f"{key}: {file} is empty; give lines of \"source<TAB>target\"")
    return _kept(pairs, str(file), key, f"{file} holds no pair with text on both sides of its tab; give lines of "
                                        "\"source<TAB>target\"")


# --- CSV with a header row ---------------------------------------------------------------------


def pairs_csv(train_path: str, source: str, target: str, val_path: str | None, test_path: str | None,
              val_fraction: float, test_fraction: float, split_seed: int) -> Splits:
    """CSV files with a header row: column ``source`` is mapped to column ``target``."""
    train = _csv_file(train_path, "data.train_path", source, target)
    given = {split: _csv_file(path, f"data.{split}_path", source, target)
             for split, path in (("val", val_path), ("test", test_path)) if path}
    return carve_pairs(train, given, val_fraction, test_fraction, split_seed)


def _csv_file(path: str, key: str, source: str, target: str) -> list[Pair]:
    file = Path(path).expanduser()
    table = [row for _, row in csv_rows(file, key)]
    columns = [name.strip() for name in table[0]] if table else []
    for wanted, column in (("source", source), ("target", target)):
        if column.strip() not in columns:
            raise ConfigError(f"data.{wanted}: column {column!r} is not in {file}; its columns are "
                              f"{', '.join(columns) or '(none)'}")
    at = columns.index(source.strip()), columns.index(target.strip())
    if len(table) < 2:
        raise ConfigError(f"{key}: {file} has no data rows; give a CSV with a header row and at least one row")
    pairs = [(_cell(row, at[0]), _cell(row, at[1])) for row in table[1:]]
    return _kept(pairs, str(file), key, f"{file} has no row with text in both columns {source!r} and {target!r}; "
                                        "fill them in")


def _cell(row: list[str], i: int) -> str:
    return row[i].replace("\r\n", "\n").strip() if i < len(row) else ""
