"""Text: cross-entropy on the next token (language model) or on the label of each text (classification).

Both are the same formula at different places. A language model predicts a
token at every position t of a window, a classifier one label per text:

    L = −(1/N) Σᵢ log softmax(zᵢ)_{yᵢ}

over the N predictions of the batch (N = B·T tokens or B texts). The objective
follows the data: it is told which kind a dataset builder yields (its
``kind`` mark, see :func:`ptlab.data.text.yields`) before anything is loaded,
reads targets that way and reports that kind's metrics — ``ppl`` for a
language model, ``acc`` and ``f1`` for classification — so ``task=rnn
data=imdb`` needs no other change. Models switch the same way, on whether the
data has ``num_classes``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ptlab.config import Probability
from ptlab.data.text import LANGUAGE_MODEL, TEXT_CLASSIFICATION
from ptlab.data.tokenizers import PAD
from ptlab.errors import ConfigError
from ptlab.objectives.base import Objective
from ptlab.objectives.metric import Metric

DEFAULT_METRICS = {LANGUAGE_MODEL: ["ppl"], TEXT_CLASSIFICATION: ["acc", "f1"]}


class Text(Objective):
    """Cross-entropy on text: next-token prediction or one label per text, whichever the data holds."""

    def __init__(self, data_kind: Optional[str] = None, metrics: Optional[Sequence[str]] = None,
                 label_smoothing: Probability = 0.0) -> None:
        if data_kind not in DEFAULT_METRICS:
            raise ConfigError("objective: text needs text data: a language-modelling set (data=python_docs, "
                              "textfile, wikitext2) or a classification set (data=imdb, ag_news, csv_text)")
        self.target_kind = data_kind
        self.metrics = list(metrics) if metrics is not None else DEFAULT_METRICS[data_kind]
        self.label_smoothing = label_smoothing

    def loss(self, model: nn.Module, batch: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """A batch is (inputs..., targets): (ids, next ids) or (ids, lengths, labels); one row per prediction."""
        *inputs, target = batch
        logits = model(*inputs)
        logits, target = logits.flatten(0, -2), target.flatten()  # B·T × vocab and B·T, or B × classes and B
        return F.cross_entropy(logits, target, label_smoothing=self.label_smoothing), logits, target


class Perplexity(Metric):
    """Perplexity: exp of the mean negative log-likelihood of the targets, exp(−(1/N) Σᵢ log p(yᵢ)).

    Fed the logits and targets of every prediction (one row per token; the
    ``<pad>`` targets of seq2seq batches are left out), it sums −log p and
    counts on the device, and takes the exponential once at
    the end, so it is exact over a whole split. Without label smoothing it
    equals exp(split/loss).
    """

    def __init__(self) -> None:
        super().__init__()
        self.add_state("nll", torch.zeros(()), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros(()), dist_reduce_fx="sum")

    def update(self, logits: Tensor, target: Tensor) -> None:
        ignore = -100  # no target is left out of a language model's windows
        if hasattr(logits, "hypotheses"):  # a seq2seq evaluation's Decoded: teacher-forced logits, padded targets
            logits, ignore = logits.logits, PAD
        self.nll += F.cross_entropy(logits.flatten(0, -2).float(), target.flatten(), ignore_index=ignore,
                                    reduction="sum")
        self.count += (target != ignore).sum()

    def result(self) -> Tensor:
        return torch.exp(self.nll / self.count)
