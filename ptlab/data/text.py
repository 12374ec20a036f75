"""Text: tokenizers from Hugging Face ``tokenizers``, language-modelling streams and labelled texts.

Tokenizers (``data.tokenizer``), trained on the training split only:

    char   one token per character (WordLevel over single characters)
    word   words and runs of punctuation (WordLevel after whitespace/punctuation splitting); decoding
           joins tokens with spaces
    bpe    byte-level byte-pair encoding (GPT-2's scheme): any string encodes, decoding is exact

Every ptlab tokenizer has the same special tokens: ``<pad>`` = 0, ``<unk>`` = 1,
``<bos>`` = 2. A run keeps its tokenizer as Hugging Face JSON — in
``tokenizer.json`` in the run directory and in every checkpoint — so ``ptlab
eval`` and ``ptlab generate`` see exactly the ids training saw.

Language modelling (``kind = "language_model"``): documents, each preceded by
``<bos>``, make one token stream held on the device as one tensor. Batches are
windows of ``block_size + 1`` consecutive tokens (inputs ``w[:-1]``, targets
``w[1:]``). The training split is cut into windows at a random phase each epoch
and the windows are shuffled — both from (seed, epoch) — so every token is
seen once per epoch and a resumed run continues with exactly the next batch.
The RNN uses the same independent windows (its state starts at zero in each),
not carried-over BPTT state. Validation and test use every window from
position 0, in order.

Classification (``kind = "text_classification"``): each text becomes
``<bos>`` + at most ``max_length − 1`` tokens. The texts live on the device as
one padded matrix; a batch is cut to its longest text and carries the lengths
(on the CPU, where ``pack_padded_sequence`` wants them) and the labels.
``bucket_by_length`` sorts each run of 32 batches by length, so a batch pads less.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Literal, Optional, Sequence, TypeVar

import numpy as np
import torch
from torch import Tensor

from ptlab.config import Fraction, PathThatExists, PositiveInt
from ptlab.data.files import csv_rows, read_text_file
from ptlab.data.loaders import Data, carve_splits, epoch_permutation
from ptlab.errors import ConfigError

if TYPE_CHECKING:  # `tokenizers` itself is imported where it is used
    from tokenizers import Tokenizer

TokenizerKind = Literal["char", "word", "bpe"]
SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>")
PAD, UNK, BOS = range(3)
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


# --- tokenizers ------------------------------------------------------------------------------

def train_tokenizer(kind: TokenizerKind, texts: Sequence[str], vocab_size: int) -> Tokenizer:
    """A ``kind`` tokenizer with at most ``vocab_size`` tokens (specials included), learned from ``texts``."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    if kind == "bpe":
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    else:
        tokenizer = Tokenizer(models.WordLevel(unk_token=SPECIAL_TOKENS[UNK]))
        if kind == "char":
            tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
            tokenizer.decoder = decoders.Fuse()
        else:
            tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                            show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def load_tokenizer(json: str) -> Tokenizer:
    """A tokenizer saved by a run (``tokenizer.json`` or a checkpoint's ``tokenizer``)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(json)


def encode(tokenizer: Tokenizer, text: str) -> np.ndarray:
    """Token ids of ``text``, encoded in chunks of whole lines (in parallel); the same text, the same ids."""
    lines = text.splitlines(keepends=True)
    chunks, chunk, size = [], [], 0
    for line in lines:
        chunk.append(line)
        size += len(line)
        if size >= 1 << 16:
            chunks.append("".join(chunk))
            chunk, size = [], 0
    if chunk:
        chunks.append("".join(chunk))
    encoded = tokenizer.encode_batch(chunks, add_special_tokens=False)
    return np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in encoded] or [np.zeros(0, np.int64)])


def _tokenizer_for(texts: Sequence[str], kind: TokenizerKind, vocab_size: int, trained: str | None) -> Tokenizer:
    return load_tokenizer(trained) if trained is not None else train_tokenizer(kind, texts, vocab_size)


# --- language modelling ------------------------------------------------------------------------

Piece = tuple[str, bool]  # (text, whether a document starts here)


class TokenWindows:
    """Windows of ``block_size + 1`` consecutive tokens of one stream on the device: (inputs, next tokens)."""

    def __init__(self, stream: Tensor, block_size: int, batch_size: int, shuffle: bool, seed: int) -> None:
        self.stream, self.block_size, self.batch_size = stream, block_size, batch_size
        self.shuffle, self.seed = shuffle, seed
        # Shuffled windows start at a phase in [0, block_size), so one fewer fits.
        span = len(stream) - block_size if shuffle else len(stream) - 1
        self.num_windows = max(0, span // block_size)
        self.offsets = torch.arange(block_size + 1, device=stream.device)

    def __len__(self) -> int:
        return -(-self.num_windows // self.batch_size)

    def starts(self, epoch: int) -> Tensor:
        """First position of every window of ``epoch``, in the order they are served."""
        index = torch.arange(self.num_windows)
        phase = 0
        if self.shuffle:
            index = epoch_permutation(self.num_windows, self.seed, epoch)
            phase = epoch_phase(self.block_size, self.seed, epoch)
        return (phase + index * self.block_size).to(self.stream.device)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        starts = self.starts(epoch)
        for i in range(start, len(self)):
            windows = self.stream[starts[i * self.batch_size:(i + 1) * self.batch_size, None] + self.offsets]
            yield windows[:, :-1], windows[:, 1:]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self.batches()


def epoch_phase(block_size: int, seed: int, epoch: int) -> int:
    """Where the first window of ``epoch`` starts: the same (seed, epoch), the same phase."""
    entropy = [seed % 2**64, epoch, 1]  # 1: a stream of its own, apart from epoch_permutation's
    return int(np.random.SeedSequence(entropy).generate_state(1)[0]) % block_size


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
    _expect(name, target_kind, LANGUAGE_MODEL)
    if not any(text.strip() for text, _ in splits["train"]):
        raise ConfigError(f"data={name}: the training text is empty; give a corpus with some text")
    tok = _tokenizer_for([text for text, _ in splits["train"]], tokenizer, vocab_size, trained_tokenizer)

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
    folder = Path(root).expanduser() / "wikitext-2-raw"
    files = {"train": "wiki.train.raw", "val": "wiki.valid.raw", "test": "wiki.test.raw"}
    if download and not all((folder / f).exists() for f in files.values()):
        _download(WIKITEXT2_URLS, root, "wikitext2")
    _require(folder, list(files.values()), "wikitext2")
    splits = {split: [(_read_text(folder / file, "data.root"), True)] for split, file in files.items()}
    return stream_data("wikitext2", splits, tokenizer, vocab_size, block_size, batch_size, trained_tokenizer,
                       target_kind, device, seed)


# --- classification ----------------------------------------------------------------------------

class PaddedTexts:
    """Token sequences of different lengths, padded into one matrix on the device.

    A batch is ``(tokens[B, L], lengths[B], labels[B])`` with L the longest
    text of the batch; ``lengths`` stays on the CPU (``pack_padded_sequence``
    needs it there, and it decides L without a device sync).
    """

    def __init__(self, tokens: Tensor, lengths: Tensor, labels: Tensor, batch_size: int, shuffle: bool, seed: int,
                 bucket_by_length: bool) -> None:
        self.tokens, self.lengths, self.labels = tokens, lengths.cpu(), labels
        self.batch_size, self.shuffle, self.seed, self.bucket = batch_size, shuffle, seed, bucket_by_length
        self.num_samples = len(lengths)

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)

    def order(self, epoch: int) -> Tensor:
        """Sample indices of ``epoch`` in serving order (CPU)."""
        n = self.num_samples
        order = epoch_permutation(n, self.seed, epoch) if self.shuffle else torch.arange(n)
        if self.bucket:  # longest first within each run of 32 batches
            run = 32 * self.batch_size
            order = torch.cat([chunk[torch.argsort(self.lengths[chunk], descending=True, stable=True)]
                               for chunk in order.split(run)])
        return order

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        order = self.order(epoch)
        for i in range(start, len(self)):
            index = order[i * self.batch_size:(i + 1) * self.batch_size]
            lengths = self.lengths[index]
            on_device = index.to(self.tokens.device)
            yield self.tokens[on_device, :int(lengths.max())], lengths, self.labels[on_device]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        return self.batches()


Labelled = tuple[list[str], list[str]]  # (texts, label names)


def labelled_data(name: str, splits: dict[str, Labelled], classes: Sequence[str] | None, tokenizer: TokenizerKind,
                  vocab_size: int, max_length: int, batch_size: int, bucket_by_length: bool,
                  trained_tokenizer: str | None, target_kind: str, device: torch.device, seed: int,
                  label_key: str = "data") -> Data:
    """Tokenize (text, label) splits, map labels to ids 0..K−1 and serve padded batches."""
    _expect(name, target_kind, TEXT_CLASSIFICATION)
    classes = list(classes) if classes is not None else _sorted_labels(splits["train"][1])
    if len(classes) < 2:
        raise ConfigError(f"{label_key}: the training labels hold a single class ({classes[0]!r}); "
                          "classification needs two or more")
    ids = {label: i for i, label in enumerate(classes)}
    tok = _tokenizer_for(splits["train"][0], tokenizer, vocab_size, trained_tokenizer)
    parts = {}
    for split, (texts, labels) in splits.items():
        unknown = sorted(set(labels) - ids.keys())
        if unknown:
            raise ConfigError(f"{label_key}: labels {unknown[:5]} of the {split} split are not in the training "
                              "split; add them there")
        sequences = [[BOS, *e.ids[:max_length - 1]] for e in tok.encode_batch(texts, add_special_tokens=False)]
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        tokens = np.full((len(sequences), lengths.max()), PAD, dtype=np.int64)
        for row, sequence in enumerate(sequences):
            tokens[row, :len(sequence)] = sequence
        label_ids = torch.tensor([ids[label] for label in labels], dtype=torch.long)
        parts[split] = PaddedTexts(torch.from_numpy(tokens).to(device), torch.from_numpy(lengths), label_ids.to(device),
                                   batch_size, split == "train", seed, bucket_by_length)
    info = {"vocab_size": tok.get_vocab_size(), "block_size": max_length, "num_classes": len(classes),
            "classes": classes}
    return Data(parts["train"], parts["val"], parts["test"], info=info, tokenizer=tok.to_str())


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
    folder = Path(root).expanduser() / "aclImdb"
    if download and not folder.is_dir():
        _download((IMDB_URL,), root, "imdb")
    _require(folder, ["train/pos", "train/neg", "test/pos", "test/neg"], "imdb")

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
    folder = Path(root).expanduser() / "ag_news_csv"
    if download and not (folder / "train.csv").exists():
        _download((AG_NEWS_URL,), root, "ag_news")
    _require(folder, ["train.csv", "test.csv"], "ag_news")
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
    classes = _sorted_labels(splits["train"][1])
    data = labelled_data("ag_news", splits, classes, tokenizer, vocab_size, max_length, batch_size, bucket_by_length,
                         trained_tokenizer, target_kind, device, seed)
    if all(c.isdigit() and 1 <= int(c) <= len(names) for c in classes):  # classes.txt names classes 1..K in order
        data.info["classes"] = [names[int(c) - 1].strip() for c in classes]
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


# --- files -------------------------------------------------------------------------------------

def _sorted_labels(labels: Sequence[str]) -> list[str]:
    """Distinct labels, numerically sorted when they are numbers (so "2" < "10")."""
    def key(label: str) -> tuple[int, float, str]:
        return (0, float(label), label) if re.fullmatch(r"\s*-?\d+(\.\d*)?\s*", label) else (1, 0.0, label)

    return sorted(set(labels), key=key)


def _read_text(path: Path, key: str) -> str:
    """A corpus file's text; an empty one is refused too."""
    text = read_text_file(path, key)
    if not text.strip():
        raise ConfigError(f"{key}: {path} is empty; give a text file with some text")
    return text


def _require(folder: Path, names: list[str], data_name: str) -> None:
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        raise ConfigError(f"data.root: {data_name} files {', '.join(missing)} are not in {folder}; pass "
                          "data.download=true to fetch them, or data.root=DIR where they are")


def _download(urls: Sequence[str], root: str, data_name: str) -> None:
    """Fetch and unpack an archive into ``root``, trying each mirror in turn."""
    from torchvision.datasets.utils import download_and_extract_archive

    errors = []
    for url in urls:
        try:
            download_and_extract_archive(url, str(Path(root).expanduser()))
            return
        except Exception as err:  # network errors come in many types
            errors.append(f"{url}: {err}")
    raise ConfigError(f"data.download: could not download {data_name} ({'; '.join(errors)}); put the files under "
                      "data.root yourself and pass data.download=false")


def _expect(name: str, target_kind: str, kind: str) -> None:
    if target_kind != kind:
        raise ConfigError(f"data={name} holds text for {kind.replace('_', ' ')} but the objective reads "
                          f"{target_kind} data; use objective=text (task=rnn or task=transformer)")
