"""Sequence to sequence: translation or summarization, trained by teacher forcing and judged on decoded text.

Training reads a pair (x, y) and scores the decoder on every target token given the
true ones before it (teacher forcing):

    L = −(1/N) Σₜ log p(yₜ | y_<t, x)

over the N real target tokens of the batch (``<pad>`` ignored), with label smoothing ε
(``objective.label_smoothing``): the target distribution puts 1 − ε on yₜ and spreads ε
over the vocabulary, which keeps the model from betting everything on one token.

Evaluation does what a user will: it decodes each source from ``<bos>`` alone — greedy
(``objective.beam=1``) or beam search with a length penalty — and compares the
text with the reference: ``bleu`` and ``chrf`` (SacreBLEU's, 0–100), ``exact`` (the
fraction decoded exactly), ``rouge`` (ROUGE-1/2/L F1, for summaries). ``val/loss`` and
``ppl`` stay teacher-forced. Every run also scores two baselines on its test split,
``test/METRIC_copy`` (the source as its own translation) and ``test/METRIC_dictionary``
(word by word through a dictionary learnt from the training pairs,
:mod:`ptlab.objectives.translation_baselines`).
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple, Optional, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ptlab.config import NonNegativeFloat, NonNegativeInt, PositiveInt, Probability
from ptlab.data.tokenizers import PAD
from ptlab.objectives.base import Objective

log = logging.getLogger("ptlab")

ROUGE_METRICS = ("rouge1", "rouge2", "rougel")  # what objective.metrics=[rouge] stands for


class Decoded(NamedTuple):
    """What evaluation compares with the reference ids: teacher-forced logits [B, T, V] and decoded ids [B, L]."""

    logits: Tensor
    hypotheses: Tensor


class Seq2Seq(Objective):
    """Teacher-forced cross-entropy for training; decoded text for the metrics."""

    target_kind = "seq2seq"

    def __init__(self, data_kind: Optional[str] = None, metrics: Sequence[str] = ("bleu", "chrf", "exact", "ppl"),
                 label_smoothing: Probability = 0.1, beam: PositiveInt = 1, length_penalty: NonNegativeFloat = 0.6,
                 max_length: Optional[PositiveInt] = None, baselines: bool = True, samples: NonNegativeInt = 4) -> None:
        self.metrics = [name for metric in metrics for name in (ROUGE_METRICS if metric == "rouge" else (metric,))]
        self.label_smoothing = label_smoothing
        self.beam, self.length_penalty, self.max_length = beam, length_penalty, max_length
        self.run_baselines, self.samples = baselines, samples

    def loss(self, model: nn.Module, batch: Sequence[Tensor]) -> tuple[Tensor, Any, Tensor]:
        """A batch is (src, src_lengths, tgt_in, tgt_out); evaluation also decodes the sources."""
        src, src_lengths, tgt_in, tgt_out = batch
        logits = model(src, src_lengths, tgt_in)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), tgt_out.flatten(), ignore_index=PAD,
                               label_smoothing=self.label_smoothing)
        if model.training:
            return loss, logits, tgt_out
        return loss, Decoded(logits, self.decode(model, src, src_lengths)), tgt_out

    def loss_weight(self, target: Tensor) -> Tensor:
        """The batch's real target tokens: val/loss is the mean over every token of the split."""
        return (target != PAD).sum()

    def decode(self, model: nn.Module, src: Tensor, src_lengths: Tensor) -> Tensor:
        """Token ids [B, L] decoded with the configured beam (each row ends with ``<eos>`` or at the length cap)."""
        from ptlab.models.decoding import decode

        max_length = self.max_length or model.max_target_length
        return decode(model, src, src_lengths, max_length, beam=self.beam, length_penalty=self.length_penalty)

    def callbacks(self, run_dir: Any) -> list:
        from ptlab.logging.translation_samples import TranslationSamples

        return [TranslationSamples(self, self.samples)] if self.samples else []

    def baselines(self, data: Any, results: dict[str, float]) -> dict[str, float]:
        """``test/METRIC_copy`` and ``test/METRIC_dictionary`` on the run's own test split."""
        if not self.run_baselines:
            return {}
        from ptlab.objectives import translation_baselines

        out = translation_baselines.scores(data, [m for m in self.metrics if m != "ppl"])
        first = next((m for m in self.metrics if m != "ppl"), None)
        if first and f"test/{first}_copy" in out and f"test/{first}" in results:
            log.info("on the same test split, test/%s: copy the source %.4g, word-by-word dictionary %.4g; "
                     "this model %.4g", first, out[f"test/{first}_copy"], out[f"test/{first}_dictionary"],
                     results[f"test/{first}"])
        return out
