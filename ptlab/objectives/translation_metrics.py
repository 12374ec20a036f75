"""Metrics of decoded text: BLEU, chrF, ROUGE (torchmetrics' implementations), exact match and perplexity.

Each is fed what the seq2seq objective's evaluation returns — :class:`Decoded` (teacher-forced
logits and decoded ids) and the reference ids — and reads the ids back as text through the
run's target tokenizer (``data.tokenizer``), up to the first ``<eos>``. ``update_text``
takes texts directly, which is how the baselines are scored.

- ``bleu``: corpus BLEU with SacreBLEU's defaults (13a tokenization, 4-grams, brevity
  penalty), 0–100: BLEU = BP · exp(¼ Σₙ log pₙ), pₙ the clipped n-gram precision.
- ``chrf``: chrF (character 6-grams, β = 2), 0–100.
- ``rouge1``, ``rouge2``, ``rougel``: ROUGE F1 of unigrams, bigrams and the longest common
  subsequence, 0–1 (no stemming, nothing to download).
- ``exact``: the fraction of hypotheses equal to their reference, token for token.
- ``ppl`` (ptlab.objectives.text.Perplexity): exp of the mean teacher-forced negative log-likelihood per
  target token.

torchmetrics is imported only when one of the text metrics is built (it costs seconds);
its states are sums that it adds up over torchrun ranks itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ptlab.data.tokenizers import PAD
from ptlab.objectives.metric import Metric

if TYPE_CHECKING:
    from ptlab.data.loaders import Data
    from ptlab.data.translation import PairTokenizers
    from ptlab.objectives.seq2seq import Decoded


def _tokenizers(data: Data | None) -> PairTokenizers | None:
    from ptlab.data.translation import PairTokenizers

    return PairTokenizers.from_json(data.tokenizer) if data is not None and data.tokenizer else None


class TextMetric:
    """A torchmetrics text metric fed decoded texts; ``scale`` maps its 0–1 value to the reported one."""

    def __init__(self, make: Callable[[], Any], data: Data | None, scale: float = 1.0, key: str | None = None) -> None:
        self.inner, self.tokenizers, self.scale, self.key = make(), _tokenizers(data), scale, key

    def update(self, prediction: Decoded, target: Tensor) -> None:
        self.update_text(self.tokenizers.decode(prediction.hypotheses.tolist()), self.tokenizers.decode(target.tolist()))

    def update_text(self, hypotheses: Sequence[str], references: Sequence[str]) -> None:
        self.inner.update(list(hypotheses), [[r] for r in references] if self.key is None else list(references))

    def compute(self) -> Tensor:
        value = self.inner.compute()
        return (value[self.key] if self.key is not None else value).float() * self.scale

    def reset(self) -> None:
        self.inner.reset()

    def to(self, device: Any) -> TextMetric:
        return self  # the states are counts of strings, kept where torchmetrics keeps them


def bleu(data: Data | None = None) -> TextMetric:
    """Corpus BLEU, SacreBLEU's 13a tokenization, 0–100."""
    from torchmetrics.text import SacreBLEUScore

    return TextMetric(lambda: SacreBLEUScore(tokenize="13a"), data, scale=100.0)


def chrf(data: Data | None = None) -> TextMetric:
    """chrF: F-score of character 6-grams with β = 2, 0–100."""
    from torchmetrics.text import CHRFScore

    return TextMetric(lambda: CHRFScore(n_word_order=0), data, scale=100.0)  # chrF, not chrF++ (its default)


def _rouge(n: str, data: Data | None) -> TextMetric:
    from torchmetrics.text import ROUGEScore

    return TextMetric(lambda: ROUGEScore(rouge_keys=(n,)), data, key=f"{n}_fmeasure")


def rouge1(data: Data | None = None) -> TextMetric:
    """ROUGE-1 F1: unigram overlap with the reference."""
    return _rouge("rouge1", data)


def rouge2(data: Data | None = None) -> TextMetric:
    """ROUGE-2 F1: bigram overlap with the reference."""
    return _rouge("rouge2", data)


def rougel(data: Data | None = None) -> TextMetric:
    """ROUGE-L F1: the longest common subsequence with the reference."""
    return _rouge("rougeL", data)


class ExactMatch(Metric):
    """exact / seen: hypotheses equal to their reference (ids up to ``<eos>``; texts in ``update_text``)."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state("exact", torch.zeros((), dtype=torch.long))
        self.add_state("seen", torch.zeros((), dtype=torch.long))

    def update(self, prediction: Decoded, target: Tensor) -> None:
        hypotheses = prediction.hypotheses
        width = max(hypotheses.shape[1], target.shape[1])
        h, t = (F.pad(x, (0, width - x.shape[1]), value=PAD) for x in (hypotheses, target))
        self.exact += (h == t).all(1).sum()
        self.seen += len(target)

    def update_text(self, hypotheses: Sequence[str], references: Sequence[str]) -> None:
        self.exact += sum(h == r for h, r in zip(hypotheses, references))
        self.seen += len(references)

    def result(self) -> Tensor:
        return self.exact / self.seen.clamp(min=1)


def exact() -> ExactMatch:
    """The fraction of hypotheses equal to their reference."""
    return ExactMatch()
