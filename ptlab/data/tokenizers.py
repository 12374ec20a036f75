"""Tokenizers from Hugging Face ``tokenizers``, trained on the training split only (``data.tokenizer``):

    char   one token per character (WordLevel over single characters)
    word   words and runs of punctuation (WordLevel after whitespace/punctuation splitting); decoding
           joins tokens with spaces
    bpe    byte-level byte-pair encoding (GPT-2's scheme): any string encodes, decoding is exact

Every ptlab tokenizer has the same special tokens: ``<pad>`` = 0, ``<unk>`` = 1,
``<bos>`` = 2. A run keeps its tokenizer as Hugging Face JSON — in
``tokenizer.json`` in the run directory and in every checkpoint — so ``ptlab
eval`` and ``ptlab generate`` see exactly the ids training saw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np

if TYPE_CHECKING:  # `tokenizers` itself is imported where it is used
    from tokenizers import Tokenizer

TokenizerKind = Literal["char", "word", "bpe"]
SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>")
PAD, UNK, BOS = range(3)


def train_tokenizer(kind: TokenizerKind, texts: Sequence[str], vocab_size: int,
                    special_tokens: Sequence[str] = SPECIAL_TOKENS) -> Tokenizer:
    """A ``kind`` tokenizer with at most ``vocab_size`` tokens (``special_tokens`` first, from id 0), learned from
    ``texts``."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    if kind == "bpe":
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(special_tokens),
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    else:
        tokenizer = Tokenizer(models.WordLevel(unk_token=SPECIAL_TOKENS[UNK]))
        if kind == "char":
            tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
            tokenizer.decoder = decoders.Fuse()
        else:
            tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=list(special_tokens),
                                            show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def load_tokenizer(json: str) -> Tokenizer:
    """A tokenizer saved by a run (``tokenizer.json`` or a checkpoint's ``tokenizer``)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(json)


def tokenizer_for(texts: Sequence[str], kind: TokenizerKind, vocab_size: int, trained: str | None) -> Tokenizer:
    """``trained`` (a checkpoint's tokenizer, as JSON) when given, else a new one learned from ``texts``."""
    return load_tokenizer(trained) if trained is not None else train_tokenizer(kind, texts, vocab_size)


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
