"""Text data sets: where each one's text comes from, and how its splits become token batches.

Language modelling (``kind = "language_model"``): documents, each preceded by
``<bos>``, make one token stream per split, held on the device as one tensor
and served as windows (:class:`ptlab.data.token_batches.TokenWindows`).

Classification (``kind = "text_classification"``): each text becomes
``<bos>`` + at most ``max_length − 1`` tokens, served as padded batches with
their lengths and labels (:class:`ptlab.data.token_batches.PaddedTexts`).
Labels map to ids 0..K−1 in :func:`ptlab.formatting.number_first` order
unless the data set names its classes.

Tokenizers (char, word, bpe) are trained on the training split
(:mod:`ptlab.data.tokenizers`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence, TypeVar

import numpy as np
import torch
from torch import Tensor

from ptlab.config import Fraction, PathThatExists, PositiveInt
from ptlab.data.downloads import dataset_folder
from ptlab.data.files import csv_rows, read_text_file
from ptlab.data.kinds import expect_kind
from ptlab.data.loaders import Data, carve_splits
from ptlab.data.token_batches import PaddedTexts, TokenWindows
from ptlab.data.tokenizers import BOS, PAD, TokenizerKind, encode, tokenizer_for
from ptlab.errors import ConfigError
from ptlab.formatting import number_first

if TYPE_CHECKING:  # `tokenizers` itself is imported where it is used
    from tokenizers import Tokenizer

LANGUAGE_MODEL, TEXT_CLASSIFICATION = "language_model", "text_classification"

Builder = TypeVar("Builder", bound=Callable)


def yields(kind: str) -> Callable[[Builder], Builder]:
    """Mark a dataset builder with the kind of data it returns.

    The ``text`` objective reads the mark before any data is loaded, so
    ``task=rnn data=imdb`` switches to classification (and its metrics) by
    itself. Your own text builders take the same mark.
    """

    def mark(builder: Builder) -> Builder:
        builder.kind = kind  # type: ignore[attr-defined]
        return builder

    return mark


# --- language modelling ------------------------------------------------------------------------

Piece = tuple[str, bool]  # (text, whether a document starts here)


def split_by_position(documents: Sequence[str], val_fraction: float, test_fraction: float) -> dict[str, list[Piece]]:
    """Cut the concatenated documents into train | val | test by character position."""
    if val_fraction + test_fraction >= 1:
        raise ConfigError(f"data.val_fraction + data.test_fraction: they add up to {val_fraction + test_fraction:g}, "
                          "which leaves no training text; make the sum less than 1")
    total = sum(map(len, documents))
    cuts = {"train": (0, round(total * (1 - val_fraction - test_fraction))),
            "val": (round(total * (1 - val_fraction - test_fraction)), round(total * (1 - test_fraction))),
            "test": (round(total * (1 - test_fraction)), total)}
    splits: dict[str, list[Piece]] = {name: [] for name in cuts}
    position = 0
    for document in documents:
        end = position + len(document)
        for name, (lo, hi) in cuts.items():
            a, b = max(lo, position), min(hi, end)
            if a < b:
                splits[name].append((document[a - position:b - position], a == position))
        position = end
    return splits


def stream_data(name: str, splits: dict[str, list[Piece]], tokenizer: TokenizerKind, vocab_size: int,
                block_size: int, batch_size: int, trained_tokenizer: str | None, target_kind: str,
                device: torch.device, seed: int) -> Data:
    """Tokenize each split into one stream (``<bos>`` before each document) and serve windows of it."""
    _expect_text(name, target_kind, LANGUAGE_MODEL)
    if not any(text.strip() for text, _ in splits["train"]):
        raise ConfigError(f"data={name}: the training text is empty; give a corpus with some text")
    tok = tokenizer_for([text for text, _ in splits["train"]], tokenizer, vocab_size, trained_tokenizer)

    def stream(pieces: list[Piece]) -> Tensor:
        parts = [np.concatenate([[BOS], encode(tok, text)]) if starts else encode(tok, text) for text, starts in pieces]
        return torch.from_numpy(np.concatenate(parts or [np.zeros(0, np.int64)]).astype(np.int64))

    streams = {split: stream(pieces) for split, pieces in splits.items()}
    batches = {split: TokenWindows(s.to(device), block_size, batch_size, shuffle=split == "train", seed=seed)
               for split, s in streams.items()}
    for split, windows in batches.items():
        if windows.num_windows == 0:
            need = 2 * block_size if split == "train" else block_size + 1
            raise ConfigError(f"data.block_size: {block_size} is too long for the {split} split ({len(streams[split])} "
                              f"tokens; one {'shuffled ' if split == 'train' else ''}window needs {need}); lower "
                              f"data.block_size or give the {split} split more text")
    info = {"vocab_size": tok.get_vocab_size(), "block_size": block_size}
    return Data(batches["train"], batches["val"], batches["test"], info=info, tokenizer=tok.to_str())


@yields(LANGUAGE_MODEL)
def python_docs(
    *, tokenizer: TokenizerKind = "char", vocab_size: PositiveInt = 4096, block_size: PositiveInt = 128,
    batch_size: PositiveInt = 32, val_fraction: Fraction = 0.05, test_fraction: Fraction = 0.05,
    target_kind: str, device: torch.device, seed: int, trained_tokenizer: Optional[str] = None,
) -> Data:
    """The English documentation that ships with CPython (pydoc_data.topics, ~465 KB), as one token stream."""
    from pydoc_data.topics import topics

    documents = [topics[key] for key in sorted(topics)]
    return stream_data("python_docs", split_by_position(documents, val_fraction, test_fraction), tokenizer,
                       vocab_size, block_size, batch_size, trained_tokenizer, target_kind, device, seed)


@yields(LANGUAGE_MODEL)
def textfile(
    *, path: PathThatExists, tokenizer: TokenizerKind = "char", vocab_size: PositiveInt = 4096,
    block_size: PositiveInt = 128, batch_size: PositiveInt = 32, val_fraction: Fraction = 0.05,
    test_fraction: Fraction = 0.05, target_kind: str, device: torch.device, seed: int,
    trained_tokenizer: Optional[str] = None,
) -> Data:
    """Your plain text file (UTF-8), cut into train | val | test by position."""
    text = _read_text(Path(path).expanduser(), "data.path")
    return stream_data("textfile", split_by_position([text], val_fraction, test_fraction), tokenizer, vocab_size,
                       block_size, batch_size, trained_tokenizer, target_kind, device, seed)


WIKITEXT2_URLS = ("https://wikitext.smerity.com/wikitext-2-raw-v1.zip",
                  "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-raw-v1.zip")


@yields(LANGUAGE_MODEL)
def wikitext2(
    *, root: str = "~/.cache/ptlab/data", download: bool = False, tokenizer: TokenizerKind = "bpe",
    vocab_size: PositiveInt = 8192, block_size: PositiveInt = 128, batch_size: PositiveInt = 32,
    target_kind: str, device: torch.device, seed: int, trained_tokenizer: Optional[str] = None,
) -> Data:
    """WikiText-2 (raw), Wikipedia articles: root/wikitext-2-raw/wiki.{train,valid,test}.raw."""
    files = {"train": "wiki.train.raw", "val": "wiki.valid.raw", "test": "wiki.test.raw"}
    folder = dataset_folder(root, "wikitext-2-raw", list(files.values()), "wikitext2", download, WIKITEXT2_URLS)
    splits = {split: [(_read_text(folder / file, "data.root"), True)] for split, file in files.items()}
    return stream_data("wikitext2", splits, tokenizer, vocab_size, block_size, batch_size, trained_tokenizer,
                       target_kind, device, seed)


# --- classification ----------------------------------------------------------------------------

Labelled = tuple[list[str], list[str]]  # (texts, label names)


def labelled_data(name: str, splits: dict[str, Labelled], classes: Sequence[str] | None, tokenizer: TokenizerKind,
                  vocab_size: int, max_length: int, batch_size: int, bucket_by_length: bool,
                  trained_tokenizer: str | None, target_kind: str, device: torch.device, seed: int,
                  label_key: str = "data") -> Data:
    """Tokenize (text, label) splits, map labels to ids 0..K−1 and serve padded batches."""
    _expect_text(name, target_kind, TEXT_CLASSIFICATION)
    classes = list(classes) if classes is not None else sorted(set(splits["train"][1]), key=number_first)
    if len(classes) < 2:
        raise ConfigError(f"{label_key}: the training labels hold a single class ({classes[0]!r}); "
                          "classification needs two or more")
    ids = {label: i for i, label in enumerate(classes)}
    tok = tokenizer_for(splits["train"][0], tokenizer, vocab_size, trained_tokenizer)
    parts = {}
    for split, (texts, labels) in splits.items():
        unknown = sorted(set(labels) - ids.keys())
        if unknown:
            raise ConfigError(f"{label_key}: labels {unknown[:5]} of the {split} split are not in the training "
                              "split; add them there")
        tokens, lengths = padded_ids(tok, texts, max_length)
        label_ids = torch.tensor([ids[label] for label in labels], dtype=torch.long)
        parts[split] = PaddedTexts(torch.from_numpy(tokens).to(device), torch.from_numpy(lengths), label_ids.to(device),
                                   batch_size, split == "train", seed, bucket_by_length)
    info = {"vocab_size": tok.get_vocab_size(), "block_size": max_length, "num_classes": len(classes),
            "classes": classes}
    return Data(parts["train"], parts["val"], parts["test"], info=info, tokenizer=tok.to_str(),
                state={"classes": classes})  # checkpoints keep the class names: ptlab predict writes them


def padded_ids(tokenizer: Tokenizer, texts: Sequence[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids[N, L], lengths[N]) of ``texts`` as a classifier reads them, in training and in ``ptlab predict``: each
    text is ``<bos>`` and at most ``max_length − 1`` tokens, padded with ``<pad>`` to the longest (L)."""
    sequences = [[BOS, *e.ids[:max_length - 1]] for e in tokenizer.encode_batch(list(texts), add_special_tokens=False)]
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    ids = np.full((len(sequences), lengths.max()), PAD, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        ids[row, :len(sequence)] = sequence
    return ids, lengths


def _carve(texts: list[str], labels: list[str], fractions: dict[str, float], split_seed: int) -> dict[str, Labelled]:
    """Carve stratified splits out of one labelled set (the rest is "train")."""
    index = carve_splits(np.asarray(labels, dtype=object), fractions, split_seed, stratify=True)
    return {split: ([texts[i] for i in rows], [labels[i] for i in rows]) for split, rows in index.items()}


IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"


@yields(TEXT_CLASSIFICATION)
def imdb(
    *, root: str = "~/.cache/ptlab/data", download: bool = False, tokenizer: TokenizerKind = "word",
    vocab_size: PositiveInt = 20000, max_length: PositiveInt = 256, batch_size: PositiveInt = 32,
    val_fraction: Fraction = 0.1, split_seed: int = 0, bucket_by_length: bool = False,
    target_kind: str, device: torch.device, seed: int, trained_tokenizer: Optional[str] = None,
) -> Data:
    """IMDB movie reviews, positive or negative (the aclImdb archive: root/aclImdb/{train,test}/{pos,neg}/*.txt)."""
    folder = dataset_folder(root, "aclImdb", ["train/pos", "train/neg", "test/pos", "test/neg"], "imdb", download,
                            [IMDB_URL])

    def read(part: str) -> Labelled:
        texts, labels = [], []
        for label in ("neg", "pos"):
            for file in sorted((folder / part / label).glob("*.txt")):
                texts.append(read_text_file(file, "data.root").replace("<br />", " "))
                labels.append(label)
        return texts, labels

    splits = _carve(*read("train"), {"val": val_fraction}, split_seed)
    splits["test"] = read("test")
    return labelled_data("imdb", splits, ["neg", "pos"], tokenizer, vocab_size, max_length, batch_size,
                         bucket_by_length, trained_tokenizer, target_kind, device, seed)


AG_NEWS_URL = "https://s3.amazonaws.com/fast-ai-nlp/ag_news_csv.tgz"


@yields(TEXT_CLASSIFICATION)
def ag_news(
    *, root: str = "~/.cache/ptlab/data", download: bool = False, tokenizer: TokenizerKind = "word",
    vocab_size: PositiveInt = 20000, max_length: PositiveInt = 128, batch_size: PositiveInt = 64,
    val_fraction: Fraction = 0.05, split_seed: int = 0, bucket_by_length: bool = False,
    target_kind: str, device: torch.device, seed: int, trained_tokenizer: Optional[str] = None,
) -> Data:
    """AG News, news in 4 topics (the CSV layout: root/ag_news_csv/{train,test}.csv, rows class,title,description)."""
    folder = dataset_folder(root, "ag_news_csv", ["train.csv", "test.csv"], "ag_news", download, [AG_NEWS_URL])
    names_file = folder / "classes.txt"
    names = read_text_file(names_file, "data.root").split("\n") if names_file.exists() else []

    def read(file: str) -> Labelled:
        texts, labels = [], []
        for line, row in csv_rows(folder / file, "data.root"):
            if len(row) < 3 or not row[0].isdigit():
                raise ConfigError(f"data.root: {folder / file} line {line} is not class,title,description")
            texts.append(" ".join(row[1:]).replace("\\", " "))
            labels.append(row[0])
        return texts, labels

    splits = _carve(*read("train.csv"), {"val": val_fraction}, split_seed)
    splits["test"] = read("test.csv")
    data = labelled_data("ag_news", splits, None, tokenizer, vocab_size, max_length, batch_size, bucket_by_length,
                         trained_tokenizer, target_kind, device, seed)
    classes = data.info["classes"]
    if all(c.isdigit() and 1 <= int(c) <= len(names) for c in classes):  # classes.txt names classes 1..K in order
        data.info["classes"] = data.state["classes"] = [names[int(c) - 1].strip() for c in classes]
    return data


@yields(TEXT_CLASSIFICATION)
def csv_text(
    *, train_path: PathThatExists, text: str, label: str, val_path: Optional[PathThatExists] = None,
    test_path: Optional[PathThatExists] = None, tokenizer: TokenizerKind = "word", vocab_size: PositiveInt = 20000,
    max_length: PositiveInt = 256, batch_size: PositiveInt = 32, val_fraction: Fraction = 0.15,
    test_fraction: Fraction = 0.15, split_seed: int = 0, bucket_by_length: bool = False,
    target_kind: str, device: torch.device, seed: int, trained_tokenizer: Optional[str] = None,
) -> Data:
    """Your CSV files with a header row: column ``text`` is classified into the values of column ``label``."""

    def read(path: str, key: str) -> Labelled:
        file = Path(path).expanduser()
        table = [row for _, row in csv_rows(file, key)]
        columns = table[0] if table else []
        for wanted, column in (("text", text), ("label", label)):
            if column not in columns:
                raise ConfigError(f"data.{wanted}: column {column!r} is not in {file}; its columns are "
                                  f"{', '.join(columns) or '(none)'}")
        at = columns.index(text), columns.index(label)
        rows = [tuple(row[i] if i < len(row) else "" for i in at) for row in table[1:]]
        if not rows:
            raise ConfigError(f"{key}: {file} has no data rows; give a CSV with a header row and at least one row")
        return [t for t, _ in rows], [lbl for _, lbl in rows]

    given = {split: read(path, f"data.{split}_path")
             for split, path in (("val", val_path), ("test", test_path)) if path}
    wanted = {split: fraction for split, fraction in (("test", test_fraction), ("val", val_fraction))
              if split not in given}
    train = read(train_path, "data.train_path")
    if len(set(train[1])) < 2:
        raise ConfigError(f"data.label: column {label!r} holds a single class ({train[1][0]!r}); "
                          "classification needs two or more")
    splits = {**_carve(*train, wanted, split_seed), **given}
    return labelled_data("csv_text", splits, None, tokenizer, vocab_size, max_length, batch_size, bucket_by_length,
                         trained_tokenizer, target_kind, device, seed, label_key="data.label")


def _read_text(path: Path, key: str) -> str:
    """A corpus file's text; an empty one is refused too."""
    text = read_text_file(path, key)
    if not text.strip():
        raise ConfigError(f"{key}: {path} is empty; give a text file with some text")
    return text


def _expect_text(name: str, target_kind: str, kind: str) -> None:
    expect_kind(name, target_kind, (kind,), f"text for {kind.replace('_', ' ')}",
                "objective=text (task=rnn or task=transformer)")
