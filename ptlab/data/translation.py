"""Sentence pairs for sequence-to-sequence tasks (translation, summarization): where they come from, how they
become token ids.

Every builder here yields ``kind = "seq2seq"`` data: (source, target) text pairs per
split, tokenized by two tokenizers trained on the *training* pairs only — one for the
sources, one for the targets (``data.source_tokenizer``, ``data.target_tokenizer``: char,
word or bpe), or one for both with ``data.shared_vocabulary=true``. Both carry the
special tokens of :mod:`ptlab.data.tokenizers` plus ``<eos>`` (id 3), which ends every
target. A run keeps them as one JSON object ``{"source": ..., "target": ...}`` of
Hugging Face tokenizers, in ``tokenizer.json`` and in every checkpoint, so ``ptlab eval``
and ``ptlab translate`` read exactly the ids training saw.

Lengths: ``data.max_source_length`` and ``data.max_target_length`` (tokens; a target
counts its ``<bos>`` and ``<eos>``) size the model's positions. Longer training pairs are
left out (logged); in val and test they are cut to fit.

The data sets: ``number_words`` (default, generated: numbers written out in words in two
languages, :mod:`ptlab.data.number_words`), ``parallel_text`` (line-aligned files, the
Multi30k layout), ``tsv_pairs`` (Tatoeba / manythings.org ``.txt``) and ``pairs_csv`` (two
columns of your CSV, e.g. article and summary) — readers in :mod:`ptlab.data.pair_files`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np
import torch

from ptlab.config import Fraction, PathThatExists, PositiveInt
from ptlab.data.kinds import expect_kind
from ptlab.data.loaders import Data
from ptlab.data.pair_batches import PairBatches
from ptlab.data.text import yields
from ptlab.data.tokenizers import BOS, PAD, SPECIAL_TOKENS, UNK, TokenizerKind, train_tokenizer
from ptlab.errors import ConfigError

if TYPE_CHECKING:  # `tokenizers` itself is imported where it is used
    from tokenizers import Tokenizer

log = logging.getLogger("ptlab")

SEQ2SEQ = "seq2seq"
EOS = len(SPECIAL_TOKENS)  # 3: ends every target sequence
SEQ2SEQ_SPECIAL_TOKENS = (*SPECIAL_TOKENS, "<eos>")
Pairs = list[tuple[str, str]]


@dataclass
class PairTokenizers:
    """The source and the target tokenizer of a seq2seq run (the same object with a shared vocabulary)."""

    source: Tokenizer
    target: Tokenizer

    def to_json(self) -> str:
        return json.dumps({"source": json.loads(self.source.to_str()), "target": json.loads(self.target.to_str())})

    @staticmethod
    def from_json(text: str) -> PairTokenizers:
        from tokenizers import Tokenizer

        parts = json.loads(text)
        if not isinstance(parts, dict) or set(parts) != {"source", "target"}:
            raise ConfigError("ckpt: its tokenizer is not a source/target pair; it is not a seq2seq checkpoint")
        return PairTokenizers(*(Tokenizer.from_str(json.dumps(parts[side])) for side in ("source", "target")))

    def decode(self, rows: Sequence[Sequence[int]]) -> list[str]:
        """Target texts of id rows, each read up to its first ``<eos>`` (special tokens dropped)."""
        return self.target.decode_batch([_until_eos(row) for row in rows], skip_special_tokens=True)


def _until_eos(row: Sequence[int]) -> list[int]:
    row = list(row)
    return row[:row.index(EOS)] if EOS in row else row


def train_pair_tokenizers(pairs: Pairs, source_kind: TokenizerKind, target_kind: TokenizerKind, source_vocab: int,
                          target_vocab: int, shared: bool) -> PairTokenizers:
    """Tokenizers learned from the training ``pairs`` (one on sources and targets together when ``shared``)."""
    sources, targets = [s for s, _ in pairs], [t for _, t in pairs]
    if shared:
        both = train_tokenizer(source_kind, sources + targets, max(source_vocab, target_vocab),
                               SEQ2SEQ_SPECIAL_TOKENS)
        return PairTokenizers(both, both)
    return PairTokenizers(train_tokenizer(source_kind, sources, source_vocab, SEQ2SEQ_SPECIAL_TOKENS),
                          train_tokenizer(target_kind, targets, target_vocab, SEQ2SEQ_SPECIAL_TOKENS))


def source_ids(tokenizers: PairTokenizers, texts: Sequence[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids[N, S], lengths[N]): each source's tokens, at most ``max_length``, padded with ``<pad>``; an empty source
    is one ``<unk>``, so no row is all padding."""
    rows = [e.ids[:max_length] or [UNK] for e in tokenizers.source.encode_batch(list(texts), add_special_tokens=False)]
    return _padded(rows)


def target_ids(tokenizers: PairTokenizers, texts: Sequence[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids[N, T], lengths[N]): ``<bos>`` + each target's tokens + ``<eos>``, at most ``max_length`` in all."""
    encoded = tokenizers.target.encode_batch(list(texts), add_special_tokens=False)
    return _padded([[BOS, *e.ids[:max_length - 2], EOS] for e in encoded])


def _padded(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    ids = np.full((len(rows), max(lengths.max(initial=1), 1)), PAD, dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = row
    return ids, lengths


def pair_data(name: str, splits: dict[str, Pairs], source_tokenizer: TokenizerKind, target_tokenizer: TokenizerKind,
              source_vocab_size: int, target_vocab_size: int, shared_vocabulary: bool, max_source_length: int,
              max_target_length: int, batch_size: int, trained_tokenizer: str | None, target_kind: str,
              device: torch.device, seed: int) -> Data:
    """Tokenize the splits' pairs and serve them as :class:`PairBatches` (only train is shuffled)."""
    expect_kind(name, target_kind, (SEQ2SEQ,), "sentence pairs", "objective=seq2seq (task=translate)")
    if max_target_length < 3:
        raise ConfigError(f"data.max_target_length: {max_target_length} leaves no room for a token between <bos> "
                          "and <eos>; make it at least 3")
    if trained_tokenizer is not None:
        tokenizers = PairTokenizers.from_json(trained_tokenizer)
    else:
        tokenizers = train_pair_tokenizers(splits["train"], source_tokenizer, target_tokenizer, source_vocab_size,
                                           target_vocab_size, shared_vocabulary)
    parts = {}
    for split, pairs in splits.items():
        src, src_lengths = source_ids(tokenizers, [s for s, _ in pairs], max_source_length + 1)
        tgt, tgt_lengths = target_ids(tokenizers, [t for _, t in pairs], max_target_length + 1)
        too_long = (src_lengths > max_source_length) | (tgt_lengths > max_target_length)
        if too_long.any():
            if split == "train":
                log.info("data=%s: %d of %d training pairs are longer than data.max_source_length=%d or "
                         "data.max_target_length=%d tokens and are left out", name, too_long.sum(), len(pairs),
                         max_source_length, max_target_length)
                keep = ~too_long
                src, src_lengths, tgt, tgt_lengths = src[keep], src_lengths[keep], tgt[keep], tgt_lengths[keep]
                pairs = [p for p, k in zip(pairs, keep) if k]
                if not pairs:
                    raise ConfigError(f"data.max_target_length: every training pair of data={name} is longer than "
                                      "the limits; raise data.max_source_length and data.max_target_length")
            else:
                log.info("data=%s: %d %s pairs are cut to data.max_source_length=%d / data.max_target_length=%d "
                         "tokens", name, too_long.sum(), split, max_source_length, max_target_length)
                src, src_lengths = src[:, :max_source_length], np.minimum(src_lengths, max_source_length)
                tgt, tgt_lengths = _cut_targets(tgt, tgt_lengths, max_target_length)
        parts[split] = PairBatches(torch.from_numpy(src).to(device), torch.from_numpy(src_lengths),
                                   torch.from_numpy(tgt).to(device), torch.from_numpy(tgt_lengths),
                                   [s for s, _ in pairs], batch_size, shuffle=split == "train", seed=seed)
    info = {"source_vocab_size": tokenizers.source.get_vocab_size(),
            "target_vocab_size": tokenizers.target.get_vocab_size(),
            "max_source_length": max_source_length, "max_target_length": max_target_length}
    return Data(parts["train"], parts["val"], parts["test"], info=info, tokenizer=tokenizers.to_json())


def _cut_targets(tgt: np.ndarray, lengths: np.ndarray, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Targets of more than ``max_length`` tokens cut to it, still ending with ``<eos>``."""
    tgt, long = tgt[:, :max_length].copy(), lengths > max_length
    if long.any():  # then the rows are wider than max_length
        tgt[long, max_length - 1] = EOS
    return tgt, np.minimum(lengths, max_length)


@yields(SEQ2SEQ)
def number_words(
    *, source: str = "de", target: str = "en", max_number: PositiveInt = 99_999, train_size: PositiveInt = 8000,
    val_size: PositiveInt = 500, test_size: PositiveInt = 1000, split_seed: int = 0,
    source_tokenizer: TokenizerKind = "char", target_tokenizer: TokenizerKind = "bpe",
    source_vocab_size: PositiveInt = 100, target_vocab_size: PositiveInt = 300, shared_vocabulary: bool = False,
    max_source_length: PositiveInt = 80, max_target_length: PositiveInt = 32, batch_size: PositiveInt = 64,
    target_kind: str, device: torch.device, seed: int, trained_tokenizer: Optional[str] = None,
) -> Data:
    """Numbers written out in words, translated between English, German and French (generated offline; val and test
    numbers never occur in training)."""
    from ptlab.data.number_words import number_pairs

    splits = number_pairs(source, target, max_number, train_size, val_size, test_size, split_seed)
    return pair_data("number_words", splits, source_tokenizer, target_tokenizer, source_vocab_size,
                     target_vocab_size, shared_vocabulary, max_source_length, max_target_length, batch_size,
                     trained_tokenizer, target_kind, device, seed)


@yields(SEQ2SEQ)
def parallel_text(
    *, root: PathThatExists, source: str, target: str, val_fraction: Fraction = 0.05, test_fraction: Fraction = 0.05,
    split_seed: int = 0, source_tokenizer: TokenizerKind = "bpe", target_tokenizer: TokenizerKind = "bpe",
    source_vocab_size: PositiveInt = 8000, target_vocab_size: PositiveInt = 8000, shared_vocabulary: bool = False,
    max_source_length: PositiveInt = 128, max_target_length: PositiveInt = 128, batch_size: PositiveInt = 64,
    target_kind: str, device: torch.device, seed: int, trained_tokenizer: Optional[str] = None,
) -> Data:
    """Line-aligned files ``root/{train,val,test}.{source,target}`` (Multi30k's layout); missing val/test are carved
    out of train."""
    from ptlab.data import pair_files

    splits = pair_files.parallel_text(root, source, target, val_fraction, test_fraction, split_seed)
    return pair_data("parallel_text", splits, source_tokenizer, target_tokenizer, source_vocab_size,
                     target_vocab_size, shared_vocabulary, max_source_length, max_target_length, batch_size,
                     trained_tokenizer, target_kind, device, seed)


@yields(SEQ2SEQ)
def tsv_pairs(
    *, train_path: PathThatExists, val_path: Optional[PathThatExists] = None,
    test_path: Optional[PathThatExists] = None, val_fraction: Fraction = 0.05, test_fraction: Fraction = 0.05,
    split_seed: int = 0, source_tokenizer: TokenizerKind = "bpe", target_tokenizer: TokenizerKind = "bpe",
    source_vocab_size: PositiveInt = 8000, target_vocab_size: PositiveInt = 8000, shared_vocabulary: bool = False,
    max_source_length: PositiveInt = 128, max_target_length: PositiveInt = 128, batch_size: PositiveInt = 64,
    target_kind: str, device: torch.device, seed: int, trained_tokenizer: Optional[str] = None,
) -> Data:
    """Tab-separated ``source<TAB>target[<TAB>attribution]`` lines (Tatoeba / manythings.org ``.txt``)."""
    from ptlab.data import pair_files

    splits = pair_files.tsv_pairs(train_path, val_path, test_path, val_fraction, test_fraction, split_seed)
    return pair_data("tsv_pairs", splits, source_tokenizer, target_tokenizer, source_vocab_size, target_vocab_size,
                     shared_vocabulary, max_source_length, max_target_length, batch_size, trained_tokenizer,
                     target_kind, device, seed)


@yields(SEQ2SEQ)
def pairs_csv(
    *, train_path: PathThatExists, source: str, target: str, val_path: Optional[PathThatExists] = None,
    test_path: Optional[PathThatExists] = None, val_fraction: Fraction = 0.05, test_fraction: Fraction = 0.05,
    split_seed: int = 0, source_tokenizer: TokenizerKind = "bpe", target_tokenizer: TokenizerKind = "bpe",
    source_vocab_size: PositiveInt = 8000, target_vocab_size: PositiveInt = 8000, shared_vocabulary: bool = True,
    max_source_length: PositiveInt = 512, max_target_length: PositiveInt = 128, batch_size: PositiveInt = 32,
    target_kind: str, device: torch.device, seed: int, trained_tokenizer: Optional[str] = None,
) -> Data:
    """Two columns of your CSV files (a header row names them): ``data.source`` becomes ``data.target`` — a
    translation, or an article and its summary."""
    from ptlab.data import pair_files

    splits = pair_files.pairs_csv(train_path, source, target, val_path, test_path, val_fraction, test_fraction,
                                  split_seed)
    return pair_data("pairs_csv", splits, source_tokenizer, target_tokenizer, source_vocab_size, target_vocab_size,
                     shared_vocabulary, max_source_length, max_target_length, batch_size, trained_tokenizer,
                     target_kind, device, seed)
